"""Fixtures for the Feast feature repo: real Feast on temporary copies of `feature_repo/`.

Feast costs ~6 s to import, so every store here is session-scoped and built once.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from feature_helpers import copy_feature_repo, invoke

REDIS_PASSWORD = "test-secret"


@pytest.fixture(scope="session", autouse=True)
def _default_sources_dir() -> Iterator[None]:
    # A developer's AUGREC_FEATURE_SOURCES would point every temporary repo at one folder.
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("AUGREC_FEATURE_SOURCES", raising=False)
        yield


@pytest.fixture(scope="session")
def fs_synthetic(tmp_path_factory) -> tuple[Path, pd.DataFrame, pd.DataFrame]:
    """Seeded synthetic data on disk: (directory, interactions, items).

    200 users make a handful longer than the 50-item history window.
    """
    from augrec.data.synthetic import SyntheticConfig, generate

    out = tmp_path_factory.mktemp("fs_synthetic")
    interactions, items = generate(SyntheticConfig(users=200, items=300, seed=7))
    interactions.to_parquet(out / "interactions.parquet", index=False)
    items.to_parquet(out / "items.parquet", index=False)
    return out, interactions, items


@pytest.fixture(scope="session")
def fs_local_repo(tmp_path_factory, fs_synthetic) -> tuple[Path, dict[str, str]]:
    """A repo copy set up through the CLI (ingest, apply, materialize); returns its outputs."""
    repo = copy_feature_repo(tmp_path_factory.mktemp("fs_local") / "feature_repo")
    outputs = {}
    for cmd in (
        ["ingest", "--data", str(fs_synthetic[0])],
        ["plan"],
        ["apply"],
        ["materialize"],
    ):
        result = invoke("features", cmd[0], *cmd[1:], "--repo", str(repo))
        assert result.exit_code == 0, (cmd, result.output, result.exception)
        outputs[cmd[0]] = result.output
    return repo, outputs


@pytest.fixture(scope="session")
def fs_local_store(fs_local_repo):
    from augrec.features.store import open_store

    return open_store(fs_local_repo[0])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_endpoint(tmp_path_factory) -> Iterator[str]:
    """A real redis-server on loopback (password-protected), stopped after the session."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip(
            "redis-server is not installed (Debian package 'redis-server'); "
            "the Redis online-store tests need it"
        )
    import redis

    workdir = tmp_path_factory.mktemp("redis")
    for _attempt in range(3):  # the free port can be taken between probe and bind
        port = _free_port()
        proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--requirepass",
                REDIS_PASSWORD,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(host="127.0.0.1", port=port, password=REDIS_PASSWORD)
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        if proc.poll() is None:
            break
    else:
        pytest.fail("redis-server did not start")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def redis_environ(redis_endpoint) -> dict[str, str]:
    """The environment the redis store config reads its endpoint and secret from."""
    return {"AUGREC_REDIS_ENDPOINT": redis_endpoint, "AUGREC_REDIS_PASSWORD": REDIS_PASSWORD}


@pytest.fixture(scope="session")
def fs_redis_store(tmp_path_factory, fs_synthetic, redis_environ):
    """The synthetic data in a repo copy whose online store is the Redis server."""
    from augrec.features import ingest, spec
    from augrec.features.store import apply, materialize, open_store

    _, interactions, items = fs_synthetic
    repo = copy_feature_repo(tmp_path_factory.mktemp("fs_redis") / "feature_repo")
    ingest.write_sources(ingest.build_sources(interactions, items), spec.sources_dir(repo))
    store = open_store(repo, "redis", environ=redis_environ)
    apply(store)
    materialize(store)
    return store
