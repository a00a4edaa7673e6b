"""Fuzz the HTTP API from its own OpenAPI document: no generated request may get a 5xx.

Schemathesis generates valid requests (within the schema) and invalid ones (outside it:
wrong types, missing or extra fields, out-of-range numbers) for every operation. Bounded
in examples and time so it fits the default test tier.

The same generated requests go to the `secured` server (API keys and a rate limit on):
without a key or with a wrong one every answer is 401 naming `authorization`; with a key
they reach validation and the rate limit, and are still never a 5xx (a 429 carries
`Retry-After`).
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
from hypothesis import HealthCheck, Phase, given, settings

pytestmark = pytest.mark.e2e
EXAMPLES = 50  # per operation and mode (~300 calls, a few seconds)
BUDGET_S = 40  # the whole fuzz run, however slow the machine


def _operations(base_url: str, headers: dict[str, str] | None = None) -> list:
    import schemathesis

    schema = schemathesis.openapi.from_url(f"{base_url}/docs.json", headers=headers or {})
    operations = [r.ok() for r in schema.get_all_operations()]
    labels = {op.label for op in operations}
    assert {"POST /recommend", "POST /similar", "POST /events", "GET /status"} <= labels
    return operations


def _run(operations, base_url, budget_s, examples=EXAMPLES, headers=None, expect=None):
    """Fuzz every operation in both modes; (calls made, failures, status counts)."""
    from schemathesis.generation import GenerationMode

    failures: list[str] = []
    calls = [0]
    seen: Counter[int] = Counter()
    deadline = time.monotonic() + budget_s
    for op in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if op.method.upper() == "GET" and mode is GenerationMode.NEGATIVE:
                continue  # no inputs to break
            _fuzz(op, mode, base_url, deadline, calls, failures, examples, headers, expect, seen)()
    return calls[0], failures, seen


def test_no_generated_request_gets_a_server_error(server):
    calls, failures, _ = _run(_operations(server.http), server.http, BUDGET_S)
    assert calls >= 50, "the fuzz run made too few calls to mean anything"
    assert not failures, "\n".join(failures[:10])


def test_without_a_valid_key_every_generated_request_is_401(secured):
    from serving_helpers import bearer

    from augrec.serving.access import OPEN_HTTP_PATHS

    every = _operations(secured.http, bearer("fuzz"))
    operations = [op for op in every if op.path not in OPEN_HTTP_PATHS]
    assert len(operations) < len(every)  # the probes are in the document, and stay open

    def only_401(resp) -> str | None:
        if resp.status_code != 401 or resp.json().get("field") != "authorization":
            return "expected 401 naming authorization"
        return None

    for headers in (None, {"authorization": "Bearer not-one-of-the-keys"}):
        calls, failures, seen = _run(operations, secured.http, BUDGET_S / 4, 10, headers, only_401)
        assert calls >= 30 and set(seen) == {401}, seen
        assert not failures, "\n".join(failures[:10])


def test_with_a_key_generated_requests_meet_validation_and_the_rate_limit(secured):
    from serving_helpers import bearer

    def limited_well(resp) -> str | None:
        if resp.status_code == 429 and not resp.headers.get("retry-after"):
            return "429 without Retry-After"
        if resp.status_code == 401:
            return "a valid key was refused"
        return None

    operations = _operations(secured.http, bearer("fuzz"))
    calls, failures, seen = _run(
        operations, secured.http, BUDGET_S / 2, 25, bearer("fuzz"), limited_well
    )
    assert calls >= 50 and not failures, "\n".join(failures[:10])
    assert seen[200] and seen[400], seen  # the key let requests through to the API


def _fuzz(
    op,
    mode,
    base_url: str,
    deadline: float,
    calls: list[int],
    failures: list[str],
    examples: int = EXAMPLES,
    headers: dict[str, str] | None = None,
    expect=None,
    seen: Counter | None = None,
):
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,  # the same cases every run: a failure reproduces
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=op.as_strategy(generation_mode=mode))
    def check(case) -> None:
        if time.monotonic() > deadline:
            return
        calls[0] += 1
        resp = case.call(base_url=base_url, timeout=10, headers=headers)
        if seen is not None:
            seen[resp.status_code] += 1
        problem = "server error" if resp.status_code >= 500 else expect and expect(resp)
        if problem:
            failures.append(
                f"{op.label} {mode}: {problem}: {case.body!r} -> {resp.status_code} {resp.text}"
            )

    return check
