"""Batch operations (`/batches`): the queue and the runner, no HTTP handlers (see `responses/batches.py`).

An account's batches run one at a time, in the order they were submitted (OpenAPI
`deleteBatchesId`: "only one batch request is run at a time"): a batch waits `pending` until the
batches submitted before it have finished. Timeline on the sandbox clock (so tests can jump it with
`/_sandbox/clock`) from the later of `submitted_at` and the previous batch's end: pending (0.5 s) ->
preprocessing (0.5 s) -> started (0.5 s + 5 ms per operation) -> finalizing (0.5 s) -> finished, with
`--latency realistic`; with `--latency none` (no artificial latency anywhere, the default) every phase
takes `NO_LATENCY_SCALE` of that (0.2 s + 0.5 ms per operation in all), fixed when the batch is submitted.
The operations run once the batch reaches `started`, after every batch submitted before it (a
background task does it after the same wall-clock delay, and any read of the batch past that point
runs whatever is left, waiting for it), so results never depend on polling. They run in turn, the
event loop answering other requests every `YIELD_EVERY` operations (a 5,000-operation job must not
hold the account's other calls up for its whole run). Results are a gzipped tar of JSON
files, each a JSON array of `{"status_code", "operation_id", "response"}`, served without authentication at
`/_sandbox/mailchimp/batch-results/<batch_id>.tar.gz` (Mailchimp uses a pre-signed S3 URL).
A GET operation on a collection without `count`/`offset` returns every page, one result per page,
each counted as an operation (see `_run_get_pages`); a GET of one resource is one operation.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import gzip
import io
import tarfile
import time
import weakref
from typing import Any
from urllib.parse import urlencode

import orjson

from ..common import DEFAULT_COUNT, dispatch
from ..constants import API_PREFIX
from ..exceptions import ApiError, FieldError
from ..store import MailchimpStore
from ..values import check_type, require_keys, short_id

PHASES = (("pending", 0.5), ("preprocessing", 0.5))
STARTED_BASE = 0.5
PER_OPERATION = 0.005
FINALIZING = 0.5
NO_LATENCY_SCALE = 0.1
"""The share of the phases' durations above that a batch takes when the sandbox adds no latency
(`--latency none`): Mailchimp's own jobs take seconds to minutes, which the `realistic` profile keeps
(the benchmarks' bounds use the full timeline); without latency a job is quick, like every other call."""
RESULT_FILE_SIZE = 500  # operations per JSON file inside the archive
MAX_OPEN_BATCHES = 500
YIELD_EVERY = 50  # operations run between two turns of the event loop (other requests answered)
RETENTION_SECONDS = 7 * 86400  # finished batches 404 after a week (sandbox clock)
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

# Live (non-persisted) execution state per batch id: app, server info, task.
_RUNTIME: dict[str, dict[str, Any]] = {}
# One lock per account: its batches execute one at a time, in submission order.
_QUEUE_LOCKS: weakref.WeakKeyDictionary[MailchimpStore, asyncio.Lock] = weakref.WeakKeyDictionary()
# Set while a batch's operations run, so an operation reading `/batches` does not wait for itself.
_IN_BATCH: contextvars.ContextVar[bool] = contextvars.ContextVar("in_batch", default=False)


def _queued_from(batch: dict[str, Any]) -> float:
    """When the batch's own timeline begins: its submission, or the end of the batch before it."""
    return float(batch.get("_queued", batch["_submitted"]))


def timeline_scale(store: MailchimpStore) -> float:
    """The share of the full timeline a batch submitted now takes: 1 with `--latency realistic`,
    `NO_LATENCY_SCALE` without latency."""
    return 1.0 if getattr(store.options, "latency", "none") == "realistic" else NO_LATENCY_SCALE


def _scale(batch: dict[str, Any]) -> float:
    """The batch's share of the full timeline (1 for one saved before batches had a scale)."""
    return float(batch.get("_scale", 1.0))


def timeline(batch: dict[str, Any]) -> tuple[float, float, float]:
    """(started_at, finalizing_at, finished_at) as POSIX seconds."""
    scale = _scale(batch)
    started = _queued_from(batch) + scale * sum(d for _, d in PHASES)
    finalizing = started + scale * (STARTED_BASE + PER_OPERATION * len(batch["_operations"]))
    return started, finalizing, finalizing + scale * FINALIZING


def phase(batch: dict[str, Any], now: float) -> str:
    started, finalizing, finished = timeline(batch)
    if now < started - _scale(batch) * PHASES[-1][1]:
        return "pending"  # includes the wait for the batches submitted before it
    if now < started:
        return PHASES[-1][0]
    if now < finalizing:
        return "started"
    if now < finished or not batch["_done"]:
        return "finalizing"
    return "finished"


def _paged_by_mailchimp(op: dict[str, Any]) -> bool:
    """A GET that leaves paging to Mailchimp: neither `count` nor `offset` in its params or path."""
    params = op.get("params") or {}
    query = op["path"].partition("?")[2]
    named = {part.partition("=")[0] for part in query.split("&") if part}
    return not ({"count", "offset"} & (set(params) | named))


async def _run_get_pages(
    runtime: dict[str, Any], store: MailchimpStore, op: dict[str, Any]
) -> list[dict[str, Any]]:
    """A GET operation and, when it is a collection Mailchimp pages, every following page.

    OpenAPI `postBatches` (`Batch.total_operations`): "For GET requests requiring pagination, each
    page counts as a separate operation". singer-io tap-mailchimp 1.3.3 sends its email-activity
    operations without `count`/`offset` and gets every row from the real API, so such an operation
    returns every page (of the default 10), one result per page with the same `operation_id`, each
    counted as an operation. An operation that names `count` or `offset` is the one page the client
    asked for (clients that plan their pages, one operation each, get no duplicates). A page follows
    while `offset + count < total_items` (or, when `fields` left `total_items` out, while the page
    came back full).
    """
    first = await _run_operation(runtime, store, op)
    results = [first]
    if first["status_code"] != 200 or not _paged_by_mailchimp(op):
        return results
    body = orjson.loads(first["response"])
    if not isinstance(body, dict) or not _is_collection(body, op):
        return results  # one resource (its `_links` and `tags` lists are not a page)
    count, offset, params = DEFAULT_COUNT, 0, dict(op.get("params") or {})
    total = body.get("total_items")
    while True:
        items = _page_items(body)
        more = offset + count < total if isinstance(total, int) else items >= count
        if not more or items == 0:
            return results
        offset += count
        page = await _run_operation(
            runtime, store, {**op, "params": {**params, "count": count, "offset": offset}}
        )
        if page["response"] == results[-1]["response"]:
            return results  # the route ignores paging: the same page again ends the collection
        results.append(page)
        if page["status_code"] != 200:
            return results
        body = orjson.loads(page["response"])
        if not isinstance(body, dict):
            return results


def _page_items(body: dict[str, Any]) -> int:
    """Rows in a collection page: its longest array other than `_links`."""
    return max(
        (len(v) for k, v in body.items() if k != "_links" and isinstance(v, list)), default=0
    )


def _is_collection(body: dict[str, Any], op: dict[str, Any]) -> bool:
    """A collection page carries `total_items`, unless `fields`/`exclude_fields` left it out."""
    if "total_items" in body:
        return True
    params = op.get("params") or {}
    fields = str(params.get("fields") or "")
    excluded = str(params.get("exclude_fields") or "")
    hid_total = (bool(fields) and "total_items" not in fields.split(",")) or (
        "total_items" in excluded.split(",")
    )
    return hid_total and _page_items(body) > 0


async def _run_operation(
    runtime: dict[str, Any], store: MailchimpStore, op: dict[str, Any]
) -> dict[str, Any]:
    """Execute one operation through the app's router (no sandbox middleware: no faults/latency)."""
    path = op["path"] if op["path"].startswith("/") else "/" + op["path"]
    query = urlencode(op.get("params") or {}, doseq=True) if op["method"] == "GET" else ""
    if "?" in path:
        path, _, extra = path.partition("?")
        query = "&".join(q for q in (extra, query) if q)
    body = (op.get("body") or "").encode("utf-8")
    auth = base64.b64encode(f"batch:{store.api_key}".encode()).decode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": op["method"],
        "scheme": runtime["scheme"],
        "path": API_PREFIX + path,
        "raw_path": (API_PREFIX + path).encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [
            (b"host", runtime["host"].encode()),
            (b"authorization", f"Basic {auth}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "server": runtime["server"],
        "client": ("127.0.0.1", 0),
        "state": {"request_id": ""},
    }
    try:
        status, _, content = await dispatch(runtime["app"], scope, body)
        chunks = [content]
    except Exception:  # an operation must never stop the batch; report it like Mailchimp's 500
        status = 500
        chunks = [
            orjson.dumps(
                {
                    "type": "https://mailchimp.com/developer/marketing/docs/errors/",
                    "title": "Internal Server Error",
                    "status": 500,
                    "detail": "An unexpected internal error has occurred.",
                    "instance": "",
                }
            )
        ]
    return {
        "status_code": status,
        "operation_id": op.get("operation_id"),
        "response": b"".join(chunks).decode("utf-8"),
    }


def _archive(batch_id: str, results: list[dict[str, Any]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for i in range(0, max(len(results), 1), RESULT_FILE_SIZE):
            part = results[i : i + RESULT_FILE_SIZE]
            data = orjson.dumps(part)
            info = tarfile.TarInfo(name=f"{short_id('batch-file', batch_id, i, length=32)}.json")
            info.size = len(data)
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    # level 6 (the gzip tool's default): level 9's size within 1 %, a third of its CPU (issue 16)
    return gzip.compress(raw.getvalue(), compresslevel=6, mtime=0)


async def _execute(store: MailchimpStore, batch_id: str) -> None:
    """Run a batch's operations once, after every unfinished batch submitted before it.

    Idempotent and concurrency-safe: the account's queue lock lets one batch run at a time. An
    operation that itself reads `/batches` does not wait (it would wait for its own batch).
    """
    if _IN_BATCH.get():
        return
    lock = _QUEUE_LOCKS.setdefault(store, asyncio.Lock())
    async with lock:
        for earlier_id in list(store.batches):
            if earlier_id == batch_id:
                break
            earlier = store.batches.get(earlier_id)
            if earlier is not None and not earlier["_done"]:
                await _execute_one(store, earlier_id)
        await _execute_one(store, batch_id)


async def _execute_one(store: MailchimpStore, batch_id: str) -> None:
    runtime = _RUNTIME.get(batch_id)
    batch = store.batches.get(batch_id)
    if batch is None or batch["_done"]:
        return
    if runtime is None:  # loaded from disk: the operations cannot be replayed safely; no results
        batch["_done"] = True
        return
    token = _IN_BATCH.set(True)
    try:
        results: list[dict[str, Any]] = []
        for i, op in enumerate(batch["_operations"]):
            if i and i % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # a long job must not hold every other request up
            if batch_id not in store.batches:  # deleted while running
                return
            if op["method"] == "GET":
                results.extend(await _run_get_pages(runtime, store, op))
            else:
                results.append(await _run_operation(runtime, store, op))
    finally:
        _IN_BATCH.reset(token)
    batch["_errored"] = sum(1 for r in results if r["status_code"] >= 400)
    batch["_results"] = len(results)  # pages of GET collections count as operations
    batch["_done"] = True
    if results:
        store.batch_results[batch_id] = _archive(batch_id, results)
    _RUNTIME.pop(batch_id, None)  # drop the app reference once the results exist


async def _background(store: MailchimpStore, batch_id: str, delay: float) -> None:
    await asyncio.sleep(delay)
    await _execute(store, batch_id)


async def run_due(store: MailchimpStore, batch: dict[str, Any]) -> None:
    """Make sure a batch past `started` (sandbox clock) has run."""
    now = store.now().timestamp()
    started, _, _ = timeline(batch)
    if now >= started and not batch["_done"]:
        await _execute(store, batch["id"])


def expired(store: MailchimpStore, batch: dict[str, Any]) -> bool:
    _, _, finished_at = timeline(batch)
    return store.now().timestamp() > finished_at + RETENTION_SECONDS


def get_batch(store: MailchimpStore, batch_id: str) -> dict[str, Any]:
    batch = store.batches.get(batch_id)
    if batch is None or expired(store, batch):
        raise ApiError.of("ResourceNotFound")
    return batch


def validate_operations(body: dict[str, Any]) -> list[dict[str, Any]]:
    require_keys(body, ["operations"])
    check_type(body, "operations", "array")
    ops: list[dict[str, Any]] = []
    for i, op in enumerate(body["operations"]):
        prefix = f"operations.{i}."
        if not isinstance(op, dict):
            raise FieldError(
                f"operations.{i}", "Schema describes object, non-object found instead"
            )
        missing = [k for k in ("method", "path") if k not in op]
        if missing:
            raise FieldError(
                f"operations.{i}", "Required fields were not provided: " + ", ".join(missing)
            )
        check_type(op, "method", "string", prefix)
        check_type(op, "path", "string", prefix)
        check_type(op, "params", "object", prefix)
        check_type(op, "body", "string", prefix)
        check_type(op, "operation_id", "string", prefix)
        if op["method"] not in METHODS:
            raise FieldError(
                prefix + "method",
                "Model presented is not one of the accepted values: " + ", ".join(METHODS) + ".",
            )
        ops.append(
            {k: op[k] for k in ("method", "path", "params", "body", "operation_id") if k in op}
        )
    return ops


def visible_batches(store: MailchimpStore) -> list[dict[str, Any]]:
    """The account's batches that have not expired, in submission order."""
    return [b for b in store.batches.values() if not expired(store, b)]


def submit_batch(
    store: MailchimpStore, ops: list[dict[str, Any]], now: float, base: str, runner: dict[str, Any]
) -> dict[str, Any]:
    """Queue a batch of checked operations and schedule its run (429 past `MAX_OPEN_BATCHES`).

    `base` is the server's base URL (for `response_body_url`); `runner` says how to execute the
    operations in-process: `{"app", "scheme", "host", "server"}` of the submitting request.
    """
    open_batches = sum(1 for b in store.batches.values() if not b["_done"])
    if open_batches >= MAX_OPEN_BATCHES:
        raise ApiError(
            429, "Too Many Requests", f"You have more than {MAX_OPEN_BATCHES} pending batches."
        )
    batch_id = short_id("batch", store.options.seed, len(store.batches), now, len(ops))
    while batch_id in store.batches:
        batch_id = short_id("batch", batch_id)
    # One batch at a time: this one's timeline starts when the last one submitted before it ends.
    previous_end = max((timeline(b)[2] for b in store.batches.values()), default=now)
    batch = {
        "id": batch_id,
        "_operations": ops,
        "_submitted": now,
        "_queued": max(now, previous_end),
        "_scale": timeline_scale(store),
        "_done": False,
        "_errored": 0,
        "_base": base,
    }
    store.batches[batch_id] = batch
    _RUNTIME[batch_id] = dict(runner)
    started, _, _ = timeline(batch)
    _RUNTIME[batch_id]["task"] = asyncio.get_running_loop().create_task(
        _background(store, batch_id, max(started - now, 0.0))
    )
    return batch


async def delete_batch(store: MailchimpStore, batch_id: str) -> None:
    """Forget a batch and its results; a run not started yet is cancelled (404 if unknown)."""
    get_batch(store, batch_id)
    del store.batches[batch_id]
    store.batch_results.pop(batch_id, None)
    runtime = _RUNTIME.pop(batch_id, None)
    if runtime is not None and "task" in runtime:
        task = runtime["task"]
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.sleep(0)
