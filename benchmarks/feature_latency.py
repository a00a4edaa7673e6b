"""Online feature-read latency: one user's history, in-process, SQLite vs Redis.

Usage:
    python benchmarks/feature_latency.py [--users 5000] [--reads 5000] [--redis HOST:PORT]

Builds a temporary copy of feature_repo/ over seeded synthetic data, materializes it into
SQLite and into Redis (a redis-server it starts on loopback, unless --redis names one), then
times `FeatureClient.user_history` for random users, one read at a time. Prints one JSON line:
{"sqlite": {"p50_ms": ..., "p99_ms": ...}, "redis": {...}, ...}.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[str | None]:
    """A throwaway redis-server on a free loopback port (None if redis-server is missing)."""
    exe = shutil.which("redis-server")
    if exe is None:
        yield None
        return
    import redis

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
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
    try:
        client = redis.Redis(host="127.0.0.1", port=port)
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        client.close()
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def time_reads(client, users: np.ndarray, reads: int, warmup: int = 200) -> dict[str, float]:
    """p50/p99/mean of `client.user_history` over `reads` random users, in milliseconds."""
    rng = np.random.default_rng(1)
    picks = rng.choice(users, size=reads + warmup)
    samples = np.empty(reads)
    for k, user in enumerate(picks):
        t0 = time.perf_counter_ns()
        history = client.user_history(int(user))
        dt = time.perf_counter_ns() - t0
        if k >= warmup:
            samples[k - warmup] = dt / 1e6
        assert len(history) > 0
    return {
        "p50_ms": round(float(np.percentile(samples, 50)), 4),
        "p99_ms": round(float(np.percentile(samples, 99)), 4),
        "mean_ms": round(float(samples.mean()), 4),
        "reads": reads,
    }


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--reads", type=int, default=5000)
    parser.add_argument("--redis", default=None, help="use this Redis (host:port) instead")
    args = parser.parse_args()

    from augrec.data.synthetic import SyntheticConfig, generate
    from augrec.features import ingest, spec
    from augrec.features.online import FeatureClient
    from augrec.features.store import apply, materialize, open_store

    interactions, items = generate(SyntheticConfig(users=args.users, items=args.items, seed=0))
    users = interactions["user_id"].unique()
    result: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        repo = tmp / "feature_repo"
        shutil.copytree(REPO_ROOT / "feature_repo", repo, ignore=shutil.ignore_patterns("data"))
        ingest.write_sources(ingest.build_sources(interactions, items), spec.sources_dir(repo))

        store = open_store(repo)
        apply(store)
        materialize(store, views=[spec.USER_HISTORY_VIEW])
        result["sqlite"] = time_reads(FeatureClient(store), users, args.reads)

        with contextlib.ExitStack() as stack:
            endpoint = args.redis or stack.enter_context(redis_server(tmp))
            if endpoint is None:
                result["redis"] = {"skipped": "redis-server not installed"}
            else:
                rstore = open_store(repo, "redis", environ={"AUGREC_REDIS_ENDPOINT": endpoint})
                apply(rstore)
                materialize(rstore, views=[spec.USER_HISTORY_VIEW])
                result["redis"] = time_reads(FeatureClient(rstore), users, args.reads)

    import feast

    result["setup"] = {
        "users": len(users),
        "interactions": len(interactions),
        "history_length": spec.HISTORY_LENGTH,
        "feast": feast.__version__,
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result), file=sys.stdout, flush=True)


if __name__ == "__main__":
    main()
