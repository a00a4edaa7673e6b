"""The real service (`bentoml serve` subprocess): every endpoint over HTTP and gRPC."""

from __future__ import annotations

import grpc
import httpx
import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.http, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def channel(server):
    with grpc.insecure_channel(server.grpc) as ch:
        yield ch


@pytest.fixture(scope="module")
def pb(channel):
    from augrec.services import stubs

    pb2, pb2_grpc = stubs.load()
    return pb2, pb2_grpc.RecommenderStub(channel)


@pytest.fixture(scope="module")
def triton(server):
    import tritonclient.grpc as tc

    client = tc.InferenceServerClient(server.grpc)
    yield client
    client.close()


@pytest.fixture(scope="module")
def users(world) -> list[int]:
    return pd.read_parquet(world.data / "interactions.parquet")["user_id"].unique().tolist()


def _post(http, path, body):
    resp = http.post(path, json=body)
    assert resp.status_code == 200, (path, body, resp.text)
    return resp.json()


def _grpc_recommend(pb, **fields):
    pb2, stub = pb
    out = stub.Recommend(pb2.RecommendRequest(**fields))
    return {
        "items": [{"item_id": i.item_id, "score": i.score} for i in out.items],
        "model_version": out.model_version,
        "fallback": out.fallback,
        "fallback_reason": out.fallback_reason or None,
    }


def test_health_endpoints_and_status(http, world):
    assert http.get("/livez").status_code == 200
    assert http.get("/readyz").status_code == 200
    status = http.get("/status").json()
    assert status == {
        "ready": True,
        "model_version": world.tag,
        "model": "itemknn",
        "feature_store": "ok",
        "contract": "ok",
        "readiness": "model",
        "degraded": False,
        "problems": [],
    }
    assert "augrec_feature_store_up 1.0" in http.get("/metrics").text


def test_http_and_grpc_answer_identically(http, pb, users):
    requests = [
        {"user_id": users[0], "k": 10},
        {"user_id": users[1], "k": 3, "exclude_seen": False},
        {"user_id": users[2], "k": 20, "category": "cat_01"},
        {"user_id": users[3], "recent_items": [5, 9, 10**12]},
        {"user_id": 10**9, "k": 7},  # unknown user: popularity fallback
    ]
    for body in requests:
        over_http = _post(http, "/recommend", body)
        assert over_http == _grpc_recommend(pb, **body), body
        assert over_http["items"]
    assert _post(http, "/recommend", requests[-1])["fallback_reason"] == "empty_history"
    pb2, stub = pb
    similar = _post(http, "/similar", {"item_id": 5, "k": 4})
    out = stub.SimilarItems(pb2.SimilarItemsRequest(item_id=5, k=4))
    assert similar["items"] == [{"item_id": i.item_id, "score": i.score} for i in out.items]
    assert similar["item_id"] == out.item_id == 5 and len(similar["items"]) == 4


def test_tritonclient_model_infer_gives_the_same_top_k(http, triton, users, world):
    import tritonclient.grpc as tc

    assert triton.is_server_live() and triton.is_server_ready()
    assert triton.is_model_ready("recommender") and not triton.is_model_ready("other")
    meta = triton.get_model_metadata("recommender")
    assert meta.versions == [world.tag]
    assert {t.name for t in meta.inputs} == {"user_id", "k", "exclude_seen", "category"}
    batch = [users[0], users[4], 10**9]
    user_in = tc.InferInput("user_id", [len(batch)], "INT64")
    user_in.set_data_from_numpy(np.asarray(batch, dtype=np.int64))
    k_in = tc.InferInput("k", [1], "INT64")
    k_in.set_data_from_numpy(np.asarray([6], dtype=np.int64))
    result = triton.infer("recommender", [user_in, k_in])
    items, scores = result.as_numpy("item_id"), result.as_numpy("score")
    assert items.shape == scores.shape == (3, 6)
    assert result.as_numpy("fallback").tolist() == [False, False, True]
    assert result.get_response().model_version == world.tag
    for row, user in enumerate(batch):
        expected = _post(http, "/recommend", {"user_id": user, "k": 6})["items"]
        assert items[row].tolist() == [i["item_id"] for i in expected]
        assert scores[row].tolist() == pytest.approx([i["score"] for i in expected])
    # And against the model itself, outside the serving code: online history -> topk.
    from augrec.features.online import FeatureClient
    from augrec.rundir import load_model as load_run_model

    model, item_ids = load_run_model(world.run)
    codes = {int(orig): enc for enc, orig in enumerate(item_ids) if enc}
    history = FeatureClient.open(world.feature_repo).user_history(batch[0]).item_ids
    top, _ = model.topk([np.asarray([codes[int(i)] for i in history if int(i) in codes])], 6)
    assert items[0].tolist() == item_ids[top[0]].tolist()
    from tritonclient.utils import InferenceServerException

    with pytest.raises(InferenceServerException, match="NOT_FOUND"):
        triton.get_model_metadata("nope")
    bad = tc.InferInput("user_id", [2], "INT64")
    bad.set_data_from_numpy(np.asarray([1, 2, 3], dtype=np.int64).reshape(3)[:2])
    bad._raw_content = b"\x00" * 12  # 1.5 values for a shape of 2
    with pytest.raises(InferenceServerException, match="INVALID_ARGUMENT"):
        triton.infer("recommender", [bad])


def test_grpc_health_and_reflection(channel):
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "augrec.v1.Recommender", "inference.GRPCInferenceService"):
        resp = health.Check(health_pb2.HealthCheckRequest(service=service))
        assert resp.status == health_pb2.HealthCheckResponse.SERVING
    services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
    assert {"augrec.v1.Recommender", "inference.GRPCInferenceService"} <= services
    assert "grpc.health.v1.Health" in services


def test_pushed_events_change_the_next_recommendation(http, pb, users):
    pb2, stub = pb
    user = users[10]
    before = _post(http, "/recommend", {"user_id": user, "k": 5})["items"]
    top = before[0]["item_id"]
    event = {"user_id": user, "item_id": top, "event_type": "view", "timestamp": 2_000_000_000}
    assert _post(http, "/events", event) == {"accepted": True, "changed": True}
    after = _post(http, "/recommend", {"user_id": user, "k": 5})["items"]
    assert top not in {i["item_id"] for i in after} and after != before
    assert _post(http, "/events", event)["changed"] is False  # replay: no-op
    # The same over gRPC, for a user the store has never seen.
    new_user = 10**9 + 7
    assert _grpc_recommend(pb, user_id=new_user)["fallback"]
    pushed = stub.PushEvent(pb2.PushEventRequest(user_id=new_user, item_id=top))
    assert pushed.accepted and pushed.changed
    now = _grpc_recommend(pb, user_id=new_user)
    assert not now["fallback"] and top not in {i["item_id"] for i in now["items"]}


def test_bad_http_input_is_a_4xx_naming_the_field(http):
    cases = [
        ("/recommend", {"k": 5}, "user_id"),
        ("/recommend", {"user_id": "7"}, "user_id"),
        ("/recommend", {"user_id": 1, "k": -3}, "k"),
        ("/recommend", {"user_id": 1, "k": 10**9}, "k"),
        ("/recommend", {"user_id": 2**70}, "user_id"),
        ("/recommend", {"user_id": 1, "category": "no-such"}, "category"),
        ("/recommend", {"user_id": 1, "recent_items": ["a"]}, "recent_items"),
        ("/recommend", {"user_id": 1, "extra": 1}, "extra"),
        ("/similar", {"item_id": 10**12}, "item_id"),
        ("/similar", {"item_id": 1.5}, "item_id"),
        ("/events", {"user_id": 1, "item_id": 2, "event_type": "like"}, "event_type"),
        ("/events", {"user_id": 1, "item_id": 2, "timestamp": -1}, "timestamp"),
        ("/events", {"user_id": 1}, "item_id"),
    ]
    for path, body, field in cases:
        resp = http.post(path, json=body)
        assert 400 <= resp.status_code < 500, (path, body, resp.status_code, resp.text)
        assert field in resp.text, (path, body, resp.text)
    raw_cases = [
        (b"{not json", "application/json", 400),
        (b"", "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b'{"user_id": 1}', "text/plain", 415),
        (b"user_id=1", "application/x-www-form-urlencoded", 415),
        (b'{"user_id": 1, "pad": "' + b"x" * 100_000 + b'"}', "application/json", 413),
    ]
    for body, ctype, status in raw_cases:
        resp = http.post("/recommend", content=body, headers={"content-type": ctype})
        assert resp.status_code == status, (body[:40], ctype, resp.text)

    def chunks():  # streamed without a Content-Length
        for _ in range(100):
            yield b"x" * 1024

    resp = http.post("/recommend", content=chunks(), headers={"content-type": "application/json"})
    assert resp.status_code == 413


def test_bad_grpc_input_is_invalid_argument_naming_the_field(pb, channel):
    pb2, stub = pb
    cases = [
        (stub.Recommend, pb2.RecommendRequest(k=5), "user_id"),
        (stub.Recommend, pb2.RecommendRequest(user_id=1, k=0), "k"),
        (stub.Recommend, pb2.RecommendRequest(user_id=-1), "user_id"),
        (stub.Recommend, pb2.RecommendRequest(user_id=1, category="no-such"), "category"),
        (stub.PushEvent, pb2.PushEventRequest(user_id=1, item_id=2, event_type="x"), "event_type"),
    ]
    for call, request, field in cases:
        with pytest.raises(grpc.RpcError) as err:
            call(request)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, request
        assert field in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        stub.SimilarItems(pb2.SimilarItemsRequest(item_id=10**12))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND and "item_id" in err.value.details()
    raw = channel.unary_unary("/augrec.v1.Recommender/Recommend")
    with pytest.raises(grpc.RpcError) as err:
        raw(b"\xff\xff\xff")  # not a message
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = {}
    for size in (100_000, 300_000):  # over the size limit; the second, 4x over, grpcio refuses
        with pytest.raises(grpc.RpcError) as err:
            raw(b"\x22" + b"\xff\xff\x0f" + b"\x01" * size)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        details[size] = err.value.details()
    assert details[100_000].startswith("request: a 100004-byte message is over the limit")
    assert "--max-request-bytes" in details[100_000]


def test_grpc_accepts_fields_a_newer_proto_added(pb, channel):
    """proto3 forward compatibility: unknown fields (numbers 100, 101) are ignored."""
    pb2, stub = pb
    plain = stub.Recommend(pb2.RecommendRequest(user_id=1, k=4))
    raw = channel.unary_unary("/augrec.v1.Recommender/Recommend")
    # user_id=1, k=4, then varint field 100 = 5 and string field 101 = "new"
    body = b"\x08\x01\x10\x04" + b"\xa0\x06\x05" + b"\xaa\x06\x03new"
    assert pb2.RecommendResponse.FromString(raw(body)) == plain
    from tritonclient.grpc import service_pb2 as oip

    live = channel.unary_unary("/inference.GRPCInferenceService/ServerLive")
    assert oip.ServerLiveResponse.FromString(live(b"\xa0\x06\x05")).live


def test_with_auth_off_a_stray_authorization_changes_nothing(http, pb, users):
    """No keys configured: every caller is answered, whatever it sends (existing clients)."""
    body = {"user_id": users[0], "k": 5}
    plain = _post(http, "/recommend", body)
    resp = http.post("/recommend", json=body, headers={"authorization": "Bearer not-a-key"})
    assert resp.status_code == 200 and resp.json() == plain
    assert "www-authenticate" not in resp.headers
    assert http.get("/status").status_code == 200
    pb2, stub = pb
    reply = stub.Recommend(
        pb2.RecommendRequest(**body), metadata=[("authorization", "Bearer not-a-key")]
    )
    assert [i.item_id for i in reply.items] == [i["item_id"] for i in plain["items"]]


def test_metrics_count_both_protocols(http):
    text = http.get("/metrics").text
    assert 'augrec_requests_total{endpoint="recommend",outcome="ok",protocol="http"}' in text
    assert 'endpoint="recommend",outcome="ok",protocol="grpc"' in text
    assert 'outcome="invalid",protocol="grpc"' in text
    assert 'protocol="http",reason="empty_history"' in text
    assert "bentoml_service_request_total" in text
