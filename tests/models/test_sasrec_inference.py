"""SASRec inference shortcuts: the top block's last position only, and length groups."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from augrec.models.sasrec import SASRec, SASRecConfig, length_groups, pad_left


@pytest.fixture(scope="module")
def model() -> SASRec:
    m = SASRec(SASRecConfig(hidden=32, layers=2, heads=2, max_len=20), seed=0)
    m.build(300, None)
    m.load_state_dict(m.state_dict())  # frozen and in eval mode, as a loaded model
    return m


def _histories(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(1, 301, int(length)) for length in rng.integers(1, 40, n)]


def test_last_only_equals_the_last_position_of_the_full_pass(model):
    seq = pad_left(_histories(16), model.cfg.max_len)
    with torch.no_grad():
        full = model.net(seq)[:, -1]
        last = model.net(seq, last_only=True)[:, -1]
    torch.testing.assert_close(last, full, rtol=1e-5, atol=1e-6)


def test_grouped_scores_equal_one_padded_batch(model):
    histories = _histories(40, seed=1)
    table = model._table()
    with torch.no_grad():
        padded = model.net(pad_left(histories, model.cfg.max_len), table)[:, -1] @ table.T
    grouped = model.score(histories)
    torch.testing.assert_close(grouped, padded, rtol=1e-5, atol=1e-5)
    assert torch.equal(grouped.argmax(1), padded.argmax(1))


def test_length_groups_partition_the_batch_and_split_only_when_it_pays():
    assert [g.tolist() for g in length_groups([5] * 8)] == [list(range(8))]
    groups = length_groups([2] * 31 + [50])  # one long history: run it on its own
    assert sorted(len(g) for g in groups) == [1, 31] and groups[-1].tolist() == [31]
    lengths = np.random.default_rng(0).integers(1, 51, 64)
    groups = length_groups(lengths, call_cost=32)
    assert sorted(np.concatenate(groups).tolist()) == list(range(64))

    def cost(gs):
        return sum(32 + len(g) * max(lengths[g]) for g in gs)

    assert cost(groups) <= cost([np.arange(64)])  # never worse than one padded batch
    # A call that costs nothing: every distinct length runs alone, with no padding at all.
    free = length_groups(lengths, call_cost=0)
    assert all(len(set(lengths[g])) == 1 for g in free)


def test_the_serving_graph_scores_as_the_eager_encoder(model):
    """`prepare_for_serving` (frozen TorchScript): other lengths and batch sizes than traced."""
    served = SASRec(model.cfg, seed=0)
    served.load_state_dict(model.state_dict())
    assert served.prepare_for_serving() and served._graph is not None
    histories = [np.zeros(0, dtype=np.int64), *_histories(60, seed=2)]  # lengths 0 to 39
    for batch in (1, 7, 61):
        for start in range(0, len(histories), batch):
            part = histories[start : start + batch]
            want, got = model.score(part), served.score(part)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
            assert torch.equal(got.argmax(1), want.argmax(1))


def test_a_model_being_trained_is_not_prepared_for_serving():
    m = SASRec(SASRecConfig(hidden=16, max_len=6), seed=0)
    m.build(30, None)  # built, not loaded: its weights still change
    assert not m.prepare_for_serving() and m._graph is None
