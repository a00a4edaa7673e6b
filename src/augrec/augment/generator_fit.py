"""Fitting the reverse generator: early stopping on member users, optionally under DP-SGD.

The users fall in three disjoint groups (`user_roles`):

- the privacy holdout (`data.splits.member_mask`, unchanged): never trained on and never read
  by the stopping rule; the membership attack's non-members;
- stopping users: a seeded `valid_share` of the *members* whose whole training histories are
  withheld from the generator; their mean per-item log-likelihood after each epoch picks the
  epoch (patience, best weights restored);
- trained members: everyone else; the attack's members.

Why withheld users and not each member's last item: the question the stopping rule must
answer is the attack's question (does the generator still generalise to people it never
saw, or is it learning its own users?), and a withheld item of a trained user is scored in
the context of that user's trained items. Withholding whole users also keeps the attack's
member side made of users every item of whom was trained on.

Differential privacy (Abadi et al., CCS 2016): the unit of privacy is a user (one reversed
history = one example). Each step draws users by Poisson sampling (Opacus's
`UniformWithReplacementSampler`), computes every user's gradient exactly with `torch.func`
(`vmap` of `grad` over the whole network: SASRecNet ties its input and output item
embeddings and reads its position table directly, which Opacus's per-layer hooks cannot
follow), and hands them to Opacus's `DPOptimizer`, which clips each to `max_grad_norm`, adds
Gaussian noise and steps. The noise multiplier is calibrated by Opacus's accountant for the
target epsilon over the configured number of epochs; the epsilon reported is what the
accountant has spent over the epochs actually run (at most the target). The stopping rule
reads only stopping users, so choosing among checkpoints is post-processing for the trained
users; the stopping users themselves are not covered by the guarantee (they influence one
integer, the chosen epoch).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from augrec.augment.generator import ReverseGenerator, reverse_all
from augrec.models.base import Reporter
from augrec.models.sasrec import SASRecNet, sequence_loss
from augrec.training.loop import batch_tensors, make_batches

log = logging.getLogger(__name__)


class StoppingConfig(BaseModel):
    """Early stopping of the generator on withheld member users."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    valid_share: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="share of member users withheld to choose the epoch (0: fixed epochs)",
    )
    patience: int = Field(2, ge=1, description="epochs without a better likelihood to stop")


class DPConfig(BaseModel):
    """DP-SGD for the generator's maximum-likelihood training (user-level privacy)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epsilon: float = Field(gt=0, description="target epsilon over the configured epochs")
    delta: float = Field(1e-5, gt=0, lt=1, description="target delta (below 1 / users)")
    max_grad_norm: float = Field(1.0, gt=0, description="per-user gradient clipping norm")
    batch_size: int = Field(256, ge=1, description="expected users per step (Poisson)")
    micro_batch: int = Field(32, ge=1, description="users per per-sample-gradient pass")
    lr: float | None = Field(None, gt=0, description="learning rate (default: the generator's)")
    accountant: Literal["rdp", "prv"] = "rdp"


def user_roles(members: np.ndarray, valid_share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(trained, stopping) masks: stopping users are a seeded share of `members` only.

    The privacy holdout (`~members`) is never drawn from, so it is the same users whatever
    `valid_share` is.
    """
    rng = np.random.default_rng([seed, 11])
    stopping = members & (rng.random(len(members)) < valid_share)
    return members & ~stopping, stopping


def user_losses(net: SASRecNet, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-item cross-entropy per user [B] (full softmax; padding targets ignored).

    No data-dependent shapes, so `torch.func.vmap` can take per-user gradients through it.
    """
    table = net.item_table()
    logits = net(inputs, table) @ table.T  # [B, L, N]
    pad_col = torch.zeros(logits.shape[-1], dtype=torch.bool, device=logits.device)
    pad_col[0] = True
    logits = logits.masked_fill(pad_col, -torch.inf)
    nll = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=0, reduction="none")
    keep = (targets > 0).to(nll.dtype)
    return (nll * keep).sum(1) / keep.sum(1).clamp(min=1.0)


class _LossForward(torch.nn.Module):
    """Makes `user_losses` the module's forward, so functional_call swaps every weight."""

    def __init__(self, net: SASRecNet):
        super().__init__()
        self.net = net

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per-user losses [B]."""
        return user_losses(self.net, inputs, targets)


def _dp_setup(
    net: SASRecNet, n_users: int, epochs: int, dp: DPConfig, lr: float, seed: int
) -> dict:
    from opacus.accountants import create_accountant
    from opacus.accountants.utils import get_noise_multiplier
    from opacus.optimizers import DPOptimizer

    sample_rate = min(1.0, dp.batch_size / n_users)
    steps_per_epoch = max(1, round(1 / sample_rate))
    sigma = get_noise_multiplier(
        target_epsilon=dp.epsilon,
        target_delta=dp.delta,
        sample_rate=sample_rate,
        steps=epochs * steps_per_epoch,
        accountant=dp.accountant,
    )
    accountant = create_accountant(dp.accountant)
    optim = DPOptimizer(
        torch.optim.Adam(net.parameters(), lr=lr),
        noise_multiplier=sigma,
        max_grad_norm=dp.max_grad_norm,
        expected_batch_size=dp.batch_size,
        generator=torch.Generator(device=next(net.parameters()).device).manual_seed(seed),
    )
    optim.attach_step_hook(accountant.get_optimizer_hook_fn(sample_rate=sample_rate))
    return {
        "optim": optim,
        "accountant": accountant,
        "sample_rate": sample_rate,
        "steps_per_epoch": steps_per_epoch,
        "noise_multiplier": sigma,
    }


def _dp_epoch(
    net: SASRecNet,
    train: Sequence[np.ndarray],
    max_len: int,
    dp: DPConfig,
    state: dict,
    gen: torch.Generator,
) -> float:
    """One epoch of DP-SGD: Poisson batches, per-user gradients, Opacus clip + noise + step."""
    from opacus.utils.uniform_sampler import UniformWithReplacementSampler

    loss_fwd = _LossForward(net)
    optim = state["optim"]
    sampler = UniformWithReplacementSampler(
        num_samples=len(train), sample_rate=state["sample_rate"], generator=gen
    )
    params = [p for p in net.parameters() if p.requires_grad]
    total, count = 0.0, 0
    net.train()
    for step, users in enumerate(sampler):
        if step >= state["steps_per_epoch"]:
            break
        users = np.asarray(users, dtype=np.int64)
        chunks = [users[i : i + dp.micro_batch] for i in range(0, len(users), dp.micro_batch)]
        if not chunks:  # an empty Poisson draw still takes a (pure-noise) step
            for p in params:
                p.grad_sample = torch.zeros((0, *p.shape), device=p.device)
            optim.step()
            optim.zero_grad(set_to_none=True)
            continue
        for i, chunk in enumerate(chunks):
            inputs, targets = batch_tensors(train, chunk, max_len)
            device = params[0].device
            grads = _per_user_grads_of(loss_fwd, inputs.to(device), targets.to(device))
            for name, p in net.named_parameters():
                p.grad_sample = grads[f"net.{name}"]
            with torch.no_grad():
                total += float(user_losses(net, inputs.to(device), targets.to(device)).sum())
            count += len(chunk)
            if i < len(chunks) - 1:
                optim.signal_skip_step(do_skip=True)  # accumulate clipped sums, no step yet
            optim.step()
        optim.zero_grad(set_to_none=True)
    return total / max(count, 1)


def _per_user_grads_of(
    module: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Per-user gradients of `module(inputs, targets)[b]` for every trainable parameter."""
    from torch.func import functional_call, grad, vmap
    from torch.nn.attention import SDPBackend, sdpa_kernel

    params = {k: p.detach() for k, p in module.named_parameters() if p.requires_grad}
    buffers = {k: b.detach() for k, b in module.named_buffers()}

    def one(p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return functional_call(module, (p, buffers), (x[None], y[None]))[0]

    # vmap has no batching rule for the fused CPU attention kernels and would loop over
    # users; the math kernel is plain batched matmuls (2-3x faster here, same result).
    with sdpa_kernel(SDPBackend.MATH):
        per_user = vmap(grad(one), in_dims=(None, 0, 0), randomness="different")
        return per_user(params, inputs, targets)


def _plain_epoch(
    net: SASRecNet,
    train: Sequence[np.ndarray],
    cfg: Any,
    optim: torch.optim.Optimizer,
    rng: np.random.Generator,
) -> float:
    """One epoch of ordinary maximum likelihood, batched as `training/loop.py` does."""
    device = torch.device(cfg.device)
    net.train()
    total, count = 0.0, 0
    for users in make_batches(train, cfg.max_len, cfg.batch_size, rng):
        inputs, targets = batch_tensors(train, users, cfg.max_len)
        loss = sequence_loss(net, inputs.to(device), targets.to(device), cfg)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        total += float(loss.detach())
        count += 1
    return total / max(count, 1)


def fit_generator(
    gen: ReverseGenerator,
    train: Sequence[np.ndarray],
    stopping_users: Sequence[np.ndarray] = (),
    patience: int = 2,
    dp: DPConfig | None = None,
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """Maximum likelihood on reversed `train` histories, stopped on `stopping_users`.

    Args:
        gen: The generator; its weights end as those of the chosen epoch.
        train: Forward training histories of the trained members.
        stopping_users: Forward histories of withheld members (none: run every epoch and
            keep the last weights).
        patience: Epochs without a better stopping-user likelihood before stopping.
        dp: DP-SGD settings, or None for ordinary training.
        reporter: Gets each epoch's metrics (`report(metrics)`), like the training loop's.

    Returns:
        A summary for `training.json`: epochs run, chosen epoch, per-epoch history (loss,
        stopping users' mean per-item log-likelihood, epsilon spent so far) and, under DP,
        the epsilon spent, delta, noise multiplier, clipping norm and sample rate.
    """
    cfg = gen.cfg
    net = gen.net
    stopping = [s for s in stopping_users if len(s) >= 2]
    rev = reverse_all(train)
    n_train = sum(1 for s in rev if len(s) >= 2)
    if n_train == 0:
        raise ValueError("generator: no member history has 2 or more items to learn from")
    rng_seed = [gen.seed, 5]
    torch.manual_seed(gen.seed)
    dp_state: dict[str, Any] | None = None
    if dp is not None:
        usable = [s for s in rev if len(s) >= 2]
        rev = usable  # Poisson sampling draws from users who have a next item to predict
        dp_state = _dp_setup(net, len(rev), cfg.epochs, dp, dp.lr or cfg.lr, gen.seed)
        sample_gen = torch.Generator().manual_seed(gen.seed)
    else:
        optim = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    history: list[dict[str, Any]] = []
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    stopped = "epochs"
    t0 = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        t_epoch = time.perf_counter()
        if dp_state is not None:
            loss = _dp_epoch(net, rev, cfg.max_len, dp, dp_state, sample_gen)  # type: ignore[arg-type]
        else:
            rng = np.random.default_rng([*rng_seed, epoch])
            loss = _plain_epoch(net, rev, cfg, optim, rng)
        row: dict[str, Any] = {"epoch": epoch, "loss": loss}
        if dp_state is not None:
            row["epsilon"] = dp_state["accountant"].get_epsilon(dp.delta)  # type: ignore[union-attr]
        if stopping:
            ll = float(gen.log_likelihood(stopping).mean())
            row["stopping_loglik"] = ll
            if best is None or ll > best[0]:
                best = (ll, epoch, copy.deepcopy(net.state_dict()))
        row["epoch_seconds"] = time.perf_counter() - t_epoch
        row["elapsed"] = time.perf_counter() - t0
        history.append(row)
        log.debug("generator epoch %d/%d: %s", epoch, cfg.epochs, _fmt(row))
        if reporter is not None:
            reporter.report(row)
        if best is not None and epoch - best[1] >= patience:
            stopped = f"no better stopping-user log-likelihood in {patience} epochs"
            break
    if best is not None:
        net.load_state_dict(best[2])
    summary: dict[str, Any] = {
        "epochs_run": len(history),
        "best_epoch": best[1] if best is not None else len(history),
        "stopped": stopped,
        "n_trained_users": n_train,
        "n_stopping_users": len(stopping),
        "seconds_per_epoch": round((time.perf_counter() - t0) / max(len(history), 1), 3),
        "history": history,
    }
    if best is not None:
        summary["best_stopping_loglik"] = best[0]
    if dp_state is not None:
        assert dp is not None
        spent = dp_state["accountant"].get_epsilon(dp.delta)
        summary["dp"] = {
            "epsilon": spent,
            "target_epsilon": dp.epsilon,
            "delta": dp.delta,
            "noise_multiplier": dp_state["noise_multiplier"],
            "max_grad_norm": dp.max_grad_norm,
            "sample_rate": dp_state["sample_rate"],
            "expected_batch_size": dp.batch_size,
            "steps": len(history) * dp_state["steps_per_epoch"],
            "accountant": dp.accountant,
        }
        if not math.isfinite(spent):
            raise RuntimeError(f"generator DP: the accountant reports epsilon {spent}")
    return summary


def _fmt(row: dict[str, Any]) -> str:
    return " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items())
