"""Adversarial refinement of the generator (SeqGAN-style policy gradient, Yu et al., AAAI 2017).

The discriminator sees a history split into a prefix and the real suffix that follows it and
tells whether the prefix is real or written by the generator. The generator is updated by
REINFORCE with a moving-average baseline, rewarded by the discriminator's log-odds, with
- an entropy bonus, so it does not collapse onto a few safe items, and
- a penalty when the items it writes drift from the real item popularity.
Checkpoints are kept every `select_every` steps; which one is used is decided by the
recommender's *validation* score (`augment/pipeline.py`), never by discriminator loss.

Shapes: B batch, P prefix length, S suffix length, D hidden, N n_items + 1.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from augrec.augment.generator import ReverseGenerator
from augrec.models.sasrec import Block, pad_left

log = logging.getLogger(__name__)


class AdversarialConfig(BaseModel):
    """Settings of the adversarial phase."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: int = Field(200, ge=0, description="generator updates")
    batch_size: int = Field(128, ge=2)
    prefix_len: int = Field(3, ge=1, description="items written per history in training")
    suffix_len: int = Field(20, ge=1, description="real items the discriminator conditions on")
    d_steps: int = Field(1, ge=1, description="discriminator updates per generator update")
    g_lr: float = Field(1e-4, gt=0)
    d_lr: float = Field(1e-3, gt=0)
    entropy_coef: float = Field(0.01, ge=0)
    popularity_coef: float = Field(0.1, ge=0)
    baseline_decay: float = Field(0.9, ge=0, lt=1)
    temperature: float = Field(1.0, gt=0)
    hidden: int = Field(64, ge=8, description="discriminator width")
    select_every: int = Field(50, ge=1, description="keep a generator checkpoint this often")


class Discriminator(nn.Module):
    """Bidirectional transformer over [prefix | suffix] -> logit that the prefix is real."""

    def __init__(self, n_items: int, hidden: int, prefix_len: int, suffix_len: int):
        super().__init__()
        self.item_emb = nn.Embedding(n_items + 1, hidden, padding_idx=0)
        self.seg_emb = nn.Embedding(2, hidden)
        self.pos_emb = nn.Embedding(prefix_len + suffix_len, hidden)
        self.block = Block(hidden, 1, 0.1)
        self.ln = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, 1)
        self.prefix_len = prefix_len

    def forward(self, prefix: torch.Tensor, suffix: torch.Tensor) -> torch.Tensor:
        """Prefix [B, P], suffix [B, S] (right-padded) -> logits [B]."""
        x = torch.cat([prefix, suffix], dim=1)  # [B, P+S]
        n = x.shape[1]
        seg = torch.cat([torch.zeros_like(prefix), torch.ones_like(suffix)], dim=1)
        h = self.item_emb(x) + self.seg_emb(seg) + self.pos_emb.weight[:n][None]
        allowed = (x != 0)[:, None, :] | torch.eye(n, dtype=torch.bool)[None]
        h = self.ln(self.block(h, allowed[:, None]))
        pooled = h[:, : prefix.shape[1]].mean(1)
        return self.head(pooled)[:, 0]


def _right_pad(seqs: Sequence[np.ndarray], length: int) -> torch.Tensor:
    out = np.zeros((len(seqs), length), dtype=np.int64)
    for r, s in enumerate(seqs):
        s = s[:length]
        out[r, : len(s)] = s
    return torch.from_numpy(out)


def prefix_log_probs(
    gen: ReverseGenerator, suffixes: Sequence[np.ndarray], prefixes: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of each written prefix given its suffix, and the policy's entropy.

    prefixes [B, P] oldest first; the generator wrote them newest first, after the reversed
    suffix, so the sequence it saw is reversed(suffix) + reversed(prefix).
    Returns (sum of log-probs [B], mean entropy over the written positions [B]).
    """
    p = prefixes.shape[1]
    rev_prefix = prefixes.flip(1)
    ctx = [
        np.concatenate([s[::-1], rp]) for s, rp in zip(suffixes, rev_prefix.numpy(), strict=True)
    ]
    seq = pad_left(ctx, gen.cfg.max_len + 1).to(gen.cfg.device)  # last p tokens: written
    inputs, targets = seq[:, :-1], seq[:, 1:]
    table = gen.net.item_table()
    logits = gen.net(inputs, table)[:, -p:] @ table.T  # [B, P, N]
    logits[..., 0] = -torch.inf
    logp = F.log_softmax(logits, dim=-1)
    chosen = logp.gather(2, targets[:, -p:, None])[..., 0]  # [B, P]
    entropy = -(logp.exp() * logp.nan_to_num(neginf=0.0)).sum(-1).mean(1)
    # The discriminator and rewards live on the CPU (small batches); gradients follow .cpu().
    return chosen.sum(1).cpu(), entropy.cpu()


def refine(
    gen: ReverseGenerator,
    train: Sequence[np.ndarray],
    item_counts: np.ndarray,
    cfg: AdversarialConfig,
    seed: int = 0,
    progress: Callable[[int, str], None] | None = None,
) -> tuple[list[tuple[int, dict[str, Any]]], list[dict[str, Any]]]:
    """Run the adversarial phase; returns ([(step, generator state)], per-step history).

    The first checkpoint is step 0: the maximum-likelihood generator itself, so selection on
    validation can always fall back to it. `progress(step, detail)` is called after each step.
    """
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    need = cfg.prefix_len + 1
    pool = [s for s in train if len(s) >= need]
    if not pool:
        raise ValueError(
            f"augment.adversarial.prefix_len: {cfg.prefix_len} leaves no training history "
            f"long enough (need {need} items)"
        )
    disc = Discriminator(gen.n_items, cfg.hidden, cfg.prefix_len, cfg.suffix_len)
    d_opt = torch.optim.Adam(disc.parameters(), lr=cfg.d_lr)
    g_opt = torch.optim.Adam(gen.net.parameters(), lr=cfg.g_lr)
    real_freq = (item_counts.astype(np.float64) + 1.0) / (item_counts.sum() + len(item_counts))
    log_real = torch.from_numpy(np.log(real_freq)).float()
    gen_freq = torch.from_numpy(real_freq).float()  # running estimate of what G writes
    baseline = 0.0
    checkpoints = [(0, gen.state_dict())]
    history: list[dict[str, Any]] = []
    t0 = time.perf_counter()

    def batch() -> tuple[torch.Tensor, list[np.ndarray]]:
        idx = rng.choice(len(pool), size=min(cfg.batch_size, len(pool)), replace=False)
        seqs = [pool[i] for i in idx]
        real_prefix = torch.from_numpy(np.stack([s[: cfg.prefix_len] for s in seqs]))
        suffixes = [s[cfg.prefix_len :][: cfg.suffix_len] for s in seqs]
        return real_prefix, suffixes

    def write(suffixes: list[np.ndarray]) -> torch.Tensor:
        written = gen.sample_prefixes(suffixes, [cfg.prefix_len] * len(suffixes), cfg.temperature)
        return torch.from_numpy(np.stack(written))

    for step in range(1, cfg.steps + 1):
        disc.train()
        for _ in range(cfg.d_steps):
            real_prefix, suffixes = batch()
            fake_prefix = write(suffixes)
            suf = _right_pad(suffixes, cfg.suffix_len)
            logits = torch.cat([disc(real_prefix, suf), disc(fake_prefix, suf)])
            labels = torch.cat([torch.ones(len(suffixes)), torch.zeros(len(suffixes))])
            d_loss = F.binary_cross_entropy_with_logits(logits, labels)
            d_opt.zero_grad()
            d_loss.backward()
            d_opt.step()
        d_acc = float(((logits > 0).float() == labels).float().mean())
        # Generator: REINFORCE on fresh samples, reward = discriminator log-odds.
        _, suffixes = batch()
        fake_prefix = write(suffixes)
        with torch.no_grad():
            disc.eval()
            reward = disc(fake_prefix, _right_pad(suffixes, cfg.suffix_len))
            drift = (torch.log(gen_freq[fake_prefix]) - log_real[fake_prefix]).mean(1)
            reward = reward - cfg.popularity_coef * drift
            counts = torch.bincount(fake_prefix.flatten(), minlength=len(gen_freq)).float()
            gen_freq = 0.95 * gen_freq + 0.05 * (counts + 1e-3) / (
                counts.sum() + 1e-3 * len(counts)
            )
        gen.net.train()
        logp, entropy = prefix_log_probs(gen, suffixes, fake_prefix)
        advantage = reward - baseline
        g_loss = -(advantage * logp).mean() - cfg.entropy_coef * entropy.mean()
        g_opt.zero_grad()
        g_loss.backward()
        torch.nn.utils.clip_grad_norm_(gen.net.parameters(), 1.0)
        g_opt.step()
        baseline = cfg.baseline_decay * baseline + (1 - cfg.baseline_decay) * float(reward.mean())
        record = {
            "step": step,
            "d_loss": float(d_loss.detach()),
            "d_acc": d_acc,
            "reward": float(reward.mean()),
            "entropy": float(entropy.mean().detach()),
            "popularity_drift": float(drift.mean()),
            "seconds": time.perf_counter() - t0,
        }
        history.append(record)
        if progress is not None:
            progress(step, f"d_acc {d_acc:.2f} reward {record['reward']:.3f}")
        if step % cfg.select_every == 0 or step == cfg.steps:
            checkpoints.append((step, gen.state_dict()))
            log.info(
                "adversarial checkpoint at step %d/%d: d_loss %.3f d_acc %.2f reward %.3f "
                "entropy %.2f drift %.3f",
                step,
                cfg.steps,
                record["d_loss"],
                d_acc,
                record["reward"],
                record["entropy"],
                record["popularity_drift"],
            )
    return checkpoints, history
