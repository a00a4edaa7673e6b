"""A strict server whose feature store is unavailable: it answers from the model, flagged, and
reports not ready (AUGREC_READINESS_REQUIRES_STORE). The default, ready while degraded, is
tested under a Redis outage in test_faults.py."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import httpx
import pytest
from serving_helpers import Server, start_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def degraded(world, tmp_path_factory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("degraded") / "server.log"
    missing = str(tmp_path_factory.mktemp("nothing") / "no_feature_repo")
    strict = {"AUGREC_READINESS_REQUIRES_STORE": "true"}
    srv = start_server(world, log, probe="/livez", AUGREC_FEATURE_REPO=missing, **strict)
    try:
        yield srv
    finally:
        srv.stop()


def test_degraded_server_answers_flagged_and_reports_not_ready(degraded, world):
    with httpx.Client(base_url=degraded.http, timeout=10) as http:
        assert http.get("/livez").status_code == 200
        assert http.get("/readyz").status_code == 503
        status = http.get("/status").json()
        assert not status["ready"] and status["feature_store"] == "unavailable"
        assert status["degraded"] and status["readiness"] == "model_and_store"
        assert "no_feature_repo" in " ".join(status["problems"])
        resp = http.post("/recommend", json={"user_id": 1, "k": 5})
        assert resp.status_code == 200
        body = resp.json()
        assert body["fallback"] and body["fallback_reason"] == "feature_store_unavailable"
        assert len(body["items"]) == 5 and body["model_version"] == world.tag
        event = http.post("/events", json={"user_id": 1, "item_id": 2})
        assert event.status_code == 503 and "feature store" in event.json()["error"]
        assert "augrec_feature_store_up 0.0" in http.get("/metrics").text

    from augrec.services import stubs
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    pb2, pb2_grpc = stubs.load()
    with grpc.insecure_channel(degraded.grpc) as channel:
        check = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert check.status == health_pb2.HealthCheckResponse.NOT_SERVING
        out = pb2_grpc.RecommenderStub(channel).Recommend(pb2.RecommendRequest(user_id=1, k=5))
        assert out.fallback_reason == "feature_store_unavailable"
        assert [i.item_id for i in out.items] == [i["item_id"] for i in body["items"]]
    import tritonclient.grpc as tc

    triton = tc.InferenceServerClient(degraded.grpc)
    assert triton.is_server_live() and not triton.is_server_ready()
    triton.close()
