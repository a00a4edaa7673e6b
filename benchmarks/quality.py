"""Quality benchmark: train and evaluate models over several seeds; prints JSON (mean ± std).

Resumable: each finished (model, seed) leaves its metrics.json under --results (committed,
benchmarks/results/quality/<dataset>/) and is skipped on a rerun, so a 3-seed run can span
sessions; run directories (models, recommendations) go to --work.

    python benchmarks/quality.py --data ../shared/datasets/amazon-beauty/Beauty.txt --seeds 3 \
        --models sasrec --work runs/quality
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from augrec.config import TrainConfig, load_train_config
from augrec.rundir import write_run
from augrec.training.run import train_and_evaluate

KEYS = ("ndcg@10", "hr@10", "ndcg@20", "hr@20", "mrr@10", "coverage@10", "tail_share@10")


def run_one(data: Path, model: str, seed: int, cfg: TrainConfig, work: Path, results: Path) -> dict:
    done = results / f"{model}-seed{seed}.json"
    if done.exists():
        logging.info("skip %s seed %d (done: %s)", model, seed, done)
        return json.loads(done.read_text())
    out = work / f"{model}-seed{seed}"
    if not (out / "metrics.json").exists():
        result = train_and_evaluate(data, model, cfg, seed=seed)
        write_run(result, out, cfg, overwrite=True)
    results.mkdir(parents=True, exist_ok=True)
    done.write_text((out / "metrics.json").read_text())
    return json.loads(done.read_text())


def aggregate(runs: list[dict]) -> dict:
    out: dict = {"seeds": [r["seed"] for r in runs]}
    for split in ("test", "valid"):
        out[split] = {}
        for k in KEYS:
            vals = np.array([r[split][k] for r in runs])
            out[split][k] = {
                "mean": float(vals.mean()),
                "std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
            }
    out["train_seconds"] = float(np.mean([r["seconds"]["train"] for r in runs]))
    if all(r.get("refit") for r in runs):
        out["test_before_refit"] = {
            k: {
                "mean": float(np.mean([r["refit"]["test_before_refit"][k] for r in runs])),
                "std": float(np.std([r["refit"]["test_before_refit"][k] for r in runs], ddof=1))
                if len(runs) > 1
                else 0.0,
            }
            for k in KEYS
        }
    out["fit"] = [r["selection"]["candidates"] for r in runs]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--models", nargs="+", default=["popularity", "itemknn", "sasrec"])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--config", type=Path, help="TrainConfig YAML applied to every model")
    ap.add_argument("--work", type=Path, default=Path("runs/quality"))
    ap.add_argument("--results", type=Path, help="default: benchmarks/results/quality/<data stem>")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    cfg = load_train_config(args.config)
    results = args.results or Path(__file__).parent / "results" / "quality" / args.data.stem
    report = {"data": str(args.data), "config": cfg.model_dump(), "models": {}}
    for model in args.models:
        runs = [run_one(args.data, model, s, cfg, args.work, results) for s in range(args.seeds)]
        report["models"][model] = aggregate(runs)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
