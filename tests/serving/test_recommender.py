"""The serving core in-process: ranking, masks, filters, fallbacks, similar items, events."""

from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
import pandas as pd
import pytest
import torch
from pydantic import ValidationError
from registry_helpers import SASREC_UNTRAINED, train_run

from augrec.serving import schemas as s
from augrec.serving.batching import BatchPolicy
from augrec.serving.config import ServingConfig
from augrec.serving.errors import InvalidRequest, NotFound, Unavailable
from augrec.serving.loading import load
from augrec.serving.online import OnlineFeatures
from augrec.serving.recommender import ServingRecommender


@pytest.fixture(scope="module")
def features(world) -> OnlineFeatures:
    feats = OnlineFeatures.open(str(world.feature_repo))
    assert feats.client is not None, feats.error
    return feats


@pytest.fixture(scope="module")
def rec(world, features) -> ServingRecommender:
    return ServingRecommender(load("production", world.home), features)


@pytest.fixture(scope="module")
def interactions(world) -> pd.DataFrame:
    return pd.read_parquet(world.data / "interactions.parquet")


@pytest.fixture(scope="module")
def items(world) -> pd.DataFrame:
    return pd.read_parquet(world.data / "items.parquet")


class _BrokenClient:
    """A feature client whose every read fails, as when Redis goes away."""

    store = None

    def user_history(self, user_id):
        raise ConnectionError("redis: connection refused")

    def push_event(self, *args):
        raise ConnectionError("redis: connection refused")


def _history(features: OnlineFeatures, user: int) -> np.ndarray:
    # Read back from the store rather than the log: other tests push events into it.
    return features.history(user)


def test_recommend_ranks_the_online_history_with_seen_items_masked(rec, interactions):
    user = int(interactions["user_id"].iloc[0])
    got = rec.recommend(s.RecommendRequest(user_id=user, k=10))
    history = rec.encode(_history(rec.features, user))
    codes, scores = rec.model.topk([history], 10, exclude_seen=True)
    assert [i.item_id for i in got.items] == rec.item_ids[codes[0]].tolist()
    assert [i.score for i in got.items] == pytest.approx(scores[0].tolist())
    assert not set(_history(rec.features, user)) & {i.item_id for i in got.items}
    assert got.model_version == rec.version and not got.fallback


def test_exclude_seen_false_scores_the_same_history_without_masking(rec, interactions):
    user = int(interactions["user_id"].iloc[0])
    got = rec.recommend(s.RecommendRequest(user_id=user, k=20, exclude_seen=False))
    history = rec.encode(_history(rec.features, user))
    codes, _ = rec.model.topk([history], 20, exclude_seen=False)
    assert [i.item_id for i in got.items] == rec.item_ids[codes[0]].tolist()


def test_unknown_user_gets_popularity_flagged(rec, interactions):
    got = rec.recommend(s.RecommendRequest(user_id=10**9, k=5))
    assert got.fallback and got.fallback_reason == "empty_history"
    counts = interactions["item_id"].value_counts()  # events_total in the online store
    relative = counts / counts.max()  # one scale for popularity: 1.0 is the top item
    assert [i.score for i in got.items] == pytest.approx(relative.to_numpy()[:5].tolist())
    assert all(relative[i.item_id] == pytest.approx(i.score) for i in got.items)


@pytest.mark.parametrize("model", ["itemknn", "popularity", "sasrec"])
def test_popularity_fallback_has_one_scale_with_and_without_the_store(
    world, features, tmp_path, model
):
    run = train_run(
        world.data, tmp_path / model, model, SASREC_UNTRAINED if model == "sasrec" else None
    )
    loaded = load(str(run))
    for feats in (features, OnlineFeatures(None, "cannot open")):
        got = ServingRecommender(loaded, feats).recommend(s.RecommendRequest(user_id=10**9, k=20))
        assert got.fallback
        scores = [i.score for i in got.items]
        assert scores[0] == pytest.approx(1.0), (model, feats.error, scores)
        assert all(0.0 <= v <= 1.0 for v in scores), (model, feats.error, scores)
        assert scores == sorted(scores, reverse=True)


def test_recent_items_extend_the_history_and_unknown_ids_are_skipped(rec, interactions):
    user = int(interactions["user_id"].iloc[0])
    recent = [int(rec.item_ids[7]), 10**12]  # one catalog item, one the model never saw
    got = rec.recommend(s.RecommendRequest(user_id=user, k=5, recent_items=recent))
    history = rec.encode([*_history(rec.features, user), recent[0]])
    codes, _ = rec.model.topk([history], 5)
    assert [i.item_id for i in got.items] == rec.item_ids[codes[0]].tolist()
    new_user = rec.recommend(s.RecommendRequest(user_id=10**9, recent_items=recent))
    assert not new_user.fallback  # the recent items personalise an unknown user


def test_category_filter_keeps_only_that_category(rec, items, interactions):
    user = int(interactions["user_id"].iloc[0])
    category = items["category"].value_counts().index[0]
    got = rec.recommend(s.RecommendRequest(user_id=user, k=50, category=category))
    in_cat = set(items.loc[items["category"] == category, "item_id"])
    assert got.items and {i.item_id for i in got.items} <= in_cat
    with pytest.raises(InvalidRequest) as err:
        rec.recommend(s.RecommendRequest(user_id=user, category="no-such-category"))
    assert err.value.field == "category"


def test_requests_are_validated_with_field_names():
    for bad, field in [
        ({"k": 5}, "user_id"),
        ({"user_id": 1, "k": 0}, "k"),
        ({"user_id": 1, "k": 10_000}, "k"),
        ({"user_id": -1}, "user_id"),
        ({"user_id": "1"}, "user_id"),  # strict: a string is not an id
        ({"user_id": True}, "user_id"),
        ({"user_id": 1, "usr": 2}, "usr"),
        ({"user_id": 1, "recent_items": list(range(1000))}, "recent_items"),
    ]:
        with pytest.raises(ValidationError) as err:
            s.RecommendRequest.model_validate(bad)
        assert field in {str(e["loc"][0]) for e in err.value.errors()}, bad


def test_similar_items_come_from_the_similarity_rows(rec):
    item = int(rec.item_ids[1])
    got = rec.similar(s.SimilarRequest(item_id=item, k=5))
    row = rec.model.item_similarity(np.asarray([1]))[0]
    row[1] = -torch.inf
    best = torch.argsort(row, descending=True, stable=True)[: len(got.items)]
    assert [i.item_id for i in got.items] == rec.item_ids[best.numpy()].tolist()
    assert item not in {i.item_id for i in got.items} and not got.fallback
    with pytest.raises(NotFound) as err:
        rec.similar(s.SimilarRequest(item_id=10**12))
    assert err.value.field == "item_id"


def test_popularity_model_has_no_item_representation_so_similar_falls_back(
    world, features, tmp_path
):
    run = train_run(world.data, tmp_path / "pop", "popularity")
    pop = ServingRecommender(load(str(run)), features)
    assert pop.version == "run:pop"
    got = pop.similar(s.SimilarRequest(item_id=int(pop.item_ids[1]), k=3))
    assert got.fallback and got.fallback_reason == "no_item_representation"
    assert len(got.items) == 3 and int(pop.item_ids[1]) not in {i.item_id for i in got.items}


def test_sasrec_similarity_is_cosine_over_item_embeddings(world, features, tmp_path):
    run = train_run(world.data, tmp_path / "sasrec", "sasrec", SASREC_UNTRAINED)
    sas = ServingRecommender(load(str(run)), features)
    sims = sas.model.item_similarity(np.asarray([3, 4]))
    assert sims.shape == (2, sas.n_items + 1)
    assert sims[0, 3] == pytest.approx(1.0, abs=1e-5) and torch.isneginf(sims[:, 0]).all()
    assert len(sas.similar(s.SimilarRequest(item_id=int(sas.item_ids[3]), k=4)).items) == 4


def test_store_unavailable_answers_from_the_model_flagged_ready_unless_strict(world, rec):
    for feats in (OnlineFeatures(None, "cannot open"), OnlineFeatures(_BrokenClient())):
        degraded = ServingRecommender(rec.loaded, feats)
        assert degraded.popularity_source == "model" and degraded.contract == "unchecked"
        got = degraded.recommend(s.RecommendRequest(user_id=1, k=5))
        assert got.fallback and got.fallback_reason == "feature_store_unavailable"
        assert len(got.items) == 5
        recent = [int(rec.item_ids[2])]
        with_recent = degraded.recommend(s.RecommendRequest(user_id=1, recent_items=recent))
        codes, _ = rec.model.topk([np.asarray([2])], 10)
        assert [i.item_id for i in with_recent.items] == rec.item_ids[codes[0]].tolist()
        assert with_recent.fallback_reason == "feature_store_unavailable"
        health = degraded.health()
        # Readiness means "this process can answer": it can, from the model, flagged.
        assert health.ready and degraded.ready() and health.readiness == "model"
        assert health.degraded and health.feature_store == "unavailable" and health.problems
        degraded.require_store = True  # AUGREC_READINESS_REQUIRES_STORE
        strict = degraded.health()
        assert not strict.ready and not degraded.ready()
        assert strict.readiness == "model_and_store"
        with pytest.raises(Unavailable):
            degraded.push_event(s.EventRequest(user_id=1, item_id=2))
        with pytest.raises(Unavailable) as err:
            degraded.recommend(s.RecommendRequest(user_id=1, category="cat_00"))
        assert err.value.field == "category"


def test_store_state_flips_once_per_outage_and_back(rec, monkeypatch):
    from augrec.serving import online

    monkeypatch.setattr(online, "RETRY_S", 60.0)
    client = rec.features.client
    feats = OnlineFeatures(client)
    flips = []
    feats.on_change = flips.append
    assert feats.up and feats.history(1) is not None and flips == []
    feats.client = _BrokenClient()
    assert feats.history(1) is None and flips == [False] and not feats.up
    # While down, requests do not wait on the store (a Redis client retries for seconds):
    # they are answered at once and the store is not tried again before RETRY_S.
    t0 = time.monotonic()
    assert feats.history(2) is None and not feats.probe() and feats.errors == 1
    with pytest.raises(Unavailable):
        feats.push(1, 2, 3)
    assert time.monotonic() - t0 < 0.5 and feats.errors == 1
    feats.client = client  # the store is back; the next retry, in the background, sees it
    feats._retry_at = 0.0
    assert feats.history(1) is None  # starts the retry, does not wait for it
    deadline = time.monotonic() + 30
    while not feats.up and time.monotonic() < deadline:
        time.sleep(0.01)
    assert feats.up and flips == [False, True] and feats.history(1) is not None


class _HangingClient:
    """A store that answers nothing until released: a Redis gone while its client retries."""

    def __init__(self):
        self.release = threading.Event()

    def user_history(self, user_id):
        self.release.wait(30)
        raise ConnectionError("Connection refused")


def test_a_probe_of_a_hanging_store_answers_within_its_timeout_and_marks_it_down(rec):
    hanging = _HangingClient()
    feats = OnlineFeatures(hanging)
    flips = []
    feats.on_change = flips.append
    t0 = time.monotonic()
    assert not feats.probe(timeout=0.3)
    assert time.monotonic() - t0 < 2.0  # not the client's retries
    assert not feats.up and flips == [False] and "no answer within 0.3 s" in feats.error
    # Requests and later probes do not wait on it while it is down.
    t0 = time.monotonic()
    assert feats.history(1) is None and not feats.probe(timeout=5)
    assert time.monotonic() - t0 < 0.5
    hanging.release.set()
    feats.client = rec.features.client  # back: found by the background retry
    feats._retry_at = 0.0
    deadline = time.monotonic() + 30
    while not feats.probe() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert feats.up and flips[-1] is True


def test_a_store_that_could_not_open_is_reopened_in_the_background(world, monkeypatch):
    from augrec.serving import online

    repo = str(world.feature_repo)
    feats = OnlineFeatures(None, "cannot open (registry not reachable)", repo, "local")
    flips = []
    feats.on_change = flips.append
    assert not feats.probe()  # too soon: no attempt before REOPEN_S
    monkeypatch.setattr(online, "REOPEN_S", 0.0)
    feats._reopen_at = 0.0
    assert not feats.probe()  # starts the attempt, answers at once
    deadline = time.monotonic() + 60
    while feats.client is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert feats.client is not None and feats.up and flips == [True] and feats.error is None
    assert feats.probe()


def test_health_checks_the_feature_contract(rec, world):
    assert rec.health().ready and rec.contract == "ok"
    changed = {**rec.loaded.contract}
    changed["services"] = [{**e, "fingerprint": "0" * 64} for e in changed["services"]]
    mismatched = ServingRecommender(dataclasses.replace(rec.loaded, contract=changed), rec.features)
    health = mismatched.health()
    assert not health.ready and health.contract == "mismatch"
    assert "recommender_v1" in " ".join(health.problems)
    unrecorded = ServingRecommender(dataclasses.replace(rec.loaded, contract=None), rec.features)
    assert unrecorded.health().ready and unrecorded.contract == "not_recorded"


def test_a_pushed_event_changes_the_next_recommendation(rec, interactions):
    user = int(interactions["user_id"].iloc[-1])
    before = rec.recommend(s.RecommendRequest(user_id=user, k=5))
    top = before.items[0].item_id
    pushed = rec.push_event(s.EventRequest(user_id=user, item_id=top, timestamp=2_000_000_000))
    assert pushed.accepted and pushed.changed
    after = rec.recommend(s.RecommendRequest(user_id=user, k=5))
    assert top not in {i.item_id for i in after.items} and after.items != before.items
    again = rec.push_event(s.EventRequest(user_id=user, item_id=top, timestamp=2_000_000_000))
    assert not again.changed  # a replay is a no-op


def test_batched_recommendations_match_the_reference_and_batch_under_load(
    rec, interactions, monkeypatch
):
    score = rec.model.score

    def slow_score(histories):
        time.sleep(0.01)  # long enough for concurrent requests to queue up
        return score(histories)

    monkeypatch.setattr(rec.model, "score", slow_score)
    sizes = []
    batched = ServingRecommender(rec.loaded, rec.features, BatchPolicy(8), on_batch=sizes.append)
    users = [int(u) for u in interactions["user_id"].unique()[:24]]
    requests = [s.RecommendRequest(user_id=u, k=10) for u in users]
    results: dict[int, s.RecommendResponse] = {}

    def one(i: int) -> None:
        results[i] = batched.recommend(requests[i])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batched.close()
    for i, req in enumerate(requests):
        assert results[i] == rec.recommend_one(req)
    assert max(sizes) > 1 and max(sizes) <= 8 and sum(sizes) == len(requests)


def test_serving_config_round_trips_through_the_environment():
    cfg = ServingConfig(model="production", feature_repo=None, grpc_port=0, batching=True)
    assert ServingConfig.from_env(cfg.to_env()) == cfg
    assert "BENTOML_HOME" not in cfg.to_env()  # unset stays unset: BentoML's default
    from augrec.errors import ConfigError

    with pytest.raises(ConfigError, match="AUGREC_GRPC_PORT"):
        ServingConfig.from_env({"AUGREC_GRPC_PORT": "http"})
