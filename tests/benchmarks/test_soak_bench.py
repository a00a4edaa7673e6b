"""The soak benchmark's verdicts on hand-made records (the real run is in docs/reliability.md)."""

import argparse
import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "soak.py"


def _module():
    spec = importlib.util.spec_from_file_location("soak_bench", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _args(**kw):
    base = dict(
        data="d",
        model=None,
        duration=180.0,
        warmup=60.0,
        rate=10.0,
        concurrency=2,
        protocols="http,grpc",
        batching="on",
        max_requests=2000,
        k=10,
    )
    return argparse.Namespace(**{**base, **kw})


def _records(latency_by_minute, errors_in=None):
    out = []
    for m, ms in enumerate(latency_by_minute):
        for i in range(100):
            ok = not (errors_in == m and i == 0)
            out.append((m * 60 + i * 0.5, "http" if i % 2 else "grpc", ms + i / 100, ok))
    return out


def _rss(values):
    return [{"t_s": t, "rss_mib": v, "by_pid_mib": {}} for t, v in values]


def test_a_steady_run_passes_every_check():
    soak = _module()
    report = soak.summarise(
        _records([30, 10, 12]), _rss([(0, 500), (60, 600), (180, 620)]), {1, 2}, _args(), "t", "v"
    )
    assert report["passed"] and report["errors"] == 0
    assert [m["requests"] for m in report["minutes"]] == [100, 100, 100]
    assert report["rss"]["baseline_mib"] == 600 and report["rss"]["growth_pct"] == 3.33
    m = report["minutes"]
    assert report["p99_last_over_second"] == pytest.approx(m[2]["p99_ms"] / m[1]["p99_ms"], 1e-3)
    assert set(report["minutes"][0]["by_protocol"]) == {"http", "grpc"}


def test_each_check_fails_on_its_own():
    soak = _module()
    rss_ok = _rss([(60, 600), (180, 610)])
    errors = soak.summarise(_records([10, 10, 10], errors_in=2), rss_ok, set(), _args(), "t", "v")
    assert errors["errors"] == 1 and errors["checks"]["errors_zero"] is False
    assert errors["minutes"][2]["errors"] == 1 and not errors["passed"]
    leak = soak.summarise(
        _records([10, 10, 10]), _rss([(60, 600), (180, 631)]), set(), _args(), "t", "v"
    )
    assert leak["checks"] == {
        "errors_zero": True,
        "rss_growth_below_5pct": False,
        "p99_last_within_1_5x_second": True,
    }
    drift = soak.summarise(_records([10, 10, 16]), rss_ok, set(), _args(), "t", "v")
    assert drift["checks"]["p99_last_within_1_5x_second"] is False
