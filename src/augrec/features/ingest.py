"""Build the Feast offline sources from the data contract's tables, and write them atomically.

Pure frame builders (interactions/items in, pyarrow tables out) plus one writer. Every user
event gets its own history row, stamped with the event's time, so a point-in-time join at
time t picks exactly the history as of t. Events sharing a (user, timestamp) share one row —
the last, holding all of them — because the file offline store collapses rows with the same
key and time anyway, and an as-of-t read must include everything at t (Amazon's day stamps
tie often).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from augrec.errors import ConfigError
from augrec.features import spec
from augrec.io import atomic_dir

log = logging.getLogger(__name__)
DAY = 86_400
TS_TYPE = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Sources:
    """The offline sources, as Arrow tables ready to write."""

    user_history: pa.Table
    user_activity: pa.Table
    item_popularity: pa.Table
    item_attributes: pa.Table

    def summary(self) -> dict[str, int]:
        """Row counts, for logs and the CLI."""
        return {
            "user_event_rows": self.user_history.num_rows,
            "item_popularity_rows": self.item_popularity.num_rows,
            "item_attribute_rows": self.item_attributes.num_rows,
        }


def _sorted(interactions: pd.DataFrame, key: str) -> pd.DataFrame:
    # Stable: equal timestamps keep the log's order, which is the order the history shows.
    return interactions.sort_values([key, "timestamp"], kind="stable").reset_index(drop=True)


def _group_starts(keys: np.ndarray) -> np.ndarray:
    """For each row of a key-sorted array, the index of the first row with the same key."""
    n = len(keys)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    is_start = np.ones(n, dtype=bool)
    is_start[1:] = keys[1:] != keys[:-1]
    return np.maximum.accumulate(np.where(is_start, np.arange(n), 0))


def _last_of_ties(keys: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Mask of rows that are the last of their (key, timestamp) run."""
    n = len(keys)
    last = np.ones(n, dtype=bool)
    last[:-1] = (keys[1:] != keys[:-1]) | (ts[1:] != ts[:-1])
    return last


def _windows(starts: np.ndarray, ends: np.ndarray, values: np.ndarray) -> pa.ListArray:
    """values[starts[i]:ends[i]+1] for every i, as one Arrow list column (no Python loop)."""
    lengths = ends - starts + 1
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    within = np.arange(offsets[-1]) - np.repeat(offsets[:-1], lengths)
    flat = values[np.repeat(starts, lengths) + within]
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, type=pa.int64()))


def _timestamps(seconds: np.ndarray) -> pa.Array:
    return pa.array(seconds.astype("int64") * 1_000_000, type=pa.int64()).cast(TS_TYPE)


def build_user_events(
    interactions: pd.DataFrame, history_length: int = spec.HISTORY_LENGTH
) -> pa.Table:
    """One row per (user, event time): the newest `history_length` items and activity stats.

    Args:
        interactions: The contract's interactions (user_id, item_id, timestamp in Unix s).
        history_length: Items kept per row, newest last.

    Returns:
        Columns user_id, event_timestamp, item_ids, item_timestamps, event_count,
        first_event_ts, last_event_ts; all counts include every event at or before the row.
        `split_user_events` cuts it into the history and activity sources.
    """
    df = _sorted(interactions, spec.USER_KEY)
    users = df[spec.USER_KEY].to_numpy(np.int64)
    items = df[spec.ITEM_KEY].to_numpy(np.int64)
    ts = df["timestamp"].to_numpy(np.int64)
    idx = np.arange(len(df))
    group_start = _group_starts(users)
    window_start = np.maximum(group_start, idx - history_length + 1)
    keep = _last_of_ties(users, ts)
    rows, starts = idx[keep], window_start[keep]
    return pa.table(
        {
            spec.USER_KEY: pa.array(users[rows]),
            spec.TIMESTAMP_FIELD: _timestamps(ts[rows]),
            spec.HISTORY_ITEMS: _windows(starts, rows, items),
            spec.HISTORY_TIMES: _windows(starts, rows, ts),
            "event_count": pa.array(rows - group_start[rows] + 1),
            "first_event_ts": pa.array(ts[group_start[rows]]),
            "last_event_ts": pa.array(ts[rows]),
        }
    )


def split_user_events(table: pa.Table) -> tuple[pa.Table, pa.Table]:
    """(history, activity) sources from `build_user_events`' table: the same rows."""
    keys = [spec.USER_KEY, spec.TIMESTAMP_FIELD]
    return (
        table.select([*keys, *spec.USER_HISTORY_FEATURES]),
        table.select([*keys, *spec.USER_ACTIVITY_FEATURES]),
    )


def build_item_popularity(
    interactions: pd.DataFrame, windows_days: tuple[int, ...] = spec.POPULARITY_WINDOWS_DAYS
) -> pa.Table:
    """One row per (item, event time): interactions in total and over (t - window, t]."""
    df = _sorted(interactions, spec.ITEM_KEY)
    items = df[spec.ITEM_KEY].to_numpy(np.int64)
    ts = df["timestamp"].to_numpy(np.int64)
    idx = np.arange(len(df))
    group_start = _group_starts(items)
    keep = _last_of_ties(items, ts)
    rows = idx[keep]
    # One sorted key per (item, time) lets searchsorted count a window for all rows at once.
    codes = np.cumsum(np.r_[0, items[1:] != items[:-1]]) if len(items) else items
    key = codes * (1 << 33) + ts  # timestamps are < 2**33 (validated below 2100)
    cols: dict[str, pa.Array] = {
        spec.ITEM_KEY: pa.array(items[rows]),
        spec.TIMESTAMP_FIELD: _timestamps(ts[rows]),
        "events_total": pa.array(rows - group_start[rows] + 1),
    }
    for d in windows_days:
        first_in = np.searchsorted(key, key[rows] - d * DAY, side="right")
        cols[f"events_{d}d"] = pa.array(rows - first_in + 1)
    cols["last_event_ts"] = pa.array(ts[rows])
    return pa.table(cols)


def build_item_attributes(items: pd.DataFrame, interactions: pd.DataFrame) -> pa.Table:
    """One row per catalog item with category, brand and price (null where unknown).

    Each row is stamped with the item's first interaction (the earliest interaction overall
    for items nobody touched), so a point-in-time read never sees an item before it existed
    in the log.
    """
    first_seen = interactions.groupby(spec.ITEM_KEY)["timestamp"].min()
    default_ts = int(interactions["timestamp"].min()) if len(interactions) else 0
    ids = items[spec.ITEM_KEY].to_numpy(np.int64) if len(items) else np.zeros(0, np.int64)
    stamp = first_seen.reindex(ids).fillna(default_ts).to_numpy(np.int64)

    def column(name: str, typ: pa.DataType) -> pa.Array:
        if name not in items.columns:
            return pa.nulls(len(ids), type=typ)
        values = items[name]
        if pa.types.is_string(typ):
            values = values.astype("string")
        else:
            values = pd.to_numeric(values, errors="coerce")
        return pa.array(values, type=typ, from_pandas=True)

    return pa.table(
        {
            spec.ITEM_KEY: pa.array(ids),
            spec.TIMESTAMP_FIELD: _timestamps(stamp),
            "category": column("category", pa.string()),
            "brand": column("brand", pa.string()),
            "price": column("price", pa.float64()),
        }
    )


def build_sources(
    interactions: pd.DataFrame,
    items: pd.DataFrame | None = None,
    history_length: int = spec.HISTORY_LENGTH,
) -> Sources:
    """All offline sources from a dataset's interactions and (optional) items table."""
    if items is None:
        items = pd.DataFrame({spec.ITEM_KEY: pd.Series(dtype="int64")})
    history, activity = split_user_events(build_user_events(interactions, history_length))
    return Sources(
        user_history=history,
        user_activity=activity,
        item_popularity=build_item_popularity(interactions),
        item_attributes=build_item_attributes(items, interactions),
    )


SOURCE_FILES = (
    spec.USER_HISTORY_FILE,
    spec.USER_ACTIVITY_FILE,
    spec.ITEM_POPULARITY_FILE,
    spec.ITEM_ATTRIBUTES_FILE,
)


def write_sources(sources: Sources, out: str | Path) -> Path:
    """Write the sources as parquet into `out`, replacing it whole or not at all.

    Refuses to replace a directory holding anything else (AUGREC_FEATURE_SOURCES may point
    at a shared folder by mistake).
    """
    out = Path(out)
    if out.exists():
        others = sorted(p.name for p in out.iterdir() if p.name not in SOURCE_FILES)
        if others:
            raise ConfigError(
                f"{out}: holds files that are not feature sources ({', '.join(others[:5])}); "
                "not replacing it (point AUGREC_FEATURE_SOURCES at a folder of its own)"
            )
    with atomic_dir(out, overwrite=True) as tmp:
        tables = (
            sources.user_history,
            sources.user_activity,
            sources.item_popularity,
            sources.item_attributes,
        )
        for name, table in zip(SOURCE_FILES, tables, strict=True):
            pq.write_table(table, tmp / name)
    log.info("wrote feature sources %s to %s", sources.summary(), out)
    return out
