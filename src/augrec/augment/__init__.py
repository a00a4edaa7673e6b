"""Synthetic data: generators, augmentation policies and the synthetic-data report."""
