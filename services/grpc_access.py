"""Access control on gRPC: a server interceptor in front of every service but health.

A call without a valid `authorization: Bearer KEY` metadata entry (when API keys are on) is
UNAUTHENTICATED; a client over its rate is RESOURCE_EXHAUSTED with the `grpc-retry-pushback-ms`
trailer, which gRPC's own retry policy honours. Both messages name what to fix
(`authorization: ...`, `client: ...`), as the HTTP refusals do. The decision is
`augrec.serving.access.AccessControl`'s, shared with HTTP; health stays open
(`OPEN_GRPC_PREFIXES`) so probes need no key. Reflection is not open: it describes the API,
as `/docs.json` does on HTTP.

`AccessInterceptor` serves the threaded `grpc.server`; `AioAccessInterceptor` the same for a
`grpc.aio` server, whose handlers are coroutines.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc

from augrec.serving.access import OPEN_GRPC_PREFIXES, AccessControl

if TYPE_CHECKING:
    from augrec.services.metrics import Metrics

CODES = {
    "unauthenticated": grpc.StatusCode.UNAUTHENTICATED,
    "rate_limited": grpc.StatusCode.RESOURCE_EXHAUSTED,
}


def interceptors(metrics: Metrics | None = None) -> list[grpc.ServerInterceptor]:
    """The process's access check as server interceptors; none when nothing is refused."""
    from augrec.serving import access

    control = access.shared()
    return [AccessInterceptor(control, metrics)] if control.enabled else []


class AccessInterceptor(grpc.ServerInterceptor):
    """Check each call's key and rate before its handler runs."""

    def __init__(self, access: AccessControl, metrics: Metrics | None = None):
        self.access = access
        self.metrics = metrics

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        """The method's handler, wrapped in the access check (health: unwrapped)."""
        handler = continuation(details)
        if handler is None or details.method.startswith(OPEN_GRPC_PREFIXES):
            return handler
        authorization = _metadata(details.invocation_metadata, "authorization")
        return _wrap(handler, lambda ctx: self._check(authorization, ctx))

    def _check(self, authorization: str | None, context: grpc.ServicerContext) -> None:
        refusal = self.access.admit(authorization, context.peer())
        if refusal is None:
            return
        if self.metrics is not None:
            self.metrics.refused.labels("grpc", refusal.kind).inc()
        if refusal.retry_after:
            pushback = str(max(1, round(refusal.retry_after * 1000)))
            context.set_trailing_metadata((("grpc-retry-pushback-ms", pushback),))
        context.abort(CODES[refusal.kind], str(refusal))


def aio_interceptors(metrics: Metrics | None = None) -> list[grpc.aio.ServerInterceptor]:
    """`interceptors` for a `grpc.aio` server (async handlers)."""
    from augrec.serving import access

    control = access.shared()
    return [AioAccessInterceptor(control, metrics)] if control.enabled else []


class AioAccessInterceptor(grpc.aio.ServerInterceptor):
    """`AccessInterceptor` for `grpc.aio` servers: the same decision, awaited aborts."""

    def __init__(self, access: AccessControl, metrics: Metrics | None = None):
        self._sync = AccessInterceptor(access, metrics)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        """The method's handler, wrapped in the access check (health: unwrapped)."""
        handler = await continuation(details)
        if handler is None or details.method.startswith(OPEN_GRPC_PREFIXES):
            return handler
        authorization = _metadata(details.invocation_metadata, "authorization")
        sync = self._sync

        async def check(context: grpc.aio.ServicerContext) -> None:
            refusal = sync.access.admit(authorization, context.peer())
            if refusal is None:
                return
            if sync.metrics is not None:
                sync.metrics.refused.labels("grpc", refusal.kind).inc()
            if refusal.retry_after:
                pushback = str(max(1, round(refusal.retry_after * 1000)))
                context.set_trailing_metadata((("grpc-retry-pushback-ms", pushback),))
            await context.abort(CODES[refusal.kind], str(refusal))

        return _wrap_async(handler, check)


def _wrap_async(
    handler: grpc.RpcMethodHandler, check: Callable[[Any], Awaitable[None]]
) -> grpc.RpcMethodHandler:
    """`_wrap` for async behaviours: `await check(context)` first."""
    kinds = {
        (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
        (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
        (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
        (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
    }
    attr, make = kinds[(handler.request_streaming, handler.response_streaming)]
    behaviour = getattr(handler, attr)

    if handler.response_streaming:

        async def guarded(request_or_iterator: Any, context: Any) -> Any:
            await check(context)
            responses = behaviour(request_or_iterator, context)
            if hasattr(responses, "__aiter__"):
                async for response in responses:
                    yield response
            else:  # a plain generator (grpc.aio also runs sync handlers)
                for response in responses:
                    yield response

    else:

        async def guarded(request_or_iterator: Any, context: Any) -> Any:
            await check(context)
            response = behaviour(request_or_iterator, context)
            return await response if inspect.isawaitable(response) else response

    return make(
        guarded,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _metadata(metadata: Any, name: str) -> str | None:
    for key, value in metadata or ():
        if key == name:
            return value if isinstance(value, str) else None
    return None


def _wrap(handler: grpc.RpcMethodHandler, check: Callable[[Any], None]) -> grpc.RpcMethodHandler:
    """The same handler, with `check(context)` run first (it aborts to refuse)."""
    kinds = {
        (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
        (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
        (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
        (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
    }
    attr, make = kinds[(handler.request_streaming, handler.response_streaming)]
    behaviour = getattr(handler, attr)

    if handler.response_streaming:

        def guarded(request_or_iterator: Any, context: Any) -> Any:
            check(context)
            yield from behaviour(request_or_iterator, context)

    else:

        def guarded(request_or_iterator: Any, context: Any) -> Any:
            check(context)
            return behaviour(request_or_iterator, context)

    return make(
        guarded,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
