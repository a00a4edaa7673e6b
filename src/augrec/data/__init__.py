"""Data contract, loaders, validation, synthetic data and splits."""
