"""The one interface every recommender implements (RecBole's idea, ARCHITECTURE section 5).

Models score a *history* (a sequence of encoded item ids), not a user id, so the same call
serves evaluation, batch inference and online requests whose history comes from Feast.
The trainer, evaluator and server never branch on model type.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Protocol

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

from augrec.data.splits import Split


class ModelConfig(BaseModel):
    """Base for per-model configs: unknown keys are errors, so typos fail fast."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Reporter(Protocol):
    """Receives progress from `fit` (a console table locally, `ray.train.report` under Ray)."""

    def report(self, metrics: dict[str, Any], checkpoint: dict[str, Any] | None = None) -> None:
        """Record one epoch's metrics; `checkpoint` (when given) is enough to resume from."""


# Given a model, returns validation metrics (e.g. {"ndcg@10": ...}); lets `fit` early-stop
# and select without ever touching the test set.
Validator = Callable[["Recommender"], dict[str, float]]


class Recommender(ABC):
    """Scores every item for a batch of histories."""

    name: ClassVar[str]
    Config: ClassVar[type[ModelConfig]]

    def __init__(self, config: ModelConfig, seed: int = 0):
        self.config = config
        self.seed = seed
        self.n_items = 0

    @classmethod
    def grid(cls) -> list[dict[str, Any]]:
        """Hyper-parameter candidates the runner selects among on validation ([{}] = none)."""
        return [{}]

    @abstractmethod
    def fit(
        self, split: Split, validate: Validator | None = None, reporter: Reporter | None = None
    ) -> dict[str, Any]:
        """Learn from `split.train` only; returns a small dict describing the fit."""

    @abstractmethod
    def score(self, histories: Sequence[np.ndarray]) -> torch.Tensor:
        """Scores for all items, shape [B, n_items + 1] float32 on the CPU; column 0 is padding."""

    def device_scores(self, histories: Sequence[np.ndarray]) -> torch.Tensor:
        """`score` left on the model's device, for bulk ranking (evaluation) on a GPU.

        Masking and ranking 12k items for 512 users is cheap on the GPU and the slowest step
        on the CPU, so evaluation ranks where the scores are.
        """
        return self.score(histories)

    def prepare_for_serving(self) -> bool:
        """Make `score` faster for a model that will only answer requests; True if it did.

        May trade bit-exactness for speed (scores within 1e-5 of the eager ones): serving
        calls it, evaluation and training never do. Default: nothing to prepare.
        """
        return False

    def topk(
        self, histories: Sequence[np.ndarray], k: int, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k encoded items and scores per history, ties broken by lower id."""
        from augrec.evaluation.ranking import mask_scores, topk_stable

        scores = self.score(histories)
        mask_scores(scores, histories if exclude_seen else None)
        return topk_stable(scores, k)

    def item_similarity(self, items: np.ndarray) -> torch.Tensor | None:
        """Similarity of every item to each of `items`, [len(items), n_items + 1] float32.

        Items the model cannot relate are -inf. None when the model has no item
        representation to compare (the server then answers with its fallback).
        """
        return None

    def popularity(self) -> torch.Tensor:
        """Each item's popularity relative to the most popular one, [n_items + 1] in [0, 1].

        What a server's popularity fallback scores with when it has no online counts.
        Default: the model's score for an empty history read as a softmax, each item's
        probability divided by the top item's (for SASRec, its learnt prior). Column 0 is 0.
        """
        scores = self.score([np.zeros(0, dtype=np.int64)])[0].float()
        rel = torch.exp(scores - scores[1:].max())
        rel[0] = 0.0
        return rel

    # Persistence: models store their learned state as tensors/arrays plus their config.
    def state_dict(self) -> dict[str, Any]:
        """Learned state to persist (override in models that learn)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: B027 - stateless default
        """Restore what `state_dict` returned."""
