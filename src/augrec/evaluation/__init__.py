"""Evaluation: hand-checked metric functions and the full-ranking harness."""
