"""AdaptiveLimit (AIMD) on a fake clock: slow start, additive increase, halving on overload or queueing."""

from __future__ import annotations

import threading
import time

from target_orocommerce.client import _request_kind
from target_orocommerce.concurrency import AdaptiveLimit


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def answer(limit: AdaptiveLimit, clock: FakeClock, seconds: float, *, overloaded: bool = False,
           kind: str = "POST /marketingactivities 1", measured: bool = True) -> None:
    """One request through the gate taking ``seconds`` on the fake clock."""
    with limit.slot(kind) as ticket:
        clock.now += seconds
        limit.observe(ticket, overloaded=overloaded, measured=measured)


def test_slow_start_grows_by_one_per_answer_up_to_the_ceiling() -> None:
    clock = FakeClock()
    limit = AdaptiveLimit(12, clock=clock)
    assert limit.limit == 6
    for expected in (7, 8, 9, 10, 11, 12, 12):
        answer(limit, clock, 0.2)
        assert limit.limit == expected


def test_overload_halves_once_per_round_trip_then_grows_additively() -> None:
    clock = FakeClock()
    limit = AdaptiveLimit(16, initial=16, clock=clock)
    tickets = []
    for _ in range(3):  # three requests sent together, all answered 503
        cm = limit.slot("POST /x 1")
        tickets.append((cm, cm.__enter__()))
    clock.now += 0.1
    for cm, ticket in tickets:
        limit.observe(ticket, overloaded=True)
        cm.__exit__(None, None, None)
    assert limit.limit == 8  # one congestion event, one halving
    assert limit.stats()["decreases"] == 1
    assert limit.stats()["overloads"] == 3
    for _ in range(9):  # about one round trip of answers at the new limit: +1 in all
        answer(limit, clock, 0.2)
    assert limit.limit == 9
    answer(limit, clock, 0.2, overloaded=True)  # sent after the decrease: counts again
    assert limit.limit == 4


def test_latency_rise_over_the_fastest_seen_means_queueing() -> None:
    clock = FakeClock()
    limit = AdaptiveLimit(8, initial=8, clock=clock)
    answer(limit, clock, 0.2)
    answer(limit, clock, 0.35)  # under twice the fastest: still flat
    assert limit.limit == 8
    answer(limit, clock, 0.5)  # 2.5x: requests wait for a worker
    assert limit.limit == 4
    # another kind of request has its own baseline (a batch of 100 is slower without any queue)
    answer(limit, clock, 1.4, kind="PATCH /marketingactivities 100")
    assert limit.limit == 4


def test_reads_grow_the_limit_in_slow_start_only_and_never_set_a_baseline() -> None:
    clock = FakeClock()
    limit = AdaptiveLimit(8, initial=4, clock=clock)
    answer(limit, clock, 0.01, kind="GET /marketingactivities 1", measured=False)
    answer(limit, clock, 5.0, kind="GET /marketingactivities 1", measured=False)
    assert limit.limit == 6  # slow start: +1 each, the slow one is no sign of queueing
    answer(limit, clock, 0.1, kind="GET /marketingactivities 1", measured=False, overloaded=True)
    assert limit.limit == 3
    for _ in range(5):
        answer(limit, clock, 0.1, kind="GET /marketingactivities 1", measured=False)
    assert limit.limit == 3  # after the first overload, reads say nothing


def test_never_below_one_and_fixed_when_not_adaptive() -> None:
    clock = FakeClock()
    limit = AdaptiveLimit(4, initial=1, clock=clock)
    answer(limit, clock, 0.1, overloaded=True)
    assert limit.limit == 1
    fixed = AdaptiveLimit(6, initial=6, adaptive=False, clock=clock)
    answer(fixed, clock, 0.1, overloaded=True)
    answer(fixed, clock, 9.0)
    assert fixed.limit == 6
    assert fixed.stats()["overloads"] == 1


def test_the_gate_blocks_beyond_the_limit() -> None:
    limit = AdaptiveLimit(2, initial=2, adaptive=False)
    entered = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with limit.slot("GET /x 1"):
            entered.set()
            release.wait(5)

    holders = [threading.Thread(target=hold) for _ in range(2)]
    for thread in holders:
        thread.start()
    entered.wait(5)
    while limit.in_flight < 2:
        time.sleep(0.01)
    third = threading.Thread(target=hold)
    third.start()
    time.sleep(0.1)
    assert limit.in_flight == 2  # the third waits at the gate
    release.set()
    for thread in [*holders, third]:
        thread.join(5)
    assert limit.in_flight == 0
    assert limit.peak_in_flight == 2


def test_request_kind_names_the_route_and_the_records() -> None:
    assert _request_kind("PATCH", "marketingactivities", {"data": [{}, {}, {}]}) == "PATCH /marketingactivities 3"
    assert _request_kind("POST", "marketingactivities", {"data": {}}) == "POST /marketingactivities 1"
    assert _request_kind("PATCH", "customerusers/42", {"data": {}}) == "PATCH /customerusers/{id} 1"
    assert _request_kind("GET", "https://shop/admin/api/tags?page[number]=2", None) == "GET /shop/admin/api/tags 1"
