"""Shared fixtures: tiny synthetic data, a few trained runs, and a registry in a temp home."""

from pathlib import Path

import pytest
from registry_helpers import SASREC_UNTRAINED, train_run


@pytest.fixture(autouse=True)
def _no_bentoml_telemetry(monkeypatch):
    # BentoML posts a usage event on every model save unless told not to.
    monkeypatch.setenv("BENTOML_DO_NOT_TRACK", "true")


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    from augrec.data.synthetic import SyntheticConfig, generate

    out = tmp_path_factory.mktemp("tiny") / "shop"
    out.mkdir()
    interactions, items = generate(SyntheticConfig(users=300, items=120, seed=3))
    interactions.to_parquet(out / "interactions.parquet", index=False)
    items.to_parquet(out / "items.parquet", index=False)
    return out


@pytest.fixture(scope="session")
def runs(tiny_data, tmp_path_factory) -> dict[str, Path]:
    """Run directories trained once per session on `tiny_data`."""
    root = tmp_path_factory.mktemp("runs")
    return {
        "popularity": train_run(tiny_data, root / "popularity", "popularity"),
        "itemknn": train_run(tiny_data, root / "itemknn", "itemknn", {"neighbors": 50}),
        "itemknn_b": train_run(
            tiny_data, root / "itemknn_b", "itemknn", {"neighbors": 20, "decay": 0.6}
        ),
        "sasrec0": train_run(tiny_data, root / "sasrec0", "sasrec", SASREC_UNTRAINED),
    }


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh BentoML home for one test; also what the CLI reads from $BENTOML_HOME."""
    path = tmp_path / "bentoml"
    monkeypatch.setenv("BENTOML_HOME", str(path))
    return path


@pytest.fixture
def registry(home):
    from augrec.registry.store import Registry

    return Registry(home)
