import os
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """Real public datasets: $AUGREC_DATA_DIR, else ../shared/datasets beside the repo."""
    return Path(os.environ.get("AUGREC_DATA_DIR", REPO.parent / "shared" / "datasets"))


@pytest.fixture(scope="session")
def beauty_file() -> Path:
    path = data_dir() / "amazon-beauty" / "Beauty.txt"
    if not path.exists():
        pytest.skip(f"real data absent: {path} (set AUGREC_DATA_DIR to the datasets folder)")
    return path


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory) -> Path:
    """A small seeded synthetic dataset written once per session."""
    from augrec.data.synthetic import SyntheticConfig, generate

    out = tmp_path_factory.mktemp("synthetic")
    interactions, items = generate(SyntheticConfig(users=1500, items=600, seed=7))
    interactions.to_parquet(out / "interactions.parquet", index=False)
    items.to_parquet(out / "items.parquet", index=False)
    return out


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
