"""Errors a request can end in, mapped by each adapter to its protocol's status.

| error | HTTP | gRPC |
|---|---|---|
| `InvalidRequest` | 400 | INVALID_ARGUMENT |
| `NotFound` | 404 | NOT_FOUND |
| `Unavailable` | 503 | UNAVAILABLE |

Each names the request field it is about, so a client can tell which value to fix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from augrec.errors import AugrecError

if TYPE_CHECKING:
    from pydantic import ValidationError


class RequestError(AugrecError):
    """A request the server refused; `field` names the input at fault (may be empty)."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


class InvalidRequest(RequestError):
    """A value is well-typed but not acceptable (e.g. an unknown category)."""


class NotFound(RequestError):
    """An id the request is about does not exist (e.g. /similar on an unknown item)."""


class Unavailable(RequestError):
    """A dependency the request needs (the feature store) cannot be reached."""


def invalid_request(exc: ValidationError) -> InvalidRequest:
    """A schema refusal in the API's words: each field and its reason, no model class names.

    `field` is the first field at fault; the message lists `field: reason` for every error
    (`request` when the body as a whole is wrong, e.g. not a JSON object).
    """
    found = [
        (".".join(str(p) for p in err["loc"]) or "request", err["msg"])
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    ] or [("request", "invalid")]
    (field, reason), rest = found[0], found[1:]
    return InvalidRequest(field, "; ".join([reason, *(f"{f}: {r}" for f, r in rest)]))
