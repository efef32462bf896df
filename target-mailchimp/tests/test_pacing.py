"""The /batches poll delay from the batches' progress (no sandbox)."""

from __future__ import annotations

from typing import Any

import pytest
from oromc_common import batches
from target_mailchimp import pacing
from target_mailchimp.pacing import BatchPace


def _doc(status: str, finished: int, total: int, batch_id: str = "b1") -> dict[str, Any]:
    return {"id": batch_id, "status": status, "finished_operations": finished, "total_operations": total}


def test_the_back_off_applies_until_a_rate_is_known(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(pacing.time, "monotonic", lambda: clock[0])
    pace = BatchPace(poll_seconds=0.5, max_seconds=30)
    pace.expect("b1", 1000)
    assert pace(_doc("pending", 0, 0), 1.0) == 1.0  # nothing measured yet: the caller's back-off
    assert pace(_doc("started", 100, 1000), 1.5) == 1.5  # one sample: no rate yet
    clock[0] += 2.0
    # 200 operations in 2 s: 100/s; 700 left -> 7 s
    assert pace(_doc("started", 300, 1000), 2.25) == pytest.approx(7.0)
    # the rate is kept: a new pending batch of 2,000 -> 20 s; a huge one is capped at 30 s
    pace.expect("b2", 2000)
    assert pace(_doc("pending", 0, 0, "b2"), 1.0) == pytest.approx(20.0)
    pace.expect("b3", 10_000)
    assert pace(_doc("pending", 0, 0, "b3"), 1.0) == 30
    # nearly done: never sooner than poll_seconds
    assert pace(_doc("finalizing", 1000, 1000), 1.0) == 0.5


def test_wait_for_batch_sleeps_what_the_pace_says(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = iter([_doc("started", 10, 100), _doc("started", 50, 100), _doc("finished", 100, 100)])
    slept: list[float] = []

    class Client:
        def get(self, path: str) -> dict[str, Any]:
            return next(docs)

    monkeypatch.setattr(batches.time, "sleep", slept.append)
    doc = batches.wait_for_batch(Client(), "b1", poll_seconds=1.0, pace=lambda d, default: 0.25)
    assert doc["status"] == "finished"
    assert slept == [0.25, 0.25]


def test_a_batch_just_submitted_is_first_polled_when_a_job_of_its_size_should_be_done(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``run_batch`` does not poll the moment it has submitted (the batch is still queued) but when a
    job of its size should be finished (``first_poll_seconds``: 2 s + 10 ms an operation, at most
    4 s before a duration is known), so a small job takes one poll; then the back-off. With the
    default ``batch_poll_seconds`` (1 s) or a longer one, for Mailchimp's own jobs; a shorter one
    (jobs that much quicker, the sandbox's without latency) shortens that wait in proportion."""
    docs = iter([_doc("started", 10, 100), _doc("finished", 100, 100)])
    polls: list[str] = []
    slept: list[float] = []

    class Client:
        submitted_batches: set[str] = set()  # as MailchimpClient records its batches

        def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
            return {"id": "b1"}

        def get(self, path: str) -> dict[str, Any]:
            polls.append(path)
            return next(docs)

    monkeypatch.setattr(batches.time, "sleep", slept.append)
    monkeypatch.setattr(batches, "iter_results", lambda client, url: iter(()))
    ops = [{"method": "GET", "path": "/lists/L1/members/h1", "operation_id": "h1"}]
    assert list(batches.run_batch(Client(), ops, poll_seconds=1.0)) == []  # type: ignore[arg-type]
    assert polls == ["/batches/b1", "/batches/b1"]
    assert slept == [pytest.approx(2.01), 1.0]  # before the first poll (1 operation), then the back-off
    slept.clear()
    docs = iter([_doc("started", 10, 100), _doc("finished", 100, 100)])
    assert list(batches.run_batch(Client(), ops, poll_seconds=3.0)) == []  # type: ignore[arg-type]
    assert slept == [3.0, 3.0]  # never before poll_seconds
    slept.clear()
    docs = iter([_doc("finished", 100, 100)])
    ops = [{**ops[0], "operation_id": f"h{i}"} for i in range(1000)]
    assert list(batches.run_batch(Client(), ops, poll_seconds=1.0)) == []  # type: ignore[arg-type]
    assert slept == [batches.FIRST_POLL_UNLEARNED_MAX_SECONDS]  # not 12 s: polled by its progress
    slept.clear()
    docs = iter([_doc("finished", 100, 100)])
    assert list(batches.run_batch(Client(), ops[:1], poll_seconds=0.1)) == []  # type: ignore[arg-type]
    assert slept == [pytest.approx(0.201)]  # a tenth of the interval: a tenth of the wait
