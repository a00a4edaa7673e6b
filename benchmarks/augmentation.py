"""Augmentation ablation: none / heuristic / mle / gan into the same recommender, over seeds.

For each (method, seed): `augrec augment` writes a synthetic set, then the recommender trains
on real + synthetic and is evaluated on the real held-out test items. Prints JSON and writes
the table into docs/benchmarks.md (between the augmentation markers): overall and per-bucket
test NDCG@10 / HR@10 (mean ± std over seeds), a paired per-user significance test against no
augmentation, wall time and synthetic share.

Resumable across sessions: each finished (method, seed) leaves a small result file under
`--results` (committed: benchmarks/results/augmentation/), and is skipped on rerun.

    python benchmarks/augmentation.py --data ../shared/datasets/amazon-beauty/Beauty.txt \
        --seeds 3 --config benchmarks/configs/augmentation-beauty.yaml

On a GPU box, `--device cuda --jobs 12` runs every (method, seed) at once, each in its own
process sharing the GPU (the models are small; one alone leaves the GPU mostly idle).
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import yaml
from scipy import stats

from augrec.augment.outputs import build_report, write_augmentation
from augrec.augment.pipeline import METHODS, AugmentConfig, augment
from augrec.config import TrainConfig
from augrec.data.loaders import load_dataset
from augrec.data.splits import leave_one_out
from augrec.evaluation.metrics import per_user_ndcg
from augrec.training.run import train_and_evaluate

REPO = Path(__file__).resolve().parents[1]
SHORT = 5  # users with at most this many training items: the sparse users augmentation is for
log = logging.getLogger("augmentation")


def run_one(data: Path, method: str, seed: int, cfg: dict, work: Path, results: Path) -> dict:
    out = results / f"{method}-seed{seed}.json"
    if out.exists():
        log.info("skip %s seed %d (done)", method, seed)
        return json.loads(out.read_text())
    split = leave_one_out(load_dataset(data))
    t0 = time.perf_counter()
    aug_cfg = AugmentConfig(**{**cfg.get("augment", {}), "method": method})
    synth, info = augment(split, aug_cfg, seed=seed)
    t_aug = time.perf_counter() - t0
    set_dir = work / f"{method}-seed{seed}"
    report = build_report(split, synth, info, seed)
    write_augmentation(set_dir, split, synth, info, report, overwrite=True)
    train_cfg = TrainConfig(**cfg.get("train", {}))
    run = train_and_evaluate(
        data, cfg.get("model", "sasrec"), train_cfg, seed=seed, augment=set_dir
    )
    metrics = run.metrics()
    result = {
        "method": method,
        "seed": seed,
        "test": metrics["test"],
        "valid": metrics["valid"],
        "buckets": metrics["buckets"],
        "synthetic_share": synth.share(split),
        "synthetic_interactions": synth.n_interactions,
        "seconds": {"augment": t_aug, **metrics["seconds"]},
        # where the seconds were measured: wall times compare only within one device
        "device": train_cfg.model.get("device", "cpu"),
        "selection": info.get("selection"),
        "privacy_passed": report.get("passed"),
        "privacy_gates": report.get("gates"),
        # per-user test ranks (test-user order), for paired tests across methods
        "ranks": np.minimum(run.test.ranks, 10_000).astype(int).tolist(),
        "history_length": [len(split.train[u]) for u in split.test.users],
    }
    results.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result) + "\n")
    return result


def with_device(cfg: dict, device: str) -> dict:
    """The config with every torch model (recommender, generator, selector) on `device`."""
    train = dict(cfg.get("train", {}))
    train["model"] = {**train.get("model", {}), "device": device}
    aug = dict(cfg.get("augment", {}))
    aug["generator"] = {**aug.get("generator", {}), "device": device}
    selector = dict(aug.get("selector", {}))
    selector["params"] = {**selector.get("params", {}), "device": device}
    aug["selector"] = selector
    return {**cfg, "train": train, "augment": aug}


def _run_unit(job: tuple) -> dict | None:
    """One (method, seed) in a worker process; a failure is logged, not fatal to the rest."""
    data, method, seed, cfg, work, results, threads = job
    import torch

    torch.set_num_threads(threads)
    logging.basicConfig(  # force: a pool process runs several units, each with its own tag
        level=logging.INFO,
        format=f"%(asctime)s [{method}/{seed}] %(message)s",
        stream=sys.stderr,
        force=True,
    )
    try:
        return run_one(data, method, seed, cfg, work, results)
    except Exception:
        log.exception("%s seed %d failed", method, seed)
        return None


def run_all(args: argparse.Namespace, cfg: dict) -> dict[str, list[dict]]:
    """Every (method, seed), in order or `args.jobs` at a time; finished ones are skipped."""
    units = [(m, s) for s in range(args.seeds) for m in args.methods]  # seed-major
    by_method: dict[str, list[dict]] = {m: [] for m in args.methods}
    all_done = all((args.results / f"{m}-seed{s}.json").exists() for m, s in units)
    if args.jobs <= 1 or all_done:  # all done: only reads results, no worker processes
        for method, seed in units:
            by_method[method].append(run_one(args.data, method, seed, cfg, args.work, args.results))
        return by_method
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    # Seed by seed, the longest method (the GAN selects among checkpoints) first in each: a
    # run cut short still leaves whole seeds, and the pool drains evenly.
    units.sort(key=lambda u: (u[1], -args.methods.index(u[0])))
    jobs = [(args.data, m, s, cfg, args.work, args.results, threads) for m, s in units]
    # spawn: CUDA cannot be used in a forked child.
    with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn")) as pool:
        for (method, _), result in zip(units, pool.map(_run_unit, jobs), strict=True):
            if result is not None:
                by_method[method].append(result)
    for runs in by_method.values():
        runs.sort(key=lambda r: r["seed"])
    return by_method


def mean_std(values: list[float]) -> dict:
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0}


def paired(base: list[dict], other: list[dict], short_only: bool) -> dict:
    """Per-user NDCG@10 averaged over seeds, then a paired t-test and Wilcoxon against `base`."""
    b = np.mean([per_user_ndcg(np.asarray(r["ranks"]), 10) for r in base], axis=0)
    o = np.mean([per_user_ndcg(np.asarray(r["ranks"]), 10) for r in other], axis=0)
    if short_only:
        keep = np.asarray(base[0]["history_length"]) <= SHORT
        b, o = b[keep], o[keep]
    diff = o - b
    t = stats.ttest_rel(o, b) if diff.any() else None
    w = stats.wilcoxon(diff[diff != 0]) if (diff != 0).sum() > 10 else None
    return {
        "users": int(len(diff)),
        "base_ndcg@10": float(b.mean()),
        "ndcg@10": float(o.mean()),
        "relative_lift": float(o.mean() / b.mean() - 1) if b.mean() > 0 else None,
        "p_ttest": float(t.pvalue) if t is not None else None,
        "p_wilcoxon": float(w.pvalue) if w is not None else None,
    }


def summarise(by_method: dict[str, list[dict]]) -> dict:
    out = {}
    base = by_method.get("none")
    for method, runs in by_method.items():
        if not runs:
            continue
        entry = {
            "seeds": [r["seed"] for r in runs],
            "test": {k: mean_std([r["test"][k] for r in runs]) for k in ("ndcg@10", "hr@10")},
            "buckets": {
                kind: {
                    b: mean_std([r["buckets"][kind][b]["ndcg@10"] for r in runs])
                    for b in runs[0]["buckets"][kind]
                }
                for kind in ("history_length", "target_popularity")
            },
            "synthetic_share": float(np.mean([r["synthetic_share"] for r in runs])),
            "wall_seconds": float(np.mean([sum(r["seconds"].values()) for r in runs])),
            "privacy_passed": all(r["privacy_passed"] is not False for r in runs),
            f"ndcg@10_history<={SHORT}": mean_std(
                [
                    per_user_ndcg(np.asarray(r["ranks"]), 10)[
                        np.asarray(r["history_length"]) <= SHORT
                    ].mean()
                    for r in runs
                ]
            ),
        }
        # Pair by seed: a seed missing on either side is left out of the comparison.
        seeds = sorted({r["seed"] for r in runs} & {r["seed"] for r in base or []})
        if base and method != "none" and seeds:
            b = [r for r in base if r["seed"] in seeds]
            o = [r for r in runs if r["seed"] in seeds]
            entry["paired_vs_none"] = {
                "all": paired(b, o, short_only=False),
                f"history<={SHORT}": paired(b, o, short_only=True),
            }
        out[method] = entry
    return out


def markdown(summary: dict, command: str) -> str:
    def ms(d):
        return f"{d['mean']:.4f} ± {d['std']:.4f}"

    lines = [
        f"Command: `{command}`",
        "",
        "| method | seeds | NDCG@10 | HR@10 | NDCG@10 users ≤5 items | lift ≤5 vs none (p) "
        "| lift all vs none (p) | synthetic share | wall s | privacy gates |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m, e in summary.items():
        p = e.get("paired_vs_none", {})

        def lift(key, p=p):
            if key not in p or p[key]["relative_lift"] is None:
                return "—"
            q = p[key]
            pv = q["p_ttest"]
            return f"{q['relative_lift']:+.1%} (p={pv:.3g})" if pv is not None else "0"

        lines.append(
            f"| {m} | {len(e['seeds'])} | {ms(e['test']['ndcg@10'])} | {ms(e['test']['hr@10'])} "
            f"| {ms(e[f'ndcg@10_history<={SHORT}'])} | {lift(f'history<={SHORT}')} | {lift('all')} "
            f"| {e['synthetic_share']:.3f} | {e['wall_seconds']:.0f} "
            f"| {'pass' if e['privacy_passed'] else 'FAIL'} |"
        )
    titles = {
        "history_length": "NDCG@10 by training-history length (mean over seeds):",
        "target_popularity": "NDCG@10 by target popularity (training interactions):",
    }
    for kind, title in titles.items():
        names = list(next(iter(summary.values()))["buckets"][kind])
        lines += ["", title, "", "| method | " + " | ".join(names) + " |"]
        lines.append("|---|" + "---|" * len(names))
        for m, e in summary.items():
            h = e["buckets"][kind]
            lines.append(f"| {m} | " + " | ".join(f"{h[b]['mean']:.4f}" for b in names) + " |")
    return "\n".join(lines)


def write_docs(text: str, docs: Path, section: str = "augmentation") -> None:
    """Replace the text between this section's markers (appended when absent), atomically."""
    start, end = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
    body = docs.read_text() if docs.exists() else "# Benchmarks\n"
    block = f"{start}\n{text}\n{end}"
    if start in body:
        body = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, body, flags=re.S)
    else:
        body += f"\n## Augmentation ablation (issue 4): {section}\n\n{block}\n"
    tmp = docs.with_suffix(".tmp")
    tmp.write_text(body)
    tmp.replace(docs)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--config", type=Path, help="YAML: augment:, train:, model:")
    ap.add_argument("--work", type=Path, default=Path("runs/augmentation"))
    ap.add_argument("--results", type=Path, default=REPO / "benchmarks/results/augmentation")
    ap.add_argument("--no-docs", action="store_true", help="don't update docs/benchmarks.md")
    ap.add_argument(
        "--section",
        default="augmentation",
        help="docs/benchmarks.md markers to write between (<!-- SECTION:start -->), so a "
        "variant's table sits beside the main one",
    )
    ap.add_argument("--device", help="put every torch model on this device, e.g. cuda")
    ap.add_argument("--jobs", type=int, default=1, help="(method, seed) runs at once")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    cfg = yaml.safe_load(args.config.read_text()) if args.config else {}
    if args.device:
        cfg = with_device(cfg, args.device)
    by_method = run_all(args, cfg)
    summary = summarise(by_method)
    print(json.dumps(summary, indent=2))
    if not args.no_docs:
        command = "python " + " ".join(sys.argv)
        write_docs(markdown(summary, command), REPO / "docs" / "benchmarks.md", args.section)


if __name__ == "__main__":
    main()
