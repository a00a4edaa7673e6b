"""Who may call, and how often: one decision for both protocols (auth, then rate limit).

`AccessControl.admit` takes what every protocol has, the `Authorization` value and the peer
address, and returns None (go ahead) or a `Refusal` that each adapter renders in its own
words: HTTP 401/429 (`services/middleware.py`), gRPC UNAUTHENTICATED/RESOURCE_EXHAUSTED
(`services/grpc_access.py`). One instance per process (`shared()`), so a client's rate
budget is the same whether it calls over HTTP or gRPC.

Open to everyone whatever the settings: the probes and the metrics scrape (`OPEN_HTTP_PATHS`)
and gRPC health (`OPEN_GRPC_PREFIXES`), so the kubelet and Prometheus need no key and are
never throttled.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal

from augrec.serving.auth import ApiKeys
from augrec.serving.limits import RateLimiter, peer_client

# /metrics stays open: Prometheus scrapes without our key (a ServiceMonitor would need its
# own Secret), the chart's NetworkPolicy already limits who reaches it (`metricsFrom`), and
# it carries counts, never user ids or keys. /healthz is BentoML's alias of /livez.
OPEN_HTTP_PATHS = frozenset({"/livez", "/healthz", "/readyz", "/metrics"})
OPEN_GRPC_PREFIXES = ("/grpc.health.v1.Health/",)


@dataclass(frozen=True)
class Refusal:
    """Why a request is turned away, in words safe to send back (never the key)."""

    kind: Literal["unauthenticated", "rate_limited"]
    field: str  # what the client must fix: `authorization`, or `client` (its request rate)
    message: str
    retry_after: float = 0.0  # seconds (rate_limited only)

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class AccessControl:
    """API keys and the rate limiter together."""

    def __init__(self, keys: ApiKeys, limiter: RateLimiter):
        self.keys = keys
        self.limiter = limiter

    @classmethod
    def from_env(cls) -> AccessControl:
        """Keys from `AUGREC_API_KEYS(_FILE)`, the limit from the serving config's variables."""
        from augrec.serving.config import ServingConfig

        config = ServingConfig.from_env()
        return cls(ApiKeys.from_env(), RateLimiter(config.rate_limit, config.rate_limit_burst))

    @property
    def enabled(self) -> bool:
        """Whether any request can be refused."""
        return self.keys.enabled or self.limiter.enabled

    def admit(self, authorization: str | None, peer: str | None) -> Refusal | None:
        """None to go ahead, else the refusal (401 before 429: an unknown caller has no budget)."""
        verdict = self.keys.check(authorization)
        if not verdict.ok:
            return Refusal("unauthenticated", "authorization", verdict.reason)
        wait = self.limiter.acquire(verdict.client or peer_client(peer))
        if wait > 0:
            return Refusal(
                "rate_limited",
                "client",
                f"over {self.limiter.rate:g} requests/s (burst {self.limiter.burst}); "
                f"retry after {wait:.3f} s",
                retry_after=wait,
            )
        return None


_lock = threading.Lock()
_shared: AccessControl | None = None


def shared() -> AccessControl:
    """The process's access control, built from the environment on first use."""
    global _shared
    with _lock:
        if _shared is None:
            _shared = AccessControl.from_env()
        return _shared
