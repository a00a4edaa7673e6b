"""Serving fixtures: one served world per session, one real server per module that needs it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from serving_helpers import Server, World, build_world, start_server


@pytest.fixture(autouse=True)
def _no_bentoml_telemetry(monkeypatch):
    monkeypatch.setenv("BENTOML_DO_NOT_TRACK", "true")


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> World:
    """Synthetic shop -> Feast repo (online store loaded) -> item-kNN run -> registry."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENTOML_DO_NOT_TRACK", "true")
        mp.delenv("AUGREC_FEATURE_SOURCES", raising=False)
        return build_world(tmp_path_factory.mktemp("serving"))


@pytest.fixture(scope="module")
def server(world, tmp_path_factory) -> Iterator[Server]:
    """`bentoml serve` on the world's production model, HTTP and gRPC on free ports."""
    srv = start_server(world, tmp_path_factory.mktemp("server") / "server.log")
    try:
        yield srv
    finally:
        srv.stop()
