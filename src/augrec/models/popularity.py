"""Most-popular baseline: every user gets the items with the most training interactions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from augrec.data.splits import Split
from augrec.models.base import ModelConfig, Recommender, Reporter, Validator


class PopularityConfig(ModelConfig):
    """Popularity has nothing to tune."""


class Popularity(Recommender):
    """Scores items by their training interaction count (PopRec in the literature)."""

    name = "popularity"
    Config = PopularityConfig

    def __init__(self, config: PopularityConfig, seed: int = 0):
        super().__init__(config, seed)
        self.counts = torch.zeros(1)

    def fit(
        self, split: Split, validate: Validator | None = None, reporter: Reporter | None = None
    ) -> dict[str, Any]:
        """Count training interactions per item."""
        self.n_items = split.n_items
        self.counts = torch.from_numpy(split.item_counts.astype(np.float32))
        return {"items_with_interactions": int((self.counts > 0).sum())}

    def score(self, histories: Sequence[np.ndarray]) -> torch.Tensor:
        """The same count vector for every history."""
        return self.counts[None, :].repeat(len(histories), 1)

    def popularity(self) -> torch.Tensor:
        """Training counts divided by the largest."""
        return self.counts / max(float(self.counts.max()), 1.0)

    def state_dict(self) -> dict[str, Any]:
        """The count vector."""
        return {"counts": self.counts}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the count vector."""
        self.counts = state["counts"]
        self.n_items = len(self.counts) - 1
