"""The data contract every loader produces (ARCHITECTURE section 3).

`interactions`: user_id (int64), item_id (int64), timestamp (int64 Unix seconds, UTC),
event_type (view|cart|purchase), weight (float32).
`items`: item_id (int64) plus any of category, brand, price, title.
Ids are the user's own: they survive every step to `recommendations.parquet`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

INTERACTION_COLUMNS = ("user_id", "item_id", "timestamp", "event_type", "weight")
REQUIRED_INTERACTION_COLUMNS = ("user_id", "item_id", "timestamp")
ITEM_COLUMNS = ("item_id", "category", "brand", "price", "title")
EVENT_TYPES = ("view", "cart", "purchase")

# Plausible range for e-commerce event times; outside it a column is almost surely in the
# wrong unit (milliseconds) or garbage.
MIN_TIMESTAMP = 0  # 1970-01-01: sequence files without times use positions from here
MAX_TIMESTAMP = 4_102_444_800  # 2100-01-01


@dataclass
class Dataset:
    """Interactions and optional item attributes in the contract's schema.

    Attributes:
        name: Short name for reports (file stem by default).
        interactions: Sorted by (user_id, timestamp, original order).
        items: One row per item_id; may be empty.
        has_time: False when the source had no timestamps and `timestamp` is the position.
        source_format: Which loader produced it.
        item_attributes: item_id -> attribute ids (Amazon `*_item2attributes.json`), optional.
        files: Every file the loader read (interactions first, then companions such as an
            items table, timestamps or attributes); the run manifest fingerprints them.
    """

    name: str
    interactions: pd.DataFrame
    items: pd.DataFrame
    has_time: bool = True
    source_format: str = "augrec"
    item_attributes: dict[int, list[int]] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    @property
    def n_users(self) -> int:
        """Distinct users."""
        return int(self.interactions["user_id"].nunique())

    @property
    def n_items(self) -> int:
        """Distinct items seen in interactions."""
        return int(self.interactions["item_id"].nunique())

    def summary(self) -> dict[str, object]:
        """Counts a person checks first when a dataset loads."""
        lengths = self.interactions.groupby("user_id").size()
        return {
            "name": self.name,
            "format": self.source_format,
            "users": self.n_users,
            "items": self.n_items,
            "interactions": len(self.interactions),
            "history_length_median": float(lengths.median()) if len(lengths) else 0.0,
            "has_time": self.has_time,
            "item_attributes": int(len(self.items.columns) - 1) if len(self.items) else 0,
        }


def normalise_interactions(df: pd.DataFrame) -> pd.DataFrame:
    """Fill optional columns with their defaults, fix dtypes and sort; call after validation."""
    out = df.copy()
    if "event_type" not in out.columns:
        out["event_type"] = "purchase"
    if "weight" not in out.columns:
        out["weight"] = 1.0
    out = out[list(INTERACTION_COLUMNS)]
    out = out.astype(
        {
            "user_id": "int64",
            "item_id": "int64",
            "timestamp": "int64",
            "event_type": "string",
            "weight": "float32",
        }
    )
    # Stable sort keeps the file order for equal timestamps (Amazon day stamps tie often).
    out = out.sort_values(["user_id", "timestamp"], kind="stable").reset_index(drop=True)
    return out
