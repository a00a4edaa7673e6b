"""Point-in-time training frames from the offline store, and the sequences models train on.

`training_frame` asks Feast for a FeatureService's features as of each event (Feast's
point-in-time join: the newest feature row at or before the event's time), so a row never
carries an interaction later than its event. The file offline store drops entity rows that
have no feature row yet and merges duplicate (key, time) rows; we query unique keys and join
the answers back, so the frame has exactly one row per input event, in input order.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from augrec.errors import ConfigError
from augrec.features import spec

if TYPE_CHECKING:
    from feast import FeatureStore

    from augrec.data.splits import Split

_EMPTY = np.zeros(0, dtype=np.int64)
# The entity frame's time column. Not the sources' `event_timestamp`: with equal names the
# file offline store renames and re-hashes the whole source once more per view.
_AS_OF = "as_of"


def _event_times(values: pd.Series) -> pd.Series:
    """Unix seconds or datetimes -> tz-aware UTC datetimes (microsecond precision)."""
    if pd.api.types.is_numeric_dtype(values):
        return pd.to_datetime(values.astype("int64"), unit="s", utc=True)
    out = pd.to_datetime(values, utc=True)
    return out.dt.floor("us")


def _service_schema(store: FeatureStore, service: str) -> tuple[list[str], dict[str, str]]:
    """The service's join keys and its features' Feast types (e.g. 'Array(Int64)')."""
    fs = store.get_feature_service(service)
    keys: list[str] = []
    types: dict[str, str] = {}
    for projection in fs.feature_view_projections:
        view = store.get_feature_view(projection.name)
        keys += [c.name for c in view.entity_columns if c.name not in keys]
        types.update({f.name: str(f.dtype) for f in projection.features})
    return keys, types


def training_frame(
    store: FeatureStore,
    events: pd.DataFrame,
    service: str = spec.RECOMMENDER_SERVICE,
) -> pd.DataFrame:
    """The service's features for each event, as of the event's time.

    Args:
        store: An applied feature store (`store.open_store(repo)`).
        events: One row per event: the service's join keys (`user_id` for the recommender
            service) and `timestamp` (Unix seconds or datetimes); other columns (e.g. the
            target `item_id`) are carried through.
        service: FeatureService name; its version is part of the name.

    Returns:
        `events` (same rows, same order, fresh index) plus one column per feature. Events
        with no feature row at or before their time get an empty history and zero counts.
    """
    keys, types = _service_schema(store, service)
    missing = [c for c in [*keys, "timestamp"] if c not in events.columns]
    if missing:
        raise ConfigError(f"events: missing column(s) {missing} needed by service {service!r}")
    out = events.reset_index(drop=True).copy()
    when = _event_times(out["timestamp"])
    out["_t_us"] = when.dt.as_unit("us").astype("int64")
    entity = (
        pd.DataFrame({**{k: out[k].astype("int64") for k in keys}, "_t_us": out["_t_us"]})
        .drop_duplicates()
        .reset_index(drop=True)
    )
    entity[_AS_OF] = pd.to_datetime(entity["_t_us"], unit="us", utc=True)
    from augrec.features.store import in_repo

    # Feast prints which column it took as the time; it is the only datetime column.
    with contextlib.redirect_stdout(io.StringIO()), in_repo(store):
        job = store.get_historical_features(
            entity_df=entity[[*keys, _AS_OF]],
            features=store.get_feature_service(service),
        )
        got = job.to_df()
    got_t = pd.to_datetime(got[_AS_OF], utc=True)
    got["_t_us"] = got_t.dt.as_unit("us").astype("int64")
    feature_cols = [c for c in got.columns if c not in {*keys, _AS_OF, "_t_us"}]
    got = got[[*keys, "_t_us", *feature_cols]].drop_duplicates(subset=[*keys, "_t_us"])
    overlap = [c for c in feature_cols if c in out.columns]
    if overlap:
        raise ConfigError(f"events: column(s) {overlap} clash with feature names; rename them")
    frame = out.merge(got, on=[*keys, "_t_us"], how="left", validate="many_to_one")
    if len(frame) != len(out):  # the point of the join-back; cheap to assert
        raise RuntimeError(f"training frame has {len(frame)} rows for {len(out)} events")
    return _fill_missing(frame.drop(columns="_t_us"), {c: types.get(c, "") for c in feature_cols})


def _fill_missing(frame: pd.DataFrame, types: dict[str, str]) -> pd.DataFrame:
    """Give features a fixed dtype whether or not the event had a feature row.

    Integer arrays become int64 numpy arrays (empty when absent); counts become 0 when absent
    (nothing happened yet); other integers become nullable Int64 (a time that does not exist).
    """
    for col, typ in types.items():
        values = frame[col]
        if typ == "Array(Int64)":
            frame[col] = [
                np.asarray(v, dtype=np.int64)
                if isinstance(v, list | tuple | np.ndarray)
                else _EMPTY
                for v in values
            ]
        elif typ == "Int64" and (col == "event_count" or col.startswith("events_")):
            frame[col] = values.fillna(0).astype("int64")
        elif typ == "Int64":
            frame[col] = values.astype("Int64")
    return frame


@dataclass(frozen=True)
class TrainingSequences:
    """Per-user item sequences in time order, original ids, like `Split.train`/`train_times`."""

    user_ids: np.ndarray  # [U]
    items: list[np.ndarray]  # per user, oldest first
    times: list[np.ndarray]  # per user, Unix seconds aligned with `items`

    def __len__(self) -> int:
        return len(self.user_ids)

    def encode(self, item_ids: np.ndarray) -> list[np.ndarray]:
        """Map original item ids to a split's codes (`Split.item_ids`); unknown items -> 0."""
        lookup = pd.Series(np.arange(len(item_ids)), index=item_ids)
        lookup = lookup[~lookup.index.duplicated()]
        return [
            lookup.reindex(s).fillna(0).to_numpy(np.int64) if len(s) else _EMPTY for s in self.items
        ]


def training_sequences(frame: pd.DataFrame) -> TrainingSequences:
    """Merge a frame's per-event history windows into one sequence per user.

    Each row holds the user's newest items as of its time, so consecutive rows overlap;
    walking a user's rows in time order and appending the items newer than those already
    taken rebuilds the sequence up to the user's last row, beyond the window when the frame
    has a row per event (a window can only lose items when more than `history_length`
    events fall between two consecutive rows).
    """
    need = [spec.USER_KEY, "timestamp", spec.HISTORY_ITEMS, spec.HISTORY_TIMES]
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise ConfigError(f"frame: missing column(s) {missing}; build it with training_frame")
    order = frame.assign(_t=_event_times(frame["timestamp"])).sort_values(
        [spec.USER_KEY, "_t"], kind="stable"
    )
    user_ids, items, times = [], [], []
    for user, rows in order.groupby(spec.USER_KEY, sort=True):
        seq_i: list[np.ndarray] = []
        seq_t: list[np.ndarray] = []
        newest: int | None = None
        for its, tss in zip(rows[spec.HISTORY_ITEMS], rows[spec.HISTORY_TIMES], strict=True):
            tss = np.asarray(tss, dtype=np.int64)
            new = tss > newest if newest is not None else np.ones(len(tss), dtype=bool)
            if new.any():
                seq_i.append(np.asarray(its, dtype=np.int64)[new])
                seq_t.append(tss[new])
                newest = int(tss[-1])
        user_ids.append(user)
        items.append(np.concatenate(seq_i) if seq_i else _EMPTY)
        times.append(np.concatenate(seq_t) if seq_t else _EMPTY)
    return TrainingSequences(np.asarray(user_ids, dtype=np.int64), items, times)


def training_examples(frame: pd.DataFrame) -> pd.DataFrame:
    """Per-event (input history, target item) pairs from a frame whose events carry `item_id`.

    The frame's history as of an event includes the event itself and any other event at the
    same second; the input is the history strictly before the target in the log's order
    (so at most `history_length - 1` items), and the model never sees the item it predicts
    nor anything after it.
    """
    if spec.ITEM_KEY not in frame.columns:
        raise ConfigError("frame: training examples need the target column 'item_id'")
    event_s = _event_times(frame["timestamp"]).astype("int64") // 10**9
    inputs = []
    for target, t, its, tss in zip(
        frame[spec.ITEM_KEY].to_numpy(np.int64),
        event_s.to_numpy(),
        frame[spec.HISTORY_ITEMS],
        frame[spec.HISTORY_TIMES],
        strict=True,
    ):
        its, tss = np.asarray(its, dtype=np.int64), np.asarray(tss, dtype=np.int64)
        at = np.flatnonzero((its == target) & (tss == t))
        # Not found (more same-second events than the window holds): keep only the past.
        cut = int(at[-1]) if len(at) else int(np.searchsorted(tss, t, side="left"))
        inputs.append(its[:cut])
    return pd.DataFrame(
        {
            spec.USER_KEY: frame[spec.USER_KEY].to_numpy(np.int64),
            "timestamp": event_s.to_numpy(),
            "input_item_ids": inputs,
            "target_item_id": frame[spec.ITEM_KEY].to_numpy(np.int64),
        }
    )


def split_from_store(
    split: Split, store: FeatureStore, service: str = spec.RECOMMENDER_SERVICE
) -> Split:
    """The split with its training sequences read from the offline store, point in time.

    Asks the FeatureService for every user's history as of their last training event (and,
    for histories longer than the window, as of earlier events half a window apart: Feast's
    point-in-time join), merges the windows into one sequence per user and keeps its first
    `len(split.train[u])` items: a user's training events are a prefix of their log, and the
    history row at the last one may also list later events of the same second. One query row
    per user rather than per event: the file offline store's join costs grow with the rows.

    The result must equal the sequences the split cut from the log: a store loaded from
    other data (or a stale materialization) fails here, naming a user that differs, rather
    than training a model on features serving will not have.
    """
    import dataclasses

    events = pd.DataFrame(_query_points(split), columns=[spec.USER_KEY, "timestamp"])
    seqs = training_sequences(training_frame(store, events, service))
    by_user = dict(zip(seqs.user_ids.tolist(), seqs.encode(split.item_ids), strict=True))
    train, differ = [], []
    for uid, real in zip(split.user_ids.tolist(), split.train, strict=True):
        got = by_user.get(uid, _EMPTY)[: len(real)]
        if not np.array_equal(got, real):
            differ.append(uid)
        train.append(got)
    if differ:
        raise ConfigError(
            f"feature store {store.repo_path}: service {service!r} holds other histories than "
            f"the data for {len(differ)} of {len(train)} users (e.g. user {differ[0]}); "
            "ingest and materialize this data before training from the store"
        )
    return dataclasses.replace(split, train=train)


def _query_points(split: Split) -> list[tuple[int, int]]:
    """(user id, time) rows whose history windows together cover each user's training items."""
    step = max(spec.HISTORY_LENGTH // 2, 1)  # overlap: same-second ties shift a window's end
    points = set()
    for uid, times in zip(split.user_ids.tolist(), split.train_times, strict=True):
        for i in range(len(times) - 1, -1, -step):
            points.add((uid, int(times[i])))
    return sorted(points)


@dataclass(frozen=True)
class FeatureSource:
    """Where a training run reads its sequences: a Feast repo, its environment, a service."""

    repo: str
    env: str = "local"
    service: str = spec.RECOMMENDER_SERVICE


def read_split(split: Split, source: FeatureSource) -> tuple[Split, dict]:
    """`split_from_store` on the source's store, plus the feature contract the run records."""
    from augrec.features import contract
    from augrec.features.store import open_store

    store = open_store(source.repo, source.env)
    out = split_from_store(split, store, source.service)
    return out, contract.record(store, [source.service], store.config.project)
