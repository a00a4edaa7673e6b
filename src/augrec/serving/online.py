"""The feature store as a server sees it: reads that degrade instead of failing requests.

Wraps `augrec.features.online.FeatureClient`. A store that cannot be opened, or a read that
raises (Redis down, SQLite file gone), makes the method return None: the recommender then
answers from the model and flags the answer as a fallback. `up` says whether the last read
succeeded (the `augrec_feature_store_up` metric follows it through `on_change`).

While the store is down, requests do not try it: the Redis client alone retries a refused
connection for seconds (redis-py's default backoff), which would make every degraded answer
that slow. Instead one background read every `RETRY_S` finds out when it is back, and requests
answer from the model at once meanwhile. A store that could not be opened at all is opened
again in the background, at most every `REOPEN_S`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from augrec.serving import redact
from augrec.serving.errors import Unavailable

if TYPE_CHECKING:
    from augrec.features.online import FeatureClient

log = logging.getLogger(__name__)
_LOCK_STRIPES = 64
PROBE_USER = 0  # any id works: an unknown user is a cheap, valid read
REOPEN_S = 30.0  # a store that could not be opened is tried again at most this often
RETRY_S = 1.0  # a store that failed is read again (in the background) this long after
# A probe (/status, strict readiness) that gets no answer this fast calls the store down: a
# Redis that just went away answers nothing for the 5-10 s its client spends retrying, and
# the probe must answer inside the chart's readiness timeout (2 s) meanwhile.
PROBE_TIMEOUT_S = 1.0


class OnlineFeatures:
    """User histories, catalog attributes and event pushes, or None when the store fails."""

    def __init__(
        self,
        client: FeatureClient | None,
        error: str | None = None,
        repo: str | None = None,
        env: str = "local",
    ):
        self.client = client
        self.error = error
        self.errors = 0  # reads and writes that failed since start
        self.up = client is not None  # did the last read or write succeed?
        # Called with the new `up` when it flips (not per request: a flip is rare).
        self.on_change: Callable[[bool], None] | None = None
        self._repo, self._env = repo, env
        self._reopen_at = time.monotonic() + REOPEN_S
        self._reopening = threading.Lock()
        self._retry_at = 0.0  # while down: when the background read tries the store again
        self._retrying = threading.Lock()
        self._probing: threading.Event | None = None  # set when the read in flight ends
        self._probe_ok = False
        self._probe_lock = threading.Lock()
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

            return cls(FeatureClient.open(repo, env), repo=repo, env=env)
        except Exception as exc:  # Feast and config errors alike: serve degraded
            log.warning("feature store %s (%s) unavailable: %s", repo, env, exc)
            return cls(None, f"cannot open feature repo {repo!r} ({env}): {exc}", repo, env)

    @property
    def store(self) -> Any:
        """The Feast `FeatureStore` (None when the store could not be opened)."""
        return None if self.client is None else self.client.store

    def history(self, user_id: int) -> np.ndarray | None:
        """The user's stored items, oldest first (empty: unknown user; None: store failed)."""
        return self._history(user_id, real_user=True)

    def _history(self, user_id: int, real_user: bool) -> np.ndarray | None:
        if self.client is None or not self._usable():
            return None
        try:
            items = self.client.user_history(user_id).item_ids
        except Exception as exc:
            self._failed("history read", exc, user_id if real_user else None)
            return None
        if not self.up:
            self._set_up(True)
        return items

    def histories(self, user_ids: Sequence[int]) -> list[np.ndarray] | None:
        """`history` of several users, in order, in one read (None: the store failed)."""
        if self.client is None or not self._usable():
            return None
        try:
            got = [h.item_ids for h in self.client.user_histories(user_ids)]
        except Exception as exc:
            message = str(exc)
            for user_id in user_ids:  # the error reaches logs and /status: no raw user ids
                message = redact.scrub(message, user_id)
            self._failed(f"history read of {len(user_ids)} users", Exception(message))
            return None
        if not self.up:
            self._set_up(True)
        return got

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
        if self.client is None or not self._usable():
            raise Unavailable("", f"the feature store is unavailable: {self.error}")
        try:
            with self._locks[hash(user_id) % _LOCK_STRIPES]:
                changed = self.client.push_event(user_id, item_id, timestamp)
        except Exception as exc:
            self._failed("event push", exc, user_id)
            raise Unavailable("", f"the feature store refused the event: {exc}") from exc
        if not self.up:
            self._set_up(True)
        return changed

    def probe(self, timeout: float = PROBE_TIMEOUT_S) -> bool:
        """One cheap online read: is the store answering now? Waits at most `timeout` s.

        The read runs in a background thread (one at a time; callers meanwhile share it), so a
        store that hangs cannot hang the caller: no answer within `timeout` marks it down, and
        requests answer from the model until a background read finds it back. A store that
        could not be opened is not read; opening it is retried in a background thread (never
        in the caller's: a readiness probe must not wait for Feast's import).
        """
        if self.client is None:
            self._maybe_reopen()
            return False
        if not self._usable():  # down: the background retry, not the probe, reads it
            return False
        with self._probe_lock:
            done = self._probing
            if done is None:
                done = self._probing = threading.Event()
                threading.Thread(
                    target=self._probe_read, args=(done,), daemon=True, name="feature-store-probe"
                ).start()
        if done.wait(timeout):
            return self._probe_ok
        if self.up:
            self._failed("probe", TimeoutError(f"no answer within {timeout:g} s"))
        return False

    def _probe_read(self, done: threading.Event) -> None:
        try:
            self._probe_ok = self._history(PROBE_USER, real_user=False) is not None
        finally:
            with self._probe_lock:
                self._probing = None
            done.set()

    def _usable(self) -> bool:
        """May a request use the store now? Not while it is down (see the module doc)."""
        if self.up:
            return True
        if time.monotonic() >= self._retry_at and self._retrying.acquire(blocking=False):
            self._retry_at = float("inf")  # until this attempt ends
            threading.Thread(target=self._retry, daemon=True, name="feature-store-retry").start()
        return False

    def _retry(self) -> None:
        try:
            self.client.user_history(PROBE_USER)
        except Exception as exc:
            self._failed("history read", exc)
        else:
            self._set_up(True)
        finally:
            self._retrying.release()

    def _maybe_reopen(self) -> None:
        if not self._repo or time.monotonic() < self._reopen_at:
            return
        if self._reopening.acquire(blocking=False):
            self._reopen_at = time.monotonic() + REOPEN_S
            threading.Thread(target=self._reopen, daemon=True, name="feature-store-reopen").start()

    def _reopen(self) -> None:
        try:
            from augrec.features.online import FeatureClient

            client = FeatureClient.open(self._repo, self._env)
            client.user_history(PROBE_USER)
        except Exception as exc:
            log.debug("feature store %s still unavailable: %s", self._repo, exc)
            return
        finally:
            self._reopening.release()
        self.client, self.error = client, None
        log.warning("feature store %s opened after start; serving personalised answers", self._repo)
        self._set_up(True)

    def _set_up(self, up: bool) -> None:
        self.up = up
        if up:
            log.warning("feature store answering again")
        if self.on_change is not None:
            self.on_change(up)

    def _failed(self, what: str, exc: Exception, user_id: int | None = None) -> None:
        # The error reaches logs and /status: a user appears only as a keyed hash (redact).
        message = str(exc) if user_id is None else redact.scrub(str(exc), user_id)
        whom = "" if user_id is None else f" for {redact.user_ref(user_id)}"
        self.errors += 1
        self.error = f"{what} failed: {message}"
        self._retry_at = time.monotonic() + RETRY_S
        if self.up:
            log.warning("feature store %s failed%s: %s", what, whom, message)
            self._set_up(False)
        else:
            log.debug("feature store %s failed again%s: %s", what, whom, message)
