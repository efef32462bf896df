"""``oromc_common.batches``: result files decoded one result at a time, and the first poll's wait."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from contextlib import contextmanager
from typing import Any

import pytest
from oromc_common import batches

RESULTS: list[Any] = [
    {"status_code": 200, "operation_id": "c1:0", "response": json.dumps({"emails": [{"a": "é" * 40}]})},
    {"status_code": 404, "operation_id": "c2:0", "response": json.dumps({"title": "]["})},
    {"status_code": 200, "operation_id": "c3:0", "response": json.dumps({"n": [1, 23, 4.5e3], "x": None})},
]


def _archive(files: list[bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for n, data in enumerate(files):
            info = tarfile.TarInfo(f"{n}.json")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue())


class _Download:
    def __init__(self, data: bytes) -> None:
        self.raw = io.BytesIO(data)
        self.raw.decode_content = False  # type: ignore[attr-defined]


class _Client:
    def __init__(self, data: bytes) -> None:
        self.data = data

    @contextmanager
    def open_download(self, url: str) -> Any:
        yield _Download(self.data)


@pytest.mark.parametrize("chunk", [1, 5, 64, 1 << 20])
def test_results_are_the_same_whatever_the_read_size(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    """Results split across reads anywhere (inside multi-byte characters, numbers, strings) decode
    as a whole file would; empty files have none."""
    monkeypatch.setattr(batches, "READ_CHUNK", chunk)
    files = [json.dumps(RESULTS[:2], indent=2).encode(), b" \n", b"", json.dumps(RESULTS[2:]).encode()]
    got = list(batches.iter_results(_Client(_archive(files)), "https://example.invalid/r.tar.gz"))  # type: ignore[arg-type]
    assert [(r.operation_id, r.status_code) for r in got] == [("c1:0", 200), ("c2:0", 404), ("c3:0", 200)]
    assert [r.body for r in got] == [json.loads(r["response"]) for r in RESULTS]


@pytest.mark.parametrize("data", [b'[{"a": 1}, {"b": 2}', b'[{"a": 1}', b"{}", b'[{"a": ]'])
def test_a_file_that_is_not_one_json_array_raises(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(batches, "READ_CHUNK", 3)
    with pytest.raises(json.JSONDecodeError):
        list(batches.iter_results(_Client(_archive([data])), "https://example.invalid/r.tar.gz"))  # type: ignore[arg-type]


def test_the_first_poll_waits_first_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[tuple[str, float]] = []
    monkeypatch.setattr(batches.time, "sleep", lambda s: events.append(("sleep", s)))

    class Client:
        def get(self, path: str) -> dict[str, Any]:
            events.append(("get", 0.0))
            return {"id": "b1", "status": "finished"}

    doc = batches.wait_for_batch(Client(), "b1", first_wait=4.5)  # type: ignore[arg-type]
    assert doc["status"] == "finished"
    assert events == [("sleep", 4.5), ("get", 0.0)]
    events.clear()  # a poll interval from the default on leaves Mailchimp's expected wait as it is
    batches.wait_for_batch(Client(), "b1", poll_seconds=5.0, first_wait=4.5)  # type: ignore[arg-type]
    assert events == [("sleep", 4.5), ("get", 0.0)]


@pytest.mark.parametrize(("poll_seconds", "first_sleep"), [(0.1, 0.45), (0.5, 2.25), (0.0, None)])
def test_a_short_poll_interval_shortens_the_first_wait_in_proportion(
    monkeypatch: pytest.MonkeyPatch, poll_seconds: float, first_sleep: float | None
) -> None:
    """``batch_poll_seconds`` below the default (1 s) says jobs are that much quicker than Mailchimp's
    (the sandbox without latency): the first poll comes that share of the expected duration after the
    submission, then the back-off from ``poll_seconds`` as always."""
    events: list[tuple[str, float]] = []
    monkeypatch.setattr(batches.time, "sleep", lambda s: events.append(("sleep", s)))
    docs = iter([{"id": "b1", "status": "started"}, {"id": "b1", "status": "finished"}])

    class Client:
        def get(self, path: str) -> dict[str, Any]:
            events.append(("get", 0.0))
            return next(docs)

    doc = batches.wait_for_batch(Client(), "b1", poll_seconds=poll_seconds, first_wait=4.5)  # type: ignore[arg-type]
    assert doc["status"] == "finished"
    first = [] if first_sleep is None else [("sleep", pytest.approx(first_sleep))]
    assert events == [*first, ("get", 0.0), ("sleep", poll_seconds), ("get", 0.0)]


def _queue(events: list[str], *jobs: tuple[str, str, tuple[str, ...]]) -> batches.BatchQueue:
    queue = batches.BatchQueue()
    for batch_id, kind, keys in jobs:
        queue.add(batch_id, lambda b=batch_id: events.append("read " + b), kind=kind, keys=keys)
    return queue


def test_a_durable_callback_runs_once_every_job_before_it_is_read() -> None:
    events: list[str] = []
    queue = _queue(events, ("b1", "contacts", ("member:h1",)))
    queue.when_durable(lambda: events.append("state 1"))
    queue.add("b2", lambda: events.append("read b2"), kind="ecommerce", keys=("orders:o1",))
    queue.when_durable(lambda: events.append("state 2"))
    assert len(queue) == 2
    assert queue.pending

    queue.read_oldest()
    assert events == ["read b1", "state 1"]
    queue.settle()
    assert events == ["read b1", "state 1", "read b2", "state 2"]
    assert not queue.pending
    queue.when_durable(lambda: events.append("state 3"))  # nothing queued: now
    assert events[-1] == "state 3"


def test_settle_reads_up_to_the_last_job_of_a_kind_or_changing_a_key() -> None:
    events: list[str] = []
    queue = _queue(
        events,
        ("b1", "contacts", ("member:h1",)),
        ("b2", "ecommerce", ("orders:o1",)),
        ("b3", "contacts", ("member:h2",)),
        ("b4", "contacts", ("member:h3",)),
    )
    assert queue.touches(["member:h2", "member:h9"])
    assert not queue.touches(["member:h9", "orders:o2"])
    queue.settle(keys=["orders:o2"])  # touched by none: nothing read
    assert events == []
    queue.settle(kind="ecommerce")  # b1 runs before b2: read first
    assert events == ["read b1", "read b2"]
    queue.settle(keys=["member:h2"])
    assert events == ["read b1", "read b2", "read b3"]
    assert [job.batch_id for job in queue] == ["b4"]
    assert queue.submitted("b4") is not None
    assert queue.submitted("b1") is None


def test_a_job_whose_read_fails_stays_queued_with_its_callbacks() -> None:
    queue = batches.BatchQueue()

    def fail() -> None:
        raise RuntimeError("batch did not finish")

    done: list[str] = []
    queue.add("b1", fail)
    queue.when_durable(lambda: done.append("state"))
    with pytest.raises(RuntimeError):
        queue.settle()
    assert len(queue) == 1
    assert done == []
