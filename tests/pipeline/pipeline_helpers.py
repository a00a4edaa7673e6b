"""Helpers shared by the pipeline tests (imported by name, like tests/registry's helpers)."""

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# itemknn with fixed settings: seconds per fit, and the gate's floors are met on this data.
KNN = {"model": {"neighbors": 50}}


def new_feature_repo(dest: Path) -> Path:
    """A copy of the project's Feast definitions without data."""
    shutil.copytree(
        REPO / "feature_repo", dest, ignore=shutil.ignore_patterns("data", "__pycache__")
    )
    return dest
