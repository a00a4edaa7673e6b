"""Shared fixtures: tiny data and a registry home per test."""

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("BENTOML_DO_NOT_TRACK", "true")
    monkeypatch.delenv("AUGREC_FEATURE_SOURCES", raising=False)


@pytest.fixture(scope="session")
def shop(tmp_path_factory) -> Path:
    """Seeded synthetic data (300 users) in the augrec layout."""
    from augrec.data.synthetic import SyntheticConfig, generate

    out = tmp_path_factory.mktemp("pipe") / "shop"
    out.mkdir()
    interactions, items = generate(SyntheticConfig(users=300, items=120, seed=3))
    interactions.to_parquet(out / "interactions.parquet", index=False)
    items.to_parquet(out / "items.parquet", index=False)
    return out


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "bentoml"
    monkeypatch.setenv("BENTOML_HOME", str(path))
    return path
