"""A per-client rate limit: one token bucket per client, shared by HTTP and gRPC.

A client is its API key (`key:<key_id>`) when auth is on, else its peer address (`ip:<addr>`,
without the port). Each bucket holds up to `burst` tokens and refills at `rate` per second;
a request takes one token or is refused with the seconds until the next one (HTTP 429 with
`Retry-After`, gRPC RESOURCE_EXHAUSTED with `grpc-retry-pushback-ms`).

Off by default (`rate` 0): behind an ingress or a load balancer every request comes from a
few proxy addresses, so a per-address limit would throttle all users together. Turn it on
with API keys (one bucket per key), or where clients reach the pods directly. The limit is
per process (per pod): N replicas admit up to N times `rate` for one client in total.

Memory is bounded: at most `max_clients` buckets are kept, the least recently seen dropped
first (a dropped client starts again with a full bucket).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

MAX_CLIENTS = 10_000


class RateLimiter:
    """Token buckets by client name; `acquire` is thread-safe and O(1)."""

    def __init__(
        self,
        rate: float,
        burst: int | None = None,
        max_clients: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ):
        if rate < 0:
            raise ValueError(f"rate must be >= 0, got {rate}")
        self.rate = rate
        # Default burst: one second of traffic, and never below one request.
        self.burst = max(1, burst if burst is not None else math.ceil(rate))
        self._max = max_clients
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, time

    @property
    def enabled(self) -> bool:
        """Whether any request can be refused."""
        return self.rate > 0

    def acquire(self, client: str) -> float:
        """Take a token for `client`: 0.0 if granted, else seconds until one is free."""
        if not self.enabled:
            return 0.0
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.pop(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[client] = (tokens, now)  # most recently seen last
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
        return wait


def peer_client(address: str | None) -> str:
    """`ip:<addr>` from an HTTP client host or a gRPC peer (`ipv4:1.2.3.4:5678`, `ipv6:[::1]:5`)."""
    if not address:
        return "ip:unknown"
    for prefix in ("ipv4:", "ipv6:"):
        if address.startswith(prefix):
            host = address[len(prefix) :]
            if host.startswith("["):  # [::1]:port
                return "ip:" + host[1 : host.index("]")] if "]" in host else "ip:" + host
            return "ip:" + host.rsplit(":", 1)[0]
    return "ip:" + address  # an HTTP client host, or unix:/path
