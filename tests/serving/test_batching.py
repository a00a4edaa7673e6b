"""The micro-batcher: batches form under concurrency, wait no longer than allowed, and an
error reaches only the callers it belongs to."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from augrec.serving.batching import Batcher, BatchPolicy


def _answer(sizes: list[int], delay: float = 0.0):
    def fn(batch: list[int]) -> list[int | BaseException]:
        sizes.append(len(batch))
        time.sleep(delay)  # concurrent callers queue up meanwhile
        return [ValueError(f"odd {x}") if x % 2 else x * 10 for x in batch]

    return fn


def test_concurrent_requests_share_batches_and_errors_stay_with_their_caller():
    sizes: list[int] = []
    batcher = Batcher(_answer(sizes, delay=0.01), BatchPolicy(max_size=4))
    futures = [batcher.submit(x) for x in range(20)]
    try:
        for x, fut in enumerate(futures):
            if x % 2:
                with pytest.raises(ValueError, match=f"odd {x}"):
                    fut.result(timeout=10)
            else:
                assert fut.result(timeout=10) == x * 10
    finally:
        batcher.close()
    assert max(sizes) == 4 and sum(sizes) == 20  # queued requests were batched, up to the cap


def test_a_lone_request_is_answered_at_once_without_a_window():
    sizes: list[int] = []
    batcher = Batcher(_answer(sizes), BatchPolicy(max_size=32, max_wait_s=0.0))
    t0 = time.perf_counter()
    assert batcher(2) == 20
    assert time.perf_counter() - t0 < 0.5
    batcher.close()
    assert sizes == [1]


def test_a_window_gathers_requests_that_arrive_within_it():
    sizes: list[int] = []
    batcher = Batcher(_answer(sizes), BatchPolicy(max_size=8, max_wait_s=0.3))
    start = threading.Barrier(4)

    def call(x: int) -> int:
        start.wait()
        return batcher(x)

    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(call, [0, 2, 4, 6]))
    batcher.close()
    assert got == [0, 20, 40, 60]
    assert sizes == [4]  # one batch: the first request waited for the other three


def test_a_failing_batch_fails_each_of_its_callers_and_the_worker_lives_on():
    calls = []

    def fn(batch):
        calls.append(batch)
        if len(calls) == 1:
            raise RuntimeError("model exploded")
        return batch

    batcher = Batcher(fn)
    with pytest.raises(RuntimeError, match="model exploded"):
        batcher(1)
    assert batcher(2) == 2
    batcher.close()
    with pytest.raises(RuntimeError, match="stopped"):
        batcher.submit(3)


def test_policy_refuses_nonsense():
    with pytest.raises(ValueError, match="max_size"):
        BatchPolicy(max_size=0)
    with pytest.raises(ValueError, match="max_wait_s"):
        BatchPolicy(max_wait_s=-1)
