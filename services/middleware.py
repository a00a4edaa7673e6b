"""ASGI guards in front of the API: who may call (`AccessGuard`), then what they send.

`AccessGuard` answers 401 (no valid API key) and 429 (over the client's rate) before a byte of
the body is read, on every path but the probes and the metrics scrape
(`augrec.serving.access.OPEN_HTTP_PATHS`); with no keys and no limit configured it passes
everything through untouched.

`JsonBodyGuard` checks the API routes' bodies: JSON only, not too large, and valid.

BentoML picks a deserializer by Content-Type (multipart, form, pickle) and reads bodies of
any size; either can surface as a 5xx. Here a body that is not JSON is 415, one larger than
`max_bytes` is 413 (checked against Content-Length, and counted while reading when the
client streams), before BentoML sees it. A body its route's request schema refuses is 400
with `{"error": "field: reason", "field"}`, the shape of the service's own refusals;
BentoML's own message would name its internal wrapper class (`...IODescriptor`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class AccessGuard:
    """Refuse requests without a valid API key (401) or over their rate (429)."""

    def __init__(self, app: Any, access: Any = None, metrics: Any = None):
        if access is None:  # built inside the worker, where the environment is set
            from augrec.serving import access as access_mod

            access = access_mod.shared()
        self.app = app
        self.access = access
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Admit the request to the app, or answer the refusal."""
        from augrec.serving.access import OPEN_HTTP_PATHS

        if (
            scope["type"] != "http"
            or not self.access.enabled
            or scope.get("path") in OPEN_HTTP_PATHS
        ):
            await self.app(scope, receive, send)
            return
        authorization = None
        for key, value in scope.get("headers", []):
            if key.lower() == b"authorization":
                authorization = value.decode("latin-1")
                break
        client = scope.get("client")
        refusal = self.access.admit(authorization, client[0] if client else None)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        if self.metrics is None:
            from augrec.services import metrics

            self.metrics = metrics.get()
        self.metrics.refused.labels("http", refusal.kind).inc()
        if refusal.kind == "unauthenticated":
            extra = [(b"www-authenticate", b'Bearer realm="augrec"')]
            await _error(send, 401, refusal.field, refusal.message, headers=extra)
        else:
            extra = [(b"retry-after", str(max(1, math.ceil(refusal.retry_after))).encode())]
            await _error(send, 429, refusal.field, refusal.message, headers=extra)


class JsonBodyGuard:
    """Refuse non-JSON and oversized request bodies on `paths` with a clear 4xx."""

    def __init__(
        self,
        app: Any,
        paths: Iterable[str],
        max_bytes: int | None = None,
        schemas: Mapping[str, Any] | None = None,
    ):
        if max_bytes is None:  # built inside the worker, where the serving config is set
            from augrec.serving.config import ServingConfig

            max_bytes = ServingConfig.from_env().max_request_bytes
        self.app = app
        self.paths = frozenset(paths)
        self.max_bytes = max_bytes
        self.schemas = dict(schemas or {})  # path -> pydantic request model

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request, then pass it (with its body replayed) to the app."""
        if scope["type"] != "http" or scope.get("path") not in self.paths:
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        ctype = headers.get(b"content-type", b"application/json").split(b";")[0].strip()
        if ctype.lower() != b"application/json":
            await _error(send, 415, "content-type", "send the body as application/json")
            return
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _error(send, 400, "content-length", "not a number")
                return
            if declared > self.max_bytes:
                await _error(send, 413, "body", f"larger than {self.max_bytes} bytes")
                return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await _error(send, 413, "body", f"larger than {self.max_bytes} bytes")
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        schema = self.schemas.get(scope["path"])
        if schema is not None:
            from pydantic import ValidationError

            from augrec.serving.errors import invalid_request

            try:
                schema.model_validate_json(b"".join(chunks))
            except ValidationError as exc:
                err = invalid_request(exc)
                await _error(send, 400, err.field, str(err), prefixed=True)
                return
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as servers do

        await self.app(scope, replay, send)


async def _error(
    send: Send,
    status: int,
    field: str,
    message: str,
    prefixed: bool = False,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    error = message if prefixed else f"{field}: {message}"
    body = json.dumps({"error": error, "field": field}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
