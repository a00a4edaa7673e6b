import numpy as np
import pandas as pd
import pytest

from augrec.data.schema import Dataset, normalise_interactions
from augrec.data.splits import leave_one_out, make_split, temporal
from augrec.errors import ConfigError


def dataset(rows, has_time=True) -> Dataset:
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return Dataset("t", normalise_interactions(df), pd.DataFrame({"item_id": []}), has_time)


ROWS = [
    # user 7: a b c d  (ids 100..103)
    (7, 100, 1),
    (7, 101, 2),
    (7, 102, 3),
    (7, 103, 4),
    # user 8: only two interactions -> training only
    (8, 101, 5),
    (8, 104, 6),
    # user 9: three
    (9, 104, 1),
    (9, 100, 7),
    (9, 102, 9),
]


def decode(split, seq):
    return split.item_ids[np.asarray(seq)].tolist()


def test_leave_one_out():
    s = leave_one_out(dataset(ROWS))
    assert s.n_items == 5 and s.item_ids[0] == -1
    users = s.user_ids.tolist()
    assert users == [7, 8, 9]
    assert decode(s, s.train[0]) == [100, 101]
    assert decode(s, s.train[1]) == [101, 104]  # too short to evaluate: all training
    assert decode(s, s.train[2]) == [104]
    assert s.valid.users.tolist() == [0, 2] and s.test.users.tolist() == [0, 2]
    assert decode(s, s.valid.targets) == [102, 100]
    assert decode(s, s.test.targets) == [103, 102]
    assert decode(s, s.test.histories[0]) == [100, 101, 102]  # valid item is input at test
    assert decode(s, s.valid.histories[1]) == [104]
    # no held-out item ever enters training
    for u, v, t in zip(s.test.users, s.valid.targets, s.test.targets, strict=True):
        assert v not in s.train[u] and t not in s.train[u]
    counts = s.item_counts
    assert counts[1:].sum() == s.n_train_interactions == 5


def test_temporal_split_respects_cutoffs():
    s = temporal(dataset(ROWS), test_cutoff=7, valid_cutoff=4)
    assert s.protocol == "temporal"
    # training = everything before t=4
    assert sum(len(x) for x in s.train) == 4
    assert all((t < 4).all() for t in s.train_times)
    # user 7: first event in [4,7) is item 103 -> validation; nothing after 7 -> no test
    assert 0 in s.valid.users.tolist()
    assert decode(s, [s.valid.targets[s.valid.users.tolist().index(0)]]) == [103]
    # user 9: history before 7 is [104], test target first event >= 7 is 100
    i = s.test.users.tolist().index(2)
    assert decode(s, s.test.histories[i]) == [104]
    assert decode(s, [s.test.targets[i]]) == [100]


def test_temporal_needs_time_and_ordered_cutoffs():
    with pytest.raises(ConfigError, match="timestamps"):
        temporal(dataset(ROWS, has_time=False))
    with pytest.raises(ConfigError, match="valid_cutoff"):
        temporal(dataset(ROWS), test_cutoff=3, valid_cutoff=5)
    with pytest.raises(ConfigError, match="split.kind"):
        make_split(dataset(ROWS), "random")
