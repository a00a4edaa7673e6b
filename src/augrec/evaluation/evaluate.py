"""Full-ranking evaluation over every item with seen items masked (ARCHITECTURE section 4)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from augrec.data.splits import EvalSet, Split
from augrec.evaluation import metrics as M
from augrec.evaluation.ranking import mask_scores, target_ranks, topk_stable
from augrec.models.base import Recommender

TOP_K = 20  # longest list any metric needs; also what recommendations.parquet keeps


@dataclass(frozen=True)
class EvalResult:
    """Per-user outcome of ranking one `EvalSet`, in the set's user order."""

    ranks: np.ndarray  # [U] 0-based target rank, M.MISS when masked
    topk_items: np.ndarray  # [U, TOP_K] encoded ids
    topk_scores: np.ndarray  # [U, TOP_K]


@torch.no_grad()
def rank_users(
    model: Recommender,
    eval_set: EvalSet,
    batch_size: int = 512,
    advance: Callable[[int], None] | None = None,
) -> EvalResult:
    """Score all items for every user, mask their history, and rank the target.

    Users are batched by history length (most histories are short; sequence models then pad
    little), and results are put back in the set's order.
    """
    n = len(eval_set)
    lengths = np.fromiter((len(h) for h in eval_set.histories), dtype=np.int64, count=n)
    order = np.argsort(lengths, kind="stable")
    ranks = np.empty(n, dtype=np.int64)
    items = np.zeros((n, TOP_K), dtype=np.int64)
    scores_out = np.zeros((n, TOP_K), dtype=np.float32)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        hist = [eval_set.histories[i] for i in idx]
        scores = model.device_scores(hist).float()
        mask_scores(scores, hist)
        ranks[idx] = target_ranks(scores, eval_set.targets[idx])
        top_items, top_scores = topk_stable(scores, TOP_K)
        items[idx, : top_items.shape[1]] = top_items
        scores_out[idx, : top_scores.shape[1]] = top_scores
        if advance is not None:
            advance(len(idx))
    return EvalResult(ranks, items, scores_out)


def summarize(result: EvalResult, split: Split, ks: tuple[int, ...] = M.KS) -> dict[str, float]:
    """Headline metrics plus catalog coverage and tail share of the top-k lists."""
    out = M.ranking_metrics(result.ranks, ks)
    tail = M.tail_items(split.item_counts)
    for k in ks:
        out[f"coverage@{k}"] = M.coverage(result.topk_items[:, :k], split.n_items)
        out[f"tail_share@{k}"] = M.tail_share(result.topk_items[:, :k], tail)
    out["users"] = int(len(result.ranks))
    return out


def buckets(result: EvalResult, split: Split, eval_set: EvalSet, k: int = 10) -> dict:
    """NDCG@k/HR@k by training-history length and by the target's training popularity."""
    hist_len = np.array([len(split.train[u]) for u in eval_set.users], dtype=np.int64)
    target_pop = split.item_counts[eval_set.targets]
    return {
        "history_length": M.bucketed(result.ranks, hist_len, M.HISTORY_BUCKETS, k),
        "target_popularity": M.bucketed(result.ranks, target_pop, M.POPULARITY_BUCKETS, k),
    }


def validation_ndcg(split: Split, batch_size: int = 512, k: int = 10):
    """A `Validator` for `fit`: NDCG@k and HR@k on the validation set (never the test set)."""

    def validate(model: Recommender) -> dict[str, float]:
        result = rank_users(model, split.valid, batch_size)
        return {f"ndcg@{k}": M.ndcg(result.ranks, k), f"hr@{k}": M.hit_rate(result.ranks, k)}

    return validate
