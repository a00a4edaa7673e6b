"""Item title vectors sized for a recommender's embedding table.

The encoder's 256-d vectors (`augrec.text.embed`, cached by content hash) are PCA-whitened
over the titled items and cut to the model's hidden size: the top components carry most of
what distinguishes titles, and whitening gives every kept direction unit variance, so that
scaled by `scale` (SASRec's embedding init std) they sit where a random init would.
Deterministic: the encoder is a table lookup, and each component's sign is fixed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from augrec.text.embed import embed_texts

INIT_STD = 0.02  # SASRecNet's embedding init


def whiten(vectors: np.ndarray, dim: int, scale: float = INIT_STD) -> np.ndarray:
    """PCA-whiten rows [n, d] to [n, dim] (zero columns beyond the data's rank), times `scale`.

    Each component's sign is chosen so that its largest-magnitude loading is positive: SVD
    signs are otherwise arbitrary and could differ between BLAS builds.
    """
    x = np.asarray(vectors, dtype=np.float64)
    out = np.zeros((len(x), dim), dtype=np.float32)
    if len(x) < 2:
        return out
    x = x - x.mean(0)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    keep = int(min(dim, (s > s[0] * 1e-6).sum())) if s[0] > 0 else 0
    comps = vt[:keep]
    signs = np.sign(comps[np.arange(keep), np.abs(comps).argmax(1)])
    comps = comps * signs[:, None]
    std = s[:keep] / np.sqrt(len(x) - 1)
    out[:, :keep] = (x @ comps.T / std * scale).astype(np.float32)
    return out


def item_text_vectors(
    titles: Sequence[str],
    dim: int,
    scale: float = INIT_STD,
    cache_dir: str | os.PathLike[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Whitened title vectors per item row, and which rows have a title.

    Args:
        titles: One title per encoded item (row 0 is padding; "" for an unknown title).
        dim: The recommender's hidden size.
        scale: Standard deviation of each kept direction.
        cache_dir: Where `embed_texts` caches the encoder's output.

    Returns:
        ([len(titles), dim] float32 with zero rows for untitled items and padding,
        [len(titles)] bool, True where the item has a title).
    """
    titled = np.array([i > 0 and bool(t.strip()) for i, t in enumerate(titles)])
    out = np.zeros((len(titles), dim), dtype=np.float32)
    if titled.sum() < 2:
        return out, titled
    raw = embed_texts([titles[i] for i in np.flatnonzero(titled)], cache_dir=cache_dir)
    out[titled] = whiten(raw, dim, scale)
    return out, titled
