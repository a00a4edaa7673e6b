"""Write what `augrec augment` produced: the set, the report, the generator, atomically."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from augrec.augment.synthetic_set import SyntheticSet, save
from augrec.data.splits import Split
from augrec.io import atomic_dir

log = logging.getLogger(__name__)
MIA_SAMPLE = 5000  # users per side for the membership-inference scores


def attack_samples(
    split: Split, members: np.ndarray, seed: int, holdout: np.ndarray | None = None
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Member and held-out training histories the membership-inference attack scores.

    At most MIA_SAMPLE per side, of at least 2 items (a likelihood needs a next item).
    `holdout` is the privacy holdout (default: every non-member); users that are neither
    (withheld only to stop the generator's training) are on neither side.
    """
    rng = np.random.default_rng(seed)
    pick = lambda seqs: [seqs[i] for i in rng.permutation(len(seqs))[:MIA_SAMPLE]]  # noqa: E731
    holdout = ~members if holdout is None else holdout
    usable = [s for s, m in zip(split.train, members, strict=True) if m and len(s) >= 2]
    held_out = [s for s, h in zip(split.train, holdout, strict=True) if h and len(s) >= 2]
    return pick(usable), pick(held_out)


def build_report(split: Split, synth: SyntheticSet, info: dict[str, Any], seed: int) -> dict:
    """The synthetic-data report: fidelity, diversity and privacy against a holdout.

    An empty set (`--method none`) has nothing to describe: its report says so and passes.
    """
    from augrec.augment.report import synthetic_report

    if synth.n_interactions == 0:
        return {
            "empty": True,
            "note": f"method {synth.method!r} wrote no synthetic data",
            "gates": {},
            "passed": True,
        }

    members = info["members"]
    holdout_mask = info.get("holdout", ~members)
    member_train = [s for s, m in zip(split.train, members, strict=True) if m and len(s)]
    holdout = [s for s, h in zip(split.train, holdout_mask, strict=True) if h and len(s)]
    groups = split.item_attributes[:, 0] if split.item_attributes is not None else None
    member_scores = nonmember_scores = None
    gen = info.get("generator")
    if gen is not None and holdout:
        member_sample, holdout_sample = attack_samples(split, members, seed, holdout_mask)
        member_scores = gen.log_likelihood(member_sample)
        nonmember_scores = gen.log_likelihood(holdout_sample)
    return synthetic_report(
        member_train,
        synth.sequences(),
        holdout,
        split.n_items,
        item_groups=groups,
        member_scores=member_scores,
        nonmember_scores=nonmember_scores,
        dp=(info.get("mle") or {}).get("dp"),
    )


def write_augmentation(
    out: Path,
    split: Split,
    synth: SyntheticSet,
    info: dict[str, Any],
    report: dict,
    overwrite: bool,
) -> None:
    """synthetic.parquet/json, synthetic_report.json/html, generator.pt, training traces."""
    from augrec.augment.report import write_report

    with atomic_dir(out, overwrite=overwrite) as tmp:
        save(synth, split, tmp)
        if report.get("empty"):
            (tmp / "synthetic_report.json").write_text(json.dumps(report, indent=2) + "\n")
            (tmp / "synthetic_report.html").write_text(
                f"<!doctype html><title>synthetic report</title><p>{report['note']}</p>\n"
            )
        else:
            write_report(report, tmp)
        gen = info.get("generator")
        if gen is not None:
            torch.save(
                {"config": gen.cfg.model_dump(), "state": gen.state_dict()}, tmp / "generator.pt"
            )
        trace = {
            k: info[k] for k in ("mle", "adversarial", "selection", "selected_step") if k in info
        }
        (tmp / "training.json").write_text(json.dumps(trace, indent=2, default=float) + "\n")
