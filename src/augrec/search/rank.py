"""Fusion and personalization as batch functions on full-catalog score matrices.

Every function takes and returns [B, n_items + 1] float tensors whose column 0 is padding;
higher is better, and ties rank the lower id first (as `evaluation.ranking` does), so a
search ranking and its evaluation agree exactly.

- Fusion is weighted reciprocal-rank fusion (Cormack et al., SIGIR 2009):
  `alpha / (k + rank_lexical) + (1 - alpha) / (k + rank_semantic)`, scaled by `k + 1` so a
  top-1 item in both lists scores 1. Items BM25 does not match (score 0) get no lexical
  share; items without text get no semantic share.
- Personalization re-ranks the `depth` best fused candidates by `fused + w * z`, where `z` is
  the user's sequential-model score standardised over those candidates; the rest keep their
  fused order below them.
"""

from __future__ import annotations

import torch

OUTSIDE = -1e3  # offset that keeps non-candidates below every candidate, in fused order


def ranks_desc(scores: torch.Tensor) -> torch.Tensor:
    """1-based rank of every column per row (stable descending sort: ties lower id first)."""
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    ranks = torch.empty_like(order)
    arange = torch.arange(1, scores.shape[1] + 1, device=scores.device).expand_as(order)
    ranks.scatter_(1, order, arange)
    return ranks


def rrf(
    lexical: torch.Tensor,
    semantic: torch.Tensor,
    alpha: float,
    k: int,
    semantic_valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Weighted reciprocal-rank fusion of BM25 and cosine scores, scaled to at most 1.

    Args:
        lexical: [B, N+1] BM25 scores (0 = no match).
        semantic: [B, N+1] cosine similarities.
        alpha: Weight of the lexical list (1 - alpha for the semantic one), in [0, 1].
        k: The RRF constant (60 in the paper).
        semantic_valid: [N+1] bool, items that have an embedding (default: all but 0).
    """
    return rrf_from_ranks(*list_ranks(lexical, semantic, semantic_valid), alpha, k)


def list_ranks(
    lexical: torch.Tensor, semantic: torch.Tensor, semantic_valid: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(lexical matched, lexical ranks, semantic valid, semantic ranks), reusable across weights."""
    lex = lexical.clone()
    lex[:, 0] = -torch.inf
    sem = semantic.clone()
    sem[:, 0] = -torch.inf
    n = sem.shape[1]
    valid = semantic_valid if semantic_valid is not None else torch.ones(n, dtype=torch.bool)
    valid = valid.clone()
    valid[0] = False
    return lexical > 0, ranks_desc(lex), valid[None, :], ranks_desc(sem)


def rrf_from_ranks(
    matched: torch.Tensor,
    lex_ranks: torch.Tensor,
    valid: torch.Tensor,
    sem_ranks: torch.Tensor,
    alpha: float,
    k: int,
) -> torch.Tensor:
    """`rrf` from the output of `list_ranks` (a weight grid sorts each list once)."""
    fl = torch.where(matched, alpha / (k + lex_ranks.float()), 0.0)
    fs = torch.where(valid, (1 - alpha) / (k + sem_ranks.float()), 0.0)
    fused = (fl + fs) * (k + 1)
    fused[:, 0] = -torch.inf
    return fused


def candidate_ids(fused: torch.Tensor, depth: int) -> torch.Tensor:
    """[B, depth] the best fused columns per row, best first (ties: lower id first)."""
    order = torch.sort(fused, dim=1, descending=True, stable=True).indices
    return order[:, : min(depth, fused.shape[1])]


def standardize(values: torch.Tensor) -> torch.Tensor:
    """Each row to mean 0, std 1 (non-finite values count as 0; a constant row becomes 0)."""
    m = torch.where(torch.isfinite(values), values, 0.0).double()
    mean = m.mean(dim=1, keepdim=True)
    std = m.std(dim=1, correction=0, keepdim=True)
    return ((m - mean) / std.clamp(min=1e-12)).float()


def personalize(
    fused: torch.Tensor, model_scores: torch.Tensor, weight: float, depth: int
) -> torch.Tensor:
    """Re-rank the top `depth` fused candidates by `fused + weight * z(model score)`.

    `z` standardises the model's scores over each row's candidates (mean 0, std 1), so the
    weight does not depend on the model's logit scale. Non-candidates stay below, in fused
    order. `weight == 0` keeps the fused ranking.
    """
    ids = candidate_ids(fused, depth)
    z = standardize(model_scores.gather(1, ids))
    out = fused + OUTSIDE
    out.scatter_(1, ids, fused.gather(1, ids) + weight * z)
    out[:, 0] = -torch.inf
    return out
