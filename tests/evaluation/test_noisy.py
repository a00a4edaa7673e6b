"""The noisy-history test replaces exactly the stated share, seeded, never the target."""

import numpy as np
import pytest

from augrec.data.splits import EvalSet
from augrec.evaluation.noisy import noisy_histories, replaced_count


def eval_set(lengths, n_items=50):
    rng = np.random.default_rng(0)
    hists = [rng.permutation(np.arange(1, n_items + 1))[:n] for n in lengths]
    targets = np.array([h[0] if len(h) else 1 for h in hists]) % n_items + 1
    users = np.arange(len(lengths))
    return EvalSet(users=users, histories=hists, targets=targets)


@pytest.mark.parametrize(
    ("n", "share", "k"),
    [
        (1, 0.1, 0),
        (4, 0.1, 0),
        (5, 0.1, 1),
        (10, 0.1, 1),
        (15, 0.1, 2),
        (3, 0.2, 1),
        (2, 0.2, 0),
        (5, 0.2, 1),
        (13, 0.2, 3),
        (7, 1.0, 7),
    ],
)
def test_rounding_rule_is_half_up(n, share, k):
    assert replaced_count(n, share) == k  # floor(share * n + 0.5)


@pytest.mark.parametrize("share", [0.1, 0.2])
def test_replaces_exactly_the_requested_share_seeded(share):
    es = eval_set([1, 3, 5, 8, 10, 15, 20, 33, 50])
    noisy = noisy_histories(es, 50, share, seed=3)
    for h, nh, t in zip(es.histories, noisy.histories, es.targets, strict=True):
        changed = h != nh
        assert changed.sum() == replaced_count(len(h), share)
        assert (nh[changed] != t).all() and ((nh >= 1) & (nh <= 50)).all()
    assert np.array_equal(noisy.targets, es.targets) and np.array_equal(noisy.users, es.users)
    again = noisy_histories(es, 50, share, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(noisy.histories, again.histories, strict=True))
    other = noisy_histories(es, 50, share, seed=4)
    assert any(
        not np.array_equal(a, b) for a, b in zip(noisy.histories, other.histories, strict=True)
    )
    assert all(len(a) == len(b) for a, b in zip(es.histories, noisy.histories, strict=True))


def test_replacements_cover_the_catalog_uniformly():
    es = eval_set([40] * 200, n_items=50)
    noisy = noisy_histories(es, 50, 0.5, seed=0)
    drawn = np.concatenate(
        [nh[h != nh] for h, nh in zip(es.histories, noisy.histories, strict=True)]
    )
    counts = np.bincount(drawn, minlength=51)[1:]
    assert len(drawn) == 200 * 20 and counts.min() > 0.6 * counts.mean()


def test_bad_share_names_itself():
    with pytest.raises(ValueError, match="share"):
        noisy_histories(eval_set([3]), 50, 1.5, seed=0)
