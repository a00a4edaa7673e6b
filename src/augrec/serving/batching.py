"""Micro-batching of concurrent requests (HTTP and gRPC alike) on one background thread.

Requests are submitted from any thread or event loop; one worker thread takes every request
waiting in the queue (up to `max_size`) and answers them with one call of the batch function
(for recommendations: one feature-store read, one model call, one top-k). By default it never
waits for a batch to fill: an idle server answers a lone request at once, and under load
requests pile up while the previous batch runs, so batches grow exactly when they pay off.
`max_wait_s` (default 0) makes the worker wait that long for more requests after the first,
always, which costs a lone request that long too.

`fill_wait_s` waits only when the load says more requests are coming: while the batch is
smaller than the one before it (clients that were just answered send again), for at most that
long. A lone client's batches are of one, so it never waits; several clients' batches fill
up instead of leaving as the first few arrive. When fewer come, the next batch expects fewer;
after an idle spell (IDLE_S) it expects one. This is BentoML's adaptive batching idea, and it
sits below both protocols, which BentoML's batching (HTTP only) cannot.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")
_STOP = object()
IDLE_S = 0.1  # a batch this long after the last one expects a lone request


@dataclass(frozen=True)
class BatchPolicy:
    """How big a batch may grow and how long the worker waits for it to grow."""

    max_size: int = 32
    max_wait_s: float = 0.0
    fill_wait_s: float = 0.0

    def __post_init__(self) -> None:
        if self.max_size < 1:
            raise ValueError(f"max_size must be >= 1, got {self.max_size}")
        for name in ("max_wait_s", "fill_wait_s"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be in [0, 1] seconds, got {value}")


class Batcher(Generic[T, R]):
    """Answer single requests through batched calls of `fn` on a background thread.

    `fn` gets a list of requests and returns one result per request, in order; a result that
    is an exception is raised to that request's caller only (one bad request does not fail
    its batch). An exception raised by `fn` itself fails every request of the batch.
    """

    def __init__(
        self,
        fn: Callable[[list[T]], Sequence[R | BaseException]],
        policy: BatchPolicy | None = None,
        name: str = "augrec-batcher",
    ):
        self._fn = fn
        self.policy = policy or BatchPolicy()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._last_size = 1  # how many requests the previous batch held
        self._last_end = 0.0  # when it was answered
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, request: T) -> Future[R]:
        """Queue one request; the future holds its result (await it with asyncio.wrap_future)."""
        if not self._thread.is_alive():
            raise RuntimeError("the batching thread has stopped")
        fut: Future[R] = Future()
        self._queue.put((request, fut))
        return fut

    def __call__(self, request: T) -> R:
        """The result of one request; blocks until its batch is answered."""
        return self.submit(request).result()

    def close(self) -> None:
        """Stop the worker after the requests already queued."""
        self._queue.put(_STOP)
        self._thread.join(timeout=10)

    def _collect(self, first: tuple) -> tuple[list[tuple], bool]:
        """The batch that starts with `first`, and whether a stop was seen."""
        batch = [first]
        now = time.monotonic()
        deadline = now + self.policy.max_wait_s
        fill_deadline = now + self.policy.fill_wait_s
        expected = self._last_size if now - self._last_end < IDLE_S else 1
        while len(batch) < self.policy.max_size:
            try:
                end = max(deadline, fill_deadline) if len(batch) < expected else deadline
                wait = end - time.monotonic()
                nxt = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if nxt is _STOP:
                return batch, True
            batch.append(nxt)
        return batch, False

    def _run(self) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            if item is _STOP:
                return
            batch, stop = self._collect(item)  # a stop finishes this batch first
            self._last_size = len(batch)
            try:
                results = self._fn([req for req, _ in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"batch of {len(batch)} answered {len(results)} times")
            except BaseException as exc:  # the callers re-raise it in their own threads
                for _, fut in batch:
                    fut.set_exception(exc)
                continue
            for result, (_, fut) in zip(results, batch, strict=True):
                if isinstance(result, BaseException):
                    fut.set_exception(result)
                else:
                    fut.set_result(result)
            self._last_end = time.monotonic()
