import json
import math

import numpy as np
import pytest

from augrec.augment.report import (
    ReportConfig,
    _group_mix,
    privacy_failures,
    synthetic_report,
    write_report,
)
from augrec.augment.report_stats import (
    closest_record_distance,
    in_sorted,
    ks_statistic,
    length_matched_windows,
    mia_auc,
    ngram_keys,
    ngram_rows,
    rate_gate,
    tv_distance,
)
from augrec.errors import ConfigError

N_ITEMS = 5000


def _random_seqs(rng, n, lo=4, hi=12, n_items=N_ITEMS):
    return [rng.integers(1, n_items + 1, size=rng.integers(lo, hi)) for _ in range(n)]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    real = _random_seqs(rng, 400)
    holdout = _random_seqs(rng, 100)
    fresh = _random_seqs(rng, 200)
    # Every copied sequence is a contiguous 3..5-item window of one training sequence.
    copies = []
    for s in real[:200]:
        k = min(int(rng.integers(3, 6)), len(s))
        start = int(rng.integers(0, len(s) - k + 1))
        copies.append(s[start : start + k].copy())
    return real, holdout, fresh, copies


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


def test_ngram_keys_agree_across_sets_when_base_n_overflows_int64():
    a = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    b = np.array([[5, 6, 7, 8], [1, 2, 3, 9]])
    small = ngram_keys([a, b], base=10)
    large = ngram_keys([a, b], base=200_001)  # 200001**4 > 2**63: rows are numbered jointly
    for keys in (small, large):
        assert keys[0][1] == keys[1][0]
        assert len({keys[0][0], keys[0][1], keys[1][1]}) == 3


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


def test_group_mix_counts_each_attribute_once():
    counts = np.array([0, 4, 1, 2])  # items 1..3
    one_d = np.array([0, 1, 1, 0])  # item 3 has no group
    assert _group_mix(counts, one_d).tolist() == [2, 5]
    two_d = np.array([[0, 0], [1, 2], [2, 0], [0, 0]])  # item 1 has two attributes
    assert _group_mix(counts, two_d).tolist() == [2, 4, 5]


def test_length_matched_windows_are_contiguous_and_short_enough():
    rng = np.random.default_rng(2)
    holdout = [np.arange(1, 21), np.arange(30, 33)]
    out = length_matched_windows(holdout, np.array([5]), rng)
    assert len(out[0]) == 5 and np.all(np.diff(out[0]) == 1)
    assert out[1].tolist() == [30, 31, 32]  # capped at its own length


# --- the report -------------------------------------------------------------------------------


def test_copy_rate_by_hand():
    real = [np.array([1, 2, 3, 4])]
    # [9,1,2,3] contains the training trigram (1,2,3); [2,3,5] does not; [7,8] is too short.
    synthetic = [np.array([9, 1, 2, 3]), np.array([2, 3, 5]), np.array([7, 8])]
    r = synthetic_report(real, synthetic, [np.array([5, 6, 7])], n_items=9)
    copy = r["privacy"]["exact_copy"]
    assert copy["synthetic_rate"] == 0.5
    assert copy["n_synthetic_eligible"] == 2
    assert copy["rare_synthetic_rate"] == 0.5  # (1,2,3) belongs to one training user
    assert copy["synthetic_ngram_share"] == pytest.approx(1 / 3)


def test_copies_fail_the_gates_and_are_named(data):
    real, holdout, _, copies = data
    r = synthetic_report(real, copies, holdout, N_ITEMS)
    assert r["privacy"]["exact_copy"]["synthetic_rate"] == 1.0
    assert r["privacy"]["exact_copy"]["holdout_rate"] == 0.0
    assert r["privacy"]["dcr"]["synthetic_exact_match_share"] < 1.0  # windows, not whole sets
    assert r["privacy"]["dcr"]["synthetic_median"] < r["privacy"]["dcr"]["holdout_median"]
    assert r["gates"]["exact_copy_rate"]["passed"] is False
    assert r["passed"] is False
    failures = privacy_failures(r)
    assert any(f.startswith("exact_copy_rate: 1.0000 > threshold") for f in failures)
    assert "mia_auc: not run (no member/non-member likelihood scores given)" in failures


def test_whole_sequence_copies_have_distance_zero(data):
    real, holdout, _, _ = data
    r = synthetic_report(real, real[:50], holdout, N_ITEMS)
    assert r["privacy"]["dcr"]["synthetic_exact_match_share"] == 1.0
    assert r["privacy"]["dcr"]["synthetic_median"] == 0.0
    assert r["gates"]["dcr_exact_match_share"]["passed"] is False


def test_fresh_sequences_pass_every_gate(data):
    real, holdout, fresh, _ = data
    rng = np.random.default_rng(3)
    r = synthetic_report(
        real,
        fresh,
        holdout,
        N_ITEMS,
        member_scores=rng.normal(size=400),
        nonmember_scores=rng.normal(size=100),
    )
    assert {name: g["passed"] for name, g in r["gates"].items()} == {
        "exact_copy_rate": True,
        "dcr_exact_match_share": True,
        "mia_auc": True,
    }
    assert r["passed"] is True
    assert privacy_failures(r) == []


def test_separated_likelihoods_fail_the_mia_gate(data):
    real, holdout, fresh, _ = data
    r = synthetic_report(
        real,
        fresh,
        holdout,
        N_ITEMS,
        # Reversed on purpose: an attacker flips the sign, so the gate uses max(AUC, 1 - AUC).
        member_scores=np.full(400, -5.0),
        nonmember_scores=np.full(100, -1.0),
    )
    assert r["privacy"]["mia"]["auc"] == 0.0
    assert r["gates"]["mia_auc"] == {"passed": False, "value": 1.0, "threshold": 0.6}
    assert privacy_failures(r) == ["mia_auc: 1.0000 > threshold 0.6000"]


def test_fidelity_and_diversity_on_a_tiny_case():
    real = [np.array([1, 2, 1, 2]), np.array([3, 4])]
    synthetic = [np.array([1, 2]), np.array([1, 2])]
    groups = np.array([0, 1, 1, 2, 2])
    r = synthetic_report(real, synthetic, [np.array([3, 4])], n_items=4, item_groups=groups)
    fid = r["fidelity"]
    # Real items: 1,2,1,2,3,4 -> (2,2,1,1)/6; synthetic (2,2,0,0)/4 -> TV = 1/3.
    assert fid["item_popularity_tv"]["synthetic"] == pytest.approx(1 / 3)
    assert fid["length_ks"]["synthetic"] == pytest.approx(0.5)  # lengths {2,2} vs {4,2}
    # Groups: real (group 1: 4, group 2: 2); synthetic all group 1 -> TV = 1/3.
    assert fid["category_mix_tv"]["synthetic"] == pytest.approx(1 / 3)
    # Real pairs (1,2),(2,1),(1,2),(3,4); synthetic pairs are all (1,2): all seen in real data.
    assert fid["transition_pair_share_in_real"]["synthetic"] == 1.0
    assert fid["transition_common_pair_tv"]["synthetic"] == 0.0  # one common pair
    div = r["diversity"]
    assert div["synthetic"]["distinct_items"] == 2
    assert div["synthetic"]["distinct_pairs"] == 1
    assert div["synthetic"]["distinct_pairs_per_1k"] == pytest.approx(250.0)
    assert div["real_train"]["distinct_pairs"] == 3
    assert div["synthetic"]["catalog_coverage"] == 0.5
    # Head = ceil(20% of 4) = 1 item (item 1, ties broken by id), so item 2 is tail.
    assert div["synthetic"]["tail_share"] == 0.5


def test_padding_is_dropped_and_bad_ids_are_named():
    r = synthetic_report([np.array([0, 0, 1, 2, 3])], [np.array([0, 1, 2, 3])], [], n_items=3)
    assert r["counts"]["synthetic"]["interactions"] == 3
    # No holdout: the copy gate cannot run, which is not a pass.
    assert r["gates"]["exact_copy_rate"]["passed"] is None
    assert r["passed"] is False
    with pytest.raises(ConfigError, match="synthetic: item ids must lie in 1..n_items=3"):
        synthetic_report([np.array([1, 2])], [np.array([4])], [], n_items=3)
    with pytest.raises(ConfigError, match="item_groups"):
        synthetic_report([np.array([1])], [np.array([1])], [], n_items=3, item_groups=np.ones(3))
    with pytest.raises(ConfigError, match="synthetic: no interactions"):
        synthetic_report([np.array([1])], [np.array([0])], [], n_items=3)


def test_write_report_writes_json_and_html_with_the_gate_table(data, tmp_path):
    real, holdout, _, copies = data
    groups = np.random.default_rng(4).integers(0, 8, size=N_ITEMS + 1)
    report = synthetic_report(real, copies, holdout, N_ITEMS, item_groups=groups)
    write_report(report, tmp_path / "out")
    # Strict JSON: undefined numbers are null, never NaN.
    loaded = json.loads(
        (tmp_path / "out" / "synthetic_report.json").read_text(),
        parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"),
    )
    assert loaded["gates"] == report["gates"]
    html = (tmp_path / "out" / "synthetic_report.html").read_text()
    assert '<table id="gates">' in html
    assert '<tr class="fail"><td class="text">exact_copy_rate</td>' in html
    assert html.count("data:image/png;base64,") == 4  # popularity, length, DCR, category mix
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "synthetic_report.html",
        "synthetic_report.json",
    ]


def test_report_at_catalog_scale():
    # ~20k sequences over ~12k items, Zipf-like popularity: the size the CLI sees on Beauty.
    rng = np.random.default_rng(5)
    n_items = 12_000
    p = 1.0 / np.arange(1, n_items + 1) ** 0.8
    p /= p.sum()
    lengths = rng.integers(3, 20, size=22_000)
    flat = rng.choice(n_items, size=int(lengths.sum()), p=p) + 1
    seqs = np.split(flat, np.cumsum(lengths)[:-1])
    real, holdout = seqs[:20_000], seqs[20_000:]
    synthetic = [s[: max(2, len(s) // 2)] for s in _random_seqs(rng, 20_000, 3, 20, n_items)]
    cfg = ReportConfig(dcr_max_sequences=500)
    r = synthetic_report(real, synthetic, holdout, n_items, config=cfg)
    assert r["privacy"]["dcr"]["n_synthetic_sampled"] == 500
    # Uniform synthetic items against Zipf-like real ones: far apart, unlike the holdout.
    fid = r["fidelity"]["item_popularity_tv"]
    assert fid["synthetic_at_holdout_size"] > fid["holdout"] + 0.2
    assert r["diversity"]["synthetic"]["tail_share"] > r["diversity"]["holdout"]["tail_share"]
