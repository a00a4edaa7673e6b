"""Where a served request's time goes under load: py-spy samples of the serving worker.

Usage:
    python benchmarks/serving_pyspy.py --data DATA [--model production] [--home DIR]
        [--feature-repo feature_repo] [--protocol grpc|http] [--concurrency 32]
        [--duration 30] [--batching on|off]

Starts the service as `benchmarks/serving.py` does, drives one protocol with `--concurrency`
closed-loop clients (the benchmark's own clients), and meanwhile samples the serving worker
with `py-spy record --nonblocking` (py-spy from PyPI; not a project dependency). Each sample's
stack is put in one category by the first rule that matches (feature read, SASRec encoder,
item product, top-k, ...); prints the share of the worker's samples per category as JSON.
py-spy leaves out threads it sees idle (in a socket poll), but counts threads blocked on a
future or lock, and threads waiting for the GIL, as active: the waits get their own category,
and more busy samples than the duration x rate x cores is GIL contention.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import serving  # noqa: E402  (the benchmark's server and clients)

# (category, substrings of a stack, any of which puts a sample there); first match wins.
RULES = [
    ("feature read (Feast online, SQLite)", ("get_online_features", "feast/")),
    ("SASRec encoder", ("SASRecNet.forward", "Block.forward", "_last_hidden", "pad_left")),
    ("item product (h @ table.T)", ("device_scores",)),
    ("top-k", ("topk_stable",)),
    ("masking, encoding, answer building", ("recommender.py",)),
    ("validation (pydantic)", ("model_validate", "pydantic")),
    ("protobuf (de)serialisation", ("SerializeToString", "FromString")),
    ("metrics", ("prometheus_client", "metrics.py")),
    ("access and body guards", ("middleware.py", "grpc_access", "access.py")),
    ("gRPC handlers (fields, protobuf messages)", ("grpc_server.py", "oip.py")),
    ("HTTP endpoints", ("service.py",)),
    ("gRPC framework (grpcio)", ("grpc/", "_cython", "cygrpc")),
    ("HTTP framework (BentoML, Starlette, uvicorn)", ("bentoml", "starlette", "uvicorn", "h11")),
    ("event loop (asyncio, and grpc.aio's compiled core under it)", ("asyncio/",)),
    ("batching thread", ("batching.py",)),
]


# A sample whose innermost frame is one of these waits on a future, lock or queue: py-spy
# counts a thread blocked there as active, but it uses no CPU.
WAITING = ("Condition.wait", "Future.result", "Event.wait", "SimpleQueue.get", "Queue.get")


def categorise(raw: str) -> dict[str, float]:
    """Shares of samples per category from py-spy's raw (collapsed-stack) output."""
    counts: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        leaf = stack.rsplit(";", 1)[-1]
        name = next((c for c, keys in RULES if any(k in stack for k in keys)), "other")
        if leaf.startswith(WAITING):
            name = "waiting (blocked on a future, lock or queue)"
        counts[name] += int(n)
    total = sum(counts.values()) or 1
    return {c: round(100 * n / total, 1) for c, n in counts.most_common()} | {"samples": total}


def worker_pid(http_port: str) -> int:
    """The BentoML worker under the `bentoml serve ... --port http_port` we started."""
    procs = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            procs[int(d.name)] = (ppid, cmd)
    parent = next(
        pid
        for pid, (_, cmd) in procs.items()
        if " bentoml serve " in cmd and f"--port {http_port}" in cmd
    )
    return next(
        pid
        for pid, (ppid, cmd) in procs.items()
        if ppid == parent and "_bentoml_impl.worker.service" in cmd
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", default=None)
    parser.add_argument("--home", default=None)
    parser.add_argument("--feature-repo", default="feature_repo")
    parser.add_argument("--feature-env", default="local")
    parser.add_argument("--protocol", choices=["grpc", "http"], default="grpc")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--batching", choices=["on", "off"], default="on")
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()

    from augrec.data.loaders import load_dataset

    users = np.unique(load_dataset(args.data).interactions["user_id"].to_numpy())
    argv, env, http_url, grpc_addr = serving.service_process(args, args.batching == "on")
    make = (
        serving.grpc_client(grpc_addr, args.k)
        if args.protocol == "grpc"
        else serving.http_client(http_url, args.k)
    )
    with serving.running(argv, env, f"{http_url}/readyz", "augrec"):
        server = str(worker_pid(http_url.rsplit(":", 1)[1]))
        out = Path(tempfile.mkdtemp(prefix="augrec-pyspy-")) / "stacks.txt"
        spy_s = max(1, int(args.duration) - 4)
        spy = subprocess.Popen(
            ["py-spy", "record", "--nonblocking", "--format", "raw", "--rate", "200"]
            + ["--duration", str(spy_s), "--pid", server, "--output", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(0.5)
        row = asyncio.run(serving.drive(make, users, args.concurrency, args.duration))
        spy.wait(timeout=60)
        if spy.returncode:
            raise SystemExit(f"py-spy failed: {spy.stderr.read().decode()[-2000:]}")
    report = {
        "benchmark": "serving_pyspy",
        "load_average": os.getloadavg(),
        "config": vars(args) | {"worker_pid": int(server)},
        "load": row,
        "busy_share_percent": categorise(out.read_text()),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
