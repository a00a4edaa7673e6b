"""Feature views: what is known about a user or an item as of a point in time.

A change here changes the fingerprint of every service that serves the view: publish it under
a new view and service name (docs/features.md, "The version contract").
"""

from datetime import timedelta

from entities import item, user
from feast import FeatureView, Field
from feast.types import Array, Float64, Int64, String
from sources import (
    item_attributes_source,
    item_popularity_source,
    user_activity_push,
    user_history_push,
)

from augrec.features import spec

# ttl=0 means "never expires": a purchase from years ago is still part of the history.
FOREVER = timedelta(0)

user_history = FeatureView(
    name=spec.USER_HISTORY_VIEW,
    entities=[user],
    ttl=FOREVER,
    schema=[
        Field(
            name=spec.HISTORY_ITEMS,
            dtype=Array(Int64),
            description="Newest item ids, oldest first, as of the row's time.",
        ),
        Field(
            name=spec.HISTORY_TIMES,
            dtype=Array(Int64),
            description="Unix seconds of each item in item_ids.",
        ),
    ],
    source=user_history_push,
    online=True,
    tags={"history_length": str(spec.HISTORY_LENGTH), "order": "oldest_first"},
    description="The user's recent item history as of each event.",
)

user_activity = FeatureView(
    name=spec.USER_ACTIVITY_VIEW,
    entities=[user],
    ttl=FOREVER,
    schema=[
        Field(name="event_count", dtype=Int64, description="Events up to the row's time."),
        Field(name="first_event_ts", dtype=Int64, description="Unix seconds of the first."),
        Field(name="last_event_ts", dtype=Int64, description="Unix seconds of the latest."),
    ],
    source=user_activity_push,
    online=True,
    description="How active the user has been, as of each event.",
)

item_popularity = FeatureView(
    name=spec.ITEM_POPULARITY_VIEW,
    entities=[item],
    ttl=FOREVER,
    schema=[
        Field(name="events_total", dtype=Int64),
        *(
            Field(
                name=f"events_{d}d",
                dtype=Int64,
                description=f"Interactions in the {d} days up to the row's time.",
            )
            for d in spec.POPULARITY_WINDOWS_DAYS
        ),
        Field(
            name="last_event_ts",
            dtype=Int64,
            description="Unix seconds of the latest interaction: window counts are as of it.",
        ),
    ],
    source=item_popularity_source,
    online=True,
    tags={"windows_days": ",".join(str(d) for d in spec.POPULARITY_WINDOWS_DAYS)},
    description="Item popularity over windows, as of each interaction with the item.",
)

item_attributes = FeatureView(
    name=spec.ITEM_ATTRIBUTES_VIEW,
    entities=[item],
    ttl=FOREVER,
    schema=[
        Field(name="category", dtype=String),
        Field(name="brand", dtype=String),
        Field(name="price", dtype=Float64, description="Null where the catalog has none."),
    ],
    source=item_attributes_source,
    online=True,
    description="Catalog attributes, where known.",
)
