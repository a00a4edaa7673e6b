"""Seeded synthetic e-commerce data: the embedded default when a user brings none.

The generator plants structure a sequential model can learn and a popularity model cannot:
- power-law item popularity and user activity (most users are short, a few are long);
- categories with brands and log-normal prices, and titles (brand, adjective, product noun);
- co-purchase chains: each item has a few complements (shampoo -> conditioner) that often
  come next, so the *last* item predicts the next one;
- category loyalty: users return to categories they bought from (replenishment);
- increasing timestamps with exponential gaps.
Users never buy the same item twice, so leave-one-out targets are never masked as seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

START = 1_704_067_200  # 2024-01-01T00:00:00Z
DAY = 86_400


class SyntheticConfig(BaseModel):
    """Knobs of the generator; defaults give a Beauty-like shape at a small scale."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    users: int = Field(2000, ge=10)
    items: int = Field(1000, ge=20)
    seed: int = 0
    categories: int | None = Field(None, ge=2, description="default: items // 40, 5..50")
    popularity_exponent: float = Field(1.0, gt=0)
    min_length: int = Field(4, ge=3)
    max_length: int = Field(200, ge=3)
    p_complement: float = Field(0.5, ge=0, le=1, description="next item is a complement")
    p_loyal: float = Field(0.3, ge=0, le=1, description="next item from a category bought before")
    complements: int = Field(3, ge=1)


@dataclass(frozen=True)
class _Catalog:
    category: np.ndarray
    popularity: np.ndarray  # normalised weights
    complements: np.ndarray  # [items, n_complements]
    cat_members: list[np.ndarray]
    cat_cdf: list[np.ndarray]


def _catalog(cfg: SyntheticConfig, rng: np.random.Generator) -> tuple[_Catalog, pd.DataFrame]:
    n = cfg.items
    n_cat = cfg.categories or int(np.clip(n // 40, 5, 50))
    cat_sizes = rng.dirichlet(np.full(n_cat, 2.0))
    category = rng.choice(n_cat, size=n, p=cat_sizes)
    ranks = rng.permutation(n) + 1
    pop = ranks.astype(np.float64) ** (-cfg.popularity_exponent)
    pop /= pop.sum()
    members = [np.flatnonzero(category == c) for c in range(n_cat)]
    cdfs = [np.cumsum(pop[m]) / pop[m].sum() if m.size else np.zeros(0) for m in members]
    # Complements come from a "related" category (c -> c+1), chosen by popularity, so the
    # transition is learnable from co-occurrence but is not just "the popular items".
    comp = np.zeros((n, cfg.complements), dtype=np.int64)
    for i in range(n):
        c = (category[i] + 1) % n_cat
        pool = members[c] if members[c].size else np.arange(n)
        w = pop[pool] ** 0.5
        comp[i] = rng.choice(
            pool, size=cfg.complements, p=w / w.sum(), replace=pool.size < cfg.complements
        )
    brands_per_cat = 8
    brand = category * brands_per_cat + rng.integers(0, brands_per_cat, size=n)
    cat_price = rng.lognormal(mean=3.0, sigma=0.6, size=n_cat)
    price = np.round(cat_price[category] * rng.lognormal(0.0, 0.35, size=n), 2)
    items = pd.DataFrame(
        {
            "item_id": np.arange(1, n + 1, dtype=np.int64),
            "category": [f"cat_{c:02d}" for c in category],
            "brand": [f"brand_{b:03d}" for b in brand],
            "price": price,
            "title": _titles(category, brand, cfg.seed),
        }
    )
    return _Catalog(category, pop, comp, members, cdfs), items


# Plausible product text for the demo catalog, so the text and search paths run on it: each
# category is a product type (the department is documentation); each brand a made-up name.
_PRODUCTS = (
    ("Lipstick", "Makeup Lips"),
    ("Nail Polish", "Makeup Nails"),
    ("Mascara", "Makeup Eyes"),
    ("Eyeliner", "Makeup Eyes"),
    ("Foundation", "Makeup Face"),
    ("Concealer", "Makeup Face"),
    ("Shampoo", "Hair Care"),
    ("Conditioner", "Hair Care"),
    ("Hair Oil", "Hair Care"),
    ("Face Serum", "Skin Care Face"),
    ("Moisturizer", "Skin Care Face"),
    ("Sunscreen", "Skin Care Sun"),
    ("Body Lotion", "Bath & Body"),
    ("Shower Gel", "Bath & Body"),
    ("Eau de Parfum", "Fragrance Women"),
    ("Cologne", "Fragrance Men"),
    ("Makeup Brush", "Tools & Accessories"),
    ("Hair Dryer", "Tools & Accessories Hair"),
)
_ADJECTIVES = (
    "Matte",
    "Hydrating",
    "Volumizing",
    "Long-Lasting",
    "Nourishing",
    "Gentle",
    "Intense",
    "Sheer",
    "Waterproof",
    "Organic",
    "Classic",
    "Radiant",
    "Ultra Light",
    "Repairing",
)
_COLOURS = ("Red", "Nude", "Rose", "Black", "Coral", "Berry", "Clear", "Gold", "")
_SYLLABLES = ("lu", "ma", "ve", "ro", "sa", "ki", "no", "ta", "li", "bel", "or", "en")


def _brand_name(b: int) -> str:
    a, c = _SYLLABLES[b % 12], _SYLLABLES[(b // 12) % 12]
    return f"{a}{c}{_SYLLABLES[(b * 7 + 3) % 12]}".capitalize()


def _titles(category: np.ndarray, brand: np.ndarray, seed: int) -> list[str]:
    """`<Brand> <adjective> [<colour>] <product noun>, <size>` per item (its own rng stream)."""
    rng = np.random.default_rng([seed, 7])  # separate stream: interactions do not change
    out = []
    for c, b in zip(category, brand, strict=True):
        noun, _ = _PRODUCTS[int(c) % len(_PRODUCTS)]
        adj = _ADJECTIVES[rng.integers(len(_ADJECTIVES))]
        colour = _COLOURS[rng.integers(len(_COLOURS))]
        size = f"{int(rng.choice([15, 30, 50, 100, 250]))} ml"
        words = [_brand_name(int(b)), adj, colour, noun]
        out.append(" ".join(w for w in words if w) + f", {size}")
    return out


def generate(cfg: SyntheticConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (interactions, items) in the data contract's schema, 1-based ids."""
    rng = np.random.default_rng(cfg.seed)
    cat, items = _catalog(cfg, rng)
    n = cfg.items
    pop_cdf = np.cumsum(cat.popularity)
    lengths = cfg.min_length + np.floor(rng.pareto(1.6, size=cfg.users) * 3).astype(np.int64)
    lengths = np.minimum(lengths, min(cfg.max_length, n // 2))
    users, seq_items, times = [], [], []
    for u in range(cfg.users):
        owned: set[int] = set()
        seq: list[int] = []
        cats: list[int] = []
        for _ in range(int(lengths[u])):
            for _attempt in range(10):
                r = rng.random()
                if seq and r < cfg.p_complement:
                    i = int(cat.complements[seq[-1], rng.integers(cfg.complements)])
                elif cats and r < cfg.p_complement + cfg.p_loyal:
                    c = cats[rng.integers(len(cats))]
                    m = cat.cat_members[c]
                    i = int(m[np.searchsorted(cat.cat_cdf[c], rng.random())]) if m.size else 0
                else:
                    i = int(min(np.searchsorted(pop_cdf, rng.random()), n - 1))
                if i not in owned:
                    break
            else:
                continue
            owned.add(i)
            seq.append(i)
            cats.append(int(cat.category[i]))
        start = START + int(rng.integers(0, 365 * DAY))
        gaps = rng.exponential(5 * DAY, size=len(seq)).astype(np.int64) + 60
        users.extend([u + 1] * len(seq))
        seq_items.extend(i + 1 for i in seq)
        times.extend((start + np.cumsum(gaps)).tolist())
    interactions = pd.DataFrame(
        {
            "user_id": np.asarray(users, dtype=np.int64),
            "item_id": np.asarray(seq_items, dtype=np.int64),
            "timestamp": np.asarray(times, dtype=np.int64),
            "event_type": "purchase",
            "weight": np.float32(1.0),
        }
    )
    return interactions, items
