"""Sources: parquet files written by `augrec features ingest`, and the live-event push sources.

Paths are relative to this repo unless AUGREC_FEATURE_SOURCES says otherwise, so a copy of
the repo (a test's temporary one, a container's) reads its own data.
"""

import os

from feast import FileSource, PushSource

from augrec.features import spec

_DIR = spec.sources_dir_setting()
# Sources on an S3-compatible server (AUGREC_FEATURE_SOURCES=s3://...): Feast's file offline
# store takes the endpoint per source; None (AWS, or local files) changes nothing.
_S3_ENDPOINT = os.environ.get("AUGREC_S3_ENDPOINT_URL") if _DIR.startswith("s3://") else None

user_history_source = FileSource(
    name="user_history_file",
    path=f"{_DIR}/{spec.USER_HISTORY_FILE}",
    timestamp_field=spec.TIMESTAMP_FIELD,
    s3_endpoint_override=_S3_ENDPOINT,
    description="One row per user event (events sharing a timestamp share the row): "
    "the user's newest items as of that event.",
)

user_activity_source = FileSource(
    name="user_activity_file",
    path=f"{_DIR}/{spec.USER_ACTIVITY_FILE}",
    timestamp_field=spec.TIMESTAMP_FIELD,
    s3_endpoint_override=_S3_ENDPOINT,
    description="One row per user event, like user_history_file: activity counts as of it.",
)

# Live events land here: the online client pushes the user's updated rows.
user_history_push = PushSource(name=spec.USER_HISTORY_PUSH, batch_source=user_history_source)
user_activity_push = PushSource(name=spec.USER_ACTIVITY_PUSH, batch_source=user_activity_source)

item_popularity_source = FileSource(
    name="item_popularity_file",
    path=f"{_DIR}/{spec.ITEM_POPULARITY_FILE}",
    timestamp_field=spec.TIMESTAMP_FIELD,
    s3_endpoint_override=_S3_ENDPOINT,
    description="One row per item and event time: interaction counts as of that time.",
)

item_attributes_source = FileSource(
    name="item_attributes_file",
    path=f"{_DIR}/{spec.ITEM_ATTRIBUTES_FILE}",
    timestamp_field=spec.TIMESTAMP_FIELD,
    s3_endpoint_override=_S3_ENDPOINT,
    description="One row per catalog item, stamped with its first interaction.",
)
