"""HTTP 400 bodies speak the API's language: the field and the reason, no class names."""

from __future__ import annotations

import asyncio
import json

import pytest

from augrec.serving.schemas import EventRequest, RecommendRequest, SimilarRequest

SCHEMAS = {"/recommend": RecommendRequest, "/similar": SimilarRequest, "/events": EventRequest}


def _post(path: str, body: bytes) -> tuple[int, dict | None, bool]:
    """Send `body` through the guard; (status, JSON body, whether the app was reached)."""
    from augrec.services.middleware import JsonBodyGuard

    reached = []

    async def app(scope, receive, send):
        reached.append(await receive())

    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    guard = JsonBodyGuard(app, paths=SCHEMAS, max_bytes=10_000, schemas=SCHEMAS)
    scope = {"type": "http", "path": path, "headers": [(b"content-type", b"application/json")]}
    asyncio.run(guard(scope, receive, send))
    if not sent:
        return 200, None, bool(reached)
    return sent[0]["status"], json.loads(sent[1]["body"]), bool(reached)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/recommend", {"k": 5}, "user_id"),
        ("/recommend", {"user_id": "7"}, "user_id"),
        ("/recommend", {"user_id": 1, "k": -3}, "k"),
        ("/recommend", {"user_id": 1, "extra": 1}, "extra"),
        ("/similar", {"item_id": 1.5}, "item_id"),
        ("/events", {"user_id": 1, "item_id": 2, "event_type": "like"}, "event_type"),
    ],
)
def test_refusal_names_the_field_and_the_reason_only(path, body, field):
    status, answer, reached = _post(path, json.dumps(body).encode())
    assert status == 400 and not reached
    assert answer["field"] == field
    assert answer["error"].startswith(f"{field}: ")
    for internal in ("IODescriptor", "validation error for", "Request", "pydantic", "http"):
        assert internal not in answer["error"], answer


@pytest.mark.parametrize("body", [b"{not json", b"", b"[1, 2]"])
def test_a_body_that_is_not_an_object_is_blamed_on_the_request(body):
    status, answer, reached = _post("/recommend", body)
    assert status == 400 and not reached
    assert answer["field"] == "request" and answer["error"].startswith("request: ")


def test_a_valid_body_reaches_the_app():
    assert _post("/recommend", b'{"user_id": 1, "k": 3}') == (200, None, True)
