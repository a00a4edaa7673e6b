"""The feature store as a server sees it: reads that degrade instead of failing requests.

Wraps `augrec.features.online.FeatureClient`. A store that cannot be opened, or a read that
raises (Redis down, SQLite file gone), makes the method return None: the recommender then
answers from the model and flags the answer as a fallback, and readiness turns false until a
probe read succeeds again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from augrec.serving import redact
from augrec.serving.errors import Unavailable

if TYPE_CHECKING:
    from augrec.features.online import FeatureClient

log = logging.getLogger(__name__)
_LOCK_STRIPES = 64
PROBE_USER = 0  # any id works: an unknown user is a cheap, valid read


class OnlineFeatures:
    """User histories, catalog attributes and event pushes, or None when the store fails."""

    def __init__(self, client: FeatureClient | None, error: str | None = None):
        self.client = client
        self.error = error
        self.errors = 0  # reads and writes that failed since start
        # push_event is read-modify-write per user: two concurrent events of one user must
        # not both read the old row (FeatureClient's contract: one writer per user).
        self._locks = [threading.Lock() for _ in range(_LOCK_STRIPES)]

    @classmethod
    def open(cls, repo: str | None, env: str = "local") -> OnlineFeatures:
        """Open the store; never raises (an unusable store is recorded in `error`)."""
        if not repo:
            return cls(None, "no feature repo configured")
        try:
            from augrec.features.online import FeatureClient

            return cls(FeatureClient.open(repo, env))
        except Exception as exc:  # Feast and config errors alike: serve degraded
            log.warning("feature store %s (%s) unavailable: %s", repo, env, exc)
            return cls(None, f"cannot open feature repo {repo!r} ({env}): {exc}")

    @property
    def store(self) -> Any:
        """The Feast `FeatureStore` (None when the store could not be opened)."""
        return None if self.client is None else self.client.store

    def history(self, user_id: int) -> np.ndarray | None:
        """The user's stored items, oldest first (empty: unknown user; None: store failed)."""
        return self._history(user_id, real_user=True)

    def _history(self, user_id: int, real_user: bool) -> np.ndarray | None:
        if self.client is None:
            return None
        try:
            return self.client.user_history(user_id).item_ids
        except Exception as exc:
            self._failed("history read", exc, user_id if real_user else None)
            return None

    def catalog(self, item_ids: Sequence[int]) -> tuple[list[str | None], np.ndarray] | None:
        """Category and total event count per item, in order (None: store failed)."""
        if self.client is None:
            return None
        try:
            self.client.items.preload(item_ids)
            rows = self.client.item_attributes(item_ids)
        except Exception as exc:
            self._failed("catalog read", exc)
            return None
        categories = [rows[int(i)].get("category") for i in item_ids]
        counts = np.asarray(
            [rows[int(i)].get("events_total") or 0 for i in item_ids], dtype=np.float32
        )
        return categories, counts

    def push(self, user_id: int, item_id: int, timestamp: int) -> bool:
        """Fold an event into the user's features; raises `Unavailable` when the store fails."""
        if self.client is None:
            raise Unavailable("", f"the feature store is unavailable: {self.error}")
        try:
            with self._locks[hash(user_id) % _LOCK_STRIPES]:
                return self.client.push_event(user_id, item_id, timestamp)
        except Exception as exc:
            self._failed("event push", exc, user_id)
            raise Unavailable("", f"the feature store refused the event: {exc}") from exc

    def probe(self) -> bool:
        """One cheap online read: is the store answering now?"""
        return self._history(PROBE_USER, real_user=False) is not None

    def _failed(self, what: str, exc: Exception, user_id: int | None = None) -> None:
        # The error reaches logs and /status: a user appears only as a keyed hash (redact).
        message = str(exc) if user_id is None else redact.scrub(str(exc), user_id)
        whom = "" if user_id is None else f" for {redact.user_ref(user_id)}"
        self.errors += 1
        self.error = f"{what} failed: {message}"
        log.warning("feature store %s failed%s: %s", what, whom, message)
