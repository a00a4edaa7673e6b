"""Search in the serving core and over the real service: HTTP and gRPC agree, bad input 4xx."""

from __future__ import annotations

import dataclasses

import grpc
import httpx
import pytest
from pydantic import ValidationError

from augrec import rundir
from augrec.search.index import IndexMismatch
from augrec.serving import schemas as s
from augrec.serving.config import ServingConfig
from augrec.serving.loading import load
from augrec.serving.online import OnlineFeatures
from augrec.serving.recommender import ServingRecommender, load_search_index


@pytest.fixture(scope="module")
def indexed_run(world):
    """The world's run directory; `build_world` put a search index beside its model."""
    assert (world.run / rundir.SEARCH_INDEX).exists()
    return world.run


@pytest.fixture(scope="module")
def rec(world, indexed_run) -> ServingRecommender:
    loaded = load(str(indexed_run))
    feats = OnlineFeatures.open(str(world.feature_repo))
    return ServingRecommender(loaded, feats, None, load_search_index(ServingConfig(), loaded))


def test_anonymous_search_is_flagged_and_personal_search_reranks(rec, world):
    import pandas as pd

    anon = rec.search(s.SearchRequest(query="matte lipstick", k=5))
    assert anon.fallback and anon.fallback_reason == "anonymous" and not anon.personalized
    titles = rec.search_index.catalog.titles
    codes = [rec._codes[i.item_id] for i in anon.items]
    assert all("Lipstick" in titles[c] for c in codes)
    user = int(pd.read_parquet(world.data / "interactions.parquet")["user_id"].iloc[0])
    mine = rec.search(s.SearchRequest(query="matte lipstick", k=5, user_id=user))
    assert mine.personalized and not mine.fallback
    unknown = rec.search(s.SearchRequest(query="matte lipstick", user_id=10**12))
    assert unknown.fallback_reason == "empty_history"


def test_filters_restrict_and_unknown_values_name_the_filter(rec):
    brand = rec.search_index.catalog.brands[1]
    out = rec.search(s.SearchRequest(query="lipstick", k=50, filters={"brand": brand.upper()}))
    assert out.items and all(
        rec.search_index.catalog.brands[rec._codes[i.item_id]] == brand for i in out.items
    )
    with pytest.raises(Exception, match="filters.category"):
        rec.search(s.SearchRequest(query="x", filters={"category": "no-such"}))
    for bad, field in (
        ({"query": ""}, "query"),
        ({"query": "   "}, "query"),
        ({"query": "x" * (s.MAX_QUERY_LENGTH + 1)}, "query"),
        ({"query": "x", "filters": {"colour": "red"}}, "filters.colour"),
        ({"query": "x", "k": 0}, "k"),
    ):
        with pytest.raises(ValidationError) as err:
            s.SearchRequest.model_validate(bad)
        locs = {".".join(map(str, e["loc"])) for e in err.value.errors()}
        assert field in locs, (bad, locs)


def test_an_index_for_another_catalog_is_refused_at_start(world, indexed_run, tmp_path):
    loaded = load(str(indexed_run))
    other = dataclasses.replace(loaded, item_ids=loaded.item_ids[::-1].copy())
    with pytest.raises(IndexMismatch, match="rebuild"):
        load_search_index(ServingConfig(), other)
    # A model without an index serves everything but /search.
    bare = dataclasses.replace(loaded, path=tmp_path)
    assert load_search_index(ServingConfig(), bare) is None


@pytest.mark.e2e
def test_http_and_grpc_search_agree_and_refuse_bad_input(server, world):
    """The registered production version carries its index; the session's server serves it."""
    import pandas as pd
    from augrec.services import stubs

    pb2, pb2_grpc = stubs.load()
    user = int(pd.read_parquet(world.data / "interactions.parquet")["user_id"].iloc[3])
    requests = [
        {"query": "matte red lipstick", "k": 5},
        {"query": "mascara", "user_id": user, "k": 8},
        {"query": "nail polish", "user_id": user, "k": 20, "filters": {"category": "cat_01"}},
    ]
    with (
        httpx.Client(base_url=server.http, timeout=30) as http,
        grpc.insecure_channel(server.grpc) as ch,
    ):
        stub = pb2_grpc.RecommenderStub(ch)
        for body in requests:
            resp = http.post("/search", json=body)
            assert resp.status_code == 200, resp.text
            over_http = resp.json()
            out = stub.Search(pb2.SearchRequest(**body))
            over_grpc = {
                "items": [{"item_id": i.item_id, "score": i.score} for i in out.items],
                "model_version": out.model_version,
                "personalized": out.personalized,
                "fallback": out.fallback,
                "fallback_reason": out.fallback_reason or None,
            }
            assert over_http == over_grpc, body
            assert over_http["items"]
        bad = [
            ({"query": ""}, "query"),
            ({"query": "x" * 501}, "query"),
            ({"query": "x", "filters": {"colour": "red"}}, "colour"),
            ({"query": "x", "filters": {"category": "no-such"}}, "filters.category"),
        ]
        for body, field in bad:
            resp = http.post("/search", json=body)
            assert 400 <= resp.status_code < 500 and field in resp.text, (body, resp.text)
            with pytest.raises(grpc.RpcError) as err:
                stub.Search(pb2.SearchRequest(**body))
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, body
            assert field in err.value.details(), (body, err.value.details())
