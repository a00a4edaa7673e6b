"""Does the reverse generator pass its privacy gate? Attack AUC, epsilon, copy gates, likelihood.

Two modes.

`--curve` (the original): train the generator for `--epochs` and, after every epoch, run the
report's membership-inference attack (the generator's mean per-item log-likelihood of member
vs held-out users' training histories, as an AUC), with held-out users' likelihood beside it.

    python benchmarks/generator_privacy.py --curve \
        --data ../shared/datasets/amazon-beauty/Beauty.txt \
        --config benchmarks/configs/augmentation-beauty.yaml --epochs 20

The sweep (default): for each setting, train the generator as the pipeline does
(`augment.generator_fit.fit_generator`: early stopping on withheld *member* users, optionally
DP-SGD at a target epsilon, optionally conditioned on title vectors), then write the
synthetic set the configuration asks for and run the synthetic-data report on it: attack
AUC, epsilon spent, both copy gates, and the generator's per-item log-likelihood of the
privacy holdout (users neither training nor the stopping rule saw), beside a popularity
(unigram) model's on the same items. One JSON per (setting, seed) under `--results`; a
finished one is skipped, so the sweep resumes where it stopped.

    python benchmarks/generator_privacy.py --data ../shared/datasets/amazon-beauty/Beauty.txt \
        --titles ../shared/datasets/amazon-beauty/derived/beauty_titles.tsv \
        --config benchmarks/configs/augmentation-beauty.yaml \
        --settings mle-stop dp-eps1 dp-eps4 dp-eps8

Use a configuration that writes sequences of at least `ngram` (3) items (the main one: 3
items per short user, virtual users of 5): with one item per short user (the lighter
variant) the exact-copy gate has nothing to test, cannot run, and a gate that did not run
is not passed.

Nothing here reads validation or test items.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from augrec.augment.generator import ReverseGenerator
from augrec.augment.generator_fit import DPConfig, fit_generator, user_roles
from augrec.augment.outputs import attack_samples, build_report
from augrec.augment.pipeline import AugmentConfig, generator_text_for, write_with_generator
from augrec.augment.report_stats import mia_auc
from augrec.data.loaders import load_dataset
from augrec.data.splits import leave_one_out, member_mask
from augrec.io import write_json
from augrec.models.sasrec import SASRecConfig

REPO = Path(__file__).resolve().parents[1]
log = logging.getLogger("generator_privacy")

# name -> overrides of the `augment:` section. Every setting stops early on 10% of members.
STOP = {"generator_stopping": {"valid_share": 0.1, "patience": 2}}
DP = {"delta": 1e-5, "max_grad_norm": 1.0, "batch_size": 512, "micro_batch": 64}
SETTINGS: dict[str, dict[str, Any]] = {
    "mle-stop": {**STOP},
    "mle-stop-text": {**STOP, "generator_text": {"enabled": True}},
    "dp-eps1": {**STOP, "generator_dp": {**DP, "epsilon": 1.0}, "dp_epochs": 3},
    "dp-eps4": {**STOP, "generator_dp": {**DP, "epsilon": 4.0}, "dp_epochs": 3},
    "dp-eps8": {**STOP, "generator_dp": {**DP, "epsilon": 8.0}, "dp_epochs": 3},
    "dp-eps8-text": {
        **STOP,
        "generator_dp": {**DP, "epsilon": 8.0},
        "dp_epochs": 3,
        "generator_text": {"enabled": True},
    },
}


class AttackEachEpoch:
    """A `Reporter` for the training loop that runs the attack after every epoch."""

    def __init__(self, gen: ReverseGenerator, members: list, holdout: list):
        self.gen, self.members, self.holdout = gen, members, holdout
        self.rows: list[dict[str, Any]] = []

    def report(self, metrics: dict[str, Any], checkpoint: dict[str, Any] | None = None) -> None:
        member_ll = self.gen.log_likelihood(self.members)
        holdout_ll = self.gen.log_likelihood(self.holdout)
        row = {
            "epoch": metrics["epoch"],
            "loss": round(metrics["loss"], 4),
            "mia_auc": round(mia_auc(member_ll, holdout_ll), 4),
            "member_loglik": round(float(member_ll.mean()), 4),
            "holdout_loglik": round(float(holdout_ll.mean()), 4),
            "seconds": round(metrics["elapsed"], 1),
        }
        self.rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)


def curve(args: argparse.Namespace, aug: AugmentConfig) -> None:
    """The attack after every maximum-likelihood epoch (fixed epochs, no stopping users)."""
    gen_params = {"use_attributes": False, **aug.generator}
    if args.epochs is not None:
        gen_params["epochs"] = args.epochs
    if args.device:
        gen_params["device"] = args.device
    split = leave_one_out(load_dataset(args.data))
    members = member_mask(len(split.train), aug.holdout_share, args.seed)
    member_train = [s for s, m in zip(split.train, members, strict=True) if m]
    member_sample, holdout_sample = attack_samples(split, members, args.seed)
    gen = ReverseGenerator(split.n_items, SASRecConfig(**gen_params), seed=args.seed)
    attack = AttackEachEpoch(gen, member_sample, holdout_sample)
    t0 = time.perf_counter()
    gen.fit_mle(member_train, reporter=attack)
    print(
        json.dumps(
            {
                "data": str(args.data),
                "generator": gen_params,
                "members": len(member_sample),
                "nonmembers": len(holdout_sample),
                "seconds": round(time.perf_counter() - t0, 1),
                "by_epoch": attack.rows,
            },
            indent=2,
        )
    )


def unigram_loglik(train: list[np.ndarray], seqs: list[np.ndarray], n_items: int) -> float:
    """Mean per-item log-probability of `seqs`' predicted items under training popularity.

    The generator predicts every item but a history's last (it reads histories backwards),
    so the same items are scored here: each sequence's all-but-last, averaged per sequence.
    """
    counts = np.bincount(np.concatenate(train), minlength=n_items + 1)[1:] + 1.0
    logp = np.log(counts / counts.sum())
    return float(np.mean([logp[s[:-1] - 1].mean() for s in seqs if len(s) >= 2]))


def run_setting(
    name: str, split: Any, items: Any, base: dict, args: argparse.Namespace, out: Path
) -> dict:
    """Train one setting's generator, write its set, report; returns (and writes) the row."""
    over = dict(SETTINGS[name])
    dp_epochs = over.pop("dp_epochs", None)
    section = {**base, **over, "method": "mle"}
    gen_params = {"use_attributes": False, **section.get("generator", {})}
    if dp_epochs is not None:
        gen_params["epochs"] = dp_epochs
    if "generator_dp" in over and args.dp_batch_size:
        over["generator_dp"] = {**over["generator_dp"], "batch_size": args.dp_batch_size}
        section["generator_dp"] = over["generator_dp"]
    if args.device:
        gen_params["device"] = args.device
    section["generator"] = gen_params
    aug = AugmentConfig(**section)
    members = member_mask(len(split.train), aug.holdout_share, args.seed)
    trained, stopping = user_roles(members, aug.generator_stopping.valid_share, args.seed)
    if args.member_subsample < 1.0:  # fewer users to train on, said in the result
        keep = np.random.default_rng([args.seed, 13]).random(len(trained)) < args.member_subsample
        trained = trained & keep
    item_text = generator_text_for(items, split, aug)
    gen = ReverseGenerator(split.n_items, SASRecConfig(**gen_params), args.seed, item_text)
    train = [s for s, m in zip(split.train, trained, strict=True) if m]
    stop_users = [s for s, m in zip(split.train, stopping, strict=True) if m]
    t0 = time.perf_counter()
    fit = fit_generator(
        gen,
        train,
        stop_users,
        patience=aug.generator_stopping.patience,
        dp=DPConfig(**aug.generator_dp.model_dump()) if aug.generator_dp else None,
        reporter=_Progress(name),
    )
    t_fit = time.perf_counter() - t0
    synth = write_with_generator(gen, split, aug, "mle", args.seed)
    info = {"members": trained, "holdout": ~members, "generator": gen, "mle": fit}
    report = build_report(split, synth, info, args.seed)
    holdout = [s for s, h in zip(split.train, ~members, strict=True) if h and len(s) >= 2]
    summary = report["privacy"]["summary"]
    row = {
        "setting": name,
        "seed": args.seed,
        "data": str(args.data),
        "augment": aug.model_dump(),
        "text": item_text is not None,
        "member_subsample": args.member_subsample,
        "trained_users": fit["n_trained_users"],
        "stopping_users": fit["n_stopping_users"],
        "holdout_users": len(holdout),
        "epochs_run": fit["epochs_run"],
        "best_epoch": fit["best_epoch"],
        "fit_seconds": round(t_fit, 1),
        "holdout_loglik": float(gen.log_likelihood(holdout).mean()),
        "unigram_holdout_loglik": unigram_loglik(train, holdout, split.n_items),
        "stopping_loglik": fit.get("best_stopping_loglik"),
        "attack_auc": summary["attack_auc"],
        "epsilon": summary["epsilon"],
        "exact_copy_rate": summary["exact_copy_rate"],
        "exact_copy_passed": summary["exact_copy_passed"],
        "exact_match_share": summary["exact_match_share"],
        "exact_match_passed": summary["exact_match_passed"],
        "passed": report["passed"],
        "gates": report["gates"],
        "synthetic_interactions": synth.n_interactions,
        "fit": fit,
    }
    write_json(out, row)
    return row


class _Progress:
    def __init__(self, name: str):
        self.name = name

    def report(self, metrics: dict[str, Any], checkpoint: dict[str, Any] | None = None) -> None:
        shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}
        log.info("%s %s", self.name, shown)


def table(rows: list[dict]) -> str:
    """The markdown table docs/benchmarks.md carries."""
    head = (
        "| setting | epochs (chosen/run) | epsilon (delta 1e-5) | attack AUC | exact-copy rate "
        "(gate) | exact item-set match (gate) | held-out log-lik / item | all gates | fit s |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )

    def gate(value: float | None, passed: bool | None) -> str:
        if passed is None:  # e.g. no synthetic sequence long enough for an n-gram
            return "not run (FAIL)"
        return f"{value:.4f} ({'pass' if passed else 'FAIL'})"

    lines = []
    for r in rows:
        eps = "∞ (no DP)" if r["epsilon"] is None else f"{r['epsilon']:.2f}"
        lines.append(
            f"| {r['setting']} | {r['best_epoch']}/{r['epochs_run']} | {eps} | "
            f"{r['attack_auc']:.3f} | {gate(r['exact_copy_rate'], r['exact_copy_passed'])} | "
            f"{gate(r['exact_match_share'], r['exact_match_passed'])} | "
            f"{r['holdout_loglik']:.2f} (unigram {r['unigram_holdout_loglik']:.2f}) | "
            f"{'pass' if r['passed'] else 'FAIL'} | {r['fit_seconds']:.0f} |"
        )
    return head + "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--titles", type=Path, help="item_id/title table (text settings)")
    ap.add_argument("--config", type=Path, help="the ablation YAML (its augment: section)")
    ap.add_argument("--curve", action="store_true", help="the attack after every epoch")
    ap.add_argument("--epochs", type=int, help="--curve: override augment.generator.epochs")
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--results", type=Path, default=REPO / "benchmarks/results/generator_privacy")
    ap.add_argument(
        "--member-subsample",
        type=float,
        default=1.0,
        help="train on this share of trained members (DP-SGD is slow on a CPU)",
    )
    ap.add_argument("--dp-batch-size", type=int, help="override the expected DP batch (512)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", help="e.g. cuda")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = yaml.safe_load(args.config.read_text()) if args.config else {}
    base = cfg.get("augment", {})
    if args.curve:
        curve(args, AugmentConfig(**base))
        return
    ds = load_dataset(args.data, titles=args.titles)
    split = leave_one_out(ds)
    rows = []
    for name in args.settings:
        out = args.results / f"{name}-seed{args.seed}.json"
        if out.exists():
            log.info("skip %s (done: %s)", name, out)
            rows.append(json.loads(out.read_text()))
            continue
        rows.append(run_setting(name, split, ds.items, base, args, out))
        log.info("%s done: %s", name, {k: rows[-1][k] for k in ("attack_auc", "epsilon")})
    print(table(rows))


if __name__ == "__main__":
    main()
