"""RetryPolicy: the one retry-wait policy of every connector (Retry-After, cap, attempts)."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import pytest
import requests
from oromc_common.retry import (
    RetryPolicy,
    full_jitter,
    half_jitter,
    is_transient_status,
    retry_after_of,
)


def _response(status: int, headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers or {})
    return response


class _HTTPError(Exception):
    def __init__(self, response: requests.Response | None = None, retry_after: Any = None) -> None:
        super().__init__("failed")
        self.response = response
        if retry_after is not None:
            self.retry_after = retry_after


def test_waits_double_from_the_factor_up_to_the_cap() -> None:
    policy = RetryPolicy(max_tries=9, backoff_factor_seconds=0.5, backoff_max_seconds=3.0)
    assert [policy.wait(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


def test_retry_after_in_seconds_wins_and_is_capped() -> None:
    policy = RetryPolicy(backoff_factor_seconds=0.5, backoff_max_seconds=10.0, jitter=full_jitter)
    hinted = _HTTPError(_response(429, {"Retry-After": "7"}))
    assert policy.wait_after(hinted, 1) == 7.0  # not jittered: the server said when
    too_long = _HTTPError(_response(503, {"Retry-After": "3600"}))
    assert policy.wait_after(too_long, 1) == 10.0


def test_retry_after_as_an_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    seconds = retry_after_of(_HTTPError(_response(503, {"Retry-After": when})))
    assert seconds is not None
    assert 27.0 <= seconds <= 30.0
    past = email.utils.formatdate(time.time() - 30, usegmt=True)
    assert retry_after_of(_HTTPError(_response(503, {"Retry-After": past}))) == 0.0
    policy = RetryPolicy(backoff_max_seconds=5.0)
    assert policy.wait_after(_HTTPError(_response(503, {"Retry-After": when})), 1) == 5.0


def test_an_unreadable_or_missing_retry_after_falls_back_to_the_backoff() -> None:
    policy = RetryPolicy(backoff_factor_seconds=1.0, backoff_max_seconds=60.0)
    assert policy.wait_after(_HTTPError(_response(503, {"Retry-After": "soon"})), 3) == 4.0
    assert policy.wait_after(_HTTPError(_response(503)), 2) == 2.0
    assert policy.wait_after(requests.ConnectionError("reset"), 1) == 1.0
    assert policy.wait_after(None, 1) == 1.0


def test_an_errors_own_retry_after_attribute_is_read() -> None:
    assert retry_after_of(_HTTPError(retry_after=2.5)) == 2.5
    assert RetryPolicy(backoff_max_seconds=60).wait_after(_HTTPError(retry_after=2.5), 4) == 2.5


def test_jitter_spreads_computed_waits_within_bounds() -> None:
    full = RetryPolicy(backoff_factor_seconds=1.0, jitter=full_jitter)
    half = RetryPolicy(backoff_factor_seconds=1.0, jitter=half_jitter)
    for _ in range(50):
        assert 0.0 <= full.wait(3) <= 4.0
        assert 2.0 <= half.wait(3) <= 4.0


def test_call_stops_after_max_tries_and_raises_the_last_error() -> None:
    slept: list[float] = []
    seen: list[tuple[int, float]] = []
    calls = {"n": 0}

    def always_failing() -> None:
        calls["n"] += 1
        raise _HTTPError(_response(503))

    policy = RetryPolicy(max_tries=4, backoff_factor_seconds=0.5, backoff_max_seconds=1.5)
    with pytest.raises(_HTTPError):
        policy.call(
            always_failing,
            retry_on=(_HTTPError,),
            on_retry=lambda _error, attempt, wait: seen.append((attempt, wait)),
            sleep=slept.append,
        )
    assert calls["n"] == 4
    assert slept == [0.5, 1.0, 1.5]
    assert seen == [(1, 0.5), (2, 1.0), (3, 1.5)]


def test_call_returns_the_first_success_and_never_retries_other_errors() -> None:
    outcomes: list[Any] = [_HTTPError(_response(429, {"Retry-After": "2"})), "ok"]
    slept: list[float] = []

    def flaky() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return str(outcome)

    policy = RetryPolicy(max_tries=3)
    assert policy.call(flaky, retry_on=(_HTTPError,), sleep=slept.append) == "ok"
    assert slept == [2.0]

    def broken() -> None:
        raise ValueError("not transient")

    with pytest.raises(ValueError, match="not transient"):
        policy.call(broken, retry_on=(_HTTPError,), sleep=slept.append)
    assert slept == [2.0]
    assert RetryPolicy(max_tries=0).max_tries == 1


def test_the_backoff_generator_gives_the_same_unjittered_schedule() -> None:
    waits = RetryPolicy(backoff_factor_seconds=0.5, backoff_max_seconds=60.0, jitter=full_jitter).waits()
    waits.send(None)
    assert waits.send(_HTTPError(_response(429, {"Retry-After": "7"}))) == 7.0
    assert waits.send(_HTTPError(_response(503))) == 1.0  # second failed attempt: 0.5 * 2
    assert waits.send(requests.ConnectionError()) == 2.0


@pytest.mark.parametrize(
    ("status", "transient"),
    [(408, True), (425, True), (429, True), (500, True), (501, True), (599, True), (400, False),
     (403, False), (404, False), (422, False)],
)  # fmt: skip
def test_transient_statuses(status: int, transient: bool) -> None:
    assert is_transient_status(status) is transient


def test_the_jittered_backoff_generator_jitters_computed_waits_never_retry_after() -> None:
    waits = RetryPolicy(backoff_factor_seconds=0.5, backoff_max_seconds=60.0, jitter=lambda w: w / 4).waits(
        jittered=True
    )
    waits.send(None)
    assert waits.send(_HTTPError(_response(503))) == 0.125  # first failed attempt: 0.5, jittered
    assert waits.send(_HTTPError(_response(429, {"Retry-After": "7"}))) == 7.0
    assert waits.send(requests.ConnectionError()) == 0.5  # third: 2.0, jittered
