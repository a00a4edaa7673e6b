import math

import numpy as np
import pytest

from augrec.evaluation import metrics as M


def test_hand_computed_ranking_metrics():
    ranks = np.array([0, 1, 4, 9, 30, M.MISS])
    # hits@5: ranks 0,1,4 -> 3/6
    assert M.hit_rate(ranks, 5) == pytest.approx(3 / 6)
    assert M.recall(ranks, 10) == pytest.approx(4 / 6)
    # ndcg@5 = (1/log2(2) + 1/log2(3) + 1/log2(6)) / 6
    assert M.ndcg(ranks, 5) == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(6)) / 6)
    assert M.ndcg(ranks, 10) == pytest.approx(
        (1 + 1 / math.log2(3) + 1 / math.log2(6) + 1 / math.log2(11)) / 6
    )
    # mrr@10 = (1 + 1/2 + 1/5 + 1/10) / 6
    assert M.mrr(ranks, 10) == pytest.approx((1 + 0.5 + 0.2 + 0.1) / 6)
    assert M.ndcg(np.array([]), 10) == 0.0


def test_coverage_and_tail_share():
    topk = np.array([[1, 2], [2, 3]])
    assert M.coverage(topk, n_items=6) == pytest.approx(3 / 6)
    counts = np.array([0, 50, 40, 1, 1, 1, 1, 1, 1, 1, 1])  # 10 items; head = top 2
    tail = M.tail_items(counts)
    assert tail.tolist() == [False, False, False] + [True] * 8
    assert M.tail_share(np.array([[1, 3], [2, 4]]), tail) == pytest.approx(0.5)


def test_buckets():
    labels = M.bucket_labels(np.array([0, 3, 4, 5, 6, 8, 9, 18, 19, 400]), M.HISTORY_BUCKETS)
    assert labels.tolist() == [
        "<=3",
        "<=3",
        "4-5",
        "4-5",
        "6-8",
        "6-8",
        "9-18",
        "9-18",
        ">18",
        ">18",
    ]
    out = M.bucketed(np.array([0, 20, 1]), np.array([2, 2, 30]), M.HISTORY_BUCKETS, k=10)
    assert out["<=3"] == {"users": 2, "ndcg@10": pytest.approx(0.5), "hr@10": 0.5}
    assert out[">18"]["hr@10"] == 1.0
    assert out["4-5"]["users"] == 0
    pop = M.bucket_labels(np.array([5, 6, 20, 21, 100, 101]), M.POPULARITY_BUCKETS)
    assert pop.tolist() == ["<=5", "6-20", "6-20", "21-100", "21-100", ">100"]
