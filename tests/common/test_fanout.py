"""BoundedPool / run_bounded: the one bounded fan-out (Oro writer and Mailchimp governor)."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from oromc_common.fanout import BoundedPool, run_bounded
from oromc_common.governor import run_concurrently


class _Gauge:
    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self.lock = threading.Lock()

    def call(self, value: int, pause: float = 0.01) -> Callable[[], int]:
        def run() -> int:
            with self.lock:
                self.now += 1
                self.peak = max(self.peak, self.now)
            time.sleep(pause)
            with self.lock:
                self.now -= 1
            return value

        return run


def test_results_in_input_order_with_at_most_max_workers_in_flight() -> None:
    gauge = _Gauge()
    pool = BoundedPool(3, name="t")
    try:
        assert pool.run([gauge.call(n, 0.02 if n % 2 else 0.0) for n in range(12)]) == list(range(12))
        assert gauge.peak <= 3
        assert pool.run([gauge.call(n) for n in range(4)]) == [0, 1, 2, 3]  # threads reused
    finally:
        pool.close()
    assert 2 <= gauge.peak <= 3


class _KeptError(Exception):
    pass


def test_kept_errors_take_their_place_others_stop_and_the_first_is_raised() -> None:
    started: list[int] = []

    def call(n: int) -> Callable[[], int]:
        def run() -> int:
            started.append(n)
            if n == 1:
                raise _KeptError("one")
            if n in {2, 3}:
                time.sleep(0.05)
                raise ValueError(f"stop {n}")
            time.sleep(0.05)
            return n

        return run

    pool = BoundedPool(2, name="t")
    try:
        results = pool.run([call(0), call(1)], keep=lambda e: isinstance(e, _KeptError))
        assert results[0] == 0
        assert isinstance(results[1], _KeptError)
        started.clear()
        with pytest.raises(ValueError, match="stop 2"):
            pool.run([call(n) for n in range(2, 12)], keep=lambda e: isinstance(e, _KeptError))
        assert len(started) < 10  # calls not started when the fan-out stopped were cancelled
    finally:
        pool.close()


def test_one_worker_runs_in_turn_and_stops_at_once() -> None:
    order: list[int] = []

    def call(n: int) -> Callable[[], None]:
        def run() -> None:
            order.append(n)
            if n == 1:
                raise ValueError("stop")

        return run

    with pytest.raises(ValueError, match="stop"):
        BoundedPool(1, name="t").run([call(n) for n in range(4)])
    assert order == [0, 1]


def test_the_one_shot_form_and_the_mailchimp_governor_use_it() -> None:
    gauge = _Gauge()
    assert run_bounded([gauge.call(n) for n in range(6)], 2, name="t") == list(range(6))
    assert gauge.peak <= 2
    assert run_bounded([], 4, name="t") == []
    gauge = _Gauge()
    assert run_concurrently([gauge.call(n) for n in range(30)], 50) == list(range(30))
    assert gauge.peak <= 10  # Mailchimp's connection limit clamps the workers


def test_stream_yields_in_order_reads_calls_lazily_and_keeps_at_most_window_pending() -> None:
    gauge = _Gauge()
    drawn: list[int] = []

    def calls() -> Iterator[Callable[[], int]]:
        for n in range(20):
            drawn.append(n)
            yield gauge.call(n, 0.02 if n % 3 else 0.0)

    pool = BoundedPool(2, name="t")
    try:
        results = pool.stream(calls(), window=3)
        assert next(results) == 0
        assert len(drawn) <= 4, "no more than the window (plus the one yielded) is drawn ahead"
        assert list(results) == list(range(1, 20))
        assert gauge.peak <= 2
    finally:
        pool.close()


def test_stream_raises_in_turn_and_cancels_what_has_not_started() -> None:
    started: list[int] = []

    def run(n: int) -> int:
        started.append(n)
        time.sleep(0.02)
        if n == 1:
            raise ValueError("stop 1")
        return n

    pool = BoundedPool(1, name="t")
    try:
        results = pool.stream(functools.partial(run, n) for n in range(10))  # default window: 2 per worker
        assert next(results) == 0
        with pytest.raises(ValueError, match="stop 1"):
            next(results)
        time.sleep(0.05)
        assert len(started) <= 3, started
    finally:
        pool.close()


def test_submit_runs_one_call_in_the_background_on_the_pools_threads() -> None:
    release = threading.Event()
    caller = threading.current_thread().name
    pool = BoundedPool(2, name="bg")
    try:
        future = pool.submit(lambda: (release.wait(1), threading.current_thread().name)[1])
        assert not future.done()  # the caller goes on while it runs
        release.set()
        name = future.result(timeout=2)
        assert name != caller
        assert name.startswith("bg")
        failing = pool.submit(lambda: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            failing.result(timeout=2)
    finally:
        pool.close()
