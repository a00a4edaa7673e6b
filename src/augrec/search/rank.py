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
    lex = lexical.clone()
    lex[:, 0] = -torch.inf
    sem = semantic.clone()
    sem[:, 0] = -torch.inf
    valid = semantic_valid if semantic_valid is not None else torch.ones(sem.shape[1], dtype=bool)
    valid = valid.clone()
    valid[0] = False
    fl = torch.where(lexical > 0, alpha / (k + ranks_desc(lex).float()), 0.0)
    fs = torch.where(valid[None, :], (1 - alpha) / (k + ranks_desc(sem).float()), 0.0)
    fused = (fl + fs) * (k + 1)
    fused[:, 0] = -torch.inf
    return fused


def candidates(scores: torch.Tensor, depth: int) -> torch.Tensor:
    """[B, N+1] bool: the `depth` best columns per row (ties: lower id first)."""
    return ranks_desc(scores) <= depth


def standardize(model_scores: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
    """Model scores standardised over each row's candidates (mean 0, std 1 there)."""
    m = torch.where(torch.isfinite(model_scores), model_scores, 0.0).double()
    n = cand.sum(dim=1, keepdim=True).clamp(min=1)
    mean = (m * cand).sum(dim=1, keepdim=True) / n
    var = (((m - mean) * cand) ** 2).sum(dim=1, keepdim=True) / n
    return ((m - mean) / var.sqrt().clamp(min=1e-12)).float()


def combine(fused: torch.Tensor, z: torch.Tensor, cand: torch.Tensor, weight: float):
    """`fused + weight * z` on candidates; the rest below them, in fused order."""
    out = torch.where(cand, fused + weight * z, fused + OUTSIDE)
    out[:, 0] = -torch.inf
    return out


def personalize(
    fused: torch.Tensor, model_scores: torch.Tensor, weight: float, depth: int
) -> torch.Tensor:
    """Re-rank the top `depth` fused candidates by `fused + weight * z(model score)`.

    `z` standardises the model's scores over each row's candidates (mean 0, std 1), so the
    weight does not depend on the model's logit scale. Non-candidates stay below, in fused
    order. `weight == 0` keeps the fused ranking.
    """
    cand = candidates(fused, depth)
    return combine(fused, standardize(model_scores, cand), cand, weight)
