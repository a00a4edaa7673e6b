"""Helpers for tests that drive the `augrec` CLI in-process."""

import sys
from pathlib import Path

import pandas as pd


def run_cli(*args: str) -> int:
    """Run the `augrec` entry point in-process; returns the exit code."""
    from augrec.cli import main

    old = sys.argv
    sys.argv = ["augrec", *args]
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        sys.argv = old
    return 0


def write_csv(path: Path, rows: list[dict]) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False)
    return path
