"""Serving on a feature store nobody filled: one clear line naming the commands, nothing written."""

from __future__ import annotations

import logging

from feature_helpers import copy_feature_repo

from augrec.serving import schemas as s
from augrec.serving.loading import load
from augrec.serving.online import OnlineFeatures
from augrec.serving.recommender import ServingRecommender


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_repo_never_applied_is_not_written_and_names_the_commands(world, tmp_path, caplog):
    repo = copy_feature_repo(tmp_path / "feature_repo")
    with caplog.at_level(logging.WARNING):
        feats = OnlineFeatures.open(str(repo))
        rec = ServingRecommender(load("production", world.home), feats)
    got = rec.recommend(s.RecommendRequest(user_id=1, k=3))
    assert got.fallback_reason == "feature_store_unavailable" and len(got.items) == 3
    assert feats.client is None and "augrec features apply" in feats.error
    assert not (repo / "data" / "registry.db").exists()  # Feast did not create an empty one
    said = _warnings(caplog)
    assert len(said) == 1, said
    assert "augrec features ingest" in said[0] and "augrec features materialize" in said[0]


def test_an_applied_but_empty_store_says_so_once(world, tmp_path, caplog):
    from augrec.features.store import apply, open_store

    repo = copy_feature_repo(tmp_path / "feature_repo")
    apply(open_store(repo))  # registered, never ingested nor materialized
    with caplog.at_level(logging.WARNING):
        ServingRecommender(load("production", world.home), OnlineFeatures.open(str(repo)))
    said = [m for m in _warnings(caplog) if "feature store" in m]
    assert len(said) == 1, said
    assert "holds no item or user rows" in said[0] and "augrec features materialize" in said[0]
