"""Names and settings shared by the Feast repo (`feature_repo/`) and the code that feeds it.

One place for every name a feature row carries, so the ingest writer, the training-frame
reader, the online client and the Feast definitions cannot drift apart. Importing this module
is free (no Feast): `feast apply` imports it from `feature_repo/`.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT = "augrec"

# Entities and their join keys.
USER_ENTITY = "user"
USER_KEY = "user_id"
ITEM_ENTITY = "item"
ITEM_KEY = "item_id"

# Every source carries its rows' time in this column (tz-aware UTC).
TIMESTAMP_FIELD = "event_timestamp"

# The history window: the newest HISTORY_LENGTH items as of each event. 50 is the usual
# SASRec input length on Beauty; longer training sequences are rebuilt from per-event rows
# (see `training.training_sequences`).
HISTORY_LENGTH = 50
# Item popularity windows, in days, counted over (t - window, t].
POPULARITY_WINDOWS_DAYS = (7, 30)

# Feature views.
USER_HISTORY_VIEW = "user_history"
USER_ACTIVITY_VIEW = "user_activity"
ITEM_ATTRIBUTES_VIEW = "item_attributes"
ITEM_POPULARITY_VIEW = "item_popularity"

# Feature columns, per view.
HISTORY_ITEMS = "item_ids"
HISTORY_TIMES = "item_timestamps"
USER_HISTORY_FEATURES = (HISTORY_ITEMS, HISTORY_TIMES)
USER_ACTIVITY_FEATURES = ("event_count", "first_event_ts", "last_event_ts")
ITEM_ATTRIBUTE_FEATURES = ("category", "brand", "price")
ITEM_POPULARITY_FEATURES = (
    "events_total",
    *(f"events_{d}d" for d in POPULARITY_WINDOWS_DAYS),
    "last_event_ts",
)

# Sources: parquet files under the sources directory, plus push sources for live events.
# History and activity live in separate files although both have a row per user event: the
# file offline store re-hashes every list value of a file it reads (dask tokenizes object
# columns by pickling them), so a view without lists must not read a file with them.
USER_HISTORY_FILE = "user_history.parquet"
USER_ACTIVITY_FILE = "user_activity.parquet"
ITEM_ATTRIBUTES_FILE = "item_attributes.parquet"
ITEM_POPULARITY_FILE = "item_popularity.parquet"
USER_HISTORY_PUSH = "user_history_push"
USER_ACTIVITY_PUSH = "user_activity_push"

# Feature services. Bump the suffix whenever a definition they serve changes (docs/features.md).
RECOMMENDER_SERVICE = "recommender_v1"
ITEM_CATALOG_SERVICE = "item_catalog_v1"

# Where the sources live: relative paths resolve against the feature repo (Feast resolves
# FileSource paths the same way), so a copy of the repo carries its own data.
SOURCES_DIR_ENV = "AUGREC_FEATURE_SOURCES"
DEFAULT_SOURCES_DIR = "data/sources"


def sources_dir_setting() -> str:
    """The sources directory as written into the Feast definitions (may be relative)."""
    return os.environ.get(SOURCES_DIR_ENV) or DEFAULT_SOURCES_DIR


def sources_dir(repo: str | Path) -> Path:
    """The sources directory of `repo` as a path on this machine."""
    setting = Path(sources_dir_setting())
    return setting if setting.is_absolute() else Path(repo) / setting
