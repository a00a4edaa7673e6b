"""Hand-checkable statistics behind the synthetic-data report: n-grams, distances, AUC, gates.

Pure functions over encoded sequences (item ids 1..n_items); `report.py` assembles them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy import stats

from augrec.errors import ConfigError

_INT64_MAX = int(np.iinfo(np.int64).max)
_DCR_CHUNK = 256  # query rows per sparse product: bounds memory at chunk x n_train


def clean_sequences(seqs: Sequence[np.ndarray], n_items: int, name: str) -> list[np.ndarray]:
    """Int64 copies without padding (0); raises if an id lies outside 1..n_items."""
    out = [np.asarray(s, dtype=np.int64).ravel() for s in seqs]
    flat = flatten(out)
    if flat.size and (flat.min() < 0 or flat.max() > n_items):
        raise ConfigError(
            f"{name}: item ids must lie in 1..n_items={n_items}, "
            f"got range {flat.min()}..{flat.max()}"
        )
    if (flat == 0).any():
        out = [a[a != 0] for a in out]
    return out


def seq_lengths(seqs: list[np.ndarray]) -> np.ndarray:
    """Length of each sequence, shape [len(seqs)]."""
    return np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))


def flatten(seqs: list[np.ndarray]) -> np.ndarray:
    """All sequences end to end (an empty int64 array for none)."""
    return np.concatenate(seqs) if seqs else np.zeros(0, dtype=np.int64)


def ngram_rows(seqs: list[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """All contiguous n-grams as rows [M, n], and the index of the sequence each came from."""
    lengths = seq_lengths(seqs)
    flat = flatten(seqs)
    starts_of_seq = np.cumsum(lengths) - lengths
    pos = np.arange(flat.size) - np.repeat(starts_of_seq, lengths)
    starts = np.flatnonzero(pos <= np.repeat(lengths, lengths) - n)
    owner = np.repeat(np.arange(len(seqs)), lengths)[starts]
    rows = flat[starts[:, None] + np.arange(n)] if starts.size else np.zeros((0, n), np.int64)
    return rows, owner


def ngram_keys(rows: list[np.ndarray], base: int) -> list[np.ndarray]:
    """One int64 key per n-gram row, consistent across the given row sets.

    Rows are read as base-`base` numbers when that fits in int64 (n=3 up to ~2M items);
    otherwise the rows of all sets are numbered jointly by `np.unique`.
    """
    n = rows[0].shape[1]
    if base**n <= _INT64_MAX:
        weights = np.array([base ** (n - 1 - j) for j in range(n)], dtype=np.int64)
        return [r @ weights for r in rows]
    sizes = [len(r) for r in rows]
    _, inverse = np.unique(np.concatenate(rows), axis=0, return_inverse=True)
    return np.split(inverse.ravel().astype(np.int64), np.cumsum(sizes)[:-1])


def in_sorted(values: np.ndarray, sorted_unique: np.ndarray) -> np.ndarray:
    """Boolean mask: which `values` occur in `sorted_unique` (ascending, no repeats).

    A binary search; `np.isin` would re-sort or re-hash the reference on every call.
    """
    if sorted_unique.size == 0:
        return np.zeros(np.shape(values), dtype=bool)
    idx = np.minimum(np.searchsorted(sorted_unique, values), sorted_unique.size - 1)
    return sorted_unique[idx] == values


def length_matched_windows(
    holdout: list[np.ndarray], target_lengths: np.ndarray, rng: np.random.Generator
) -> list[np.ndarray]:
    """Cut each holdout sequence to a random window with a length drawn from `target_lengths`."""
    if not holdout or target_lengths.size == 0:
        return list(holdout)
    want = rng.choice(target_lengths, size=len(holdout))
    out = []
    for s, w in zip(holdout, want, strict=True):
        k = int(min(w, len(s)))
        start = int(rng.integers(0, len(s) - k + 1))
        out.append(s[start : start + k])
    return out


def tv_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Total-variation distance between two count (or probability) vectors of equal length.

    Each vector is normalised to sum 1 first; 0.5 * sum |p - q| lies in [0, 1].
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if p.shape != q.shape:
        raise ValueError(f"tv_distance: shapes differ, {p.shape} vs {q.shape}")
    if p.sum() <= 0 or q.sum() <= 0:
        return float("nan")
    return float(0.5 * np.abs(p / p.sum() - q / q.sum()).sum())


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the two empirical CDFs."""
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    return float(stats.ks_2samp(a, b).statistic)


def mia_auc(member_scores: np.ndarray, nonmember_scores: np.ndarray) -> float:
    """AUC of "higher score = member": P(member > non-member) + 0.5 P(tie) (Mann-Whitney U)."""
    m = np.asarray(member_scores, dtype=np.float64).ravel()
    h = np.asarray(nonmember_scores, dtype=np.float64).ravel()
    if m.size == 0 or h.size == 0:
        raise ConfigError("membership inference needs at least one member and one non-member")
    if not (np.isfinite(m).all() and np.isfinite(h).all()):
        raise ConfigError("member/non-member scores must be finite log-likelihoods")
    ranks = stats.rankdata(np.concatenate([m, h]))  # ties get their average rank
    u = ranks[: m.size].sum() - m.size * (m.size + 1) / 2.0
    return float(u / (m.size * h.size))


def auc_standard_error(auc: float, n_pos: int, n_neg: int) -> float:
    """Hanley & McNeil (1982) standard error, so a reader sees how noisy a small-sample AUC is."""
    q1 = auc / (2.0 - auc)
    q2 = 2.0 * auc * auc / (1.0 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) / (
        n_pos * n_neg
    )
    return float(np.sqrt(max(var, 0.0)))


def _binary_sets(seqs: list[np.ndarray], n_cols: int) -> sp.csr_matrix:
    """Item-set incidence matrix [len(seqs), n_cols] with 0/1 entries."""
    lengths = seq_lengths(seqs)
    rows = np.repeat(np.arange(len(seqs)), lengths)
    m = sp.csr_matrix(
        (np.ones(rows.size, dtype=np.int32), (rows, flatten(seqs))), shape=(len(seqs), n_cols)
    )
    m.sum_duplicates()
    m.data[:] = 1
    return m


def closest_record_distance(
    queries: Sequence[np.ndarray], records: Sequence[np.ndarray], n_items: int
) -> np.ndarray:
    """Jaccard distance from each query's item set to its nearest record's item set.

    Intersections come from a sparse product in row chunks; a query sharing no item with any
    record is at distance 1. Empty queries are at distance 1 by convention.
    """
    q_sets = _binary_sets(list(queries), n_items + 1)
    r_sets = _binary_sets(list(records), n_items + 1)
    q_size = np.diff(q_sets.indptr)
    r_size = np.diff(r_sets.indptr)
    r_t = r_sets.T.tocsc()
    best = np.zeros(q_sets.shape[0], dtype=np.float64)
    for lo in range(0, q_sets.shape[0], _DCR_CHUNK):
        inter = (q_sets[lo : lo + _DCR_CHUNK] @ r_t).tocsr()
        counts = np.diff(inter.indptr)
        if inter.nnz == 0:
            continue
        row = np.repeat(np.arange(inter.shape[0]), counts) + lo
        sim = inter.data / (q_size[row] + r_size[inter.indices] - inter.data)
        nonempty = np.flatnonzero(counts)
        best[lo + nonempty] = np.maximum.reduceat(sim, inter.indptr[:-1][nonempty])
    return 1.0 - best


def rate_gate(
    x_syn: int, n_syn: int, x_base: int, n_base: int, tolerance: float, z: float
) -> dict[str, Any]:
    """Gate "synthetic rate <= baseline rate * (1 + tolerance) + z standard errors".

    The slack is z standard errors of the difference of two proportions under the pooled
    null rate: a clean generator compared with 40 holdout users should not fail because those
    40 happened to share fewer n-grams, while at real sample sizes the slack vanishes.
    """
    if n_syn == 0 or n_base == 0:
        return {"passed": None, "value": None, "threshold": None, "reason": "no eligible data"}
    p_syn, p_base = x_syn / n_syn, x_base / n_base
    pooled = (x_syn + x_base) / (n_syn + n_base)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n_syn + 1 / n_base))
    threshold = p_base * (1 + tolerance) + z * se
    return {
        "passed": bool(p_syn <= threshold),
        "value": float(p_syn),
        "threshold": float(threshold),
        "baseline": float(p_base),
    }


def size_matched_sample(
    seqs: list[np.ndarray], n_interactions: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Random whole sequences whose interactions first reach `n_interactions`.

    Distinct-item and distinct-pair counts grow with sample size, so diversity is compared on
    a real sample about as large as the synthetic one.
    """
    order = rng.permutation(len(seqs))
    total = np.cumsum(seq_lengths(seqs)[order])
    k = int(np.searchsorted(total, n_interactions)) + 1
    return [seqs[i] for i in np.sort(order[:k])]
