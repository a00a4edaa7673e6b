"""Item-kNN over co-occurrence (Sarwar et al., WWW 2001; Deshpande & Karypis, TOIS 2004).

Similarity is shrunk cosine over the user-item co-occurrence matrix of the training split,
pruned to each item's `neighbors` most similar items. A history scores an item by summing
the similarities from its items, weighted by recency (`decay ** steps_from_the_end`), since
the last items say most about the next one. Items without any neighbour link fall back to
popularity order, strictly below every linked item.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field

from augrec.data.splits import Split
from augrec.models.base import ModelConfig, Recommender, Reporter, Validator


class ItemKNNConfig(ModelConfig):
    """Item-kNN hyper-parameters."""

    neighbors: int = Field(100, ge=1, description="similar items kept per item")
    shrink: float = Field(10.0, ge=0, description="added to the cosine denominator")
    decay: float = Field(0.8, gt=0, le=1, description="recency weight per step back")


def cooccurrence_similarity(
    train: Sequence[np.ndarray], n_items: int, neighbors: int, shrink: float
) -> sp.csr_matrix:
    """Shrunk cosine item-item similarity [n_items+1, n_items+1], top `neighbors` per row."""
    rows = np.repeat(np.arange(len(train)), [len(s) for s in train])
    cols = np.concatenate(train) if len(train) else np.zeros(0, dtype=np.int64)
    x = sp.csr_matrix(
        (np.ones(cols.size, dtype=np.float32), (rows, cols)), shape=(len(train), n_items + 1)
    )
    x.data[:] = 1.0  # repeats count once: co-occurrence is about users, not events
    c = (x.T @ x).tocsr()
    c.setdiag(0)
    c.eliminate_zeros()
    norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel())
    c = c.tocoo()
    vals = c.data / (norms[c.row] * norms[c.col] + shrink)
    sim = sp.csr_matrix((vals.astype(np.float32), (c.row, c.col)), shape=c.shape)
    return _prune_rows(sim, neighbors)


def _prune_rows(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    indptr, indices, data = [0], [], []
    for r in range(m.shape[0]):
        lo, hi = m.indptr[r], m.indptr[r + 1]
        d, i = m.data[lo:hi], m.indices[lo:hi]
        if d.size > k:
            keep = np.argpartition(-d, k - 1)[:k]
            d, i = d[keep], i[keep]
        data.append(d)
        indices.append(i)
        indptr.append(indptr[-1] + d.size)
    return sp.csr_matrix(
        (np.concatenate(data), np.concatenate(indices), np.asarray(indptr)), shape=m.shape
    )


class ItemKNN(Recommender):
    """Co-occurrence item-kNN with recency-weighted history."""

    name = "itemknn"
    Config = ItemKNNConfig

    def __init__(self, config: ItemKNNConfig, seed: int = 0):
        super().__init__(config, seed)
        self.sim: sp.csr_matrix | None = None
        self.relative_pop = np.zeros(1, dtype=np.float32)

    @classmethod
    def grid(cls) -> list[dict[str, Any]]:
        """Small grid over neighbourhood size and recency decay, chosen on validation."""
        return [{"neighbors": n, "decay": d} for n in (50, 200) for d in (1.0, 0.6)]

    def fit(
        self, split: Split, validate: Validator | None = None, reporter: Reporter | None = None
    ) -> dict[str, Any]:
        """Build the pruned similarity matrix from the training split."""
        cfg: ItemKNNConfig = self.config  # type: ignore[assignment]
        self.n_items = split.n_items
        self.sim = cooccurrence_similarity(split.train, split.n_items, cfg.neighbors, cfg.shrink)
        pop = split.item_counts.astype(np.float32)
        self.relative_pop = pop / max(float(pop.max()), 1.0)
        return {"similarity_nnz": int(self.sim.nnz)}

    def score(self, histories: Sequence[np.ndarray]) -> torch.Tensor:
        """Sum of recency-weighted similarity rows; unlinked items ranked by popularity below."""
        assert self.sim is not None, "fit or load the model first"
        cfg: ItemKNNConfig = self.config  # type: ignore[assignment]
        lengths = [len(h) for h in histories]
        rows = np.repeat(np.arange(len(histories)), lengths)
        cols = np.concatenate(histories) if histories else np.zeros(0, dtype=np.int64)
        steps_back = (
            np.concatenate([np.arange(n - 1, -1, -1) for n in lengths]) if cols.size else cols
        )
        weights = (cfg.decay**steps_back).astype(np.float32)
        h = sp.csr_matrix((weights, (rows, cols)), shape=(len(histories), self.n_items + 1))
        scores = np.asarray((h @ self.sim).todense(), dtype=np.float32)
        linked = scores > 0
        # Popularity in [0, 1] shifted to [-1, -0.5]: strictly below any linked item.
        fallback = np.broadcast_to(self.relative_pop * 0.5 - 1.0, scores.shape)
        scores = np.where(linked, scores, fallback)
        return torch.from_numpy(np.ascontiguousarray(scores, dtype=np.float32))

    def popularity(self) -> torch.Tensor:
        """Training counts divided by the largest (the vector unlinked items are ranked by)."""
        return torch.from_numpy(self.relative_pop.copy())

    def item_similarity(self, items: np.ndarray) -> torch.Tensor:
        """The items' rows of the pruned similarity matrix; unlinked items are -inf."""
        assert self.sim is not None, "fit or load the model first"
        rows = np.asarray(self.sim[np.asarray(items, dtype=np.int64)].todense(), dtype=np.float32)
        rows[rows <= 0] = -np.inf
        return torch.from_numpy(rows)

    def state_dict(self) -> dict[str, Any]:
        """Similarity matrix in CSR parts and the popularity vector."""
        assert self.sim is not None
        return {
            "indptr": torch.from_numpy(self.sim.indptr.astype(np.int64)),
            "indices": torch.from_numpy(self.sim.indices.astype(np.int64)),
            "data": torch.from_numpy(self.sim.data),
            "popularity": torch.from_numpy(self.relative_pop),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Rebuild the similarity matrix."""
        n = len(state["popularity"])
        self.sim = sp.csr_matrix(
            (state["data"].numpy(), state["indices"].numpy(), state["indptr"].numpy()),
            shape=(n, n),
        )
        self.relative_pop = state["popularity"].numpy()
        self.n_items = n - 1
