"""Batch API (§7): ``PATCH /admin/api/{type}`` synchronous (``X-Mode: sync``) and asynchronous."""

from __future__ import annotations

import asyncio
import re
import time
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from . import writes
from .jsonapi import ApiError, EmptyError, err, fail, json_body, json_response
from .query import ListQuery, list_links
from .schema import RESOURCES, Resource
from .store import OroStore

if TYPE_CHECKING:
    from .handlers import Ctx

SYNC_LIMIT = 100  # sync_processing_limit
CHUNK_SIZE = 100  # chunk_size
_SYNC_LIMIT_DETAIL = ("The data limit for the synchronous operation exceeded. The maximum number of records "
                      "that can be processed by the synchronous operation is 100.")


def _process_item(store: OroStore, res: Resource, index: int, item: Any, switches: dict[str, Any]) -> tuple[Any, str]:
    """Create / update / upsert one batch item; returns (id, "create"|"update")."""
    pointer = f"/data/{index}"
    meta = item.get("meta") if isinstance(item, dict) else None
    if isinstance(meta, dict) and meta.get("update") is True:
        if "id" not in item:
            raise fail(400, "request data constraint", "The 'id' property is required", pointer=f"{pointer}/id")
        writes.check_primary(res, item, pointer, need_id=True)
        rid = store.parse_id(res.type, str(item["id"]))
        if rid is None or store.get(res.type, rid) is None:
            raise fail(404, "not found http exception", "The entity does not exist.", pointer=f"{pointer}/id")
        writes.update(store, res, rid, item, switches, pointer, check=False)
        return rid, "update"
    outcome = writes.create(store, res, item, switches, pointer, upsert_pointer=f"{pointer}/meta/upsert")
    return outcome.rid, "create" if outcome.created else "update"


def _kinds(data: list[Any]) -> set[str]:
    return {"update" if isinstance(i, dict) and isinstance(i.get("meta"), dict) and i["meta"].get("update") is True
            else "create" for i in data}


async def batch_update(ctx: Ctx, res: Resource) -> Response:
    """Entry point for ``PATCH /admin/api/{type}``."""
    mode = ctx.request.headers.get("x-mode", "async")
    if mode not in ("sync", "async"):
        raise fail(400, "invalid header value exception", 'The accepted values for the "X-Mode" are "sync" or "async".')
    body = await json_body(ctx.request)
    data = body["data"]
    if not isinstance(data, list):
        raise fail(400, "request data constraint", "The primary data object collection should be an array",
                   pointer="/data")
    if "included" in body:
        raise fail(400, "request data constraint",
                   'The sandbox does not support the "included" section in Batch API requests.', pointer="/included")
    for kind in _kinds(data):
        ctx.permit(res, kind if kind == "create" else "update")
    if mode == "sync":
        return await _sync(ctx, res, data)
    return _async(ctx, res, data)


async def _sync(ctx: Ctx, res: Resource, data: list[Any]) -> Response:
    """``X-Mode: sync``: processed at once, atomic; or 202 when the queue is slower than the wait.

    Oro queues a sync request like an async one (one chunk, high priority) and waits up to
    ``sync_processing_wait_timeout`` (25 s) for it (platform ``Processor/UpdateList/
    ProcessSynchronousOperation.php``); past that it answers 202 with the asynchronous operation,
    which the consumer still processes in synchronous mode: all records or none, no retry
    (``UpdateListProcessChunkMessageProcessor``). The switches ``batch_queue_delay`` and
    ``batch_sync_wait_timeout`` emulate a queue slower than the wait.
    """
    if len(data) > SYNC_LIMIT:
        raise fail(400, "request data constraint", _SYNC_LIMIT_DETAIL)
    delay = float(ctx.switches.get("batch_queue_delay") or 0)
    wait = float(ctx.switches.get("batch_sync_wait_timeout") or 0)
    if delay > wait:
        await asyncio.sleep(wait)
        return _async(ctx, res, data, sync_mode=True, delay=max(0.0, delay - wait))
    store = ctx.store
    store.begin()
    errors: list[dict[str, Any]] = []
    statuses: set[int] = set()
    done: list[Any] = []
    for index, item in enumerate(data):
        try:
            rid, _ = _process_item(store, res, index, item, ctx.switches)
            done.append(rid)
        except ApiError as exc:
            errors.extend(exc.errors)
            statuses.add(exc.status)
    if errors:
        store.rollback()
        raise ApiError(statuses.pop() if len(statuses) == 1 else 400, errors)
    store.commit()
    renderer = ctx.renderer()
    tbl = store.table(res.type)
    ctx.items(len(done))
    return json_response({"data": [renderer.resource(res, rid, tbl.get(rid)) for rid in done]})


def _async(
    ctx: Ctx, res: Resource, data: list[Any], *, sync_mode: bool = False, delay: float | None = None
) -> Response:
    store = ctx.store
    now = store.now()
    ops = store.table("asyncoperations")
    op_id = ops.create({"status": "new", "progress": None, "createdAt": now, "updatedAt": now, "elapsedTime": 0,
                        "entityType": res.type, "summary": None, "owner": 1, "organization": 1})
    switches = dict(ctx.switches)
    if delay is None:
        delay = float(ctx.switches.get("batch_queue_delay") or 0)
    asyncio.get_running_loop().call_later(delay, _run_async, store, res, op_id, data, switches, sync_mode)
    renderer = ctx.renderer()
    ctx.items(len(data))
    location = f"{ctx.base}/asyncoperations/{op_id}"
    doc = {"data": renderer.resource(RESOURCES["asyncoperations"], op_id, ops.get(op_id))}
    return json_response(doc, 202, {"Content-Location": location})


def _retry_groups(size: int, failed: set[int]) -> list[tuple[int, int]]:
    """Runs ``(start, end)`` of consecutive items without errors (``RetryHelper::getChunksToRetry``)."""
    groups: list[tuple[int, int]] = []
    start: int | None = None
    for i in range(size + 1):
        ok = i < size and i not in failed
        if ok and start is None:
            start = i
        elif not ok and start is not None:
            groups.append((start, i))
            start = None
    return groups


def _run_async(store: OroStore, res: Resource, op_id: int, data: list[Any], switches: dict[str, Any],
               sync_mode: bool = False) -> None:
    """Process an operation as Oro's consumers do (platform ``Batch/Async/UpdateListProcessChunkMessageProcessor``).

    Chunks of 100 (one chunk in synchronous mode), each in one transaction. A chunk in which some
    records fail validation is rolled back; the failing records' errors are saved (permanent errors,
    never retried) and, unless the operation is synchronous, each run of consecutive valid records
    is retried as an extra chunk (``RetryHelper``), so the valid records are written
    (``UpdateListTest::testProcessChunkWithValidationErrors``: writeCount 1, errorCount 2, status
    success). Extra chunks do not add to ``readCount`` (``Batch/EventListener/JobListener``).
    """
    started = time.perf_counter()
    counts = {"readCount": 0, "writeCount": 0, "errorCount": 0, "createCount": 0, "updateCount": 0}
    size = SYNC_LIMIT if sync_mode else CHUNK_SIZE
    queue: list[tuple[int, int, list[Any], bool]] = [
        (n, start, data[start:start + size], False) for n, start in enumerate(range(0, len(data), size))]
    chunk_count = len(queue)
    error_files: list[tuple[int, list[dict[str, Any]]]] = []
    failed = False
    while queue:
        file_index, offset, chunk, extra = queue.pop(0)
        if not extra:
            counts["readCount"] += len(chunk)
        store.begin()
        item_errors: dict[int, list[dict[str, Any]]] = {}
        kinds: list[str] = []
        for i, item in enumerate(chunk):
            try:
                _, kind = _process_item(store, res, offset + i, item, switches)
                kinds.append(kind)
            except ApiError as exc:
                item_errors[i] = exc.errors
        if not item_errors:
            store.commit()
            counts["writeCount"] += len(kinds)
            counts["createCount"] += kinds.count("create")
            counts["updateCount"] += kinds.count("update")
            continue
        store.rollback()
        chunk_errors = [error for i in sorted(item_errors) for error in item_errors[i]]
        error_files.append((file_index, chunk_errors))
        counts["errorCount"] += len(chunk_errors)
        if sync_mode:
            failed = True  # "in synchronous mode all items should be either completely succeed or fail together"
            continue
        if len(chunk) > 1:
            for start, end in _retry_groups(len(chunk), set(item_errors)):
                queue.append((chunk_count, offset + start, chunk[start:end], True))
                chunk_count += 1
    errors: list[dict[str, Any]] = []
    for position, (file_index, file_errors) in enumerate(sorted(error_files, key=lambda entry: entry[0])):
        # ErrorManager::readErrors: "<operation>-<chunk file index + 1>-<index file position + 1 + n>"
        errors.extend({**error, "id": f"{op_id}-{file_index + 1}-{position + 1 + n}"}
                      for n, error in enumerate(file_errors))
    counts_out = {"aggregateTime": int((time.perf_counter() - started) * 1000), **counts}
    ops = store.table("asyncoperations")
    op = ops.get(op_id)
    if op is None:
        return
    now = store.now()
    ops.put(op_id, {**op, "status": "failed" if failed else "success", "progress": 1, "updatedAt": now,
                    "elapsedTime": max(0, now - int(op["createdAt"])), "summary": counts_out})
    store.async_errors[op_id] = errors


def async_errors(ctx: Ctx) -> Response:
    """``GET /admin/api/asyncoperations/{id}/errors``."""
    if ctx.request.method != "GET":
        raise EmptyError(405, {"Allow": "OPTIONS, GET"})
    res = RESOURCES["asyncoperations"]
    ctx.permit(res, "get", record_level=True)
    raw_id = ctx.request.path_params["id"]
    op_id = int(raw_id) if raw_id.isdigit() else None
    if op_id is None or ctx.store.get("asyncoperations", op_id) is None:
        raise fail(404, "not found http exception", "An entity with the requested identifier does not exist.")
    size, number = 10, 1
    for key, value in ctx.params:
        if key in ("page[size]", "page[number]"):
            if not re.fullmatch(r"-?\d+", value):
                raise ApiError(400, [err(400, "filter constraint", f'Expected integer value. Given "{value}".',
                                         parameter=key)])
            if key == "page[size]":
                size = int(value)
            else:
                number = max(1, int(value))
    errors = ctx.store.async_errors.get(op_id, [])
    page = errors if size == -1 else errors[(number - 1) * size: number * size]
    more = size != -1 and len(errors) > number * size
    data = []
    for error in page:
        attrs: dict[str, Any] = {"status": int(error["status"]), "title": error["title"], "detail": error.get("detail")}
        if "source" in error:
            attrs["source"] = error["source"]
        data.append({"type": "asyncoperationerrors", "id": error["id"], "attributes": attrs})
    ctx.items(len(data))
    doc: dict[str, Any] = {"data": data}
    if ctx.hateoas:
        url = str(ctx.request.url).split("?", 1)[0]
        doc["links"] = list_links(url, ctx.params, ListQuery(page_size=size, page_number=number), more)
    return json_response(doc)
