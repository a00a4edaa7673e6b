"""Soak: the real service under steady load for a long time; errors, memory and tail latency.

Usage:
    python benchmarks/soak.py --data DATA [--model production] [--home DIR]
        [--feature-repo feature_repo] [--duration 600] [--rate 100] [--concurrency 8]
        [--protocols http,grpc] [--max-requests N] [--out soak.json]

Starts the service exactly as `augrec serve` does (`benchmarks/serving.py`'s `service_process`
and `running`: `bentoml serve` with its gRPC server, on loopback), then sends a steady
`--rate` of `Recommend` calls for `--duration` seconds from `--concurrency` clients split over
the protocols (the same aiohttp and grpc.aio clients as `serving.py`). Request i is due at
i / rate seconds: the load is paced, not as-fast-as-possible, so every minute carries the same
work and the per-minute tails compare. Bounded twice: no request is sent after `--duration`
(each has a 30 s client timeout) and none after `--max-requests`.

Every `--sample-every` seconds it reads the RSS of the serving processes (the `bentoml serve`
arbiter and every descendant: its service worker, which holds the model and the gRPC server).

Prints (and with `--out` writes) one JSON document: per minute the requests, errors and
p50/p99 latency (overall and per protocol), the RSS samples, and three checks:

- `errors_zero`: no request failed (non-200, empty answer, exception or timeout);
- `rss_growth_below_5pct`: the RSS at the end is < 5% above the RSS once warm-up ends
  (`--warmup`, default 60 s: model pages, allocator pools and caches settle first);
- `p99_last_within_1_5x_second`: the p99 of the last full minute is at most 1.5x the p99 of
  the second (the first is warm-up).

The client runs on the same machine and competes with the server for the CPU; numbers are for
comparing minutes of one run, not machines.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving import (  # noqa: E402
    add_service_args,
    grpc_client,
    http_client,
    running,
    service_process,
)

MIB = 1024 * 1024


def serving_processes(http_port: int) -> list:
    """The `bentoml serve` process listening on `http_port` and all its descendants."""
    import psutil

    flag = ["--port", str(http_port)]
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info["cmdline"] or []
        if "bentoml" in " ".join(cmd[:4]) and any(
            cmd[i : i + 2] == flag for i in range(len(cmd) - 1)
        ):
            return [proc, *proc.children(recursive=True)]
    raise RuntimeError(f"no bentoml serve process with --port {http_port}")


class RssSampler(threading.Thread):
    """Samples the serving processes' RSS every `every` seconds until stopped."""

    def __init__(self, http_port: int, every: float, t0: float):
        super().__init__(daemon=True)
        self.http_port, self.every, self.t0 = http_port, every, t0
        self.samples: list[dict] = []
        self.pids: set[int] = set()
        self._stop_event = threading.Event()

    def sample(self) -> None:
        import psutil

        procs = {}
        for p in serving_processes(self.http_port):  # re-listed: a replaced worker shows up
            try:
                procs[p.pid] = p.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        self.pids |= set(procs)
        self.samples.append(
            {
                "t_s": round(time.perf_counter() - self.t0, 1),
                "rss_mib": round(sum(procs.values()) / MIB, 1),
                "by_pid_mib": {str(k): round(v / MIB, 1) for k, v in sorted(procs.items())},
            }
        )

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.every)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
        self.sample()  # the final reading, after the last request


async def steady_load(
    clients: dict, users: np.ndarray, args: argparse.Namespace, t0: float
) -> list[tuple]:
    """Paced requests: request i is due at t0 + i / rate; returns (due_s, protocol, ms, ok)."""
    made = {name: await make() for name, make in clients.items()}
    names = list(made)
    end = t0 + args.duration
    counter = iter(range(args.max_requests))
    records: list[tuple] = []
    errors: list[str] = []

    async def client(c: int) -> None:
        name = names[c % len(names)]
        call = made[name][0]
        rng = np.random.default_rng(c)
        for i in counter:  # shared: each request index is taken by exactly one client
            due = t0 + i / args.rate
            if due >= end:
                break
            if (wait := due - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            sent = time.perf_counter()
            try:
                ok = await call(int(users[rng.integers(len(users))]))
            except Exception as exc:  # a timeout or a refused connection is an error too
                ok = False
                if len(errors) < 20:
                    errors.append(f"{name}: {type(exc).__name__}: {exc}"[:300])
            records.append((due - t0, name, (time.perf_counter() - sent) * 1000, ok))

    await asyncio.gather(*(client(c) for c in range(args.concurrency)))
    for _, close in made.values():
        await close()
    records.sort()
    steady_load.errors = errors  # type: ignore[attr-defined]
    return records


def _quantiles(lat: list[float]) -> dict:
    if not lat:
        return {"p50_ms": None, "p99_ms": None}
    q = np.percentile(np.asarray(lat), [50, 99])
    return {"p50_ms": round(float(q[0]), 3), "p99_ms": round(float(q[1]), 3)}


def per_minute(records: list[tuple], duration: float) -> list[dict]:
    """Requests, errors and latency quantiles per full minute of due time."""
    out = []
    for m in range(int(duration // 60)):
        rows = [r for r in records if m * 60 <= r[0] < (m + 1) * 60]
        ok = [r for r in rows if r[3]]
        row = {
            "minute": m + 1,
            "requests": len(rows),
            "errors": len(rows) - len(ok),
            **_quantiles([r[2] for r in ok]),
            "by_protocol": {},
        }
        for name in sorted({r[1] for r in rows}):
            mine = [r for r in ok if r[1] == name]
            row["by_protocol"][name] = {"requests": len(mine), **_quantiles([r[2] for r in mine])}
        out.append(row)
    return out


def summarise(records, samples, pids, args, started, version) -> dict:
    minutes = per_minute(records, args.duration)
    errors = sum(1 for r in records if not r[3])
    after = [s for s in samples if s["t_s"] >= args.warmup]
    base = after[0]["rss_mib"] if after else None
    final = samples[-1]["rss_mib"] if samples else None
    growth = None if not base else round(100 * (final - base) / base, 2)
    p99_second = minutes[1]["p99_ms"] if len(minutes) >= 2 else None
    p99_last = minutes[-1]["p99_ms"] if minutes else None
    ratio = None if not (p99_second and p99_last) else round(p99_last / p99_second, 3)
    checks = {
        "errors_zero": errors == 0,
        "rss_growth_below_5pct": growth is not None and growth < 5.0,
        "p99_last_within_1_5x_second": ratio is not None and ratio <= 1.5,
    }
    lat = [r[2] for r in records if r[3]]
    return {
        "benchmark": "soak",
        "started_at": started,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "config": {
            "data": str(args.data),
            "model": args.model or "production",
            "model_version": version,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "rate_rps": args.rate,
            "concurrency": args.concurrency,
            "protocols": args.protocols,
            "batching": args.batching,
            "max_requests": args.max_requests,
            "k": args.k,
        },
        "requests": len(records),
        "errors": errors,
        "error_samples": getattr(steady_load, "errors", []),
        "throughput_rps": round(len(records) / args.duration, 1),
        "overall": _quantiles(lat),
        "minutes": minutes,
        "p99_last_over_second": ratio,
        "rss": {
            "baseline_mib": base,
            "final_mib": final,
            "max_after_warmup_mib": max((s["rss_mib"] for s in after), default=None),
            "growth_pct": growth,
            "pids_seen": sorted(pids),
            "samples": samples,
        },
        "checks": checks,
        "passed": all(checks.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_service_args(parser)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before RSS counts")
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second")
    parser.add_argument("--concurrency", type=int, default=8, help="clients, split by protocol")
    parser.add_argument("--protocols", default="http,grpc")
    parser.add_argument("--batching", choices=["on", "off"], default="on")
    parser.add_argument("--max-requests", type=int, default=None, help="default: 1.1x planned")
    parser.add_argument("--sample-every", type=float, default=5.0, help="RSS sampling period")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()
    if args.duration < 120:
        parser.error("--duration: at least 120 s (the checks compare the second minute)")
    if args.max_requests is None:
        args.max_requests = int(args.rate * args.duration * 1.1) + 1

    from augrec.data.loaders import load_dataset

    users = np.unique(load_dataset(args.data).interactions["user_id"].to_numpy())
    argv, env, http_url, grpc_addr = service_process(args, args.batching == "on")
    factories = {"http": http_client(http_url, args.k), "grpc": grpc_client(grpc_addr, args.k)}
    clients = {p: factories[p] for p in args.protocols.split(",")}
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    with running(argv, env, f"{http_url}/readyz", "augrec-soak"):
        t0 = time.perf_counter()
        sampler = RssSampler(int(http_url.rsplit(":", 1)[1]), args.sample_every, t0)
        sampler.start()
        try:
            records = asyncio.run(steady_load(clients, users, args, t0))
        finally:
            sampler.stop()
    report = summarise(records, sampler.samples, sampler.pids, args, started, env["AUGREC_MODEL"])
    for m in report["minutes"]:
        print(f"# minute {m['minute']}: {m}", file=sys.stderr)
    text = json.dumps(report, indent=2)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)
    sys.exit(0 if report["passed"] else 1)


if __name__ == "__main__":
    main()
