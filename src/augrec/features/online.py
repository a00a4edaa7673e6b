"""The serving side of the feature store: one user's features per request, items from memory.

`FeatureClient` wraps a `FeatureStore` (SQLite or Redis online store, in-process):
- `user_history(user_id)`: the user's recent items, one online read;
- `item_attributes(item_ids)`: catalog attributes and popularity, held in memory and refreshed
  after `item_max_age_s`, because one online read per candidate item is far too slow;
- `push_event(user_id, item_id, timestamp)`: folds a live event into the user's online row so
  the next read sees it; duplicates and replays are no-ops, late events land in time order.

One writer per user at a time: `push_event` reads, updates and writes the row (route a
user's events to one worker, as a partitioned event stream does).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from augrec.features import spec
from augrec.features.history import UserRow, apply_event

if TYPE_CHECKING:
    from feast import FeatureStore

_HISTORY_REFS = [f"{spec.USER_HISTORY_VIEW}:{f}" for f in spec.USER_HISTORY_FEATURES]
_ROW_REFS = _HISTORY_REFS + [f"{spec.USER_ACTIVITY_VIEW}:{f}" for f in spec.USER_ACTIVITY_FEATURES]
_ITEM_FEATURES = (*spec.ITEM_ATTRIBUTE_FEATURES, *spec.ITEM_POPULARITY_FEATURES)
_ITEM_REFS = [f"{spec.ITEM_ATTRIBUTES_VIEW}:{f}" for f in spec.ITEM_ATTRIBUTE_FEATURES] + [
    f"{spec.ITEM_POPULARITY_VIEW}:{f}" for f in spec.ITEM_POPULARITY_FEATURES
]
# Redis keeps a row only if its time is newer than the stored one; a late event rewrites the
# row one microsecond after the previous write (what `datetime` can carry).
_TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class History:
    """A user's recent items, oldest first (empty for an unknown user)."""

    user_id: int
    item_ids: np.ndarray
    timestamps: np.ndarray

    def __len__(self) -> int:
        return len(self.item_ids)


class ItemCache:
    """Item features held in memory; misses are fetched in one batched online read."""

    def __init__(
        self,
        fetch: Callable[[list[int]], dict[int, dict[str, Any]]],
        max_age_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._fetch = fetch
        self._max_age_s = max_age_s
        self._clock = clock
        self._items: dict[int, dict[str, Any]] = {}
        self._loaded_at = clock()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, item_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Features per item id; an id the store does not know maps to all-None values."""
        ids = [int(i) for i in item_ids]
        with self._lock:
            if self._clock() - self._loaded_at > self._max_age_s:
                self._items.clear()  # stale: refetch lazily rather than all at once
                self._loaded_at = self._clock()
            missing = list(dict.fromkeys(i for i in ids if i not in self._items))
            if missing:
                self._items.update(self._fetch(missing))
            return {i: self._items[i] for i in ids}

    def preload(self, item_ids: Iterable[int], batch_size: int = 1_000) -> int:
        """Fetch many items up front (e.g. the model's catalog); returns how many are held."""
        ids = list(dict.fromkeys(int(i) for i in item_ids))
        for k in range(0, len(ids), batch_size):
            self.get(ids[k : k + batch_size])
        return len(self)


class FeatureClient:
    """Online feature reads and live-event pushes for serving."""

    def __init__(self, store: FeatureStore, item_max_age_s: float = 300.0):
        self.store = store
        self.history_length = _history_length(store)
        self.items = ItemCache(self._fetch_items, max_age_s=item_max_age_s)

    @classmethod
    def open(
        cls,
        repo: str | Path,
        env: str = "local",
        environ: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> FeatureClient:
        """A client over the feature repo at `repo` in environment `env`.

        A repo whose registry was never written (`augrec features apply`) is a `ConfigError`
        naming the commands that fill it; nothing is created in the repo.
        """
        from augrec.features.store import open_store

        return cls(open_store(repo, env, environ, require_registry=True), **kwargs)

    def user_history(self, user_id: int) -> History:
        """The user's newest items, one online read."""
        return self.user_histories([user_id])[0]

    def user_histories(self, user_ids: Sequence[int]) -> list[History]:
        """Several users' newest items, in order, in one online read.

        Feast's per-call overhead is most of a one-user read, so a server answering several
        requests at once reads them together.
        """
        got = self.store.get_online_features(
            features=_HISTORY_REFS, entity_rows=[{spec.USER_KEY: int(u)} for u in user_ids]
        ).to_dict()
        return [
            History(
                int(u),
                np.asarray(got[spec.HISTORY_ITEMS][row] or [], dtype=np.int64),
                np.asarray(got[spec.HISTORY_TIMES][row] or [], dtype=np.int64),
            )
            for row, u in enumerate(user_ids)
        ]

    def item_attributes(self, item_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Attributes and popularity per item, from memory (fetched once per `item_max_age_s`)."""
        return self.items.get(item_ids)

    def user_features(self, user_id: int) -> dict[str, Any]:
        """What a recommendation request needs: the history and its items' attributes."""
        history = self.user_history(user_id)
        return {
            "user_id": int(user_id),
            "item_ids": history.item_ids,
            "item_timestamps": history.timestamps,
            "items": self.item_attributes(history.item_ids.tolist()),
        }

    def user_row(self, user_id: int) -> tuple[UserRow, datetime | None]:
        """The user's full online row and the time it was written as (None: no row yet)."""
        resp = self.store.get_online_features(
            features=_ROW_REFS, entity_rows=[{spec.USER_KEY: int(user_id)}]
        )
        got = resp.to_dict()
        names = list(resp.proto.metadata.feature_names.val)
        stamp = resp.proto.results[names.index(spec.HISTORY_ITEMS)].event_timestamps[0]
        written = None
        if stamp.seconds or stamp.nanos:
            written = datetime.fromtimestamp(stamp.seconds, UTC) + timedelta(
                microseconds=stamp.nanos // 1_000
            )
        row = UserRow(
            item_ids=tuple(got[spec.HISTORY_ITEMS][0] or ()),
            item_timestamps=tuple(got[spec.HISTORY_TIMES][0] or ()),
            event_count=int(got["event_count"][0] or 0),
            first_event_ts=got["first_event_ts"][0],
            last_event_ts=got["last_event_ts"][0],
        )
        return row, written

    def push_event(self, user_id: int, item_id: int, timestamp: int) -> bool:
        """Fold one event into the user's online row; False when it changed nothing.

        Args:
            user_id: The user.
            item_id: The item the user interacted with.
            timestamp: Event time in Unix seconds (late events are placed in time order).
        """
        import pandas as pd
        from feast.data_source import PushMode

        row, written = self.user_row(user_id)
        new = apply_event(row, int(item_id), int(timestamp), self.history_length)
        if new is None:
            return False
        event_time = datetime.fromtimestamp(int(timestamp), UTC)
        stamp = event_time if written is None else max(event_time, written + _TICK)
        keys = {spec.USER_KEY: [int(user_id)], spec.TIMESTAMP_FIELD: [pd.Timestamp(stamp)]}
        history = pd.DataFrame(
            {
                **keys,
                spec.HISTORY_ITEMS: [list(new.item_ids)],
                spec.HISTORY_TIMES: [list(new.item_timestamps)],
            }
        )
        activity = pd.DataFrame(
            {
                **keys,
                "event_count": [new.event_count],
                "first_event_ts": [new.first_event_ts],
                "last_event_ts": [new.last_event_ts],
            }
        )
        # Activity first: a crash between the two writes leaves the history (which the
        # duplicate check reads) unchanged, so a retry redoes both.
        self.store.push(spec.USER_ACTIVITY_PUSH, activity, to=PushMode.ONLINE)
        self.store.push(spec.USER_HISTORY_PUSH, history, to=PushMode.ONLINE)
        return True

    def _fetch_items(self, item_ids: list[int]) -> dict[int, dict[str, Any]]:
        got = self.store.get_online_features(
            features=_ITEM_REFS, entity_rows=[{spec.ITEM_KEY: i} for i in item_ids]
        ).to_dict()
        return {
            int(i): {f: _clean(got[f][k]) for f in _ITEM_FEATURES}
            for k, i in enumerate(got[spec.ITEM_KEY])
        }


def _clean(value: Any) -> Any:
    # Parquet nulls in a float column come back as NaN; callers test for None.
    return None if isinstance(value, float) and np.isnan(value) else value


def _history_length(store: FeatureStore) -> int:
    """The window the applied view declares (its `history_length` tag), else the default."""
    view = store.get_feature_view(spec.USER_HISTORY_VIEW)
    return int(view.tags.get("history_length", spec.HISTORY_LENGTH))
