"""Entities: who and what features describe. Join keys are the user's own ids (int64)."""

from feast import Entity, ValueType

from augrec.features import spec

user = Entity(
    name=spec.USER_ENTITY,
    join_keys=[spec.USER_KEY],
    value_type=ValueType.INT64,
    description="A shopper, keyed by the interaction log's user_id.",
)

item = Entity(
    name=spec.ITEM_ENTITY,
    join_keys=[spec.ITEM_KEY],
    value_type=ValueType.INT64,
    description="A catalog item, keyed by the interaction log's item_id.",
)
