"""Batch API (§7): ``PATCH /admin/api/{type}`` synchronous (``X-Mode: sync``) and asynchronous."""

from __future__ import annotations

import asyncio
import re
import time
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from . import writes
from .jsonapi import ApiError, err, fail, json_response
from .schema import RESOURCES, Resource
from .store import OroStore

if TYPE_CHECKING:
    from .handlers import Ctx

SYNC_LIMIT = 100
CHUNK_SIZE = 100
ASYNC_DELAY_S = 0.05
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
    from .handlers import _json_body

    mode = ctx.request.headers.get("x-mode", "async")
    if mode not in ("sync", "async"):
        raise fail(400, "invalid header value exception", 'The accepted values for the "X-Mode" are "sync" or "async".')
    body = await _json_body(ctx.request)
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
        return _sync(ctx, res, data)
    return _async(ctx, res, data)


def _sync(ctx: Ctx, res: Resource, data: list[Any]) -> Response:
    if len(data) > SYNC_LIMIT:
        raise fail(400, "request data constraint", _SYNC_LIMIT_DETAIL)
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


def _async(ctx: Ctx, res: Resource, data: list[Any]) -> Response:
    store = ctx.store
    now = store.now()
    ops = store.table("asyncoperations")
    op_id = ops.create({"status": "new", "progress": None, "createdAt": now, "updatedAt": now, "elapsedTime": 0,
                        "entityType": res.type, "summary": None, "owner": 1, "organization": 1})
    switches = dict(ctx.switches)
    asyncio.get_running_loop().call_later(ASYNC_DELAY_S, _run_async, store, res, op_id, data, switches)
    renderer = ctx.renderer()
    ctx.items(len(data))
    location = f"{ctx.base}/asyncoperations/{op_id}"
    doc = {"data": renderer.resource(RESOURCES["asyncoperations"], op_id, ops.get(op_id))}
    return json_response(doc, 202, {"Content-Location": location})


def _run_async(store: OroStore, res: Resource, op_id: int, data: list[Any], switches: dict[str, Any]) -> None:
    started = time.perf_counter()
    counts = {"readCount": 0, "writeCount": 0, "errorCount": 0, "createCount": 0, "updateCount": 0}
    errors: list[dict[str, Any]] = []
    for chunk_no, start in enumerate(range(0, len(data), CHUNK_SIZE), 1):
        chunk = data[start:start + CHUNK_SIZE]
        store.begin()
        chunk_errors: list[dict[str, Any]] = []
        kinds: list[str] = []
        for offset, item in enumerate(chunk):
            counts["readCount"] += 1
            try:
                _, kind = _process_item(store, res, start + offset, item, switches)
                kinds.append(kind)
            except ApiError as exc:
                chunk_errors.extend(exc.errors)
        if chunk_errors:
            store.rollback()
            for n, error in enumerate(chunk_errors, 1):
                errors.append({**error, "id": f"{op_id}-{chunk_no}-{n}"})
            counts["errorCount"] += len(chunk_errors)
        else:
            store.commit()
            counts["writeCount"] += len(kinds)
            counts["createCount"] += kinds.count("create")
            counts["updateCount"] += kinds.count("update")
    counts_out = {"aggregateTime": int((time.perf_counter() - started) * 1000), **counts}
    ops = store.table("asyncoperations")
    op = ops.get(op_id)
    if op is None:
        return
    now = store.now()
    ops.put(op_id, {**op, "status": "success", "progress": 1, "updatedAt": now,
                    "elapsedTime": max(0, now - int(op["createdAt"])), "summary": counts_out})
    store.async_errors[op_id] = errors


def async_errors(ctx: Ctx) -> Response:
    """``GET /admin/api/asyncoperations/{id}/errors``."""
    if ctx.request.method != "GET":
        from .jsonapi import EmptyError

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
    data = []
    for error in page:
        attrs: dict[str, Any] = {"status": int(error["status"]), "title": error["title"], "detail": error.get("detail")}
        if "source" in error:
            attrs["source"] = error["source"]
        data.append({"type": "asyncoperationerrors", "id": error["id"], "attributes": attrs})
    ctx.items(len(data))
    return json_response({"data": data})
