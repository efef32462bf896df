"""Mailchimp ``/batches``: submit operations, poll, stream the tar.gz results (shared by the tap and the target).

A batch is resumable: the caller stores the batch id in state right after submitting it, and a later run
calls :func:`wait_for_batch` with the same id instead of submitting again.
"""

from __future__ import annotations

import codecs
import json
import logging
import tarfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import msgspec

from oromc_common.dates import parse_utc
from oromc_common.mailchimp import MailchimpClient, PermanentMailchimpError

LOGGER = logging.getLogger("oromc_common.batches")
#: Bytes read at a time from a result file of the archive (more while one result is longer).
READ_CHUNK = 1 << 20

SMALL_BATCH_CALLS = 5
"""What a small ``/batches`` job costs in API calls: the ``POST /batches``, 2-3 status polls (a few hundred
operations are done within seconds) and the results download."""
WORTH_A_BATCH = 8
"""From this many single calls on, one small ``/batches`` job is fewer calls (``SMALL_BATCH_CALLS``, with
a margin for a job that waits in Mailchimp's queue and takes more polls)."""


FIRST_POLL_BASE_SECONDS = 2.0
"""What a job takes whatever its size: Mailchimp queues, preprocesses and finalizes it (the sandbox's own
is 2 s, plus 5 ms per operation, with realistic latency; a tenth of that without)."""
FIRST_POLL_SECONDS_PER_OPERATION = 0.01
"""Seconds per operation beyond the base before any job of the run (or the state) has told what they take."""


def expected_batch_seconds(operations: int, seconds_per_operation: float | None = None) -> float:
    """How long a job of ``operations`` takes once Mailchimp starts on it (from its submission, or from
    the end of the job queued before it): ``FIRST_POLL_BASE_SECONDS`` plus ``seconds_per_operation``
    (learned by :func:`seconds_per_operation`) or ``FIRST_POLL_SECONDS_PER_OPERATION`` per operation.
    The first poll waits that long, so that one poll finds a small job finished (each poll is a call)."""
    per_operation = FIRST_POLL_SECONDS_PER_OPERATION if seconds_per_operation is None else seconds_per_operation
    return FIRST_POLL_BASE_SECONDS + per_operation * max(operations, 0)


DEFAULT_POLL_SECONDS = 1.0
"""``batch_poll_seconds`` by default (and :func:`wait_for_batch`'s ``poll_seconds``): the first poll
waits the whole expected duration of a job on Mailchimp. A shorter interval says the account's jobs are
that much quicker (the sandbox without latency runs them in a tenth of Mailchimp's time and its tests
poll every 0.1 s): the first poll's wait shrinks in the same proportion (:func:`scaled_first_wait`)."""


def scaled_first_wait(first_wait: float, poll_seconds: float) -> float:
    """``first_wait`` (a job's expected duration on Mailchimp) in proportion to ``poll_seconds`` when it
    is shorter than ``DEFAULT_POLL_SECONDS``; unchanged from the default on."""
    return first_wait * min(1.0, max(poll_seconds, 0.0) / DEFAULT_POLL_SECONDS)


FIRST_POLL_UNLEARNED_MAX_SECONDS = 2 * FIRST_POLL_BASE_SECONDS
"""Before a duration is learned, the first poll of a job waits at most this long: the default
per-operation time suits a small job; a large one is then polled by its progress."""


def first_poll_seconds(operations: int, seconds_per_operation: float | None = None) -> float:
    """Seconds from a job's start (its submission, or the end of the job queued before it) to its
    first poll: :func:`expected_batch_seconds`, at most ``FIRST_POLL_UNLEARNED_MAX_SECONDS`` while
    ``seconds_per_operation`` is not known."""
    seconds = expected_batch_seconds(operations, seconds_per_operation)
    if seconds_per_operation is None:
        seconds = min(seconds, FIRST_POLL_UNLEARNED_MAX_SECONDS)
    return seconds


def seconds_per_operation(doc: dict[str, Any]) -> float | None:
    """What a finished job took per operation beyond ``FIRST_POLL_BASE_SECONDS`` (Mailchimp's
    ``submitted_at`` to ``completed_at``, plus one second for their whole-second resolution), for the
    next job's first poll; None when the document does not tell. A job queued behind another counts
    its wait too: an over-estimate, which costs waiting, never a poll."""
    submitted, completed = parse_utc(doc.get("submitted_at")), parse_utc(doc.get("completed_at"))
    operations = int(doc.get("total_operations") or 0)
    if submitted is None or completed is None or operations <= 0:
        return None
    seconds = (completed - submitted).total_seconds() + 1.0 - FIRST_POLL_BASE_SECONDS
    return round(max(seconds, 0.0) / operations, 6)


class BatchExpiredError(RuntimeError):
    """The batch id in state is unknown to Mailchimp (expired or deleted)."""


class BatchTimeoutError(RuntimeError):
    """The batch did not finish within the configured time; its id stays in state for the next run."""


@dataclass(frozen=True)
class OperationResult:
    """One operation result from a batch archive."""

    operation_id: str
    status_code: int
    body: Any


@dataclass
class QueuedBatch:
    """A submitted ``/batches`` job whose results are not read yet."""

    batch_id: str
    read: Callable[[], None]
    """Waits for the job and applies its per-operation results."""
    kind: str = ""
    """Who submitted it (e.g. ``contacts``, ``ecommerce``): :meth:`BatchQueue.settle` can read up to
    the last job of one kind."""
    keys: frozenset[str] = frozenset()
    """What its operations change (e.g. member hashes, ``orders:<id>``): a later write of one of them
    reads it first (:meth:`BatchQueue.touches`, :meth:`BatchQueue.settle`)."""
    operations: int = 0
    submitted: float = field(default_factory=time.monotonic)
    on_durable: list[Callable[[], None]] = field(default_factory=list)


class BatchQueue:
    """An account's submitted-but-unread ``/batches`` jobs, oldest first, with callbacks once durable.

    Mailchimp runs an account's jobs one at a time in submission order, so a job is submitted as soon
    as its operations are known and read (its results applied) later, oldest first: the caller keeps
    working while Mailchimp runs them. A callback given to :meth:`when_durable` runs once every job
    submitted before it has been read (a target emits the tap's state this way). Jobs are added and
    read by one thread; other threads may look (``submitted``, iteration).
    """

    def __init__(self) -> None:
        """An empty queue."""
        self._jobs: deque[QueuedBatch] = deque()
        self._lock = threading.Lock()  # a look from another thread never sees the deque change

    def __len__(self) -> int:
        """Jobs not read yet."""
        return len(self._jobs)

    def __iter__(self) -> Iterator[QueuedBatch]:
        """The jobs not read yet, oldest first."""
        with self._lock:
            return iter(tuple(self._jobs))

    @property
    def pending(self) -> bool:
        """True while a submitted job's results are not read yet."""
        return bool(self._jobs)

    def add(
        self,
        batch_id: str,
        read: Callable[[], None],
        *,
        kind: str = "",
        keys: Iterable[str] = (),
        operations: int = 0,
    ) -> QueuedBatch:
        """Queue a job just submitted (``read``: waits for it and applies its results)."""
        job = QueuedBatch(batch_id, read, kind, frozenset(keys), operations)
        with self._lock:
            self._jobs.append(job)
        return job

    def submitted(self, batch_id: str) -> float | None:
        """When a queued job was submitted (``time.monotonic``), None if it is not queued."""
        return next((j.submitted for j in self if j.batch_id == batch_id), None)

    def touches(self, keys: Iterable[str]) -> bool:
        """True when a job not read yet changes one of ``keys``."""
        if not self._jobs:
            return False
        wanted = set(keys)
        return any(not job.keys.isdisjoint(wanted) for job in self)

    def when_durable(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once every job submitted so far is read (now, when none is pending)."""
        if self._jobs:
            self._jobs[-1].on_durable.append(callback)
        else:
            callback()

    def read_oldest(self) -> None:
        """Wait for the oldest job, apply its results, then run its callbacks."""
        job = self._jobs[0]
        job.read()
        with self._lock:
            self._jobs.popleft()
        for callback in job.on_durable:
            callback()

    def settle(self, *, kind: str | None = None, keys: Iterable[str] | None = None) -> None:
        """Read jobs oldest first: all of them, or (``kind`` and/or ``keys`` given) up to the last one
        of that kind / changing one of those keys (the ones before it first: they run first)."""
        wanted = None if keys is None else set(keys)

        def matches(job: QueuedBatch) -> bool:
            return (kind is None or job.kind == kind) and (wanted is None or not job.keys.isdisjoint(wanted))

        while self._jobs and any(matches(job) for job in self):
            self.read_oldest()


def submit_batch(client: MailchimpClient, operations: list[dict[str, Any]]) -> str:
    """``POST /batches`` and return the batch id (an operation's ``body`` dict is JSON-encoded, as
    Mailchimp requires a string)."""
    ops = [
        {**op, "body": json.dumps(op["body"])}
        if op.get("body") is not None and not isinstance(op["body"], str)
        else op
        for op in operations
    ]
    body = client.post("/batches", {"operations": ops}) or {}
    batch_id = body.get("id")
    if not batch_id:
        msg = "Mailchimp accepted the batch but returned no id."
        raise RuntimeError(msg)
    client.submitted_batches.add(str(batch_id))
    return str(batch_id)


def wait_for_batch(
    client: MailchimpClient,
    batch_id: str,
    *,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
    max_poll_seconds: float = 30.0,
    timeout_seconds: float = 3600.0,
    pace: Callable[[dict[str, Any], float], float] | None = None,
    first_wait: float = 0.0,
) -> dict[str, Any]:
    """Poll ``GET /batches/{id}`` until it is ``finished``; return the batch document.

    The first poll comes after ``first_wait`` seconds (a batch submitted a moment ago is never done:
    Mailchimp queues it, then preprocesses it, so polling at once is a call for nothing; a caller that
    knows the batch's expected duration waits that), or that share of them that ``poll_seconds`` is
    of ``DEFAULT_POLL_SECONDS`` when it is shorter (:func:`scaled_first_wait`: jobs quicker than
    Mailchimp's, such as the sandbox's without latency). The wait before the next poll grows 1.5x from
    ``poll_seconds`` up to ``max_poll_seconds``, unless ``pace`` (given the batch document and that
    default) says otherwise, e.g. from the batch's progress. Raises :class:`BatchExpiredError` on 404
    and :class:`BatchTimeoutError` after ``timeout_seconds``.
    """
    deadline = time.monotonic() + timeout_seconds
    delay = poll_seconds
    first_wait = scaled_first_wait(first_wait, poll_seconds)
    if first_wait > 0:
        time.sleep(min(first_wait, timeout_seconds))
    while True:
        try:
            doc = client.get(f"/batches/{batch_id}") or {}
        except PermanentMailchimpError as exc:
            if exc.status == 404:
                raise BatchExpiredError(batch_id) from exc
            raise
        status = doc.get("status")
        if status == "finished":
            return dict(doc)
        if time.monotonic() + delay > deadline:
            msg = f"batch {batch_id} still '{status}' after {timeout_seconds:.0f}s; resuming next run"
            raise BatchTimeoutError(msg)
        LOGGER.info(
            "Batch %s is %s (%s/%s operations)",
            batch_id,
            status,
            doc.get("finished_operations"),
            doc.get("total_operations"),
        )
        wait = delay if pace is None else min(pace(dict(doc), delay), deadline - time.monotonic())
        time.sleep(max(wait, 0.0))
        delay = min(max(delay, wait) * 1.5, max_poll_seconds)


def iter_results(client: MailchimpClient, url: str) -> Iterator[OperationResult]:
    """Stream the results archive (a pre-signed URL: fetched without the API credentials; opening it is
    retried and counted like an API call).

    Each result file (a JSON array of operation results; empty files exist in the wild) is decoded
    one result at a time as it is read (:func:`_array_items`), so a job of many operations needs the
    memory of one result, not of a whole file (hundreds of pages of 1,000 emails each).
    """
    if not url:
        return
    with client.open_download(url) as resp:
        resp.raw.decode_content = True
        with tarfile.open(fileobj=resp.raw, mode="r|gz") as archive:
            for member in archive:
                if not member.isfile():
                    continue
                handle = archive.extractfile(member)
                if handle is None:
                    continue
                for item in _array_items(handle):
                    yield _result(item)


def _array_items(handle: IO[bytes]) -> Iterator[Any]:
    """The items of the JSON array in ``handle``, each decoded as soon as it has been read.

    Reads ``READ_CHUNK`` bytes at a time, or twice what is buffered while one item is longer than
    that (so a long item is decoded a bounded number of times). A file of whitespace only has no
    items; anything else that is not one JSON array raises :class:`json.JSONDecodeError`.
    """
    decoder = json.JSONDecoder()
    utf8 = codecs.getincrementaldecoder("utf-8")()
    text, pos, eof, opened = "", 0, False, False
    while True:
        # whitespace, and inside the array the commas between items
        while pos < len(text) and (text[pos] in " \t\r\n" or (opened and text[pos] == ",")):
            pos += 1
        if pos < len(text):
            if not opened:
                if text[pos] != "[":
                    msg = "a result file is not a JSON array"
                    raise json.JSONDecodeError(msg, text, pos)
                opened, pos = True, pos + 1
                continue
            if text[pos] == "]":
                return
            try:
                item, end = decoder.raw_decode(text, pos)
            except json.JSONDecodeError:
                if eof:
                    raise
                end = -1  # the item goes on in the next bytes
            if eof or 0 <= end < len(text):  # an item ending the buffer might go on (a number)
                yield item
                pos = end
                continue
        elif eof:
            if opened:
                msg = "a result file ends before its array does"
                raise json.JSONDecodeError(msg, text, pos)
            return  # an empty file
        data = handle.read(max(READ_CHUNK, 2 * (len(text) - pos)))
        eof = not data
        text = text[pos:] + utf8.decode(data, final=eof)
        pos = 0


def run_batch(
    client: MailchimpClient,
    operations: list[dict[str, Any]],
    *,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
    timeout_seconds: float = 3600.0,
    pace: Callable[[dict[str, Any], float], float] | None = None,
) -> Iterator[OperationResult]:
    """Submit, wait until ``finished`` (first poll when a job of its size should be done,
    :func:`first_poll_seconds`, not before ``poll_seconds``; both in proportion to a ``poll_seconds``
    below ``DEFAULT_POLL_SECONDS``, see :func:`wait_for_batch`) and stream the per-operation results
    (nothing for no operations)."""
    if not operations:
        return
    batch_id = submit_batch(client, operations)
    doc = wait_for_batch(
        client,
        batch_id,
        poll_seconds=poll_seconds,
        timeout_seconds=timeout_seconds,
        pace=pace,
        first_wait=max(poll_seconds, first_poll_seconds(len(operations))),
    )
    yield from iter_results(client, str(doc.get("response_body_url") or ""))


def _result(item: dict[str, Any]) -> OperationResult:
    response = item.get("response")
    body: Any = None
    if isinstance(response, str) and response:
        try:
            body = msgspec.json.decode(response)  # as json.loads, in ~60% of its time
        except msgspec.DecodeError:
            body = None
    elif isinstance(response, dict):
        body = response
    return OperationResult(
        operation_id=str(item.get("operation_id") or ""),
        status_code=int(item.get("status_code") or 0),
        body=body,
    )
