"""Ranking metrics as pure functions of 0-based target ranks (one held-out target per user).

With a single relevant item per user, HR@k equals Recall@k, and NDCG@k is
1/log2(rank + 2) when the target is in the top k (the ideal DCG is 1).
A rank of `MISS` (or anything >= k) scores zero.
"""

from __future__ import annotations

import numpy as np

KS = (5, 10, 20)
HISTORY_BUCKETS = ((0, 3), (4, 5), (6, 8), (9, 18), (19, None))
POPULARITY_BUCKETS = ((0, 5), (6, 20), (21, 100), (101, None))
TAIL_SHARE_OF_CATALOG = 0.8  # the tail: items outside the 20% most popular in training
MISS = np.iinfo(np.int64).max


def hit_rate(ranks: np.ndarray, k: int) -> float:
    """Share of users whose target ranks in the top k."""
    ranks = np.asarray(ranks)
    return float(np.mean(ranks < k)) if ranks.size else 0.0


def recall(ranks: np.ndarray, k: int) -> float:
    """Recall@k with one relevant item per user: the same as HR@k."""
    return hit_rate(ranks, k)


def ndcg(ranks: np.ndarray, k: int) -> float:
    """Mean NDCG@k: 1/log2(rank+2) inside the top k, else 0."""
    ranks = np.asarray(ranks)
    if not ranks.size:
        return 0.0
    hit = ranks < k
    gains = np.zeros(ranks.shape, dtype=np.float64)
    gains[hit] = 1.0 / np.log2(ranks[hit].astype(np.float64) + 2.0)
    return float(gains.mean())


def mrr(ranks: np.ndarray, k: int) -> float:
    """Mean reciprocal rank truncated at k."""
    ranks = np.asarray(ranks)
    if not ranks.size:
        return 0.0
    hit = ranks < k
    rr = np.zeros(ranks.shape, dtype=np.float64)
    rr[hit] = 1.0 / (ranks[hit].astype(np.float64) + 1.0)
    return float(rr.mean())


def per_user_ndcg(ranks: np.ndarray, k: int) -> np.ndarray:
    """NDCG@k per user, for paired comparisons between models."""
    ranks = np.asarray(ranks)
    out = np.zeros(ranks.shape, dtype=np.float64)
    hit = ranks < k
    out[hit] = 1.0 / np.log2(ranks[hit].astype(np.float64) + 2.0)
    return out


def coverage(topk_items: np.ndarray, n_items: int) -> float:
    """Share of the catalog that appears in at least one user's top-k list."""
    if n_items <= 0:
        return 0.0
    return float(np.unique(topk_items[topk_items > 0]).size / n_items)


def tail_items(item_counts: np.ndarray) -> np.ndarray:
    """Boolean mask over encoded ids [n_items+1]: items outside the 20% most popular.

    Ties are broken by id so exactly ceil(20%) of the catalog is the head.
    """
    counts = np.asarray(item_counts)[1:]
    n = counts.size
    n_head = int(np.ceil(n * (1.0 - TAIL_SHARE_OF_CATALOG)))
    order = np.argsort(-counts, kind="stable")
    mask = np.ones(n + 1, dtype=bool)
    mask[0] = False
    mask[order[:n_head] + 1] = False
    return mask


def tail_share(topk_items: np.ndarray, tail_mask: np.ndarray) -> float:
    """Share of recommended slots filled by tail items."""
    slots = topk_items[topk_items > 0]
    return float(tail_mask[slots].mean()) if slots.size else 0.0


def bucket_labels(values: np.ndarray, buckets: tuple[tuple[int, int | None], ...]) -> np.ndarray:
    """Label each value with its bucket name, e.g. '<=3', '4-5', '>18'."""
    values = np.asarray(values)
    labels = np.empty(values.shape, dtype=object)
    for lo, hi in buckets:
        name = bucket_name(lo, hi)
        sel = (values >= lo) & (values <= hi) if hi is not None else values >= lo
        labels[sel] = name
    return labels


def bucket_name(lo: int, hi: int | None) -> str:
    """Readable bucket name: '<=3' for a bucket starting at 0, '>18' for an open one."""
    if lo == 0:
        return f"<={hi}"
    if hi is None:
        return f">{lo - 1}"
    return f"{lo}-{hi}"


def ranking_metrics(ranks: np.ndarray, ks: tuple[int, ...] = KS) -> dict[str, float]:
    """HR, Recall, NDCG and MRR at every k."""
    out: dict[str, float] = {}
    for k in ks:
        out[f"hr@{k}"] = hit_rate(ranks, k)
        out[f"recall@{k}"] = recall(ranks, k)
        out[f"ndcg@{k}"] = ndcg(ranks, k)
        out[f"mrr@{k}"] = mrr(ranks, k)
    return out


def bucketed(
    ranks: np.ndarray,
    values: np.ndarray,
    buckets: tuple[tuple[int, int | None], ...],
    k: int = 10,
) -> dict[str, dict[str, float]]:
    """NDCG@k and HR@k per bucket of `values`, with the bucket's user count."""
    labels = bucket_labels(values, buckets)
    out: dict[str, dict[str, float]] = {}
    for lo, hi in buckets:
        name = bucket_name(lo, hi)
        sel = labels == name
        r = np.asarray(ranks)[sel]
        out[name] = {"users": int(sel.sum()), f"ndcg@{k}": ndcg(r, k), f"hr@{k}": hit_rate(r, k)}
    return out
