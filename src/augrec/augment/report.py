"""The synthetic-data report: is generated behaviour faithful, diverse and safe to train on?

Three sections (ARCHITECTURE section 5):

- fidelity: how close the synthetic data is to the real training data;
- diversity: how much of the catalog and of the transition space it uses;
- privacy: whether it copies training users (exact n-gram copies, distance to the closest
  record) and whether the generator's likelihood tells members from non-members.

Every synthetic number sits beside the same number for `holdout`, real users the generator
never saw. That baseline is the point: real users share n-grams with each other by nature, a
finite sample is never at total-variation distance 0 from its population, and so on. A
synthetic number is judged against what fresh real data scores, not against zero.

Privacy numbers from sequences depend strongly on sequence length (a long sequence has more
n-grams that can collide; a short item set is more often identical to someone's). Generated
prefixes are usually shorter than real histories, which would make a plain holdout baseline
lenient. By default the privacy baseline therefore uses length-matched holdout windows: each
holdout sequence is cut to a random contiguous window whose length is drawn from the synthetic
length distribution (capped at the sequence's own length, which only makes the gate stricter).
The unmatched holdout numbers are reported too.

Pass only what the generator wrote: a real user's own history appended to their synthetic
prefix is a copy of training data by definition and would fail the copy gate.

Everything here is a pure function of numpy arrays; `write_report` is the only I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from augrec.augment.report_stats import (
    auc_standard_error,
    clean_sequences,
    closest_record_distance,
    flatten,
    in_sorted,
    ks_statistic,
    length_matched_windows,
    mia_auc,
    ngram_keys,
    ngram_rows,
    rate_gate,
    seq_lengths,
    size_matched_sample,
    tv_distance,
)
from augrec.errors import ConfigError
from augrec.evaluation.metrics import tail_items
from augrec.io import atomic_write_text, write_json

SCHEMA_VERSION = 1
_RANK_POINTS = 120  # log-spaced ranks kept for the popularity plot
_TOP_GROUPS = 12  # categories drawn in the mix plot; the rest are summed as "other"
_DCR_BINS = 20


class ReportConfig(BaseModel):
    """Settings and acceptance thresholds for the synthetic-data report."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ngram: int = Field(3, ge=2, description="length of the contiguous n-grams the copy test uses")
    max_mia_auc: float = Field(
        0.6, ge=0.5, le=1.0, description="highest membership-inference AUC the gate accepts"
    )
    copy_rate_tolerance: float = Field(
        0.0,
        ge=0.0,
        description=(
            "relative excess over the holdout rate that still passes (0.1 = +10%), for both "
            "copy gates: n-gram copies and exact item-set matches"
        ),
    )
    slack_z: float = Field(
        2.0,
        ge=0.0,
        description=(
            "absolute slack on the copy and exact-match gates, in standard errors of the "
            "difference of the two rates; it shrinks as 1/sqrt(n), so only tiny samples feel it"
        ),
    )
    length_matched_baseline: bool = Field(
        True, description="privacy baseline from holdout windows length-matched to the synthetic"
    )
    rare_ngram_max_users: int = Field(
        1, ge=1, description="an n-gram held by at most this many training users counts as rare"
    )
    dcr_max_sequences: int = Field(
        2000, ge=1, description="sequences sampled per side for distance to closest record"
    )
    seed: int = 0


# One line per reported number: what it means and which direction is better. Keys are the
# dotted path into the report; the HTML shows them beside the values.
DESCRIPTIONS: dict[str, str] = {
    "fidelity.item_popularity_tv": (
        "Total-variation distance between the item distribution of the set and of real "
        "training data (0 = identical, 1 = disjoint). Lower is better. Finite samples never "
        "reach 0: compare holdout with synthetic_at_holdout_size, a synthetic sample as large."
    ),
    "fidelity.length_ks": (
        "Kolmogorov-Smirnov statistic between history lengths of the set and of real training "
        "data (0 = same distribution). Lower is better; generated prefixes are short by design."
    ),
    "fidelity.category_mix_tv": (
        "Total-variation distance between category/attribute mixes of the set and of real "
        "training data, each interaction counting once per attribute. Lower is better."
    ),
    "fidelity.transition_pair_share_in_real": (
        "Share of the set's consecutive item pairs that also occur consecutively in real "
        "training data. Closer to the holdout value is better; far above it suggests copying."
    ),
    "fidelity.transition_common_pair_tv": (
        "Total-variation distance between the set's and real training transition frequencies, "
        "restricted to pairs seen in both and renormalised. Lower is better; size-dependent "
        "like the item TV."
    ),
    "fidelity.transition_common_pairs": "Distinct pairs seen both in the set and in real data.",
    "diversity.sequences": "Sequences in the set (real_train_size_matched: a random sample of "
    "whole training sequences with about as many interactions as the synthetic set).",
    "diversity.interactions": "Item occurrences in the set.",
    "diversity.mean_length": "Mean items per sequence.",
    "diversity.distinct_items": "Distinct items used. Higher is more diverse.",
    "diversity.distinct_pairs": "Distinct consecutive item pairs. Higher is more diverse.",
    "diversity.distinct_pairs_per_1k": (
        "Distinct consecutive pairs per 1,000 interactions; less size-dependent than the "
        "absolute count. Higher is more diverse."
    ),
    "diversity.tail_share": (
        "Share of interactions on tail items (outside the 20% most popular by real training "
        "count). Higher means more long-tail exposure; compare with real data."
    ),
    "diversity.catalog_coverage": "Share of the catalog used at least once. Higher is better.",
    "privacy.exact_copy.synthetic_rate": (
        "Share of synthetic sequences (length >= n) containing an n-gram that occurs in real "
        "training data. Lower is safer; gated against the holdout rate."
    ),
    "privacy.exact_copy.holdout_rate": (
        "The same rate for holdout users the generator never saw (length-matched windows by "
        "default): how often unseen real users share an n-gram with training users by nature."
    ),
    "privacy.exact_copy.holdout_full_rate": (
        "The holdout rate on whole holdout sequences, not length-matched: shown so the effect of "
        "length matching is visible; not gated."
    ),
    "privacy.exact_copy.rare_synthetic_rate": (
        "Share of synthetic sequences containing an n-gram held by very few training users "
        "(at most `rare_ngram_max_users`): the copies that could identify someone. Lower is safer."
    ),
    "privacy.exact_copy.synthetic_ngram_share": (
        "Share of all synthetic n-grams that occur in real training data (per n-gram, so "
        "insensitive to sequence length). Lower is safer; compare with the holdout share."
    ),
    "privacy.dcr.median": (
        "Median Jaccard distance from each sampled sequence's item set to its closest real "
        "training item set (0 = identical set; holdout uses the same baseline as the copy gate). "
        "Synthetic far below holdout suggests memorisation."
    ),
    "privacy.dcr.p05": (
        "5th percentile of that distance: the closest few percent. Higher is safer."
    ),
    "privacy.dcr.exact_match_share": (
        "Share of sequences whose item set equals some training user's item set (distance 0). "
        "Lower is safer; gated against the holdout share."
    ),
    "privacy.mia.auc": (
        "Membership-inference AUC: probability that a member's generator likelihood exceeds a "
        "non-member's (0.5 = the generator cannot tell them apart). Closer to 0.5 is safer."
    ),
    "privacy.mia.attack_auc": (
        "max(AUC, 1 - AUC): an attacker may flip the direction, so this is what is gated."
    ),
    "privacy.mia.auc_standard_error": (
        "Hanley-McNeil standard error of the AUC: how far chance alone moves it at these sizes."
    ),
    "privacy.dp.epsilon": (
        "Differential privacy of the generator's training (user level): the epsilon its "
        "accountant spent over the epochs run, at `delta`. Lower is safer; absent for a "
        "generator trained without DP-SGD."
    ),
    "privacy.dp.target_epsilon": "The epsilon the noise was calibrated for (all epochs).",
    "privacy.dp.delta": "The delta of the (epsilon, delta) guarantee.",
    "privacy.dp.noise_multiplier": "Gaussian noise std / clipping norm, from the accountant.",
    "privacy.dp.max_grad_norm": "Per-user gradient clipping norm.",
    "privacy.summary": (
        "The privacy verdict at a glance: attack AUC, epsilon (None without DP) and each "
        "copy gate, side by side."
    ),
}


# ---------------------------------------------------------------------------------------------
# Sections


def _distribution_stats(seqs: list[np.ndarray], n_items: int, tail: np.ndarray) -> dict:
    flat = flatten(seqs)
    rows, _ = ngram_rows(seqs, 2)
    pairs = int(np.unique(rows[:, 0] * (n_items + 1) + rows[:, 1]).size) if len(rows) else 0
    n_int = int(flat.size)
    distinct = int(np.unique(flat).size)
    return {
        "sequences": len(seqs),
        "interactions": n_int,
        "mean_length": float(n_int / len(seqs)) if seqs else float("nan"),
        "distinct_items": distinct,
        "distinct_pairs": pairs,
        "distinct_pairs_per_1k": float(1000.0 * pairs / n_int) if n_int else float("nan"),
        "tail_share": float(tail[flat].mean()) if n_int else float("nan"),
        "catalog_coverage": float(distinct / n_items),
    }


def _group_mix(counts: np.ndarray, item_groups: np.ndarray) -> np.ndarray:
    """Interaction mass per group id; a 2-D table counts each interaction once per attribute.

    Items with no group (0, or an all-zero attribute row) count as group 0, "unknown".
    """
    groups = item_groups if item_groups.ndim == 2 else item_groups[:, None]
    n_groups = int(groups.max()) + 1 if groups.size else 1
    weights = np.repeat(counts[:, None], groups.shape[1], axis=1).astype(np.float64)
    known = groups > 0
    mix = np.bincount(groups[known], weights=weights[known], minlength=n_groups)
    unknown = ~known.any(axis=1)
    mix[0] = counts[unknown].sum()
    return mix


def _transition_stats(
    seqs: list[np.ndarray], real_pairs: np.ndarray, real_pair_counts: np.ndarray, base: int
) -> dict:
    rows, _ = ngram_rows(seqs, 2)
    (keys,) = ngram_keys([rows], base)
    if keys.size == 0:
        return {"pair_share_in_real": float("nan"), "common_pair_tv": float("nan"), "pairs": 0}
    share = float(in_sorted(keys, real_pairs).mean())
    uniq, cnt = np.unique(keys, return_counts=True)
    _, i_real, i_set = np.intersect1d(real_pairs, uniq, assume_unique=True, return_indices=True)
    common_tv = tv_distance(real_pair_counts[i_real], cnt[i_set]) if i_real.size else float("nan")
    return {
        "pair_share_in_real": share,
        "common_pair_tv": common_tv,
        "pairs": int(keys.size),
        "common_pairs": int(i_real.size),
    }


def _fidelity(
    real: list[np.ndarray],
    sides: dict[str, list[np.ndarray]],
    n_items: int,
    item_groups: np.ndarray | None,
) -> dict:
    """Each set in `sides` against the real training data, one {side: value} dict per metric."""
    base = n_items + 1
    real_counts = np.bincount(flatten(real), minlength=base)
    counts = {k: np.bincount(flatten(s), minlength=base) for k, s in sides.items()}
    real_rows, _ = ngram_rows(real, 2)
    (real_keys,) = ngram_keys([real_rows], base)
    real_pairs, real_pair_counts = np.unique(real_keys, return_counts=True)
    real_len = seq_lengths(real)
    out: dict[str, Any] = {
        "item_popularity_tv": {k: tv_distance(real_counts[1:], c[1:]) for k, c in counts.items()},
        "length_ks": {k: ks_statistic(seq_lengths(s), real_len) for k, s in sides.items()},
        "category_mix_tv": None,
    }
    if item_groups is not None:
        real_mix = _group_mix(real_counts, item_groups)
        out["category_mix_tv"] = {
            k: tv_distance(real_mix, _group_mix(c, item_groups)) for k, c in counts.items()
        }
    trans = {k: _transition_stats(s, real_pairs, real_pair_counts, base) for k, s in sides.items()}
    out["transition_pair_share_in_real"] = {k: t["pair_share_in_real"] for k, t in trans.items()}
    out["transition_common_pair_tv"] = {k: t["common_pair_tv"] for k, t in trans.items()}
    out["transition_common_pairs"] = {k: t.get("common_pairs", 0) for k, t in trans.items()}
    return out


def _exact_copy(
    real: list[np.ndarray],
    sets: dict[str, list[np.ndarray]],
    n_items: int,
    cfg: ReportConfig,
) -> tuple[dict, dict[str, tuple[int, int]]]:
    """Copy rates per set, plus (hits, eligible sequences) per set for the gate."""
    n = cfg.ngram
    real_rows, real_owner = ngram_rows(real, n)
    side_rows = {k: ngram_rows(s, n) for k, s in sets.items()}
    keys = ngram_keys([real_rows] + [r for r, _ in side_rows.values()], n_items + 1)
    real_keys, side_keys = keys[0], dict(zip(sets, keys[1:], strict=True))
    # Users per training n-gram: distinct (n-gram, user) pairs, then count per n-gram.
    owner_pairs = np.unique(np.stack([real_keys, real_owner]), axis=1)
    uniq, n_users = np.unique(owner_pairs[0], return_counts=True)
    rare = uniq[n_users <= cfg.rare_ngram_max_users]

    out: dict[str, Any] = {"ngram": n}
    counts: dict[str, tuple[int, int]] = {}
    for name, s in sets.items():
        owner, k = side_rows[name][1], side_keys[name]
        eligible = seq_lengths(s) >= n
        n_el = int(eligible.sum())
        for label, ref in (("", uniq), ("rare_", rare)):
            hit = np.zeros(len(s), dtype=bool)
            hit[owner[in_sorted(k, ref)]] = True
            x = int(hit[eligible].sum())
            out[f"{label}{name}_rate"] = x / n_el if n_el else float("nan")
            if not label:
                counts[name] = (x, n_el)
        out[f"{name}_ngram_share"] = float(in_sorted(k, uniq).mean()) if k.size else float("nan")
        out[f"n_{name}_eligible"] = n_el
    return out, counts


def _dcr(
    real: list[np.ndarray],
    synthetic: list[np.ndarray],
    holdout_baseline: list[np.ndarray],
    n_items: int,
    cfg: ReportConfig,
    rng: np.random.Generator,
) -> tuple[dict, dict[str, np.ndarray]]:
    out: dict[str, Any] = {}
    dists: dict[str, np.ndarray] = {}
    for name, seqs in (("synthetic", synthetic), ("holdout", holdout_baseline)):
        nonempty = [s for s in seqs if s.size]
        take = min(len(nonempty), cfg.dcr_max_sequences)
        idx = np.sort(rng.choice(len(nonempty), size=take, replace=False)) if take else []
        d = closest_record_distance([nonempty[i] for i in idx], real, n_items)
        dists[name] = d
        out[f"{name}_median"] = float(np.median(d)) if d.size else float("nan")
        out[f"{name}_p05"] = float(np.quantile(d, 0.05)) if d.size else float("nan")
        out[f"{name}_exact_match_share"] = float(np.mean(d == 0.0)) if d.size else float("nan")
        out[f"n_{name}_exact_match"] = int(np.sum(d == 0.0))
        out[f"n_{name}_sampled"] = int(d.size)
    return out, dists


def _mia(member_scores: np.ndarray | None, nonmember_scores: np.ndarray | None) -> dict | None:
    if member_scores is None or nonmember_scores is None:
        return None
    auc = mia_auc(member_scores, nonmember_scores)
    n_pos, n_neg = int(np.size(member_scores)), int(np.size(nonmember_scores))
    return {
        "auc": auc,
        "attack_auc": max(auc, 1.0 - auc),
        "auc_standard_error": auc_standard_error(auc, n_pos, n_neg),
        "n_members": n_pos,
        "n_nonmembers": n_neg,
    }


def _gates(
    copy_counts: dict[str, tuple[int, int]],
    dcr: dict,
    mia: dict | None,
    cfg: ReportConfig,
) -> dict[str, dict[str, Any]]:
    gates = {
        "exact_copy_rate": rate_gate(
            *copy_counts["synthetic"],
            *copy_counts["holdout"],
            cfg.copy_rate_tolerance,
            cfg.slack_z,
        ),
        "dcr_exact_match_share": rate_gate(
            dcr["n_synthetic_exact_match"],
            dcr["n_synthetic_sampled"],
            dcr["n_holdout_exact_match"],
            dcr["n_holdout_sampled"],
            cfg.copy_rate_tolerance,
            cfg.slack_z,
        ),
    }
    if mia is None:
        gates["mia_auc"] = {
            "passed": None,
            "value": None,
            "threshold": cfg.max_mia_auc,
            "reason": "no member/non-member likelihood scores given",
        }
    else:
        gates["mia_auc"] = {
            "passed": bool(mia["attack_auc"] <= cfg.max_mia_auc),
            "value": mia["attack_auc"],
            "threshold": cfg.max_mia_auc,
        }
    return gates


# ---------------------------------------------------------------------------------------------
# Plot data: small series so `write_report` can draw from the report dict alone


def _rank_curve(counts: np.ndarray) -> dict[str, list]:
    c = np.sort(counts[1:])[::-1]
    c = c[c > 0]
    if c.size == 0:
        return {"rank": [], "share": []}
    ranks = np.unique(np.geomspace(1, c.size, num=min(_RANK_POINTS, c.size)).round().astype(int))
    return {"rank": ranks.tolist(), "share": (c[ranks - 1] / c.sum()).tolist()}


def _hist(values: np.ndarray, edges: np.ndarray, per_unit: bool = False) -> list[float]:
    """Share of values per bin; `per_unit` divides by bin width, for uneven (log) bins."""
    h = np.histogram(values, bins=edges)[0] / max(len(values), 1)
    return (h / np.diff(edges) if per_unit else h).tolist()


def _plots(
    lengths: dict[str, np.ndarray],
    counts: dict[str, np.ndarray],
    item_groups: np.ndarray | None,
    dcr: dict[str, np.ndarray],
) -> dict[str, Any]:
    longest = max((int(v.max()) for v in lengths.values() if v.size), default=1)
    len_edges = np.unique(np.geomspace(1, longest + 1, num=25).round())
    len_edges = np.append(len_edges, len_edges[-1] + 1) if len_edges.size < 2 else len_edges
    plots: dict[str, Any] = {
        "popularity_rank": {k: _rank_curve(c) for k, c in counts.items()},
        "length_hist": {"edges": len_edges.tolist()}
        | {k: _hist(v, len_edges, per_unit=True) for k, v in lengths.items()},
        "dcr_hist": {"edges": np.linspace(0, 1, _DCR_BINS + 1).tolist()}
        | {k: _hist(d, np.linspace(0, 1, _DCR_BINS + 1)) for k, d in dcr.items()},
        "category_mix": None,
    }
    if item_groups is not None:
        mixes = {k: _group_mix(c, item_groups) for k, c in counts.items()}
        shares = {k: m / m.sum() if m.sum() else m for k, m in mixes.items()}
        top = np.argsort(-shares["real_train"], kind="stable")[:_TOP_GROUPS]
        rest = np.setdiff1d(np.arange(shares["real_train"].size), top)
        labels = ["unknown" if g == 0 else f"group {g}" for g in top]
        plots["category_mix"] = {"groups": labels + (["other"] if rest.size else [])} | {
            k: s[top].tolist() + ([float(s[rest].sum())] if rest.size else [])
            for k, s in shares.items()
        }
    return plots


def _json_safe(obj: Any) -> Any:
    """NaN/inf become None and numpy scalars become Python ones, so the JSON is strict."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


# ---------------------------------------------------------------------------------------------
# Public API


def synthetic_report(
    real_train: Sequence[np.ndarray],
    synthetic: Sequence[np.ndarray],
    holdout: Sequence[np.ndarray],
    n_items: int,
    item_groups: np.ndarray | None = None,
    member_scores: np.ndarray | None = None,
    nonmember_scores: np.ndarray | None = None,
    config: ReportConfig | None = None,
    dp: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Fidelity, diversity and privacy of generated sequences, each beside a holdout baseline.

    Args:
        real_train: Encoded training sequences the generator was trained on (the members).
        synthetic: Encoded generated sequences: prefixes written for real users (only the
            generated part) and virtual users' sequences.
        holdout: Real sequences of users the generator never saw (the non-members).
        n_items: Catalog size; ids run 1..n_items and 0 is padding (dropped).
        item_groups: Category/attribute id per item, shape [n_items + 1] (0 = unknown), or
            [n_items + 1, A] like `Split.item_attributes` (each attribute counts once).
        member_scores: Generator log-likelihood per member user (higher = more likely). Use a
            per-item mean if members and non-members differ in length, or the attack learns
            length rather than membership.
        nonmember_scores: The same for holdout users.
        config: Thresholds, n-gram length, sample sizes and seed; defaults when None.
        dp: The generator's differential-privacy record (`generator_fit.fit_generator`'s
            "dp": epsilon spent, delta, noise multiplier, ...), or None without DP-SGD.

    Returns:
        A JSON-ready dict with keys `schema_version`, `config`, `counts`, `fidelity`,
        `diversity`, `privacy` (with `summary`: attack AUC, epsilon and the copy gates side
        by side), `gates` ({name: {passed, value, threshold, ...}}), `passed`,
        `descriptions` and `plots`. Undefined numbers (e.g. an empty side) are None. A gate
        that could not run has `passed: None` and a `reason`, and makes `passed` False: an
        unproven gate is not a passed one.

    Raises:
        ConfigError: No synthetic or training sequences, ids outside 1..n_items, a malformed
            `item_groups`, or non-finite likelihood scores.
    """
    cfg = config or ReportConfig()
    if n_items < 1:
        raise ConfigError(f"n_items: must be >= 1, got {n_items}")
    real = clean_sequences(real_train, n_items, "real_train")
    syn = clean_sequences(synthetic, n_items, "synthetic")
    hold = clean_sequences(holdout, n_items, "holdout")
    if not any(s.size for s in real):
        raise ConfigError("real_train: no interactions; nothing to compare synthetic data with")
    if not any(s.size for s in syn):
        raise ConfigError("synthetic: no interactions; the generator wrote nothing")
    if item_groups is not None:
        item_groups = np.asarray(item_groups, dtype=np.int64)
        if item_groups.ndim not in (1, 2) or item_groups.shape[0] != n_items + 1:
            raise ConfigError(
                f"item_groups: expected shape [n_items + 1] or [n_items + 1, A] = "
                f"[{n_items + 1}, ...], got {list(item_groups.shape)}"
            )
    rng = np.random.default_rng(cfg.seed)

    sides = {"real_train": real, "synthetic": syn, "holdout": hold}
    counts = {k: np.bincount(flatten(s), minlength=n_items + 1) for k, s in sides.items()}
    tail = tail_items(counts["real_train"])
    hold_matched = length_matched_windows(hold, seq_lengths(syn)[seq_lengths(syn) > 0], rng)

    # Distances between samples shrink as samples grow, so the holdout only shows the noise
    # floor for a synthetic sample of its own size; compare those two columns.
    fid_sides = {"synthetic": syn, "holdout": hold}
    n_hold = int(counts["holdout"].sum())
    if 0 < n_hold < counts["synthetic"].sum():
        fid_sides["synthetic_at_holdout_size"] = size_matched_sample(syn, n_hold, rng)
    fidelity = _fidelity(real, fid_sides, n_items, item_groups)

    diversity = {k: _distribution_stats(s, n_items, tail) for k, s in sides.items()}
    diversity["real_train_size_matched"] = _distribution_stats(
        size_matched_sample(real, int(counts["synthetic"].sum()), rng), n_items, tail
    )
    # `holdout` in the privacy section is the gate's baseline (length-matched windows by
    # default); `holdout_full` is the plain holdout, reported so the effect of matching shows.
    baseline = hold_matched if cfg.length_matched_baseline else hold
    copy, copy_counts = _exact_copy(
        real, {"synthetic": syn, "holdout": baseline, "holdout_full": hold}, n_items, cfg
    )
    copy["baseline"] = "length_matched" if cfg.length_matched_baseline else "full"
    dcr, dcr_dists = _dcr(real, syn, baseline, n_items, cfg, rng)
    mia = _mia(member_scores, nonmember_scores)
    gates = _gates(copy_counts, dcr, mia, cfg)

    report = {
        "schema_version": SCHEMA_VERSION,
        "config": cfg.model_dump(),
        "counts": {
            k: {"sequences": len(s), "interactions": int(counts[k].sum())} for k, s in sides.items()
        },
        "fidelity": fidelity,
        "diversity": diversity,
        "privacy": {
            "summary": privacy_summary(gates, dp),
            "exact_copy": copy,
            "dcr": dcr,
            "mia": mia,
            "dp": dp,
        },
        "gates": gates,
        "passed": all(g["passed"] is True for g in gates.values()),
        "descriptions": DESCRIPTIONS
        | {
            f"config.{k}": f.description
            for k, f in ReportConfig.model_fields.items()
            if f.description
        },
        "plots": _plots(
            {k: seq_lengths(s) for k, s in sides.items()}, counts, item_groups, dcr_dists
        ),
    }
    return _json_safe(report)


def privacy_summary(gates: dict[str, dict[str, Any]], dp: dict[str, Any] | None) -> dict:
    """Attack AUC, epsilon and the copy gates in one flat row (the benchmark table's columns)."""
    mia, copy, dcr = gates["mia_auc"], gates["exact_copy_rate"], gates["dcr_exact_match_share"]
    return {
        "attack_auc": mia["value"],
        "attack_auc_passed": mia["passed"],
        "epsilon": None if dp is None else dp.get("epsilon"),
        "delta": None if dp is None else dp.get("delta"),
        "exact_copy_rate": copy["value"],
        "exact_copy_passed": copy["passed"],
        "exact_match_share": dcr["value"],
        "exact_match_passed": dcr["passed"],
        "all_passed": all(g["passed"] is True for g in gates.values()),
    }


def privacy_failures(report: dict[str, Any]) -> list[str]:
    """Readable lines for every gate that failed or could not run; [] when all passed."""
    out = []
    for name, g in report["gates"].items():
        if g["passed"] is True:
            continue
        if g["passed"] is None:
            out.append(f"{name}: not run ({g.get('reason', 'no data')})")
            continue
        line = f"{name}: {g['value']:.4f} > threshold {g['threshold']:.4f}"
        if g.get("baseline") is not None:
            line += f" (holdout baseline {g['baseline']:.4f})"
        out.append(line)
    return out


def write_report(report: dict[str, Any], out_dir: Path) -> None:
    """Write `synthetic_report.json` and `synthetic_report.html` into `out_dir`, each atomically.

    The HTML is rendered before anything is written, so a rendering error leaves `out_dir`
    as it was.
    """
    from augrec.augment.report_html import render_html

    html = render_html(report)
    out_dir = Path(out_dir)
    write_json(out_dir / "synthetic_report.json", report)
    atomic_write_text(out_dir / "synthetic_report.html", html)
