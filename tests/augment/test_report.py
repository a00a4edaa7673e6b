import math

import numpy as np
import pytest

from augrec.augment.report_stats import (
    closest_record_distance,
    in_sorted,
    ks_statistic,
    length_matched_windows,
    mia_auc,
    ngram_rows,
    rate_gate,
    tv_distance,
)
from augrec.errors import ConfigError

# --- hand-checked statistics ----------------------------------------------------------------


def test_tv_distance_by_hand():
    assert tv_distance(np.array([1, 1, 0, 0]), np.array([0, 1, 1, 0])) == pytest.approx(0.5)
    assert tv_distance(np.array([2, 2]), np.array([1, 1])) == 0.0  # counts are normalised
    assert tv_distance(np.array([1, 0]), np.array([0, 3])) == 1.0
    assert math.isnan(tv_distance(np.zeros(2), np.array([1, 1])))


def test_ks_statistic_by_hand():
    assert ks_statistic(np.array([1, 2, 3]), np.array([3, 2, 1])) == 0.0
    assert ks_statistic(np.array([1, 1, 1]), np.array([5, 5])) == 1.0
    # CDFs: at 2 -> 0.5 vs 0; at 4 -> 1 vs 0.5; the largest gap is 0.5.
    assert ks_statistic(np.array([1, 2, 3, 4]), np.array([3, 4, 5, 6])) == pytest.approx(0.5)


def test_ngram_rows_and_membership():
    rows, owner = ngram_rows([np.array([1, 2, 3, 4]), np.array([5, 6]), np.array([7, 8, 9])], 3)
    assert rows.tolist() == [[1, 2, 3], [2, 3, 4], [7, 8, 9]]
    assert owner.tolist() == [0, 0, 2]
    assert in_sorted(np.array([1, 4, 9, 10]), np.array([1, 5, 9])).tolist() == [
        True,
        False,
        True,
        False,
    ]


def test_closest_record_distance_by_hand():
    records = [np.array([3, 2, 1]), np.array([1, 2, 3, 4]), np.array([7])]
    queries = [np.array([1, 2, 3]), np.array([1, 2, 2]), np.array([9]), np.array([7, 8])]
    d = closest_record_distance(queries, records, n_items=9)
    # {1,2,3} equals record 0; {1,2} vs {1,2,3}: 1 - 2/3; {9} shares nothing; {7,8} vs {7}: 1/2.
    assert d.tolist() == pytest.approx([0.0, 1 - 2 / 3, 1.0, 0.5])


def test_mia_auc_separated_identical_and_reversed():
    rng = np.random.default_rng(1)
    assert mia_auc(np.array([5.0, 6.0, 7.0]), np.array([1.0, 2.0])) == 1.0
    assert mia_auc(np.array([1.0, 1.0]), np.array([1.0, 1.0])) == 0.5  # ties count half
    # One of the 2x2 pairs is ordered the member's way, one is tied: (1 + 0.5) / 4.
    assert mia_auc(np.array([1.0, 3.0]), np.array([2.0, 3.0])) == pytest.approx(0.375)
    same = mia_auc(rng.normal(size=2000), rng.normal(size=2000))
    assert same == pytest.approx(0.5, abs=0.03)
    with pytest.raises(ConfigError):
        mia_auc(np.array([np.nan]), np.array([1.0]))


def test_rate_gate_slack_by_hand():
    # Equal rates pass; slack is z * sqrt(p(1-p)(1/n1 + 1/n2)) at the pooled rate.
    assert rate_gate(5, 10, 5, 10, tolerance=0.0, z=2.0)["passed"] is True
    g = rate_gate(10, 10, 0, 10, tolerance=0.0, z=2.0)
    assert g["threshold"] == pytest.approx(2 * math.sqrt(0.25 * 0.2))
    assert g["passed"] is False
    # Without slack a single extra copy fails; the relative tolerance scales the baseline.
    assert rate_gate(11, 100, 10, 100, tolerance=0.0, z=0.0)["passed"] is False
    assert rate_gate(11, 100, 10, 100, tolerance=0.1, z=0.0)["passed"] is True
    assert rate_gate(0, 0, 1, 10, tolerance=0.0, z=2.0)["passed"] is None


def test_length_matched_windows_are_contiguous_and_short_enough():
    rng = np.random.default_rng(2)
    holdout = [np.arange(1, 21), np.arange(30, 33)]
    out = length_matched_windows(holdout, np.array([5]), rng)
    assert len(out[0]) == 5 and np.all(np.diff(out[0]) == 1)
    assert out[1].tolist() == [30, 31, 32]  # capped at its own length
