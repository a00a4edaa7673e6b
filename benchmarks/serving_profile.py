"""Where a recommendation's time goes, stage by stage, measured in-process.

Usage:
    python benchmarks/serving_profile.py --data DATA [--model production] [--home DIR]
        [--feature-repo feature_repo] [--requests 2000] [--batch 32] [--k 10]

Loads the served model and the feature store as `augrec serve` does (one torch thread), then
answers `--requests` requests for users drawn uniformly from `--data`, timing each stage of
the reference path (`ServingRecommender.recommend`, one request at a time) separately:
request validation (JSON as HTTP sends it, protobuf as gRPC does), the online-store read,
history encoding, scoring (the sequence encoder and the item product), masking, top-k, and
building and serialising the answer (pydantic + JSON, protobuf). The same stages are then
timed for batches of `--batch` requests (one store read, one model call, one top-k per
batch), per request. Finally both whole paths are timed end to end: `recommend_one` per
request and `recommend_batch` per batch. Prints one JSON document, microseconds per request:
CPU time of the calling thread (`cpu_*`: what a stage costs, steadier than the clock on a
shared machine) and wall-clock time (`wall_*`: what it took, waits for the CPU included).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving import add_service_args  # noqa: E402


class Clock:
    """Wall-clock and thread CPU time since construction, in ns."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter_ns(), time.thread_time_ns()

    def read(self) -> tuple[int, int]:
        return time.perf_counter_ns() - self.wall, time.thread_time_ns() - self.cpu


def _summary(samples: list[tuple[int, int]], per: int = 1) -> dict:
    arr = np.asarray(samples, dtype=np.float64) / 1000 / per
    wall, cpu = arr[:, 0], arr[:, 1]
    return {
        "cpu_mean_us": round(float(cpu.mean()), 1),
        "cpu_p50_us": round(float(np.percentile(cpu, 50)), 1),
        "wall_p50_us": round(float(np.percentile(wall, 50)), 1),
        "wall_p99_us": round(float(np.percentile(wall, 99)), 1),
    }


def _timed(fn: Callable, *args):
    clock = Clock()
    out = fn(*args)
    return out, clock.read()


def single_stages(rec, users: np.ndarray, k: int) -> dict:
    """The reference path, one request at a time, each stage timed on its own."""
    from augrec.services import stubs

    from augrec.evaluation.ranking import topk_stable
    from augrec.serving import schemas as s

    pb2, _ = stubs.load()
    model = rec.model
    times: dict[str, list[tuple[int, int]]] = {}

    def add(name: str, ns: tuple[int, int]) -> None:
        times.setdefault(name, []).append(ns)

    for u in users.tolist():
        body = json.dumps({"user_id": u, "k": k}).encode()
        req, ns = _timed(s.RecommendRequest.model_validate_json, body)
        add("validate_json", ns)
        msg = pb2.RecommendRequest.FromString(
            pb2.RecommendRequest(user_id=u, k=k).SerializeToString()
        )
        _, ns = _timed(
            lambda m: s.RecommendRequest.model_validate({f.name: v for f, v in m.ListFields()}),
            msg,
        )
        add("validate_grpc", ns)
        stored, ns = _timed(rec.features.history, req.user_id)
        add("feature_read", ns)
        history, ns = _timed(rec.encode, stored.tolist())
        add("encode", ns)
        if not len(history):
            continue
        if hasattr(model, "net"):  # SASRec: split the encoder from the item product
            from augrec.models.sasrec import pad_left

            with torch.inference_mode():
                clock = Clock()
                seq = pad_left([history], model.cfg.max_len)
                table = model._table()
                h = model.net(seq, table, last_only=True)[:, -1]
                add("score_encoder", clock.read())
                clock = Clock()
                scores = (h @ table.T).float()[0]
                add("score_items", clock.read())
        scores, ns = _timed(lambda h: model.score([h])[0], history)
        add("score_total", ns)
        clock = Clock()
        scores[0] = -torch.inf
        scores[torch.from_numpy(history)] = -torch.inf
        add("mask", clock.read())
        (idx, vals), ns = _timed(topk_stable, scores[None, :], req.k)
        add("topk", ns)
        clock = Clock()
        keep = np.isfinite(vals[0])
        items = [
            s.ScoredItem(item_id=int(rec.item_ids[i]), score=float(v))
            for i, v in zip(idx[0][keep], vals[0][keep], strict=True)
        ]
        resp = s.RecommendResponse(items=items, model_version=rec.version, fallback=False)
        add("response_build", clock.read())
        _, ns = _timed(resp.model_dump_json)
        add("serialize_json", ns)
        clock = Clock()
        pb2.RecommendResponse(
            items=[pb2.ScoredItem(item_id=i.item_id, score=i.score) for i in resp.items],
            model_version=resp.model_version,
            fallback=resp.fallback,
        ).SerializeToString()
        add("serialize_grpc", clock.read())
    return {name: _summary(ns) for name, ns in times.items()}


def batch_stages(rec, users: np.ndarray, k: int, batch: int) -> dict:
    """Store read, scoring and top-k for `batch` requests at once, per request."""
    from augrec.evaluation.ranking import mask_scores, topk_stable

    times: dict[str, list[tuple[int, int]]] = {}
    client = rec.features.client
    for start in range(0, len(users) - batch + 1, batch):
        ids = users[start : start + batch].tolist()
        if client is not None and hasattr(client, "user_histories"):
            got, ns = _timed(client.user_histories, ids)
            times.setdefault("feature_read", []).append(ns)
            stored = [g.item_ids for g in got]
        else:
            stored = [rec.features.history(u) for u in ids]
        histories = [rec.encode(h.tolist()) for h in stored]
        histories = [h for h in histories if len(h)]
        if hasattr(rec.model, "net"):  # before: the batch padded to its longest, all positions
            from augrec.models.sasrec import pad_left

            with torch.no_grad():
                clock = Clock()
                table = rec.model._table()
                h = rec.model.net(pad_left(histories, rec.model.cfg.max_len), table)[:, -1]
                (h @ table.T).float()
                times.setdefault("score_total_padded_all_positions", []).append(clock.read())
        scores, ns = _timed(rec.model.score, histories)
        times.setdefault("score_total", []).append(ns)
        clock = Clock()
        mask_scores(scores, histories)
        times.setdefault("mask", []).append(clock.read())
        _, ns = _timed(topk_stable, scores, k)
        times.setdefault("topk", []).append(ns)
    return {name: _summary(ns, batch) for name, ns in times.items()}


def end_to_end(rec, users: np.ndarray, k: int, batch: int) -> dict:
    from augrec.serving import schemas as s

    reqs = [s.RecommendRequest(user_id=int(u), k=k) for u in users]
    single = []
    for r in reqs:
        _, ns = _timed(rec.recommend_one, r)
        single.append(ns)
    out = {"recommend_one (per request)": _summary(single)}
    if hasattr(rec, "recommend_batch"):
        batched = []
        for start in range(0, len(reqs) - batch + 1, batch):
            _, ns = _timed(rec.recommend_batch, reqs[start : start + batch])
            batched.append(ns)
        out[f"recommend_batch ({batch}, per request)"] = _summary(batched, batch)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_service_args(parser)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from augrec.data.loaders import load_dataset
    from augrec.serving.config import ServingConfig
    from augrec.serving.recommender import ServingRecommender

    config = ServingConfig(
        model=args.model,
        home=args.home,
        feature_repo=str(Path(args.feature_repo).resolve()),
        feature_env=args.feature_env,
        grpc_port=0,
        batching=False,
    )
    rec = ServingRecommender.load(config)
    all_users = np.unique(load_dataset(args.data).interactions["user_id"].to_numpy())
    users = np.random.default_rng(args.seed).choice(all_users, args.requests)
    single_stages(rec, users[:50], args.k)  # warm-up: first calls allocate
    report = {
        "benchmark": "serving_profile",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "load_average": os.getloadavg(),
        "config": {
            "model": rec.version,
            "requests": args.requests,
            "batch": args.batch,
            "k": args.k,
            "torch_threads": torch.get_num_threads(),
        },
        "single": single_stages(rec, users, args.k),
        "batched": batch_stages(rec, users, args.k, args.batch),
        "end_to_end": end_to_end(rec, users, args.k, args.batch),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
