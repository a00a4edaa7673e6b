"""The real service with access control on: API keys, a rate limit and gRPC over TLS.

The `secured` server (conftest): `AUGREC_API_KEYS`, `AUGREC_RATE_LIMIT` and a self-signed
certificate made for the session. Each test that spends rate budget has its own key, since
the limit is per key.
"""

from __future__ import annotations

import time

import grpc
import httpx
import numpy as np
import pytest
from serving_helpers import RATE_BURST, RATE_LIMIT, bearer

pytestmark = pytest.mark.e2e
RATE, BURST = RATE_LIMIT, RATE_BURST


@pytest.fixture(scope="module")
def http(secured):
    with httpx.Client(base_url=secured.http, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def channel(secured, tls):
    creds = grpc.ssl_channel_credentials(tls[0].read_bytes())
    with grpc.secure_channel(secured.grpc, creds) as ch:
        yield ch


def test_http_without_a_valid_key_is_401_and_probes_stay_open(http):
    body = {"user_id": 1, "k": 3}
    for headers in ({}, {"authorization": "Bearer wrong-key-wrong-key"}, {"authorization": "x"}):
        resp = http.post("/recommend", json=body, headers=headers)
        assert resp.status_code == 401, (headers, resp.text)
        assert resp.json()["field"] == "authorization"
        assert resp.headers["www-authenticate"].startswith("Bearer")
    # Refused before the body is read: an oversized or non-JSON body is still 401, not 413.
    big = b"x" * 200_000
    assert (
        http.post("/recommend", content=big, headers={"content-type": "text/plain"}).status_code
        == 401
    )
    for path in ("/status", "/docs.json"):
        assert http.get(path).status_code == 401, path
    for path in ("/livez", "/readyz", "/metrics"):
        assert http.get(path).status_code == 200, path
    resp = http.post("/recommend", json=body, headers=bearer("api"))
    assert resp.status_code == 200 and len(resp.json()["items"]) == 3
    assert http.get("/status", headers=bearer("api")).json()["ready"] is True
    # With a key, bad input is refused as before, naming the field.
    resp = http.post("/recommend", json={"user_id": -1}, headers=bearer("api"))
    assert resp.status_code == 400 and resp.json()["field"] == "user_id"


def test_grpc_without_a_valid_key_is_unauthenticated_on_both_apis(channel, tls, secured):
    import tritonclient.grpc as tc
    from augrec.services import stubs
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from tritonclient.utils import InferenceServerException

    pb2, pb2_grpc = stubs.load()
    stub = pb2_grpc.RecommenderStub(channel)
    request = pb2.RecommendRequest(user_id=1, k=3)
    for metadata in (None, [("authorization", "Bearer wrong-key-wrong-key")]):
        with pytest.raises(grpc.RpcError) as err:
            stub.Recommend(request, metadata=metadata)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert err.value.details().startswith("authorization: ")
    reply = stub.Recommend(request, metadata=list(bearer("api").items()))
    assert len(reply.items) == 3
    health = health_pb2_grpc.HealthStub(channel)
    assert health.Check(health_pb2.HealthCheckRequest()).status == 1  # SERVING, no key

    client = tc.InferenceServerClient(secured.grpc, ssl=True, root_certificates=str(tls[0]))
    try:
        with pytest.raises(InferenceServerException, match="UNAUTHENTICATED"):
            client.is_server_live()
        users = tc.InferInput("user_id", [2], "INT64")
        users.set_data_from_numpy(np.asarray([1, 2], dtype=np.int64))
        with pytest.raises(InferenceServerException, match="UNAUTHENTICATED"):
            client.infer("recommender", [users])
        result = client.infer("recommender", [users], headers=bearer("api"))
        assert result.as_numpy("item_id").shape == (2, 10)
    finally:
        client.close()


def test_grpc_port_speaks_only_tls(secured):
    from augrec.services import stubs

    pb2, pb2_grpc = stubs.load()
    with grpc.insecure_channel(secured.grpc) as plain:
        with pytest.raises(grpc.RpcError) as err:
            pb2_grpc.RecommenderStub(plain).Recommend(
                pb2.RecommendRequest(user_id=1), metadata=list(bearer("api").items()), timeout=10
            )
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


# Bodies a hostile or broken client sends, and the field the 4xx must name. Listed in
# docs/reliability.md ("Hostile input and access"); the guard refuses each before BentoML.
HOSTILE_BODIES = [
    (b'{"user_id": ' + b"[" * 20_000 + b"]" * 20_000 + b"}", 400, "request"),  # nesting
    (b'{"a":' * 5_000 + b"1" + b"}" * 5_000, 400, "request"),
    (b'{"user_id": ' + b"9" * 5_000 + b"}", 400, "request"),  # a 5,000-digit number
    (b'{"user_id": 1e999}', 400, "user_id"),
    (b'{"user_id": NaN}', 400, "user_id"),
    (b'{"user_id": 1, "user_id": -5}', 400, "user_id"),  # duplicate key: the last counts
    (b'\xef\xbb\xbf{"user_id": 1}', 400, "request"),  # a byte-order mark
    (b'{"user_id": 1, "category": "\xff\xfe"}', 400, "request"),  # not UTF-8
    (b'{"user_id": 1, "category": "\\ud800"}', 400, "request"),  # a lone surrogate
    (b'{"user_id": 1, "category": "a\\u0000b"}', 400, "category"),  # NUL: unknown category
    (b'{"user_id": 1, "recent_items": [' + b",".join([b"1"] * 201) + b"]}", 400, "recent_items"),
    (b'{"user_id": 1, "category": "' + b"x" * 201 + b'"}', 400, "category"),
    (b'{"user_id": 1.0}', 400, "user_id"),
    (b'{"user_id": null}', 400, "user_id"),
    (b"[" * 70_000, 413, "body"),  # over AUGREC_MAX_REQUEST_BYTES
]


def test_hostile_http_bodies_are_4xx_naming_the_field(http):
    headers = {**bearer("hostile"), "content-type": "application/json"}
    for body, status, field in HOSTILE_BODIES:
        resp = http.post("/recommend", content=body, headers=headers)
        assert resp.status_code == status, (body[:60], resp.status_code, resp.text[:200])
        assert resp.json()["field"] == field, (body[:60], resp.text[:200])
    # A header block past the server's limit is refused by the HTTP server, not a 5xx.
    resp = http.post("/recommend", json={"user_id": 1}, headers={"x-pad": "x" * 70_000})
    assert 400 <= resp.status_code < 500


def test_hostile_grpc_messages_are_invalid_argument(channel):
    import struct

    import tritonclient.grpc.service_pb2 as oip

    key = list(bearer("hostile").items())
    recommend = channel.unary_unary("/augrec.v1.Recommender/Recommend")
    cases = [
        (b"\x08" + b"\xff" * 11, "not a valid"),  # a varint longer than 10 bytes
        (b"\x0a\x01\x01", "user_id"),  # user_id with the wrong wire type: unknown, so missing
        (b"\x08\x01\x2a\x02\xff\xfe", "not a valid"),  # category not UTF-8
        (b"\x08\x01" + b"\x20\x01" * 201, "recent_items"),  # 201 recent items
        (b"\x08\x01" + b"\xa3\x06" * 200 + b"\xa4\x06" * 200, "not a valid"),  # nested groups
    ]
    for body, words in cases:
        with pytest.raises(grpc.RpcError) as err:
            recommend(body, metadata=key)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (body[:20], err.value)
        assert words in err.value.details(), (body[:20], err.value.details())
    infer = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
    request = oip.ModelInferRequest(model_name="recommender")
    request.inputs.add(name="user_id", datatype="INT64", shape=[257])
    request.raw_input_contents.append(struct.pack("<257q", *range(257)))
    with pytest.raises(grpc.RpcError) as err:
        infer(request.SerializeToString(), metadata=key)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith("user_id: expected 1 to 256 users")


def _until_refused(call, limit: int = 400) -> tuple[int, object]:
    """Call until the first refusal; (calls granted before it, the refusal)."""
    for granted in range(limit):
        refusal = call()
        if refusal is not None:
            return granted, refusal
    raise AssertionError(f"no refusal in {limit} calls at a limit of {RATE}/s")


def test_http_over_the_rate_is_429_with_retry_after(http):
    def call():
        resp = http.post("/similar", json={"item_id": 5, "k": 2}, headers=bearer("http"))
        assert resp.status_code in (200, 429), resp.text
        return resp if resp.status_code == 429 else None

    t0 = time.monotonic()
    granted, resp = _until_refused(call)
    assert granted >= BURST and granted <= BURST + RATE * (time.monotonic() - t0) + 1
    assert int(resp.headers["retry-after"]) >= 1
    assert resp.json()["field"] == "client" and "requests/s" in resp.json()["error"]
    assert http.get("/readyz").status_code == 200  # probes are never throttled
    # Another key has its own budget.
    assert http.post("/similar", json={"item_id": 5}, headers=bearer("api")).status_code == 200


def test_grpc_over_the_rate_is_resource_exhausted_with_pushback(channel):
    from augrec.services import stubs

    pb2, pb2_grpc = stubs.load()
    stub = pb2_grpc.RecommenderStub(channel)
    request = pb2.SimilarItemsRequest(item_id=5, k=2)

    def call():
        try:
            stub.SimilarItems(request, metadata=list(bearer("grpc").items()))
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err.details()
            return err
        return None

    granted, err = _until_refused(call)
    assert granted >= BURST
    assert err.details().startswith("client: over 20 requests/s")
    assert int(dict(err.trailing_metadata())["grpc-retry-pushback-ms"]) >= 1


def test_metrics_count_refusals_without_a_key(http):
    text = http.get("/metrics").text
    assert 'augrec_refused_total{protocol="http",reason="unauthenticated"}' in text
    assert 'augrec_refused_total{protocol="grpc",reason="unauthenticated"}' in text
