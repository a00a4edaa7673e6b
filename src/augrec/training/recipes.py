"""Training recipes for real + synthetic data: target weights and pretrain-then-fine-tune.

The split a model fits on marks which training positions are synthetic
(`Split.train_synthetic`, set by `augment.synthetic_set.augmented_split`). From it:
- `synthetic_target_weights`: each item's loss weight as a target (`synthetic_weight` for
  synthetic items, 1 for real ones);
- `real_only`: the real training sequences (synthetic prefixes removed, virtual users empty);
- `fit_two_stage`: ASReP's recipe (Liu et al., SIGIR 2021), whose ablation found starting
  from weights pre-trained on augmented data better than retraining on it: pre-train on real
  + synthetic, then fine-tune on real only from the *best* pre-training checkpoint. Each stage
  stops early on validation NDCG@10; the fine-tuning stage must beat the pre-trained weights'
  score or they are kept (its best epoch is then 0).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable

import numpy as np

from augrec.data.splits import Split
from augrec.models.base import Reporter
from augrec.models.sasrec import SASRecConfig, SASRecNet
from augrec.training.loop import FitResult, train_sequences

log = logging.getLogger(__name__)


def synthetic_target_weights(split: Split, weight: float) -> list[np.ndarray] | None:
    """Per training sequence, each item's loss weight as a target; None when all would be 1."""
    if split.train_synthetic is None or weight == 1.0:
        return None
    return [
        np.where(mask, np.float32(weight), np.float32(1.0)).astype(np.float32)
        for mask in split.train_synthetic
    ]


def real_only(split: Split) -> list[np.ndarray]:
    """Training sequences without their synthetic items (whole synthetic ones become empty)."""
    if split.train_synthetic is None:
        return list(split.train)
    return [s[~m] for s, m in zip(split.train, split.train_synthetic, strict=True)]


def fit_two_stage(
    net: SASRecNet,
    split: Split,
    cfg: SASRecConfig,
    seed: int,
    validate: Callable[[], dict[str, float]] | None,
    reporter: Reporter | None = None,
    target_weights: list[np.ndarray] | None = None,
) -> tuple[FitResult, FitResult]:
    """Pre-train on `split.train` (real + synthetic), then fine-tune on its real part.

    Without `validate` (a refit), each stage runs exactly its epoch count: `epochs`, then
    `finetune_epochs`. Returns (pre-training result, fine-tuning result); `net` ends with the
    fine-tuning stage's best weights (the pre-trained ones when no fine-tuning epoch beat them).
    """
    pre = train_sequences(
        net,
        split.train,
        cfg,
        seed=seed,
        validate=validate,
        reporter=reporter,
        target_weights=target_weights,
    )
    # train_sequences has restored the best validated pre-training weights into `net`.
    start = None
    if validate is not None and pre.best_epoch > 0:
        start = (pre.best_score, copy.deepcopy(net.state_dict()))
    fine_cfg = cfg.model_copy(
        update={
            "epochs": cfg.finetune_epochs if cfg.finetune_epochs is not None else cfg.epochs,
            "lr": cfg.finetune_lr if cfg.finetune_lr is not None else cfg.lr,
            "time_budget_s": cfg.time_budget_s,
        }
    )
    log.info(
        "two-stage: pre-training best epoch %d of %d; fine-tuning on real data only",
        pre.best_epoch,
        pre.epochs,
    )
    # A different batch order from pre-training's (seed + 1): the same seed would replay it.
    fine = train_sequences(
        net,
        real_only(split),
        fine_cfg,
        seed=seed + 1,
        validate=validate,
        reporter=reporter,
        start=start,
    )
    return pre, fine
