"""Heuristic augmentation baseline: CoSeRec's operators (Liu et al., 2021) on real histories.

crop, mask (drop items), reorder, insert and substitute; insert/substitute pick each item's
most co-occurring neighbour from the training data, so no held-out item can appear.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

OPERATORS = ("crop", "mask", "reorder", "insert", "substitute")


def nearest_neighbour(sim: sp.csr_matrix) -> np.ndarray:
    """Most similar item per item [N] (0 when an item has no neighbour)."""
    out = np.zeros(sim.shape[0], dtype=np.int64)
    for r in range(sim.shape[0]):
        lo, hi = sim.indptr[r], sim.indptr[r + 1]
        if hi > lo:
            out[r] = sim.indices[lo + int(np.argmax(sim.data[lo:hi]))]
    return out


def augment_one(
    seq: np.ndarray, op: str, neighbour: np.ndarray, rng: np.random.Generator, rate: float = 0.3
) -> np.ndarray:
    """Apply one operator; the result keeps at least two items and never repeats an item."""
    n = len(seq)
    k = max(1, int(round(rate * n)))
    if op == "crop":
        length = max(2, n - k)
        start = int(rng.integers(0, n - length + 1))
        out = seq[start : start + length]
    elif op == "mask":
        drop = rng.choice(n, size=min(k, n - 2), replace=False) if n > 2 else []
        out = np.delete(seq, drop)
    elif op == "reorder":
        length = min(n, k + 1)
        start = int(rng.integers(0, n - length + 1))
        out = seq.copy()
        out[start : start + length] = rng.permutation(out[start : start + length])
    elif op == "insert":
        out_list: list[int] = []
        where = set(rng.choice(n, size=min(k, n), replace=False).tolist())
        for i, item in enumerate(seq):
            out_list.append(int(item))
            nb = int(neighbour[item])
            if i in where and nb > 0 and nb not in out_list and nb not in seq:
                out_list.append(nb)
        out = np.asarray(out_list, dtype=np.int64)
    elif op == "substitute":
        out = seq.copy()
        for i in rng.choice(n, size=min(k, n), replace=False):
            nb = int(neighbour[seq[i]])
            if nb > 0 and nb not in out:
                out[i] = nb
    else:
        raise ValueError(f"augment.operator: unknown value {op!r}; expected one of {OPERATORS}")
    return np.asarray(out, dtype=np.int64)


def heuristic_sequences(
    train: Sequence[np.ndarray],
    users: np.ndarray,
    copies: int,
    neighbour: np.ndarray,
    seed: int,
) -> list[np.ndarray]:
    """`copies` augmented versions of each selected user's training history, random operators."""
    rng = np.random.default_rng(seed)
    out = []
    for u in users:
        seq = train[u]
        if len(seq) < 2:
            continue
        for _ in range(copies):
            op = OPERATORS[int(rng.integers(len(OPERATORS)))]
            aug = augment_one(seq, op, neighbour, rng)
            if len(aug) >= 2:
                out.append(aug)
    return out
