"""Helpers shared by the feature-store tests (a plain module: conftest is for fixtures)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[2]
FEATURE_REPO = REPO_ROOT / "feature_repo"


def datasets_dir() -> Path:
    """Real public datasets: $AUGREC_DATA_DIR, else ../shared/datasets beside the repo."""
    return Path(os.environ.get("AUGREC_DATA_DIR", REPO_ROOT.parent / "shared" / "datasets"))


def copy_feature_repo(dest: Path) -> Path:
    """A fresh copy of the repo's Feast definitions, without any local data."""
    shutil.copytree(FEATURE_REPO, dest, ignore=shutil.ignore_patterns("data", "__pycache__"))
    return dest


def expected_history(interactions: pd.DataFrame, user: int, at: int, length: int) -> tuple:
    """(items, times) a correct as-of read returns: the user's newest `length` events <= at."""
    rows = interactions[(interactions["user_id"] == user) & (interactions["timestamp"] <= at)]
    rows = rows.sort_values("timestamp", kind="stable").tail(length)
    return rows["item_id"].to_numpy(np.int64), rows["timestamp"].to_numpy(np.int64)


def invoke(*args: str):
    """Run `augrec ...` in-process through typer's runner; returns the click Result."""
    from typer.testing import CliRunner

    from augrec.cli import app

    return CliRunner().invoke(app, list(args))
