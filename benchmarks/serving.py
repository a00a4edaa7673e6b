"""Serving load: HTTP, gRPC (typed and Open Inference Protocol) and a bare-BentoML floor.

Usage:
    python benchmarks/serving.py --data DATA [--model production] [--home DIR]
        [--feature-repo feature_repo] [--duration 60] [--concurrency 1,8,32]
        [--protocols http,grpc,oip,floor,search-http,search-grpc] [--batching off|on|both]
        [--k 10] [--batch-wait-ms 0]

Starts the real service (`augrec serve`'s command: `bentoml serve` with its gRPC server) on
loopback, and separately `floor_service.py` (a BentoML endpoint that returns a constant),
one at a time, and drives each protocol at each concurrency level for `--duration` seconds
after a short warm-up, with real clients:

- `http`:  aiohttp, `POST /recommend {user_id, k}`;
- `grpc`:  grpc.aio and the generated `augrec.v1.Recommender` stub, `Recommend`;
- `oip`:   `tritonclient.grpc.aio`, `ModelInfer` on model `recommender`, one user per call;
- `floor`: aiohttp against the constant endpoint (what BentoML + HTTP + the client cost here);
- `search-http`, `search-grpc`: `POST /search` and the gRPC `Search`, personalised
  (`{query, user_id, k}`), when the model has a search index. Queries are the category-path
  words of catalog items (the search benchmark's protocol), one per user id.

User ids are drawn uniformly from the users of `--data` (the file the model and the feature
store were built from). Prints one JSON document: per batching mode, protocol and
concurrency, the throughput, p50/p95/p99 latency and the error count. The client runs on the
same machine as the server and competes with it for the CPU: compare protocols with each
other and with the floor, not with numbers from another machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
WARMUP_S = 2.0
PROTOCOLS = ("http", "grpc", "oip", "floor", "search-http", "search-grpc")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running(argv: list[str], env: dict[str, str], ready_url: str, name: str) -> Iterator[None]:
    """A server subprocess, stopped on exit; waits until `ready_url` answers 200."""
    import httpx

    log = tempfile.NamedTemporaryFile(prefix=f"augrec-bench-{name}-", suffix=".log", delete=False)
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = Path(log.name).read_text()[-3000:]
                raise RuntimeError(f"{name} did not become ready (log {log.name}):\n{tail}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(ready_url, timeout=2).status_code == 200:
                    break
            time.sleep(0.3)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def service_process(args: argparse.Namespace, batching: bool) -> tuple[list, dict, str, str]:
    from augrec.cli.serve import serve_command
    from augrec.serving.config import ServingConfig
    from augrec.serving.loading import describe

    version, path = describe(args.model, args.home)
    http_port, grpc_port = free_port(), free_port()
    # Only when asked: the benchmark also drives servers from before the setting existed.
    wait = {"batch_wait_ms": args.batch_wait_ms} if getattr(args, "batch_wait_ms", 0) else {}
    if getattr(args, "batch_fill_ms", None) is not None:
        wait["batch_fill_ms"] = args.batch_fill_ms
    config = ServingConfig(
        model=str(path) if version.startswith("run:") else version,
        home=args.home,
        feature_repo=str(Path(args.feature_repo).resolve()),
        feature_env=args.feature_env,
        grpc_host="127.0.0.1",
        grpc_port=grpc_port,
        batching=batching,
        **wait,
    )
    argv, env = serve_command(config, "127.0.0.1", http_port)
    return argv, env, f"http://127.0.0.1:{http_port}", f"127.0.0.1:{grpc_port}"


def floor_process() -> tuple[list, dict, str]:
    port = free_port()
    argv = [sys.executable, "-m", "bentoml", "serve", "floor_service:Floor"]
    argv += ["--working-dir", str(HERE), "--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, "BENTOML_DO_NOT_TRACK": "true"}
    return argv, env, f"http://127.0.0.1:{port}"


Call = Callable[[int], Awaitable[bool]]


async def drive(
    make_call: Callable[[], Awaitable[tuple[Call, Callable]]],
    users: np.ndarray,
    concurrency: int,
    duration: float,
) -> dict:
    """Run `concurrency` closed-loop clients for warm-up + `duration`; summarise the timed part."""
    call, close = await make_call()
    start = time.perf_counter()
    measure_from, end = start + WARMUP_S, start + WARMUP_S + duration
    latencies: list[float] = []
    errors = 0

    async def client(seed: int) -> None:
        nonlocal errors
        rng = np.random.default_rng(seed)
        while (t0 := time.perf_counter()) < end:
            try:
                ok = await call(int(users[rng.integers(len(users))]))
            except Exception:
                ok = False
            if t0 >= measure_from:
                if ok:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors += 1

    await asyncio.gather(*(client(i) for i in range(concurrency)))
    await close()
    lat = np.asarray(latencies) * 1000
    q = np.percentile(lat, [50, 95, 99]) if lat.size else [float("nan")] * 3
    return {
        "concurrency": concurrency,
        "requests": int(lat.size),
        "throughput_rps": round(lat.size / duration, 1),
        "p50_ms": round(float(q[0]), 3),
        "p95_ms": round(float(q[1]), 3),
        "p99_ms": round(float(q[2]), 3),
        "errors": errors,
    }


def http_client(base: str, k: int):
    async def make() -> tuple[Call, Callable]:
        import aiohttp

        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=30)
        )

        async def call(user: int) -> bool:
            async with session.post(f"{base}/recommend", json={"user_id": user, "k": k}) as r:
                await r.read()
                return r.status == 200

        return call, session.close

    return make


def grpc_client(address: str, k: int):
    async def make() -> tuple[Call, Callable]:
        import grpc
        from augrec.services import stubs

        pb2, pb2_grpc = stubs.load()
        channel = grpc.aio.insecure_channel(address)
        stub = pb2_grpc.RecommenderStub(channel)

        async def call(user: int) -> bool:
            out = await stub.Recommend(pb2.RecommendRequest(user_id=user, k=k), timeout=30)
            return bool(out.items)

        return call, channel.close

    return make


def oip_client(address: str, k: int):
    async def make() -> tuple[Call, Callable]:
        import tritonclient.grpc.aio as tc

        client = tc.InferenceServerClient(address)
        k_in = tc.InferInput("k", [1], "INT64")
        k_in.set_data_from_numpy(np.asarray([k], dtype=np.int64))

        async def call(user: int) -> bool:
            user_in = tc.InferInput("user_id", [1], "INT64")
            user_in.set_data_from_numpy(np.asarray([user], dtype=np.int64))
            result = await client.infer("recommender", [user_in, k_in], client_timeout=30)
            return result.as_numpy("item_id").shape == (1, k)

        return call, client.close

    return make


def search_queries(args: argparse.Namespace) -> list[str]:
    """One query per catalog item with category names (else its title's first words)."""
    from augrec import rundir
    from augrec.search.index import SearchIndex
    from augrec.serving.loading import describe

    _, path = describe(args.model, args.home)
    catalog = SearchIndex.load(Path(path) / rundir.SEARCH_INDEX).catalog
    queries = []
    for title, cats in zip(catalog.titles[1:], catalog.categories[1:], strict=True):
        words = " ".join(dict.fromkeys(" ".join(cats).lower().split())) or " ".join(
            title.split()[:3]
        )
        if words:
            queries.append(words)
    if not queries:
        raise SystemExit("search: the model's catalog has no text to build queries from")
    return queries


def search_http_client(base: str, k: int, queries: list[str]):
    async def make() -> tuple[Call, Callable]:
        import aiohttp

        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=30)
        )

        async def call(user: int) -> bool:
            body = {"query": queries[user % len(queries)], "user_id": user, "k": k}
            async with session.post(f"{base}/search", json=body) as r:
                await r.read()
                return r.status == 200

        return call, session.close

    return make


def search_grpc_client(address: str, k: int, queries: list[str]):
    async def make() -> tuple[Call, Callable]:
        import grpc
        from augrec.services import stubs

        pb2, pb2_grpc = stubs.load()
        channel = grpc.aio.insecure_channel(address)
        stub = pb2_grpc.RecommenderStub(channel)

        async def call(user: int) -> bool:
            req = pb2.SearchRequest(query=queries[user % len(queries)], user_id=user, k=k)
            out = await stub.Search(req, timeout=30)
            return bool(out.items)

        return call, channel.close

    return make


def run_levels(name: str, make, users, levels: list[int], duration: float) -> list[dict]:
    out = []
    for c in levels:
        row = asyncio.run(drive(make, users, c, duration))
        print(f"# {name} c={c}: {row}", file=sys.stderr, flush=True)
        out.append({"protocol": name, **row})
    return out


def add_service_args(parser: argparse.ArgumentParser) -> None:
    """The options naming the served model and its feature store (every serving benchmark)."""
    parser.add_argument("--data", required=True, help="interactions the model was built from")
    parser.add_argument("--model", default=None, help="version or run dir (default: production)")
    parser.add_argument("--home", default=None, help="BentoML home (default: $BENTOML_HOME)")
    parser.add_argument("--feature-repo", default="feature_repo")
    parser.add_argument("--feature-env", default="local")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_service_args(parser)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per level")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument(
        "--protocols", default="http,grpc,oip,floor", help="any of: " + ",".join(PROTOCOLS)
    )
    parser.add_argument("--batching", choices=["off", "on", "both"], default="off")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument(
        "--batch-wait-ms", type=float, default=0.0, help="the server's AUGREC_BATCH_WAIT_MS"
    )
    parser.add_argument(
        "--batch-fill-ms",
        type=float,
        default=None,
        help="the server's AUGREC_BATCH_FILL_MS (default: the server's default)",
    )
    args = parser.parse_args()

    from augrec.data.loaders import load_dataset

    users = np.unique(load_dataset(args.data).interactions["user_id"].to_numpy())
    levels = [int(c) for c in args.concurrency.split(",")]
    protocols = [p.strip() for p in args.protocols.split(",")]
    if unknown := sorted(set(protocols) - set(PROTOCOLS)):
        parser.error(f"--protocols: unknown {unknown}; choose from {','.join(PROTOCOLS)}")
    report: dict = {
        "benchmark": "serving",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "config": {
            "model": args.model or "production",
            "duration_s": args.duration,
            "warmup_s": WARMUP_S,
            "concurrency": levels,
            "k": args.k,
            "batch_wait_ms": args.batch_wait_ms,
            "batch_fill_ms": args.batch_fill_ms,
            "users": int(users.size),
        },
        "results": [],
    }
    if "floor" in protocols:
        argv, env, url = floor_process()
        with running(argv, env, f"{url}/readyz", "floor"):
            rows = run_levels("floor", http_client(url, args.k), users, levels, args.duration)
        report["results"] += [{"batching": None, **r} for r in rows]
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.batching]
    for batching in modes:
        argv, env, http_url, grpc_addr = service_process(args, batching)
        report["model_version"] = env["AUGREC_MODEL"]
        clients = {
            "http": http_client(http_url, args.k),
            "grpc": grpc_client(grpc_addr, args.k),
            "oip": oip_client(grpc_addr, args.k),
        }
        if any(p.startswith("search-") for p in protocols):
            queries = search_queries(args)
            report["config"]["search_queries"] = len(set(queries))
            clients["search-http"] = search_http_client(http_url, args.k, queries)
            clients["search-grpc"] = search_grpc_client(grpc_addr, args.k, queries)
        with running(argv, env, f"{http_url}/readyz", "augrec"):
            for name in [p for p in protocols if p in clients]:
                rows = run_levels(name, clients[name], users, levels, args.duration)
                report["results"] += [{"batching": batching, **r} for r in rows]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
