import numpy as np
import torch

from augrec.evaluation.metrics import MISS
from augrec.evaluation.ranking import mask_scores, target_ranks, topk_stable


def test_masking_ties_and_consistency_with_topk():
    scores = torch.tensor(
        [
            [9.0, 5.0, 7.0, 7.0, 1.0, 7.0],  # col 0 is padding
            [0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
        ]
    )
    hist = [np.array([2]), np.array([5, 4])]
    mask_scores(scores, hist)
    assert torch.isneginf(scores[:, 0]).all()
    # row 0 after masking item 2: [-inf, 5, -inf, 7, 1, 7] -> order 3, 5, 1, 4
    items, _ = topk_stable(scores, 4)
    assert items[0].tolist() == [3, 5, 1, 4]
    assert items[1].tolist()[:3] == [3, 2, 1]
    ranks = target_ranks(scores, np.array([5, 2]))
    assert ranks[0] == 1  # tie with item 3 broken by lower id first
    assert ranks[1] == 1  # row 1: [_,1,2,3,-inf,-inf] -> 3 first, then 2
    # a target the user already has is masked: a miss, never a hit
    assert target_ranks(scores.clone(), np.array([2, 5])).tolist() == [MISS, MISS]
    # every rank agrees with the position in the stable top-k list
    for row, t in ((0, 4), (0, 1), (1, 1)):
        pos = items[row].tolist().index(t) if t in items[row] else None
        r = target_ranks(scores[row : row + 1].clone(), np.array([t]))[0]
        assert pos == r


def test_topk_matches_a_full_stable_sort_under_heavy_ties():
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):
        scores = torch.randint(0, 5, (6, 30), generator=gen).float()
        scores[:, 0] = -torch.inf
        scores[0, 1:] = 1.0  # a row of ties only
        items, values = topk_stable(scores.clone(), 7)
        vals, idx = torch.sort(scores, dim=1, descending=True, stable=True)
        assert (items == idx[:, :7].numpy()).all()
        assert (values == vals[:, :7].numpy()).all()
