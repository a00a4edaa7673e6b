"""Typed requests and responses of the serving API, shared by HTTP, gRPC and tests.

Validation lives here, once: the Bento validates HTTP bodies against these models and the
gRPC servicer builds the same models from protobuf messages, so both protocols refuse the
same inputs with the same field names. Unknown fields are refused (a typo such as `user`
for `user_id` would otherwise be ignored silently), and types are strict.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Feast keys and our encoded catalogs are int64; larger ids cannot exist, and refusing them
# here keeps them from overflowing a protobuf or SQLite integer further down.
MAX_ID = 2**63 - 1
MAX_K = 1000  # a page of recommendations, not a catalog dump
MAX_RECENT_ITEMS = 200
MAX_CATEGORY_LENGTH = 200
MAX_QUERY_LENGTH = 500  # characters; a search box, not a document
# Unix seconds; events outside 1970..2100 are typos (milliseconds, say). Bounds are
# inclusive: BentoML publishes OpenAPI 3.0, where exclusive bounds are spelt differently.
MAX_TIMESTAMP = 4_102_444_800

EventType = Literal["view", "cart", "purchase"]
FallbackReason = Literal[
    "empty_history",  # unknown user, or no item of the history is known to the model
    "feature_store_unavailable",  # the stored history could not be read
    "no_item_representation",  # /similar: the model has none, or the item has no neighbours
    "anonymous",  # /search without a user_id: the unpersonalised ranking
]

UserId = Field(ge=0, le=MAX_ID, description="the user's id (as in the interaction log)")
ItemId = Field(ge=0, le=MAX_ID, description="an item's id (as in the catalog)")


class _Request(BaseModel):
    # strict: JSON types must match ("5" is not a user id, true is not 1), as protobuf's do.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class RecommendRequest(_Request):
    """Top-k items for one user."""

    user_id: int = UserId
    k: int = Field(10, ge=1, le=MAX_K, description="how many items to return")
    exclude_seen: bool = Field(True, description="leave out items in the user's history")
    recent_items: list[int] | None = Field(
        None,
        max_length=MAX_RECENT_ITEMS,
        description="the user's newest items not yet sent to /events, oldest first; appended "
        "to the stored history (ids the model does not know are skipped)",
    )
    category: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_CATEGORY_LENGTH,
        description="only items of this catalog category",
    )


class SimilarRequest(_Request):
    """Items most similar to one item."""

    item_id: int = ItemId
    k: int = Field(10, ge=1, le=MAX_K, description="how many items to return")


class EventRequest(_Request):
    """One live interaction, folded into the user's online features."""

    user_id: int = UserId
    item_id: int = ItemId
    event_type: EventType = Field("purchase", description="view, cart or purchase")
    timestamp: int | None = Field(
        None, ge=0, le=MAX_TIMESTAMP, description="Unix seconds (default: now, on the server)"
    )


class SearchFilters(_Request):
    """Restrict search results; unknown filter names are refused (naming the filter)."""

    category: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_CATEGORY_LENGTH,
        description="only items with this category-path name (case-insensitive)",
    )
    brand: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_CATEGORY_LENGTH,
        description="only items of this brand (case-insensitive)",
    )


class SearchRequest(_Request):
    """Products matching a query, ranked for the user when one is named."""

    query: str = Field(
        min_length=1, max_length=MAX_QUERY_LENGTH, description="what the shopper typed"
    )
    user_id: int | None = Field(
        None, ge=0, le=MAX_ID, description="the shopper (absent: anonymous, unpersonalised)"
    )
    k: int = Field(10, ge=1, le=MAX_K, description="how many items to return")
    filters: SearchFilters | None = None

    @field_validator("query")
    @classmethod
    def _has_text(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must contain a word, not only whitespace")
        return v


class ScoredItem(BaseModel):
    """One recommended item and its model score (higher is better)."""

    item_id: int
    score: float


class RecommendResponse(BaseModel):
    """Top-k items, best first."""

    items: list[ScoredItem]
    model_version: str
    fallback: bool = Field(description="true when the answer is not personalised by the model")
    fallback_reason: FallbackReason | None = None


class SimilarResponse(BaseModel):
    """Most similar items, best first."""

    item_id: int
    items: list[ScoredItem]
    model_version: str
    fallback: bool = Field(description="true when the items are popular, not similar, items")
    fallback_reason: FallbackReason | None = None


class SearchResponse(BaseModel):
    """Matching items, best first."""

    items: list[ScoredItem]
    model_version: str
    personalized: bool = Field(description="re-ranked by the user's sequential model")
    fallback: bool = Field(description="true when the ranking is not personalised")
    fallback_reason: FallbackReason | None = None


class EventResponse(BaseModel):
    """What happened to an event."""

    accepted: bool = Field(description="the event reached the feature store")
    changed: bool = Field(
        description="the user's features changed (false for a duplicate or a too-old event)"
    )


class Health(BaseModel):
    """What readiness is made of (`GET /status`, gRPC health, OIP ServerReady)."""

    ready: bool
    model_version: str
    model: str
    feature_store: Literal["ok", "unavailable"]
    contract: Literal["ok", "mismatch", "not_recorded", "unchecked"]
    readiness: Literal["model", "model_and_store"] = Field(
        "model",
        description="what `ready` requires: the model loaded (default), or the feature store "
        "answering too (AUGREC_READINESS_REQUIRES_STORE)",
    )
    degraded: bool = Field(
        False, description="the feature store does not answer: answers are flagged fallbacks"
    )
    problems: list[str] = []
