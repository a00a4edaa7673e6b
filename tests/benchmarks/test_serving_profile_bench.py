"""The serving profilers' bookkeeping: py-spy stacks land in the stage they belong to."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str):
    sys.path.insert(0, str(BENCH))  # serving_pyspy imports the benchmark's serving module
    try:
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    finally:
        sys.path.remove(str(BENCH))


def test_pyspy_stacks_are_shared_by_stage_first_rule_first():
    spy = _load("serving_pyspy")
    raw = "\n".join(
        [
            "main (x.py:1);handle (grpc_server.py:9);recommend_batch (r.py:3);"
            "get_online_features (feast/feature_store.py:5) 30",
            "main (x.py:1);recommend_batch (r.py:3);device_scores (sasrec.py:2);"
            "SASRecNet.forward (sasrec.py:7) 50",
            "main (x.py:1);recommend_batch (recommender.py:3);topk_stable (ranking.py:4) 15",
            "main (x.py:1);_run (grpc/aio/_server.py:1) 5",
            "garbage line without a count",
        ]
    )
    shares = spy.categorise(raw)
    assert shares["samples"] == 100
    assert shares["SASRec encoder"] == 50.0  # the encoder rule wins over device_scores
    assert shares["feature read (Feast online, SQLite)"] == 30.0
    assert shares["top-k"] == 15.0
    assert shares["gRPC framework (grpcio)"] == 5.0


def test_threads_blocked_on_a_future_are_counted_as_waiting_not_as_their_caller():
    spy = _load("serving_pyspy")
    raw = "main (x.py:1);recommend (recommender.py:3);Condition.wait (threading.py:327) 7"
    assert spy.categorise(raw)["waiting (blocked on a future, lock or queue)"] == 100.0
