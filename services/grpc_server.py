"""The gRPC server that runs beside the Bento, over the same in-process `ServingRecommender`.

BentoML's `@bentoml.service` cannot serve gRPC (bentoml issues 4634, 5607), so the service
starts this grpcio server from its `on_startup` hook, in the same worker process. It serves:

- `augrec.v1.Recommender` (Recommend, SimilarItems, PushEvent, Search), typed, from our proto;
- `inference.GRPCInferenceService`, the KServe Open Inference Protocol v2 (see `oip.py`);
- `grpc.health.v1.Health` (overall and per service) and server reflection.

Requests are decoded here, not by grpcio: a body that is not a valid message is
INVALID_ARGUMENT (grpcio would answer INTERNAL). Fields the proto does not define are
accepted and ignored, as proto3 intends: a client built on a newer `augrec.v1` (a field
added) keeps working against an older server during a rolling upgrade. Validation is the
HTTP API's (`augrec.serving.schemas`), so both refuse the same inputs.

The server is `grpc.aio` on its own event loop in its own thread, so gRPC traffic never waits
on the HTTP event loop. Every handler is a coroutine: `Recommend`, the hot path, awaits its
place in a scoring batch on the loop (no thread per waiting call); the other methods are
plain functions run in a pool of `grpc_workers` threads (`unary`).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable
from concurrent import futures
from typing import TYPE_CHECKING, Any

import grpc
from pydantic import ValidationError

from augrec.serving import schemas as s
from augrec.serving.errors import (
    InvalidRequest,
    NotFound,
    RequestError,
    Unavailable,
    invalid_request,
)

if TYPE_CHECKING:
    from augrec.services.metrics import Metrics

    from augrec.serving.config import ServingConfig
    from augrec.serving.recommender import ServingRecommender

log = logging.getLogger(__name__)
SERVICE = "augrec.v1.Recommender"
STATUS = {
    InvalidRequest: (grpc.StatusCode.INVALID_ARGUMENT, "invalid"),
    NotFound: (grpc.StatusCode.NOT_FOUND, "not_found"),
    Unavailable: (grpc.StatusCode.UNAVAILABLE, "unavailable"),
}
HEALTH_POLL_S = 5.0  # how often the health service re-reads readiness


class _Malformed:
    """What the lenient deserializer returns for bytes that are not the expected message."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    outcome = "invalid"

    def __init__(self, reason: str):
        self.reason = reason


class _TooLarge(_Malformed):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    outcome = "too_large"


# grpcio itself refuses messages over this many times the limit, with its own text; up to it,
# the deserializer does, naming the setting (a client needs to know which limit it hit).
TRANSPORT_SLACK = 4


def lenient(message_cls: Any, max_bytes: int | None = None) -> Callable[[bytes], Any]:
    """A deserializer that returns `_Malformed` instead of raising (grpcio maps that to INTERNAL).

    Unknown fields are kept by protobuf and ignored here (proto3 forward compatibility; the
    HTTP API, where a misspelt JSON key is the likelier cause, refuses them). A message over
    `max_bytes` is `_TooLarge`, before it is parsed.
    """
    from google.protobuf.message import DecodeError

    def deserialize(data: bytes) -> Any:
        if max_bytes is not None and len(data) > max_bytes:
            return _TooLarge(
                f"request: a {len(data)}-byte message is over the limit of {max_bytes} bytes "
                "(--max-request-bytes, AUGREC_MAX_REQUEST_BYTES)"
            )
        try:
            return message_cls.FromString(data)
        except (DecodeError, RuntimeError, ValueError) as exc:
            return _Malformed(f"not a valid {message_cls.DESCRIPTOR.full_name}: {exc}")

    return deserialize


def field_errors(exc: ValidationError) -> str:
    """`field: message` for each validation error (the HTTP API names fields the same way)."""
    return str(invalid_request(exc))


def unary(
    metrics: Metrics,
    endpoint: str,
    fn: Callable[[Any, Any], Any],
    request_cls: Any,
    response_cls: Any,
    max_bytes: int | None = None,
) -> grpc.RpcMethodHandler:
    """A unary handler: lenient decoding, error mapping to status codes, metrics.

    `fn(request, context)` is a coroutine function, awaited on the server's event loop, or a
    plain function, run in the loop's thread pool (it may block: store reads, scoring). Either
    refuses a request by raising (`RequestError`, pydantic's `ValidationError`); the context's
    methods are coroutines here, so a plain function must not call them.
    """
    is_async = inspect.iscoroutinefunction(fn)

    async def handle(request: Any, context: grpc.aio.ServicerContext) -> Any:
        with metrics.observe("grpc", endpoint) as info:
            if isinstance(request, _Malformed):
                info["outcome"] = request.outcome
                await context.abort(request.code, request.reason)
            try:
                if is_async:
                    response = await fn(request, context)
                else:
                    loop = asyncio.get_running_loop()
                    response = await loop.run_in_executor(None, fn, request, context)
            except ValidationError as exc:
                info["outcome"] = "invalid"
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, field_errors(exc))
            except RequestError as exc:
                code, info["outcome"] = STATUS[type(exc)]
                await context.abort(code, str(exc))
            info["outcome"], info["reason"] = _outcome(response)
            return response

    return grpc.unary_unary_rpc_method_handler(
        handle,
        request_deserializer=lenient(request_cls, max_bytes),
        response_serializer=response_cls.SerializeToString,
    )


def _outcome(response: Any) -> tuple[str, str | None]:
    if getattr(response, "fallback", False):
        return "fallback", response.fallback_reason or None
    return "ok", None


def _fields(msg: Any) -> dict[str, Any]:
    """The fields a client set (proto3 `optional` keeps presence), as plain Python values."""
    out = {}
    for field, value in msg.ListFields():
        out[field.name] = list(value) if field.label == field.LABEL_REPEATED else value
    return out


def _items(pb2: Any, items: list[s.ScoredItem]) -> list[Any]:
    return [pb2.ScoredItem(item_id=i.item_id, score=i.score) for i in items]


def typed_handlers(
    rec: ServingRecommender, metrics: Metrics, max_bytes: int | None = None
) -> grpc.GenericRpcHandler:
    """`augrec.v1.Recommender`, built from the generated messages (requests <= `max_bytes`)."""
    from augrec.services import stubs

    pb2, _ = stubs.load()

    async def recommend(req: Any, _ctx: Any) -> Any:
        out = await rec.recommend_async(s.RecommendRequest.model_validate(_fields(req)))
        return pb2.RecommendResponse(
            items=_items(pb2, out.items),
            model_version=out.model_version,
            fallback=out.fallback,
            fallback_reason=out.fallback_reason or "",
        )

    def similar(req: Any, _ctx: Any) -> Any:
        out = rec.similar(s.SimilarRequest.model_validate(_fields(req)))
        return pb2.SimilarItemsResponse(
            item_id=out.item_id,
            items=_items(pb2, out.items),
            model_version=out.model_version,
            fallback=out.fallback,
            fallback_reason=out.fallback_reason or "",
        )

    def search(req: Any, _ctx: Any) -> Any:
        fields = _fields(req)
        if "filters" in fields:  # a proto map arrives as entries; the schema wants a dict
            fields["filters"] = dict(req.filters)
        out = rec.search(s.SearchRequest.model_validate(fields))
        return pb2.SearchResponse(
            items=_items(pb2, out.items),
            model_version=out.model_version,
            personalized=out.personalized,
            fallback=out.fallback,
            fallback_reason=out.fallback_reason or "",
        )

    def push(req: Any, _ctx: Any) -> Any:
        out = rec.push_event(s.EventRequest.model_validate(_fields(req)))
        return pb2.PushEventResponse(accepted=out.accepted, changed=out.changed)

    calls = {
        "Recommend": ("recommend", recommend, pb2.RecommendRequest, pb2.RecommendResponse),
        "SimilarItems": ("similar", similar, pb2.SimilarItemsRequest, pb2.SimilarItemsResponse),
        "PushEvent": ("events", push, pb2.PushEventRequest, pb2.PushEventResponse),
        "Search": ("search", search, pb2.SearchRequest, pb2.SearchResponse),
    }
    methods = {name: unary(metrics, *call, max_bytes=max_bytes) for name, call in calls.items()}
    return grpc.method_handlers_generic_handler(SERVICE, methods)


class GrpcServer:
    """A started server: the grpc.aio server, its event-loop thread, port and health updater."""

    def __init__(self, rec: ServingRecommender, config: ServingConfig, metrics: Metrics):
        self._rec = rec
        self._config = config
        self._metrics = metrics
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="augrec-grpc-loop", daemon=True
        )
        self._thread.start()
        self._poller: Any = None
        try:
            self.server, self.health, self.port = self._run(self._build())
        except BaseException:
            self._close_loop()
            raise

    def _run(self, coro: Awaitable[Any], timeout: float | None = 30) -> Any:
        """Run `coro` on the server's loop and wait for its result here."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _build(self) -> tuple[grpc.aio.Server, Any, int]:
        # grpc.aio objects belong to the loop they were made on: build them there.
        from augrec.services import grpc_access, grpc_tls, oip
        from grpc_health.v1 import health, health_pb2, health_pb2_grpc
        from grpc_reflection.v1alpha import reflection

        config = self._config
        # Where `unary` runs the plain (blocking) handlers.
        pool = futures.ThreadPoolExecutor(config.grpc_workers, thread_name_prefix="augrec-grpc")
        asyncio.get_running_loop().set_default_executor(pool)
        server = grpc.aio.server(
            pool,
            interceptors=grpc_access.aio_interceptors(self._metrics),
            options=[
                ("grpc.max_receive_message_length", TRANSPORT_SLACK * config.max_request_bytes),
                # Several workers may bind one port and share its connections.
                ("grpc.so_reuseport", 1),
            ],
        )
        server.add_generic_rpc_handlers(
            (
                typed_handlers(self._rec, self._metrics, config.max_request_bytes),
                oip.handlers(self._rec, self._metrics, config.max_request_bytes),
            )
        )
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        names = (
            SERVICE,
            oip.SERVICE,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        )
        reflection.enable_server_reflection(names, server)
        address = f"{config.grpc_host}:{config.grpc_port}"
        port = grpc_tls.bind(server, address, config)
        if port == 0:
            raise RuntimeError(f"gRPC: cannot bind {address}")
        return server, health_servicer, port

    def start(self) -> GrpcServer:
        """Start serving and keeping the health status current."""
        self._run(self.server.start())
        self._run(self._update_health())
        self._poller = asyncio.run_coroutine_threadsafe(self._poll_health(), self._loop)
        log.info("gRPC server listening on port %d", self.port)
        return self

    def stop(self, grace: float = 2.0) -> None:
        """Stop accepting calls, finish running ones for up to `grace` seconds."""
        if self._poller is not None:
            self._poller.cancel()
        try:
            self._run(self._shutdown(grace), timeout=grace + 5)
        finally:
            self._close_loop()

    async def _shutdown(self, grace: float) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)

    def _close_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    async def _update_health(self) -> None:
        from augrec.services import oip
        from grpc_health.v1 import health_pb2

        # Readiness probes the feature store (a blocking read): not on the serving loop.
        ready = (await asyncio.to_thread(self._rec.health)).ready
        status = health_pb2.HealthCheckResponse
        state = status.SERVING if ready else status.NOT_SERVING
        for name in ("", SERVICE, oip.SERVICE):
            await self.health.set(name, state)

    async def _poll_health(self) -> None:
        while True:
            await asyncio.sleep(HEALTH_POLL_S)
            try:
                await self._update_health()
            except Exception:  # keep polling; the next probe may succeed
                log.exception("gRPC health update failed")
