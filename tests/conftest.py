import os
from pathlib import Path

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
