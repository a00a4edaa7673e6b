"""Serving fixtures: one served world per session, one real server per module that needs it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from serving_helpers import (
    API_KEYS,
    RATE_BURST,
    RATE_LIMIT,
    Server,
    World,
    build_world,
    start_server,
)
from tls_helpers import self_signed


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


@pytest.fixture(scope="session")
def tls(tmp_path_factory):
    """A self-signed certificate and its key for 127.0.0.1, made for this session."""
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def secured(world, tls, tmp_path_factory) -> Iterator[Server]:
    """A server with access control on: API keys, a rate limit, gRPC over TLS only.

    Session-scoped: the access tests and the fuzz share it; each spends the rate budget of
    its own key (the limit is per key).
    """
    cert, key = tls
    srv = start_server(
        world,
        tmp_path_factory.mktemp("secured") / "server.log",
        AUGREC_API_KEYS=",".join(API_KEYS.values()),
        AUGREC_RATE_LIMIT=str(RATE_LIMIT),
        AUGREC_RATE_LIMIT_BURST=str(RATE_BURST),
        AUGREC_GRPC_TLS_CERT=str(cert),
        AUGREC_GRPC_TLS_KEY=str(key),
    )
    try:
        yield srv
    finally:
        srv.stop()
    log = srv.log.read_text()
    leaked = [name for name, key in API_KEYS.items() if key in log]
    assert not leaked, f"API keys {leaked} appear in the server log"
