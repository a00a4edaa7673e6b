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


def test_fill_wait_never_delays_a_lone_client_and_fills_batches_to_the_last_size():
    sizes: list[int] = []
    # A long fill wait, so that a wait that should not happen shows in the timings.
    batcher = Batcher(_answer(sizes), BatchPolicy(max_size=8, fill_wait_s=0.4))
    try:
        t0 = time.perf_counter()
        for x in (0, 2, 4):  # one client, one request at a time: batches of one, no waiting
            assert batcher(x) == x * 10
        assert time.perf_counter() - t0 < 0.3 and sizes == [1, 1, 1]
        # Three requests queued together (the worker is held busy meanwhile) form a batch of 3.
        hold, answer = threading.Event(), batcher._fn
        batcher._fn = lambda batch: (-2 in batch and hold.wait(5), answer(batch))[1]
        held = batcher.submit(-2)
        time.sleep(0.05)  # the worker is inside the batch of -2 now
        first = [batcher.submit(x) for x in (10, 12, 14)]
        hold.set()
        assert held.result(5) == -20 and [f.result(5) for f in first] == [100, 120, 140]
        assert sizes[-1] == 3
        # The next batch expects three: it waits for the late ones instead of leaving alone.
        early = batcher.submit(20)
        time.sleep(0.05)
        late = [batcher.submit(x) for x in (22, 24)]
        assert [f.result(5) for f in (early, *late)] == [200, 220, 240] and sizes[-1] == 3
        # After an idle spell a lone request expects to be alone again.
        time.sleep(0.2)
        t0 = time.perf_counter()
        assert batcher(30) == 300 and time.perf_counter() - t0 < 0.3 and sizes[-1] == 1
    finally:
        batcher.close()


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
    with pytest.raises(ValueError, match="fill_wait_s"):
        BatchPolicy(fill_wait_s=2)
