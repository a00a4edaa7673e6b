"""Fuzz the HTTP API from its own OpenAPI document: no generated request may get a 5xx.

Schemathesis generates valid requests (within the schema) and invalid ones (outside it:
wrong types, missing or extra fields, out-of-range numbers) for every operation. Bounded
in examples and time so it fits the default test tier.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, Phase, given, settings

pytestmark = pytest.mark.e2e
EXAMPLES = 50  # per operation and mode (~300 calls, a few seconds)
BUDGET_S = 40  # the whole fuzz run, however slow the machine


def test_no_generated_request_gets_a_server_error(server):
    import schemathesis
    from schemathesis.generation import GenerationMode

    schema = schemathesis.openapi.from_url(f"{server.http}/docs.json")
    operations = [r.ok() for r in schema.get_all_operations()]
    labels = {op.label for op in operations}
    assert {"POST /recommend", "POST /similar", "POST /events", "GET /status"} <= labels
    failures: list[str] = []
    calls = [0]
    deadline = time.monotonic() + BUDGET_S
    for op in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if op.method.upper() == "GET" and mode is GenerationMode.NEGATIVE:
                continue  # no inputs to break
            _fuzz(op, mode, server.http, deadline, calls, failures)()
    assert calls[0] >= 50, "the fuzz run made too few calls to mean anything"
    assert not failures, "\n".join(failures[:10])


def _fuzz(op, mode, base_url: str, deadline: float, calls: list[int], failures: list[str]):
    @settings(
        max_examples=EXAMPLES,
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
        resp = case.call(base_url=base_url, timeout=10)
        if resp.status_code >= 500:
            failures.append(f"{op.label} {mode}: {case.body!r} -> {resp.status_code} {resp.text}")

    return check
