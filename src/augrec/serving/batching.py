"""Opportunistic batching of model scoring across concurrent requests (HTTP and gRPC alike).

One scoring thread takes every history waiting in the queue (up to `max_batch_size`),
scores them in one `model.score` call and hands each request its row. It never waits for
a batch to fill: an idle server scores a lone request at once, and under load requests
pile up while the previous batch runs, so batches grow exactly when they pay off. This is
BentoML's adaptive batching idea without its latency timer, and it sits below both
protocols, which BentoML's batching (HTTP only) cannot.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future

import numpy as np
import torch

ScoreFn = Callable[[Sequence[np.ndarray]], torch.Tensor]
_STOP = object()


class ScoreBatcher:
    """Score single histories through batched calls of `score` on a background thread."""

    def __init__(
        self,
        score: ScoreFn,
        max_batch_size: int = 32,
        on_batch: Callable[[int], None] | None = None,
    ):
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        self._score = score
        self._max = max_batch_size
        self._on_batch = on_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="augrec-scorer", daemon=True)
        self._thread.start()

    def score(self, history: np.ndarray) -> torch.Tensor:
        """Scores of every item for one history, [n_items + 1]; blocks until scored."""
        if not self._thread.is_alive():
            raise RuntimeError("the scoring thread has stopped")
        fut: Future[torch.Tensor] = Future()
        self._queue.put((history, fut))
        return fut.result()

    def close(self) -> None:
        """Stop the scoring thread after the requests already queued."""
        self._queue.put(_STOP)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch = [item]
            while len(batch) < self._max:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    self._queue.put(_STOP)  # finish this batch, then stop
                    break
                batch.append(nxt)
            try:
                scores = self._score([h for h, _ in batch])
            except BaseException as exc:  # the callers re-raise it in their own threads
                for _, fut in batch:
                    fut.set_exception(exc)
                continue
            if self._on_batch is not None:
                self._on_batch(len(batch))
            for row, (_, fut) in enumerate(batch):
                fut.set_result(scores[row])
