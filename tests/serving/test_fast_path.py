"""The fast path answers exactly as the reference path, on a Beauty-sized SASRec.

`ServingRecommender.recommend_batch` (one store read, one model call, one top-k for many
requests) against `recommend_one` (one request at a time): the SASRec of
benchmarks/configs/sasrec-beauty.yaml (hidden 128, 2 layers, 50 positions, item attributes)
over Beauty's 12,101 items, with random weights (serving cost and code paths do not depend
on training), and histories, unknown items, unknown users, categories and k drawn at random.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from augrec.features.online import History
from augrec.models.sasrec import SASRec, SASRecConfig
from augrec.serving import schemas as s
from augrec.serving.batching import BatchPolicy
from augrec.serving.errors import InvalidRequest, Unavailable
from augrec.serving.loading import LoadedModel
from augrec.serving.online import OnlineFeatures
from augrec.serving.recommender import ServingRecommender

N_ITEMS = 12_101  # Amazon Beauty
N_USERS = 600
CATEGORIES = [f"cat_{c:02d}" for c in range(12)]


class MemoryClient:
    """An in-memory feature client: histories in original ids, one category per item."""

    store = None

    def __init__(self, histories: dict[int, np.ndarray], item_ids: np.ndarray, seed: int):
        rng = np.random.default_rng(seed)
        self.histories = histories
        self.rows = {
            int(i): {"category": CATEGORIES[rng.integers(len(CATEGORIES))], "events_total": c}
            for i, c in zip(item_ids, rng.integers(0, 500, len(item_ids)), strict=True)
        }
        self.items = SimpleNamespace(preload=lambda ids: len(ids))

    def user_history(self, user_id: int) -> History:
        items = self.histories.get(int(user_id), np.zeros(0, dtype=np.int64))
        return History(int(user_id), items, np.arange(len(items), dtype=np.int64))

    def user_histories(self, user_ids) -> list[History]:
        return [self.user_history(u) for u in user_ids]

    def item_attributes(self, item_ids) -> dict:
        return {int(i): self.rows[int(i)] for i in item_ids}


@pytest.fixture(scope="module")
def one_thread():
    # As served (AUGREC_TORCH_THREADS=1); several threads only slow small ops on a busy CPU.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def beauty(one_thread) -> tuple[ServingRecommender, list[s.RecommendRequest]]:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = SASRec(SASRecConfig(hidden=128), seed=0)
    attrs = np.zeros((N_ITEMS + 1, 6), dtype=np.int64)  # Beauty: a few attributes per item
    attrs[1:] = rng.integers(0, 1_200, (N_ITEMS, 6)) * (rng.random((N_ITEMS, 6)) < 0.6)
    model.build(N_ITEMS, attrs)
    model.load_state_dict(model.state_dict())  # frozen, in eval mode, as a loaded model
    # Catalog ids are not the encoded ids: shuffled and spread out, as a shop's are.
    item_ids = np.concatenate([[0], rng.permutation(N_ITEMS) * 7 + 1_000]).astype(np.int64)
    lengths = np.minimum(rng.geometric(1 / 9, N_USERS) + 2, 200)  # median ~8, some > 50
    histories = {}
    for u in range(N_USERS):
        h = rng.choice(item_ids[1:], lengths[u])
        if u % 10 == 0:  # products newer than the model
            h[rng.integers(len(h))] = 10**12 + u
        histories[u] = h
    histories[7] = np.asarray([10**12, 10**12 + 1])  # only unknown items: empty_history
    features = OnlineFeatures(MemoryClient(histories, item_ids[1:], seed=1))
    loaded = LoadedModel(model, item_ids, "test:beauty", Path("."), None)
    rec = ServingRecommender(loaded, features)
    requests = []
    for _ in range(200):
        fields: dict = {
            "user_id": int(rng.integers(N_USERS + 20)),  # some unknown users
            "k": int(rng.choice([1, 5, 10, 10, 10, 20, 100])),
            "exclude_seen": bool(rng.random() < 0.85),
        }
        if rng.random() < 0.2:
            fields["recent_items"] = [int(i) for i in rng.choice(item_ids[1:], 3)]
        if rng.random() < 0.15:
            fields["category"] = CATEGORIES[rng.integers(len(CATEGORIES))]
        requests.append(s.RecommendRequest(**fields))
    return rec, requests


@pytest.fixture(scope="module")
def reference(beauty) -> list[s.RecommendResponse]:
    rec, requests = beauty
    return [rec.recommend_one(r) for r in requests]


def _same(fast: s.RecommendResponse, ref: s.RecommendResponse) -> None:
    assert [i.item_id for i in fast.items] == [i.item_id for i in ref.items]
    np.testing.assert_allclose(
        [i.score for i in fast.items], [i.score for i in ref.items], rtol=1e-5, atol=1e-6
    )
    assert (fast.fallback, fast.fallback_reason) == (ref.fallback, ref.fallback_reason)
    assert fast.model_version == ref.model_version


@pytest.mark.parametrize("batch", [1, 7, 32])
def test_batched_answers_equal_the_reference_on_beauty_sized_sasrec(beauty, reference, batch):
    rec, requests = beauty
    fast = []
    for start in range(0, len(requests), batch):
        fast += rec.recommend_batch(requests[start : start + batch])
    assert len(fast) == len(reference)
    for got, want in zip(fast, reference, strict=True):
        _same(got, want)
    reasons = {r.fallback_reason for r in reference}
    assert {None, "empty_history"} <= reasons  # both kinds of answer were compared
    assert any(len(r.items) == 100 for r in reference)


def test_the_torchscript_encoder_answers_as_the_reference(beauty, reference):
    """What `augrec serve` runs by default (AUGREC_TORCHSCRIPT): same items, same order."""
    rec, requests = beauty
    served = SASRec(rec.model.cfg, seed=0)
    served.load_state_dict(rec.model.state_dict())
    assert served.prepare_for_serving()
    fast = ServingRecommender(
        LoadedModel(served, rec.item_ids, rec.version, Path("."), None), rec.features
    )
    got = []
    for start in range(0, len(requests), 32):
        got += fast.recommend_batch(requests[start : start + 32])
    for answer, want in zip(got, reference, strict=True):
        _same(answer, want)


def test_store_unavailable_in_a_batch_answers_as_the_reference(beauty):
    rec, requests = beauty
    broken = ServingRecommender(rec.loaded, OnlineFeatures(None, "down"))
    batch = requests[:32]
    assert any(r.category for r in batch) and any(r.recent_items for r in batch)
    for req, got in zip(batch, broken.recommend_batch(batch), strict=True):
        if req.category is not None:  # no catalog read at start: the filter is unavailable
            assert isinstance(got, Unavailable) and got.field == "category"
            with pytest.raises(Unavailable):
                broken.recommend_one(req)
            continue
        _same(got, broken.recommend_one(req))
        assert got.fallback_reason == "feature_store_unavailable"


def test_a_bad_request_gets_its_error_and_its_batch_is_answered(beauty):
    rec, requests = beauty
    bad = s.RecommendRequest(user_id=1, category="no-such-category")
    got = rec.recommend_batch([requests[0], bad, requests[1]])
    assert isinstance(got[1], InvalidRequest) and got[1].field == "category"
    _same(got[0], rec.recommend_one(requests[0]))
    _same(got[2], rec.recommend_one(requests[1]))


def test_the_batched_server_path_answers_as_the_reference(beauty, reference):
    rec, requests = beauty
    batched = ServingRecommender(rec.loaded, rec.features, BatchPolicy(max_size=16))
    try:
        with ThreadPoolExecutor(8) as pool:  # concurrent callers, so batches form
            got = list(pool.map(batched.recommend, requests[:64]))
        for fast, want in zip(got, reference, strict=False):
            _same(fast, want)
        with pytest.raises(InvalidRequest):
            batched.recommend(s.RecommendRequest(user_id=1, category="no-such-category"))
    finally:
        batched.close()


def test_vectorised_encoding_equals_the_dictionary(beauty):
    rec, _ = beauty
    rng = np.random.default_rng(3)
    items = np.concatenate([rng.choice(rec.item_ids[1:], 500), [0, -1, 10**15, 999]])
    rng.shuffle(items)
    assert rec.encode_array(items).tolist() == rec.encode(items.tolist()).tolist()
