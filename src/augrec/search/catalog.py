"""Each item's searchable text, aligned with a model's encoded ids, and the catalog fingerprint.

Text comes from the items table (`title`, `brand`, `category` columns) or, for Amazon
sequence files, from the attribute ids of `*_item2attributes.json` decoded by an attribute
table (`attribute_id, name[, kind_heuristic]`, e.g. Beauty's `derived/beauty_attributes.tsv`):
an attribute of kind `brand` is the brand, every other attribute is a category-path element.
"""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from augrec.data.schema import Dataset
from augrec.errors import ConfigError


def fingerprint(item_ids: np.ndarray) -> str:
    """SHA-256 of a model's encoded-id -> item-id map: which items, in which order."""
    arr = np.ascontiguousarray(np.asarray(item_ids, dtype=np.int64))
    return "sha256:" + hashlib.sha256(arr.tobytes()).hexdigest()


@dataclass(frozen=True)
class CatalogText:
    """Searchable text per encoded item id (index 0 is padding, empty text).

    Attributes:
        item_ids: [n_items + 1] original item id of each encoded id (the model's map).
        titles: Product title per encoded id ("" when unknown).
        brands: Brand name per encoded id ("" when unknown).
        categories: Category-path names per encoded id (may be empty).
    """

    item_ids: np.ndarray
    titles: list[str]
    brands: list[str]
    categories: list[list[str]]

    def __post_init__(self):
        n = len(self.item_ids)
        if not (len(self.titles) == len(self.brands) == len(self.categories) == n):
            raise ValueError("CatalogText: titles, brands and categories must align with item_ids")

    @property
    def n_items(self) -> int:
        """Catalog size (encoded ids 1..n_items)."""
        return len(self.item_ids) - 1

    def documents(self) -> list[str]:
        """What BM25 and the encoder see per item: title, brand and category names."""
        return [
            " ".join(p for p in (t, b, " ".join(c)) if p)
            for t, b, c in zip(self.titles, self.brands, self.categories, strict=True)
        ]

    def frame(self) -> pd.DataFrame:
        """The catalog as a table (original ids), for the index files and filters."""
        return pd.DataFrame(
            {
                "item_id": self.item_ids.astype(np.int64),
                "title": self.titles,
                "brand": self.brands,
                "categories": [" > ".join(c) for c in self.categories],
            }
        )

    @classmethod
    def from_frame(cls, df: pd.DataFrame) -> CatalogText:
        """Inverse of `frame`."""
        return cls(
            item_ids=df["item_id"].to_numpy(np.int64),
            titles=df["title"].fillna("").astype(str).tolist(),
            brands=df["brand"].fillna("").astype(str).tolist(),
            categories=[[c for c in s.split(" > ") if c] for s in df["categories"].fillna("")],
        )


def read_attribute_names(path: str | Path) -> dict[int, tuple[str, str]]:
    """`attribute_id -> (name, kind)` from a TSV/CSV with `attribute_id, name[, kind...]`."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"--attributes: no such file: {path}")
    sep = "\t" if path.suffix == ".tsv" else ","
    df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    if not {"attribute_id", "name"} <= set(df.columns):
        raise ConfigError(f"--attributes: {path} needs attribute_id and name columns")
    kind = df["kind_heuristic"] if "kind_heuristic" in df.columns else df.get("kind", "")
    kinds = kind if isinstance(kind, pd.Series) else pd.Series([""] * len(df))
    return {
        int(a): (html.unescape(n), k)
        for a, n, k in zip(df["attribute_id"], df["name"], kinds, strict=True)
    }


def catalog_from_dataset(
    ds: Dataset,
    item_ids: np.ndarray,
    attribute_names: dict[int, tuple[str, str]] | None = None,
) -> CatalogText:
    """Searchable text for the items of `item_ids` (a model's map), from a loaded dataset.

    Args:
        ds: The dataset (its items table, and its Amazon attributes when present).
        item_ids: [n_items + 1] the model's encoded-id -> item-id map; index 0 is padding.
        attribute_names: Decodes Amazon attribute ids (see `read_attribute_names`); without
            it, Amazon attributes contribute no text.
    """
    item_ids = np.asarray(item_ids, dtype=np.int64)
    n = len(item_ids)
    titles, brands = [""] * n, [""] * n
    cats: list[list[str]] = [[] for _ in range(n)]
    table = ds.items.set_index("item_id") if len(ds.items) else None
    if table is not None:
        known = table.reindex(item_ids[1:])
        for col, out in (("title", titles), ("brand", brands)):
            if col in known.columns:
                for row, v in enumerate(known[col].tolist(), start=1):
                    out[row] = str(v) if pd.notna(v) else ""
        if "category" in known.columns and not ds.item_attributes:
            for row, v in enumerate(known["category"].tolist(), start=1):
                cats[row] = [str(v)] if pd.notna(v) and str(v) else []
    if ds.item_attributes and attribute_names:
        for row, item in enumerate(item_ids[1:], start=1):
            for a in ds.item_attributes.get(int(item), []):
                name, kind = attribute_names.get(a, ("", ""))
                if not name:
                    continue
                if kind == "brand" and not brands[row]:
                    brands[row] = name
                elif kind != "brand":
                    cats[row].append(name)
    return CatalogText(item_ids, titles, brands, cats)
