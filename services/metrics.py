"""Prometheus metrics of both protocols, exported on the Bento's `/metrics`.

BentoML already counts HTTP requests and their latency (`bentoml_service_request_*`); these
add what it cannot see: gRPC calls, fallbacks by reason, scoring batch sizes and whether the
feature store answers, with one `protocol` label so HTTP and gRPC read alike.
`prometheus_client` is imported on first use, inside a worker: BentoML sets its multiprocess
directory only after importing the service.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

_lock = threading.Lock()
_metrics: Metrics | None = None


class Metrics:
    """The metric families; create once per process with `get()`."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.requests = Counter(
            "augrec_requests",
            "Requests answered, by protocol, endpoint and outcome "
            "(ok, fallback, invalid, not_found, unavailable, error).",
            ["protocol", "endpoint", "outcome"],
        )
        self.latency = Histogram(
            "augrec_request_duration_seconds",
            "Time to answer a request inside the server, by protocol and endpoint.",
            ["protocol", "endpoint"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.fallbacks = Counter(
            "augrec_fallbacks",
            "Answers that were not personalised, by reason.",
            ["protocol", "endpoint", "reason"],
        )
        self.refused = Counter(
            "augrec_refused",
            "Requests turned away before the API saw them, by protocol and reason "
            "(unauthenticated, rate_limited).",
            ["protocol", "reason"],
        )
        self.batch_size = Histogram(
            "augrec_score_batch_size",
            "Histories scored per model call when batching is on.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
        )
        # Readiness no longer follows the store (docs/serving.md, Readiness): alert on this.
        # livemin: with several workers, one whose store fails pulls the pod's value to 0.
        self.feature_store_up = Gauge(
            "augrec_feature_store_up",
            "1 while the feature store answers reads, 0 while answers fall back without it.",
            multiprocess_mode="livemin",
        )

    @contextlib.contextmanager
    def observe(self, protocol: str, endpoint: str) -> Iterator[dict[str, Any]]:
        """Time a request; the block sets `outcome` (and `reason`) in the dict it gets."""
        info: dict[str, Any] = {"outcome": "error"}
        t0 = time.perf_counter()
        try:
            yield info
        finally:
            self.latency.labels(protocol, endpoint).observe(time.perf_counter() - t0)
            self.requests.labels(protocol, endpoint, info["outcome"]).inc()
            if info.get("reason"):
                self.fallbacks.labels(protocol, endpoint, info["reason"]).inc()


def get() -> Metrics:
    """The process's metrics (created on first call)."""
    global _metrics
    with _lock:
        if _metrics is None:
            _metrics = Metrics()
        return _metrics
