"""Augmentation ablation: every recipe into the same recommender, over seeds.

A method is a recipe (`RECIPES`): which synthetic set to write (none / heuristic / mle / gan)
and how the recommender uses it (mixed in, pre-train then fine-tune on real, weighted
synthetic targets, item text, adversarial training). For each (method, seed) the set is
written once per (generator method, seed) and shared by the recipes that use it, the
recommender trains, and it is evaluated on the real held-out test items, also with 10% and
20% of each test history replaced by random items (the noisy-history test). Prints JSON and
writes the tables into docs/benchmarks.md (between the section's markers): overall and
per-bucket test NDCG@10 / HR@10 (mean ± std over seeds), paired per-user tests against
`none` (all users, users with <= 5 training items, tail targets with <= 5 training
interactions) and of the GAN recipes against the MLE-only one, noisy-history results,
privacy gates, wall time and synthetic share.

Resumable across sessions: each finished (method, seed) leaves a small result file under
`--results` (committed: benchmarks/results/augmentation/), and is skipped on rerun. Files
written before the recipes existed are read under their new names: `mle-seed0.json` is
`mle-mix`, `gan-seed0.json` is `gan-mix` (mixing was the only recipe then).

    python benchmarks/augmentation.py --data ../shared/datasets/amazon-beauty/Beauty.txt \
        --seeds 3 --config benchmarks/configs/augmentation-beauty.yaml

On a GPU box, `--device cuda --jobs 12` runs every (method, seed) at once, each in its own
process sharing the GPU (the models are small; one alone leaves the GPU mostly idle).
"""

from __future__ import annotations

import argparse
import fcntl
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
from augrec.augment.pipeline import AugmentConfig, augment
from augrec.config import TrainConfig
from augrec.data.loaders import load_dataset
from augrec.data.splits import leave_one_out
from augrec.evaluation.metrics import per_user_ndcg
from augrec.training.run import train_and_evaluate

REPO = Path(__file__).resolve().parents[1]
SHORT = 5  # users with at most this many training items: the sparse users augmentation is for
TAIL = 5  # test targets with at most this many training interactions: the long tail
NOISY_SHARES = (0.1, 0.2)
log = logging.getLogger("augmentation")

# method -> (synthetic set it trains on, overrides of the `train:` config). The grids are
# chosen on validation inside `augrec train` (`selection:`), never on test. A config file's
# `recipes:` section overrides these per method (merged key by key).
RECIPES: dict[str, tuple[str, dict]] = {
    "none": ("none", {}),
    "heuristic": ("heuristic", {}),
    "mle-mix": ("mle", {}),
    "gan-mix": ("gan", {}),
    "gan-pretrain": ("gan", {"model": {"finetune": True}}),
    "gan-weighted": (
        "gan",
        {"selection": {"grid": {"synthetic_weight": [0.1, 0.3, 0.6]}, "users": "short"}},
    ),
    "text": ("none", {"model": {"text": "fuse"}}),
    "text+gan": ("gan", {"model": {"text": "fuse", "finetune": True}}),
    "adversarial": ("none", {"selection": {"grid": {"adv_eps": [0.05, 0.1, 0.25]}}}),
}
METHODS = tuple(RECIPES)
DEFAULT_METHODS = [m for m in METHODS if m != "heuristic"]
LEGACY = {"mle": "mle-mix", "gan": "gan-mix"}  # result files from before the recipes
GAN_RECIPES = ("gan-mix", "gan-pretrain", "gan-weighted", "text+gan")


def merge(base: dict, over: dict) -> dict:
    """`over` merged into `base` key by key (nested mappings merge, anything else replaces)."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def recipe(method: str, cfg: dict) -> tuple[str, dict]:
    """(generator method, train overrides) of `method`, with the config's `recipes:` applied."""
    aug_method, overrides = RECIPES[method]
    return aug_method, merge(overrides, (cfg.get("recipes") or {}).get(method, {}))


def read_done(results: Path, method: str, seed: int) -> dict | None:
    """A finished result for (method, seed), from its own file or a pre-recipe one."""
    out = results / f"{method}-seed{seed}.json"
    if out.exists():
        return json.loads(out.read_text())
    for old, new in LEGACY.items():
        legacy = results / f"{old}-seed{seed}.json"
        if new == method and legacy.exists():
            return {**json.loads(legacy.read_text()), "method": method, "legacy_name": old}
    return None


def synthetic_set(split, aug_cfg: AugmentConfig, seed: int, work: Path) -> tuple:
    """Write (or reuse) the set for (generator method, seed); returns (dir, meta, report).

    Recipes on the same generator share one set: it is reused when its recorded config
    equals this one.
    """
    set_dir = work / f"{aug_cfg.method}-seed{seed}"
    work.mkdir(parents=True, exist_ok=True)
    # Parallel recipes on one generator wait for whichever started writing its set first.
    with (work / f".{set_dir.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _write_or_reuse(split, aug_cfg, seed, set_dir)


def _write_or_reuse(split, aug_cfg: AugmentConfig, seed: int, set_dir: Path) -> tuple:
    want = json.loads(json.dumps(aug_cfg.model_dump()))
    meta_file, report_file = set_dir / "synthetic.json", set_dir / "synthetic_report.json"
    if meta_file.exists() and report_file.exists():
        meta = json.loads(meta_file.read_text())
        if meta.get("config") == want and meta.get("seed") == seed:
            log.info("reuse synthetic set %s", set_dir)
            return set_dir, {**meta, "reused": True}, json.loads(report_file.read_text())
    t0 = time.perf_counter()
    synth, info = augment(split, aug_cfg, seed=seed)
    report = build_report(split, synth, info, seed)
    write_augmentation(set_dir, split, synth, info, report, overwrite=True)
    meta = json.loads(meta_file.read_text())
    meta["seconds"] = time.perf_counter() - t0  # generation and report together
    meta["selection_trace"] = info.get("selection")
    return set_dir, meta, report


def run_one(data: Path, method: str, seed: int, cfg: dict, work: Path, results: Path) -> dict:
    done = read_done(results, method, seed)
    if done is not None:
        log.info("skip %s seed %d (done)", method, seed)
        return done
    split = leave_one_out(load_dataset(data))
    aug_method, overrides = recipe(method, cfg)
    aug_cfg = AugmentConfig(**{**cfg.get("augment", {}), "method": aug_method})
    set_dir, meta, report = synthetic_set(split, aug_cfg, seed, work)
    train_values = merge(cfg.get("train", {}), overrides)
    train_values = merge(train_values, {"eval": {"noisy_shares": list(NOISY_SHARES)}})
    if train_values.get("titles") and not Path(train_values["titles"]).is_absolute():
        train_values["titles"] = str(REPO / train_values["titles"])  # configs speak from here
    train_cfg = TrainConfig(**train_values)
    run = train_and_evaluate(
        data, cfg.get("model", "sasrec"), train_cfg, seed=seed, augment=set_dir
    )
    metrics = run.metrics()
    clip = lambda ranks: np.minimum(ranks, 10_000).astype(int).tolist()  # noqa: E731
    result = {
        "method": method,
        "seed": seed,
        "recipe": {"synthetic": aug_method, "train": overrides},
        "params": run.params,  # the candidate chosen on validation
        "candidates": [
            {k: v for k, v in c.items() if k.startswith("valid_") or k == "params"}
            for c in metrics["selection"]["candidates"]
        ],
        "test": metrics["test"],
        "valid": metrics["valid"],
        "buckets": metrics["buckets"],
        "test_noisy": {
            share: {
                "ndcg@10": metrics["test_noisy"][share]["ndcg@10"],
                "hr@10": metrics["test_noisy"][share]["hr@10"],
                "ranks": clip(run.test_noisy[share].ranks),
            }
            for share in run.test_noisy
        },
        "synthetic_share": float(meta.get("synthetic_share", 0.0)),
        "synthetic_interactions": int(meta.get("synthetic_interactions", 0)),
        "synthetic_set_reused": bool(meta.get("reused", False)),
        # augment: generating the set (once per generator and seed; reused sets count the
        # time it took when written, so each row stands for the whole recipe)
        "seconds": {"augment": float(meta.get("seconds", 0.0)), **metrics["seconds"]},
        # where the seconds were measured: wall times compare only within one device
        "device": train_cfg.model.get("device", "cpu"),
        "selection": meta.get("selection_trace"),
        "privacy_passed": report.get("passed"),
        "privacy_gates": report.get("gates"),
        # per-user test ranks (test-user order), for paired tests across methods
        "ranks": clip(run.test.ranks),
        "history_length": [len(split.train[u]) for u in split.test.users],
        "target_popularity": split.item_counts[split.test.targets].astype(int).tolist(),
    }
    results.mkdir(parents=True, exist_ok=True)
    tmp = results / f".{method}-seed{seed}.json.tmp"
    tmp.write_text(json.dumps(result) + "\n")
    tmp.replace(results / f"{method}-seed{seed}.json")  # a crash leaves no half file
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
    all_done = all(read_done(args.results, m, s) is not None for m, s in units)
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


def paired(
    base: list[dict], other: list[dict], keep: np.ndarray | None = None, key: str = "ranks"
) -> dict:
    """Per-user NDCG@10 averaged over seeds, then a paired t-test and Wilcoxon against `base`.

    keep: which test users count (e.g. short histories); key: "ranks", or a noisy share's
    ranks through `noisy_ranks`.
    """
    b = np.mean([per_user_ndcg(np.asarray(_ranks(r, key)), 10) for r in base], axis=0)
    o = np.mean([per_user_ndcg(np.asarray(_ranks(r, key)), 10) for r in other], axis=0)
    if keep is not None:
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


def _ranks(run: dict, key: str) -> list[int]:
    """A run's per-user test ranks; "noisy:0.1" names the 10% noisy-history test's."""
    if key.startswith("noisy:"):
        return run["test_noisy"][key.split(":", 1)[1]]["ranks"]
    return run[key]


def _pairs(base: list[dict] | None, runs: list[dict]) -> tuple[list[dict], list[dict]]:
    """Runs of the seeds both sides finished (a seed missing on either side is left out)."""
    seeds = sorted({r["seed"] for r in runs} & {r["seed"] for r in base or []})
    return [r for r in base or [] if r["seed"] in seeds], [r for r in runs if r["seed"] in seeds]


def _comparisons(base: list[dict], runs: list[dict], masks: dict[str, np.ndarray]) -> dict:
    """Paired tests of `runs` against `base`: all users, then each masked group."""
    b, o = _pairs(base, runs)
    if not b:
        return {}
    out = {"all": paired(b, o)}
    out.update({name: paired(b, o, keep) for name, keep in masks.items()})
    return out


# `auto` may keep a recipe whose overall validation NDCG@10 is at most this much below none's:
# the acceptance's bound on the overall test score, applied where selection may look.
AUTO_TOLERANCE = 0.005


def validation_scores(run: dict) -> tuple[float, float | None]:
    """(all users, users with <= SHORT items) validation NDCG@10 of the candidate a run kept.

    Measured before the refit, on the validation items, which the test never shares. Result
    files written before the recipes kept only the overall score (short: None).
    """
    for c in run.get("candidates") or []:
        if c.get("params") == run.get("params") and "valid_ndcg@10" in c:
            return c["valid_ndcg@10"], c.get(f"valid_ndcg@10_history<={SHORT}")
    return run.get("valid", {}).get("ndcg@10", float("nan")), None


def auto_runs(by_method: dict[str, list[dict]]) -> list[dict]:
    """Per seed, the recipe validation picks: the best short-user validation NDCG@10 among the
    recipes whose overall validation NDCG@10 is within AUTO_TOLERANCE of none's (none itself
    when no recipe beats it). Only validation is read; the test of the pick is then reported
    like any recipe's. Seeds without a `none` run have no baseline and are left out.
    """
    out = []
    for none_run in sorted(by_method.get("none", []), key=lambda r: r["seed"]):
        overall, short = validation_scores(none_run)
        floor = overall * (1 - AUTO_TOLERANCE)
        best, best_short = none_run, short
        for method, runs in by_method.items():
            if method in ("none", "auto"):
                continue
            for run in runs:
                if run["seed"] != none_run["seed"]:
                    continue
                overall, short = validation_scores(run)
                if short is None or not overall >= floor:  # nan (no score): not eligible
                    continue
                if best_short is None or short > best_short:
                    best, best_short = run, short
        out.append({**best, "method": "auto", "chosen": best["method"]})
    return out


def summarise(by_method: dict[str, list[dict]]) -> dict:
    out = {}
    if by_method.get("none") and len([m for m, r in by_method.items() if r]) > 1:
        by_method = {**by_method, "auto": auto_runs(by_method)}
    base = by_method.get("none")
    mle = by_method.get("mle-mix")
    every = [r for runs in by_method.values() for r in runs]
    # Test users and targets are the same in every run (one split per dataset), so the tail
    # mask can come from any run that recorded target popularity (pre-recipe files did not).
    masks = {}
    if every:
        masks[f"history<={SHORT}"] = np.asarray(every[0]["history_length"]) <= SHORT
        popularity = next((r["target_popularity"] for r in every if "target_popularity" in r), None)
        if popularity is not None:
            masks[f"target<={TAIL}"] = np.asarray(popularity) <= TAIL
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
            # the bucket every recipe reports: test targets with <= TAIL training interactions
            f"ndcg@10_target<={TAIL}": mean_std(
                [
                    r["buckets"]["target_popularity"][f"<={TAIL}"]["ndcg@10"]
                    for r in runs
                    if f"<={TAIL}" in r["buckets"]["target_popularity"]
                ]
                or [float("nan")]
            ),
            "params": [r.get("params") for r in runs],
        }
        if method == "auto":
            entry["chosen"] = [r["chosen"] for r in runs]
        shares = sorted(set.intersection(*(set(r.get("test_noisy", {})) for r in runs)))
        if shares:
            entry["test_noisy"] = {
                sh: mean_std([r["test_noisy"][sh]["ndcg@10"] for r in runs]) for sh in shares
            }
        if base and method != "none":
            entry["paired_vs_none"] = _comparisons(base, runs, masks)
            b, o = _pairs(base, runs)
            noisy = {
                sh: paired(b, o, key=f"noisy:{sh}")
                for sh in shares
                if b and all(sh in r.get("test_noisy", {}) for r in b)
            }
            if noisy:
                entry["paired_vs_none_noisy"] = noisy
        if mle and method in GAN_RECIPES:
            entry["paired_vs_mle_mix"] = _comparisons(mle, runs, masks)
        out[method] = entry
    return out


def markdown(summary: dict, command: str) -> str:
    def ms(d):
        return f"{d['mean']:.4f} ± {d['std']:.4f}"

    def lift(p: dict, key: str) -> str:
        if key not in p or p[key]["relative_lift"] is None:
            return "—"
        q = p[key]
        pv = q["p_ttest"]
        return f"{q['relative_lift']:+.1%} (p={pv:.3g})" if pv is not None else "0"

    lines = [
        f"Command: `{command}`",
        "",
        f"| method | seeds | NDCG@10 | HR@10 | NDCG@10 users ≤{SHORT} items "
        f"| lift ≤{SHORT} vs none (p) | lift all vs none (p) | NDCG@10 tail targets ≤{TAIL} "
        f"| lift tail vs none (p) | synthetic share | wall s | privacy gates |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m, e in summary.items():
        p = e.get("paired_vs_none", {})
        lines.append(
            f"| {m} | {len(e['seeds'])} | {ms(e['test']['ndcg@10'])} | {ms(e['test']['hr@10'])} "
            f"| {ms(e[f'ndcg@10_history<={SHORT}'])} | {lift(p, f'history<={SHORT}')} "
            f"| {lift(p, 'all')} | {ms(e[f'ndcg@10_target<={TAIL}'])} "
            f"| {lift(p, f'target<={TAIL}')} "
            f"| {e['synthetic_share']:.3f} | {e['wall_seconds']:.0f} "
            f"| {'pass' if e['privacy_passed'] else 'FAIL'} |"
        )
    if "auto" in summary:
        picks = ", ".join(
            f"seed {seed}: {m}"
            for seed, m in zip(summary["auto"]["seeds"], summary["auto"]["chosen"], strict=True)
        )
        lines += [
            "",
            f"`auto` is the recipe validation picks per seed (best validation NDCG@10 of users "
            f"with ≤ {SHORT} items among recipes within {AUTO_TOLERANCE:.1%} of none's overall "
            f"validation NDCG@10): {picks}.",
        ]
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
    noisy = {m: e for m, e in summary.items() if "test_noisy" in e}
    if noisy:
        shares = sorted({sh for e in noisy.values() for sh in e["test_noisy"]}, key=float)
        lines += [
            "",
            "Noisy-history test: NDCG@10 with a seeded share of each test user's history "
            "replaced by random items (lift vs none on the same noisy histories, paired):",
            "",
            "| method | clean | "
            + " | ".join(f"{float(sh):.0%} noisy (lift, p)" for sh in shares)
            + " |",
            "|---|---|" + "---|" * len(shares),
        ]
        for m, e in noisy.items():
            q = e.get("paired_vs_none_noisy", {})
            cells = [
                f"{e['test_noisy'][sh]['mean']:.4f} ({lift(q, sh)})"
                if sh in e["test_noisy"]
                else "—"
                for sh in shares
            ]
            lines.append(
                f"| {m} | {e['test']['ndcg@10']['mean']:.4f} | " + " | ".join(cells) + " |"
            )
    gan = {m: e for m, e in summary.items() if "paired_vs_mle_mix" in e}
    if gan:
        lines += [
            "",
            "GAN recipes against the MLE-only generator mixed in (`mle-mix`), paired:",
            "",
            f"| method | lift all (p) | lift users ≤{SHORT} (p) | lift tail targets ≤{TAIL} (p) |",
            "|---|---|---|---|",
        ]
        for m, e in gan.items():
            q = e["paired_vs_mle_mix"]
            lines.append(
                f"| {m} | {lift(q, 'all')} | {lift(q, f'history<={SHORT}')} "
                f"| {lift(q, f'target<={TAIL}')} |"
            )
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
    ap.add_argument(
        "--methods",
        nargs="+",
        default=DEFAULT_METHODS,
        choices=[*METHODS, *LEGACY],
        help="recipes to run (mle and gan are the old names of mle-mix and gan-mix)",
    )
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
    args.methods = list(dict.fromkeys(LEGACY.get(m, m) for m in args.methods))
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
