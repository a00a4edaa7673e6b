"""The training loop for sequence models, as a plain torch function.

Runs in-process (tests, a GPU box with `--device cuda`) and inside Ray Train workers, where
`training/ray_train.py` passes the rank, world size and a DDP-wrapped loss module. Nothing
here imports Ray.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from augrec.models.base import Reporter
from augrec.models.sasrec import SASRecConfig, SASRecNet, adversarial_loss, pad_left

log = logging.getLogger(__name__)
SELECT = "ndcg@10"


class LossModule(nn.Module):
    """Wraps the network so that DDP sees the whole loss computation as one forward."""

    def __init__(self, net: SASRecNet, cfg: SASRecConfig):
        super().__init__()
        self.net = net
        self.cfg = cfg

    def forward(
        self, inputs: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Next-item loss of the batch (weighted mean; plus the adversarial term when on)."""
        return adversarial_loss(self.net, inputs, targets, self.cfg, weights)


@dataclass
class FitResult:
    """What training produced: the epoch chosen on validation and the curve that led to it."""

    best_epoch: int = 0
    best_score: float = -1.0
    epochs: int = 0
    stopped: str = "epochs"
    seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Small dict for metrics.json."""
        return {
            "best_epoch": self.best_epoch,
            f"best_valid_{SELECT}": round(self.best_score, 6),
            "epochs_run": self.epochs,
            "stopped": self.stopped,
            "seconds_per_epoch": round(self.seconds / max(self.epochs, 1), 3),
        }


def make_batches(
    train: Sequence[np.ndarray], max_len: int, batch_size: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Group users of similar history length into batches, in a random order.

    Most histories are short (median 6 on Beauty): padding every batch to the longest one
    would waste most of the compute. Jitter makes equal lengths mix differently each epoch.
    """
    users = np.array([u for u, s in enumerate(train) if len(s) >= 2], dtype=np.int64)
    lengths = np.array([min(len(train[u]), max_len + 1) for u in users], dtype=np.float64)
    order = users[np.argsort(lengths + rng.random(len(users)), kind="stable")]
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def batch_tensors(
    train: Sequence[np.ndarray], users: np.ndarray, max_len: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs seq[:-1] and targets seq[1:], left-padded to the batch's longest history."""
    seqs = [train[u][-(max_len + 1) :] for u in users]
    return pad_left([s[:-1] for s in seqs], max_len), pad_left([s[1:] for s in seqs], max_len)


def batch_weights(weights: Sequence[np.ndarray], users: np.ndarray, max_len: int) -> torch.Tensor:
    """Each target's loss weight [B, L], aligned with `batch_tensors`' targets."""
    rows = [weights[u][-(max_len + 1) :][1:] for u in users]
    return pad_left(rows, max_len, dtype=np.float32)


def train_sequences(
    net: SASRecNet,
    train: Sequence[np.ndarray],
    cfg: SASRecConfig,
    seed: int = 0,
    validate: Callable[[], dict[str, float]] | None = None,
    reporter: Reporter | None = None,
    resume: dict[str, Any] | None = None,
    rank: int = 0,
    world_size: int = 1,
    loss_module: nn.Module | None = None,
    target_weights: Sequence[np.ndarray] | None = None,
    start: tuple[float, dict[str, torch.Tensor]] | None = None,
) -> FitResult:
    """Train `net` on next-item prediction; keep the weights of the best validation epoch.

    Args:
        net: The network (unwrapped); its weights end as the best validated ones.
        train: Encoded training sequences per user.
        cfg: Model and optimisation settings.
        seed: Seeds batch order and sampling.
        validate: Returns validation metrics of the current weights; runs on rank 0 only.
        reporter: Gets per-epoch metrics and a resumable checkpoint.
        resume: A checkpoint dict from an earlier `reporter.report` call.
        rank: This worker's index under data parallelism (0 validates and checkpoints).
        world_size: Number of workers; each takes every world_size-th batch.
        loss_module: DDP-wrapped `LossModule(net)` under Ray Train; built here otherwise.
        target_weights: Per user, each item's loss weight as a target (aligned with `train`;
            synthetic items get `synthetic_weight`). Sequences with no weighted target are
            skipped, so weight 0 on whole synthetic sequences equals leaving them out.
        start: (validation score, weights) the training starts from and must beat: the best
            epoch stays 0 and those weights are kept when no epoch validates better (the
            fine-tuning stage of the two-stage recipe).
    """
    device = torch.device(cfg.device)
    module = loss_module if loss_module is not None else LossModule(net, cfg).to(device)
    optim = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    result = FitResult()
    best_state: dict[str, torch.Tensor] | None = None
    bad_evals = 0
    start_epoch = 0
    elapsed_before = 0.0
    if start is not None:
        result.best_score, best_state = float(start[0]), copy.deepcopy(start[1])
    if target_weights is not None:
        # An empty sequence is never batched (make_batches needs two items).
        train = [s if w[1:].any() else s[:0] for s, w in zip(train, target_weights, strict=True)]
    if resume is not None:
        net.load_state_dict(resume["net"])
        optim.load_state_dict(resume["optim"])
        start_epoch = int(resume["epoch"])
        best_state = resume.get("best_state")
        result.best_epoch = int(resume["best_epoch"])
        result.best_score = float(resume["best_score"])
        result.history = list(resume["history"])
        bad_evals = int(resume["bad_evals"])
        elapsed_before = float(resume["elapsed"])
        # Dropout draws continue where they stopped, so a resumed run equals an unbroken one.
        torch.set_rng_state(resume["torch_rng"])
        log.info("resuming at epoch %d (best %s=%.4f)", start_epoch, SELECT, result.best_score)
    t_start = time.perf_counter() - elapsed_before
    stop = False
    for epoch in range(start_epoch, cfg.epochs):
        t_epoch = time.perf_counter()
        rng = np.random.default_rng([seed, epoch])
        batches = make_batches(train, cfg.max_len, cfg.batch_size, rng)
        # Every worker must run the same number of steps or DDP's all-reduce waits forever.
        per_worker = len(batches) // world_size if world_size > 1 else len(batches)
        mine = batches[rank::world_size][:per_worker]
        net.train()
        total, count = 0.0, 0
        for users in mine:
            inputs, targets = batch_tensors(train, users, cfg.max_len)
            if target_weights is None:
                loss = module(inputs.to(device), targets.to(device))
            else:
                w = batch_weights(target_weights, users, cfg.max_len)
                loss = module(inputs.to(device), targets.to(device), w.to(device))
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            total += float(loss.detach())
            count += 1
        elapsed = time.perf_counter() - t_start
        metrics: dict[str, Any] = {
            "epoch": epoch + 1,
            "loss": total / max(count, 1),
            "epoch_seconds": time.perf_counter() - t_epoch,
            "elapsed": elapsed,
        }
        if resume is not None and epoch == start_epoch:
            metrics["resumed_from"] = start_epoch  # proof, in the history, of a resume
        result.epochs = epoch + 1
        out_of_time = cfg.time_budget_s is not None and elapsed >= cfg.time_budget_s
        evaluate_now = (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs or out_of_time
        if validate is not None and evaluate_now and rank == 0:
            valid = validate()
            score = float(valid[SELECT])
            metrics.update({f"valid_{k}": v for k, v in valid.items()})
            metrics["valid_seconds"] = time.perf_counter() - t_start - elapsed
            if score > result.best_score:
                result.best_score, result.best_epoch = score, epoch + 1
                best_state = copy.deepcopy(net.state_dict())
                bad_evals = 0
            else:
                bad_evals += 1
            stop = bad_evals >= cfg.patience
            if stop:
                result.stopped = f"no better valid {SELECT} in {cfg.patience} evaluations"
        if out_of_time:
            stop = True
            result.stopped = f"time budget {cfg.time_budget_s:.0f}s"
        metrics["wall_seconds"] = time.perf_counter() - t_start  # validation included
        metrics["best_epoch"] = result.best_epoch
        metrics[f"best_valid_{SELECT}"] = result.best_score
        result.history.append(metrics)
        if reporter is not None:
            # A snapshot: state_dict() returns live tensors that the next step would change.
            checkpoint = copy.deepcopy(
                {
                    "net": net.state_dict(),
                    "optim": optim.state_dict(),
                    "epoch": epoch + 1,
                    "best_state": best_state,
                    "best_epoch": result.best_epoch,
                    "best_score": result.best_score,
                    "bad_evals": bad_evals,
                    "history": result.history,
                    "elapsed": time.perf_counter() - t_start,
                    "torch_rng": torch.get_rng_state(),
                }
            )
            reporter.report(metrics, checkpoint=checkpoint)
        if world_size > 1:
            flag = torch.tensor([1.0 if stop else 0.0])
            torch.distributed.broadcast(flag, src=0)
            stop = bool(flag.item())
        if stop:
            break
    result.seconds = time.perf_counter() - t_start
    if best_state is not None:
        net.load_state_dict(best_state)
    return result
