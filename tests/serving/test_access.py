"""Access control without a server: API keys, the rate limiter, the HTTP guard, the gRPC
interceptor (on an in-process grpcio server), and TLS."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from concurrent import futures

import grpc
import pytest

from augrec.errors import ConfigError
from augrec.serving import auth
from augrec.serving.access import AccessControl
from augrec.serving.auth import ApiKeys
from augrec.serving.limits import RateLimiter, peer_client

KEY_A = "a" * 32
KEY_B = "b" * 40


def control(keys: list[str] | None = None, rate: float = 0, burst: int | None = None, clock=None):
    limiter = RateLimiter(rate, burst, clock=clock or time.monotonic)
    return AccessControl(ApiKeys(keys or []), limiter)


# ---- API keys -----------------------------------------------------------------------------


def test_no_keys_configured_means_auth_off():
    keys = ApiKeys.from_env({})
    assert not keys.enabled
    assert keys.check(None).ok and keys.check("Bearer whatever").ok
    assert not ApiKeys.from_env({auth.KEYS_ENV: ""}).enabled


def test_keys_from_the_variable_and_the_file_are_checked(tmp_path):
    file = tmp_path / "keys"
    file.write_text(f"# rotated 2026-01\n{KEY_B}\n")
    keys = ApiKeys.from_env({auth.KEYS_ENV: f" {KEY_A} ,", auth.KEYS_FILE_ENV: str(file)})
    assert keys.enabled and len(keys) == 2
    for key in (KEY_A, KEY_B):
        verdict = keys.check(f"Bearer {key}")
        assert verdict.ok and verdict.client == f"key:{auth.key_id(key)}"
    assert keys.check(f"bearer {KEY_A}").ok  # the scheme is case-insensitive (RFC 7235)
    refused = {
        None: "missing",
        "": "missing",
        KEY_A: "Bearer",  # no scheme
        f"Basic {KEY_A}": "Bearer",
        "Bearer ": "Bearer",
        f"Bearer {KEY_A}x": "not accepted",
        f"Bearer {KEY_A[:-1]}": "not accepted",
        "Bearer " + "é" * 20: "not accepted",
    }
    for header, reason in refused.items():
        verdict = keys.check(header)
        assert not verdict.ok and reason in verdict.reason, header
        assert KEY_A not in verdict.reason  # a refusal never echoes a key


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({auth.KEYS_ENV: "short"}, "at least 16"),
        ({auth.KEYS_ENV: f"{KEY_A},{'x' * 15}"}, "at least 16"),
        ({auth.KEYS_FILE_ENV: "/no/such/file"}, "cannot read /no/such/file"),
    ],
)
def test_bad_key_configuration_stops_the_server_and_names_the_variable(env, message):
    with pytest.raises(ConfigError, match=message) as err:
        ApiKeys.from_env(env)
    assert next(iter(env)) in str(err.value)
    assert "short" not in str(err.value) and "x" * 15 not in str(err.value)  # no key echoed


def test_an_empty_key_file_refuses_to_open_the_service(tmp_path):
    file = tmp_path / "keys"
    file.write_text("# nothing yet\n\n")
    with pytest.raises(ConfigError, match="holds no key"):
        ApiKeys.from_env({auth.KEYS_FILE_ENV: str(file)})


def test_the_key_file_is_reloaded_when_it_changes(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(auth, "RELOAD_S", 0.0)
    file = tmp_path / "keys"
    file.write_text(KEY_A)
    keys = ApiKeys.from_env({auth.KEYS_FILE_ENV: str(file)})
    assert keys.check(f"Bearer {KEY_A}").ok and not keys.check(f"Bearer {KEY_B}").ok
    file.write_text(KEY_B + "\n")
    os.utime(file, ns=(time.time_ns(), time.time_ns() + 10**9))  # a visible mtime change
    assert keys.check(f"Bearer {KEY_B}").ok and not keys.check(f"Bearer {KEY_A}").ok
    file.write_text("tooshort")  # a broken rotation keeps the last good keys
    os.utime(file, ns=(time.time_ns(), time.time_ns() + 2 * 10**9))
    with caplog.at_level(logging.WARNING, logger="augrec.serving.auth"):
        assert keys.check(f"Bearer {KEY_B}").ok
    assert "keeping the previous 1" in caplog.text and "tooshort" not in caplog.text


# ---- rate limit ---------------------------------------------------------------------------


def test_token_bucket_grants_a_burst_then_the_rate():
    now = [100.0]
    limiter = RateLimiter(rate=2, burst=3, clock=lambda: now[0])
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a") == pytest.approx(0.5)  # one token every 0.5 s
    assert limiter.acquire("b") == 0.0  # another client has its own bucket
    now[0] += 0.5
    assert limiter.acquire("a") == 0.0 and limiter.acquire("a") > 0
    now[0] += 60  # refills up to the burst, no further
    assert [limiter.acquire("a") for _ in range(4)].count(0.0) == 3


def test_rate_limit_off_by_default_and_memory_bounded():
    assert not RateLimiter(0).enabled and RateLimiter(0).acquire("x") == 0.0
    assert RateLimiter(0.5).burst == 1 and RateLimiter(10).burst == 10
    limiter = RateLimiter(1, 1, max_clients=3)
    for client in "abcde":
        limiter.acquire(client)
    assert len(limiter._buckets) == 3 and "a" not in limiter._buckets


def test_peer_addresses_become_client_names_without_ports():
    assert peer_client("ipv4:10.1.2.3:53211") == "ip:10.1.2.3"
    assert peer_client("ipv6:[::1]:40000") == "ip:::1"
    assert peer_client("10.1.2.3") == "ip:10.1.2.3"
    assert peer_client(None) == "ip:unknown"


def test_auth_comes_before_the_rate_limit_and_keys_have_their_own_budget():
    access = control([KEY_A, KEY_B], rate=1, burst=1, clock=lambda: 0.0)
    assert access.admit(None, "1.2.3.4").kind == "unauthenticated"
    assert access.admit(f"Bearer {KEY_A}", "1.2.3.4") is None
    refusal = access.admit(f"Bearer {KEY_A}", "5.6.7.8")  # same key, another address
    assert refusal.kind == "rate_limited" and refusal.field == "client"
    assert refusal.retry_after == pytest.approx(1.0)
    assert str(refusal).startswith("client: over 1 requests/s")
    assert access.admit(f"Bearer {KEY_B}", "1.2.3.4") is None
    assert access.admit("Bearer nope-nope-nope-nope", "9.9.9.9").kind == "unauthenticated"


# ---- HTTP guard ---------------------------------------------------------------------------


def _http(access, path="/recommend", headers=(), client=("10.0.0.1", 5000)):
    """Send one request through AccessGuard: (status, headers, JSON body or None if passed)."""
    from augrec.services import metrics
    from augrec.services.middleware import AccessGuard

    passed = []

    async def app(scope, receive, send):
        passed.append(scope["path"])

    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b"{}", "more_body": False}

    guard = AccessGuard(app, access=access, metrics=metrics.get())
    scope = {"type": "http", "path": path, "headers": list(headers), "client": client}
    asyncio.run(guard(scope, receive, send))
    if passed:
        return 200, {}, None
    head = {k.decode(): v.decode() for k, v in sent[0]["headers"]}
    return sent[0]["status"], head, json.loads(sent[1]["body"])


def test_http_guard_answers_401_with_a_json_body_naming_authorization():
    access = control([KEY_A])
    status, head, body = _http(access)
    assert status == 401 and head["www-authenticate"].startswith("Bearer")
    assert body["field"] == "authorization" and body["error"].startswith("authorization: ")
    status, _, body = _http(access, headers=[(b"authorization", b"Bearer " + b"z" * 32)])
    assert status == 401 and "not accepted" in body["error"]
    assert _http(access, headers=[(b"Authorization", f"Bearer {KEY_A}".encode())])[0] == 200
    for path in ("/livez", "/healthz", "/readyz", "/metrics"):
        assert _http(access, path=path)[0] == 200, path
    for path in ("/status", "/docs.json", "/", "/search"):
        assert _http(access, path=path)[0] == 401, path


def test_http_guard_answers_429_with_retry_after_per_address_when_auth_is_off():
    access = control(rate=1, burst=2, clock=lambda: 0.0)
    assert [_http(access)[0] for _ in range(2)] == [200, 200]
    status, head, body = _http(access)
    assert status == 429 and head["retry-after"] == "1" and body["field"] == "client"
    assert _http(access, client=("10.0.0.2", 1))[0] == 200  # another address
    assert _http(access, path="/readyz")[0] == 200  # probes are never throttled


def test_http_guard_passes_everything_when_nothing_is_configured():
    access = control()
    assert not access.enabled
    for headers in ([], [(b"authorization", b"Bearer junk")]):
        assert _http(access, headers=headers)[0] == 200


# ---- gRPC interceptor ---------------------------------------------------------------------


def _grpc_server(access, credentials=None):
    from augrec.services.grpc_access import AccessInterceptor
    from grpc_health.v1 import health, health_pb2_grpc

    server = grpc.server(futures.ThreadPoolExecutor(4), interceptors=[AccessInterceptor(access)])
    echo = grpc.unary_unary_rpc_method_handler(lambda req, ctx: req)
    stream = grpc.unary_stream_rpc_method_handler(lambda req, ctx: iter([req, req]))
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("t.Echo", {"Echo": echo, "Twice": stream}),)
    )
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    if credentials is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    return server, f"127.0.0.1:{port}"


def test_grpc_interceptor_refuses_without_a_key_and_leaves_health_open():
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    server, address = _grpc_server(control([KEY_A], rate=1, burst=3, clock=lambda: 0.0))
    try:
        with grpc.insecure_channel(address) as channel:
            echo = channel.unary_unary("/t.Echo/Echo")
            twice = channel.unary_stream("/t.Echo/Twice")
            for metadata in (None, [("authorization", "Bearer " + "z" * 32)]):
                with pytest.raises(grpc.RpcError) as err:
                    echo(b"hi", metadata=metadata)
                assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
                assert err.value.details().startswith("authorization: ")
            good = [("authorization", f"Bearer {KEY_A}")]
            assert echo(b"hi", metadata=good) == b"hi"
            assert list(twice(b"x", metadata=good)) == [b"x", b"x"]
            with pytest.raises(grpc.RpcError) as err:
                list(twice(b"x"))
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
            health = health_pb2_grpc.HealthStub(channel)
            for _ in range(5):  # no key, over any rate: still answered
                assert health.Check(health_pb2.HealthCheckRequest()).status == 1
            # The third keyed call spends the burst of 3; the fourth is over the rate.
            assert echo(b"3", metadata=good) == b"3"
            with pytest.raises(grpc.RpcError) as err:
                echo(b"4", metadata=good)
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert err.value.details().startswith("client: over 1 requests/s")
            assert dict(err.value.trailing_metadata())["grpc-retry-pushback-ms"] == "1000"
    finally:
        server.stop(None)


def test_no_interceptor_when_nothing_is_refused(monkeypatch):
    from augrec.services import grpc_access

    from augrec.serving import access as access_mod

    monkeypatch.setattr(access_mod, "_shared", control())
    assert grpc_access.interceptors() == []
    monkeypatch.setattr(access_mod, "_shared", control([KEY_A]))
    assert len(grpc_access.interceptors()) == 1


# ---- TLS ----------------------------------------------------------------------------------


def test_grpc_tls_and_mutual_tls_from_the_serving_config(tmp_path):
    from augrec.services import grpc_tls
    from tls_helpers import self_signed

    from augrec.serving.config import ServingConfig

    cert, key = self_signed(tmp_path / "server")
    client_cert, client_key = self_signed(tmp_path / "client", name="client")
    config = ServingConfig(
        grpc_tls_cert=str(cert), grpc_tls_key=str(key), grpc_tls_client_ca=str(client_cert)
    )
    server, address = _grpc_server(control(), grpc_tls.credentials(config))
    try:
        mutual = grpc.ssl_channel_credentials(
            cert.read_bytes(), client_key.read_bytes(), client_cert.read_bytes()
        )
        with grpc.secure_channel(address, mutual) as channel:
            assert channel.unary_unary("/t.Echo/Echo")(b"hi", timeout=10) == b"hi"
        no_client_cert = grpc.ssl_channel_credentials(cert.read_bytes())
        for channel in (
            grpc.secure_channel(address, no_client_cert),
            grpc.insecure_channel(address),
        ):
            with channel, pytest.raises(grpc.RpcError) as err:
                channel.unary_unary("/t.Echo/Echo")(b"hi", timeout=10)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop(None)


def test_tls_configuration_errors_name_the_setting(tmp_path):
    from augrec.services import grpc_tls

    from augrec.serving.config import ServingConfig

    with pytest.raises(ConfigError, match="AUGREC_GRPC_TLS_CERT and AUGREC_GRPC_TLS_KEY"):
        ServingConfig.from_env({"AUGREC_GRPC_TLS_CERT": "/x.crt"})
    with pytest.raises(ConfigError, match="AUGREC_GRPC_TLS_CLIENT_CA"):
        ServingConfig.from_env({"AUGREC_GRPC_TLS_CLIENT_CA": "/ca.crt"})
    (tmp_path / "not.pem").write_text("hello")
    config = ServingConfig(grpc_tls_cert=str(tmp_path / "not.pem"), grpc_tls_key="/nope.key")
    with pytest.raises(ConfigError, match="AUGREC_GRPC_TLS_CERT: .* is not a PEM file"):
        grpc_tls.credentials(config)
    env = config.to_env()
    assert ServingConfig.from_env(env) == config
    assert ServingConfig.from_env({**env, "AUGREC_RATE_LIMIT": "5"}).rate_limit == 5.0


def test_aio_interceptor_makes_the_same_decisions():
    """For a grpc.aio server (the request path may move there): refusals, pushback, health."""
    from augrec.services.grpc_access import AioAccessInterceptor
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_health.v1._async import HealthServicer

    async def echo(req, ctx):
        return req

    async def twice(req, ctx):
        yield req
        yield req

    async def scenario() -> None:
        access = control([KEY_A], rate=1, burst=2, clock=lambda: 0.0)
        server = grpc.aio.server(interceptors=[AioAccessInterceptor(access)])
        handlers = {
            "Echo": grpc.unary_unary_rpc_method_handler(echo),
            "Twice": grpc.unary_stream_rpc_method_handler(twice),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("t.Echo", handlers),))
        health_pb2_grpc.add_HealthServicer_to_server(HealthServicer(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                call = channel.unary_unary("/t.Echo/Echo")
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await call(b"hi")
                assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
                assert err.value.details().startswith("authorization: ")
                good = (("authorization", f"Bearer {KEY_A}"),)
                assert await call(b"hi", metadata=good) == b"hi"
                stream = channel.unary_stream("/t.Echo/Twice")(b"x", metadata=good)
                assert [r async for r in stream] == [b"x", b"x"]
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await call(b"3", metadata=good)
                assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                trailers = dict(err.value.trailing_metadata())
                assert trailers["grpc-retry-pushback-ms"] == "1000"
                health = health_pb2_grpc.HealthStub(channel)
                reply = await health.Check(health_pb2.HealthCheckRequest())
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
        finally:
            await server.stop(None)

    asyncio.run(scenario())
