"""Masking and ranking of score matrices, deterministic under ties; shared by eval and serving."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from augrec.evaluation.metrics import MISS


def mask_scores(scores: torch.Tensor, histories: Sequence[np.ndarray] | None) -> torch.Tensor:
    """Set padding (column 0) and, when given, each row's history items to -inf, in place."""
    scores[:, 0] = -torch.inf
    if histories is not None:
        rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
        cols = np.concatenate(histories) if len(histories) else np.zeros(0, dtype=np.int64)
        if cols.size:
            r = torch.from_numpy(rows).to(scores.device)
            c = torch.from_numpy(cols.astype(np.int64)).to(scores.device)
            scores[r, c] = -torch.inf
    return scores


def target_ranks(scores: torch.Tensor, targets: np.ndarray) -> np.ndarray:
    """0-based rank of each target under a stable descending sort (ties: lower id first).

    A target whose score is -inf (masked as already seen) is a miss. `scores` may live on
    any device; the ranks come back as a numpy array.
    """
    t = torch.from_numpy(np.asarray(targets, dtype=np.int64)).to(scores.device)
    ts = scores.gather(1, t[:, None])  # [B, 1]
    higher = torch.count_nonzero(scores > ts, dim=1)
    ids = torch.arange(scores.shape[1], device=scores.device)[None, :]
    tied_before = torch.count_nonzero((scores == ts) & (ids < t[:, None]), dim=1)
    ranks = (higher + tied_before).cpu().numpy().astype(np.int64)
    ranks[torch.isneginf(ts[:, 0]).cpu().numpy()] = MISS
    return ranks


def topk_stable(scores: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k ids and scores with the same tie order as `target_ranks` (ties: lower id first).

    `torch.topk` is fast but orders ties arbitrarily, so its k items are re-sorted by
    (score desc, id asc); rows where a tie straddles the k-th place fall back to a full
    stable sort, which picks the lower ids.
    """
    k = min(k, scores.shape[1])
    vals, idx = torch.topk(scores, k, dim=1)
    straddle = torch.count_nonzero(scores >= vals[:, -1:], dim=1) > k
    vals_np, idx_np = vals.cpu().numpy().astype(np.float32), idx.cpu().numpy().astype(np.int64)
    order = np.lexsort((idx_np, -vals_np.astype(np.float64)), axis=1)
    idx_np = np.take_along_axis(idx_np, order, 1)
    vals_np = np.take_along_axis(vals_np, order, 1)
    rows = torch.nonzero(straddle).flatten()
    if rows.numel():
        v, i = torch.sort(scores[rows], dim=1, descending=True, stable=True)
        rows_np = rows.cpu().numpy()
        idx_np[rows_np] = i[:, :k].cpu().numpy()
        vals_np[rows_np] = v[:, :k].cpu().numpy()
    return idx_np, vals_np
