"""Pure updates of a user's online feature row when a live event arrives.

The same rules as the batch ingest (`ingest.build_user_events`): items oldest first, equal
times in arrival order, the newest `length` kept. An event already in the window (same item,
same second) or older than a full window changes nothing, so retries and replays are no-ops.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class UserRow:
    """A user's online feature row: history window plus activity statistics."""

    item_ids: tuple[int, ...] = ()
    item_timestamps: tuple[int, ...] = ()
    event_count: int = 0
    first_event_ts: int | None = None
    last_event_ts: int | None = None

    def __post_init__(self) -> None:
        if len(self.item_ids) != len(self.item_timestamps):
            raise ValueError(
                f"history: {len(self.item_ids)} items but {len(self.item_timestamps)} timestamps"
            )


def apply_event(row: UserRow, item_id: int, timestamp: int, length: int) -> UserRow | None:
    """Return the row after the event, or None when the event changes nothing.

    Args:
        row: The user's current row (an empty `UserRow()` for a new user).
        item_id: The event's item.
        timestamp: The event's time in Unix seconds; may be older than the newest item.
        length: The history window (the view's `history_length`).
    """
    times = list(row.item_timestamps)
    items = list(row.item_ids)
    lo = bisect.bisect_left(times, timestamp)
    hi = bisect.bisect_right(times, timestamp)
    if item_id in items[lo:hi]:
        return None  # duplicate: already counted
    if len(items) >= length and hi == 0:
        return None  # older than everything in a full window: it would fall straight out
    items.insert(hi, item_id)
    times.insert(hi, timestamp)
    items, times = items[-length:], times[-length:]
    first = timestamp if row.first_event_ts is None else min(row.first_event_ts, timestamp)
    last = timestamp if row.last_event_ts is None else max(row.last_event_ts, timestamp)
    return replace(
        row,
        item_ids=tuple(items),
        item_timestamps=tuple(times),
        event_count=row.event_count + 1,
        first_event_ts=first,
        last_event_ts=last,
    )
