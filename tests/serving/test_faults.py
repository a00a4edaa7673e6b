"""Faults injected into a real server (`bentoml serve` as `augrec serve` runs it) under load.

- Redis, the online store, stopped under load: every answer is still 200, flagged
  `feature_store_unavailable`; the pod stays ready, `/status` and the metric show the
  degraded store; Redis back: the same personalised answers as before, no restart.
- The model file corrupted in the registry: the running server keeps serving the version it
  loaded, `augrec serve` refuses to start on it, `promote` refuses it.
- The service worker killed: BentoML's supervisor starts a new one and clients that retry get
  every answer, the same answers as before.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fault_helpers import REDIS_PASSWORD, Load, RedisProcess, redis_exe, worker_pids
from serving_helpers import Server, World, copy_feature_repo, free_port, start_server

pytestmark = pytest.mark.e2e


def answers(base: str, users: list[int]) -> dict[int, dict]:
    with httpx.Client(base_url=base, timeout=10) as http:
        out = {}
        for u in users:
            r = http.post("/recommend", json={"user_id": u, "k": 5})
            assert r.status_code == 200, r.text
            out[u] = r.json()
        return out


def store_up(base: str) -> str:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    return next(line for line in text.splitlines() if line.startswith("augrec_feature_store_up"))


def served_users(world: World, n: int = 12) -> list[int]:
    import pandas as pd

    users = pd.read_parquet(world.data / "interactions.parquet")["user_id"].unique()
    return [int(u) for u in users[:n]]


# ---- Redis stopped under load -------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_world(world, tmp_path_factory) -> Iterator[tuple[RedisProcess, Server]]:
    """A Redis online store loaded with the world's data, and a server reading it."""
    exe = redis_exe()
    if exe is None:
        pytest.skip("redis-server is not installed (Debian package 'redis-server')")
    from augrec.data.loaders import load_dataset
    from augrec.features import ingest, spec
    from augrec.features.store import apply, materialize, open_store

    root = tmp_path_factory.mktemp("redis-fault")
    redis = RedisProcess(exe, root, free_port())
    redis.start()
    environ = {"AUGREC_REDIS_ENDPOINT": redis.endpoint, "AUGREC_REDIS_PASSWORD": REDIS_PASSWORD}
    repo = copy_feature_repo(root / "feature_repo")
    ds = load_dataset(world.data)
    ingest.write_sources(ingest.build_sources(ds.interactions, ds.items), spec.sources_dir(repo))
    with pytest.MonkeyPatch.context() as mp:
        for k, v in environ.items():
            mp.setenv(k, v)
        store = open_store(repo, "redis")
        apply(store)
        materialize(store)
    srv = start_server(
        world,
        root / "server.log",
        AUGREC_FEATURE_REPO=str(repo),
        AUGREC_FEATURE_ENV="redis",
        **environ,
    )
    try:
        yield redis, srv
    finally:
        srv.stop()
        redis.kill()


def test_redis_stopped_under_load_answers_flagged_and_recovers_without_a_restart(
    redis_world, world
):
    redis, srv = redis_world
    users = served_users(world)
    before = answers(srv.http, users)
    assert not any(a["fallback"] for a in before.values())
    workers = worker_pids(srv.proc.pid)
    with Load(srv.http, users) as load:
        time.sleep(1.0)
        down_at = time.monotonic()
        redis.stop()
        time.sleep(2.0)
        # Degraded, still ready, and saying so.
        assert httpx.get(f"{srv.http}/readyz", timeout=5).status_code == 200
        status = httpx.get(f"{srv.http}/status", timeout=5).json()
        assert status["ready"] and status["degraded"] and status["feature_store"] == "unavailable"
        assert store_up(srv.http).endswith(" 0.0")
        outage = answers(srv.http, users)
        up_at = time.monotonic()
        redis.start()
        # Recovery is noticed by the next background read (RETRY_S, plus the Redis client's
        # own reconnect backoff if that read began during the outage).
        while httpx.get(f"{srv.http}/status", timeout=10).json()["degraded"]:
            assert time.monotonic() - up_at < 30, "not recovered 30 s after Redis returned"
            time.sleep(0.1)
        recovered_at = time.monotonic()
        after = answers(srv.http, users)
        time.sleep(1.0)
        end = time.monotonic()
    assert all(a["fallback_reason"] == "feature_store_unavailable" for a in outage.values())
    # Nothing lost: the same personalised answers, from the same worker process.
    assert after == before
    assert worker_pids(srv.proc.pid) == workers and srv.proc.poll() is None
    assert store_up(srv.http).endswith(" 1.0")
    assert not httpx.get(f"{srv.http}/status", timeout=5).json()["degraded"]
    # Under load: every request answered 200; during the outage, flagged; after it, not.
    assert load.records and all(r[1] == 200 for r in load.records), {r[1] for r in load.records}
    during = load.between(down_at + 0.2, up_at)
    assert during and all(r[3] == "feature_store_unavailable" for r in during)
    recovered = load.between(recovered_at + 0.2, end)
    assert recovered and not any(r[2] for r in recovered)
    print(
        f"Redis outage {up_at - down_at:.1f} s: {len(during)} answers during it, all flagged; "
        f"recovered {recovered_at - up_at:.1f} s after Redis returned; "
        f"{len(load.records)} requests under load, all 200"
    )


# ---- a server on its own copy of the registry ---------------------------------------------


@pytest.fixture(scope="module")
def own_home(world, tmp_path_factory) -> Iterator[tuple[Path, Server]]:
    """A server on a copy of the world's registry, which the tests below may damage."""
    root = tmp_path_factory.mktemp("own-home")
    home = root / "bentoml"
    shutil.copytree(world.home, home)
    srv = start_server(world, root / "server.log", BENTOML_HOME=str(home))
    try:
        yield home, srv
    finally:
        srv.stop()


def retrying(call, deadline_s: float = 120.0):
    """Call until it answers; what a client with retries does (counts the attempts)."""
    deadline = time.monotonic() + deadline_s
    attempts = 0
    while True:
        attempts += 1
        try:
            return call(), attempts
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.slow  # a new worker imports Feast and loads the model again: ~15-30 s here
def test_a_killed_worker_is_replaced_and_retrying_clients_lose_nothing(own_home, world):
    import grpc
    from augrec.services import stubs

    _, srv = own_home
    users = served_users(world, 20)
    before = answers(srv.http, users)
    (worker,) = worker_pids(srv.proc.pid)
    pb2, pb2_grpc = stubs.load()
    channel = grpc.insecure_channel(srv.grpc)
    stub = pb2_grpc.RecommenderStub(channel)

    def http_call(u):
        def call():
            r = httpx.post(f"{srv.http}/recommend", json={"user_id": u, "k": 5}, timeout=10)
            r.raise_for_status()
            return r.json()

        return call

    def grpc_call(u):
        def call():
            out = stub.Recommend(pb2.RecommendRequest(user_id=u, k=5), timeout=10)
            return [i.item_id for i in out.items]

        return call

    os.kill(worker, signal.SIGKILL)
    t0 = time.monotonic()
    got, retried = {}, 0
    for u in users:  # every request is answered, some after retries
        got[u], attempts = retrying(http_call(u))
        retried += attempts - 1
        ids, _ = retrying(grpc_call(u))
        assert ids == [i["item_id"] for i in before[u]["items"]]
    replaced_in = time.monotonic() - t0
    channel.close()
    assert got == before, "a retried request got a different answer"
    (new_worker,) = worker_pids(srv.proc.pid)
    assert new_worker != worker and srv.proc.poll() is None
    assert retried > 0, "the kill went unnoticed: nothing was retried"
    assert httpx.get(f"{srv.http}/readyz", timeout=5).status_code == 200
    print(f"worker replaced; first answer after {replaced_in:.1f} s, {retried} retries")


def test_a_corrupted_model_file_is_refused_and_the_loaded_version_keeps_serving(
    own_home, world, capsys
):
    from augrec.registry.store import Registry
    from cli_helpers import run_cli

    home, srv = own_home
    users = served_users(world)
    before = answers(srv.http, users)
    registry = Registry(home)
    version = registry.get("production")
    model_file = version.path / "model.pt"
    model_file.write_bytes(model_file.read_bytes()[:-64] + os.urandom(64))  # bit rot

    # The running server holds the version it loaded: same answers, same version.
    assert answers(srv.http, users) == before
    assert {a["model_version"] for a in before.values()} == {version.tag}
    # A new server (a restarted pod, a rollout) refuses the version before BentoML starts.
    assert run_cli("serve", "--home", str(home), "--grpc-port", "0") == 2
    err = capsys.readouterr().err
    assert "model.pt changed since registration" in err and "integrity" in err
    # Promoting it again, or loading it, is refused too; the alias does not move.
    with pytest.raises(Exception, match="integrity"):
        registry.get(version.tag).load()
    assert registry.aliases.get("production") == version.tag
