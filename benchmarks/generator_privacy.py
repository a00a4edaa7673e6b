"""How fast the reverse generator starts to memorise: membership-inference AUC by MLE epoch.

The augmentation ablation's generators failed the privacy gate (attack AUC 0.92 against a
0.6 gate). This trains the same generator on the same member users and, after every epoch,
runs the report's attack: the generator's mean per-item log-likelihood of member vs held-out
(never-seen) users' training histories, as an AUC. It also prints the held-out users' mean
log-likelihood, the number a memorisation-aware early stop would watch. Nothing here uses
validation or test items.

    python benchmarks/generator_privacy.py --data ../shared/datasets/amazon-beauty/Beauty.txt \
        --config benchmarks/configs/augmentation-beauty.yaml --epochs 20
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from augrec.augment.generator import ReverseGenerator
from augrec.augment.outputs import attack_samples
from augrec.augment.pipeline import AugmentConfig
from augrec.augment.report_stats import mia_auc
from augrec.data.loaders import load_dataset
from augrec.data.splits import leave_one_out, member_mask
from augrec.models.sasrec import SASRecConfig


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


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--config", type=Path, help="the ablation YAML (its augment: section)")
    ap.add_argument("--epochs", type=int, help="override augment.generator.epochs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", help="e.g. cuda")
    args = ap.parse_args()
    cfg = yaml.safe_load(args.config.read_text()) if args.config else {}
    aug = AugmentConfig(**cfg.get("augment", {}))
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


if __name__ == "__main__":
    main()
