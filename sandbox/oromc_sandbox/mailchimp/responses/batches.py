"""HTTP handlers of `/batches` and of the results archive: parse, call `models/batches.py`, render."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..common import Ctx, link, mc_endpoint, method_routes
from ..constants import API_PREFIX
from ..models import batches as model
from ..store import MailchimpStore
from ..values import format_epoch, require_object

RESULTS_PATH = "/_sandbox/mailchimp/batch-results"
NO_SUCH_KEY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code><Message>The '
    b"specified key does not exist.</Message></Error>"
)


def _counts(batch: dict[str, Any], status: str, now: float) -> tuple[int, int]:
    """(total_operations, finished_operations) as shown in `status` (progress while started)."""
    total = len(batch["_operations"])
    if status == "pending":
        return 0, 0
    if status == "preprocessing":
        return total, 0
    if status == "started":
        started, finalizing, _ = model.timeline(batch)
        span = max(finalizing - started, 1e-9)
        return total, min(total, int(total * (now - started) / span))
    shown = batch.get("_results", total)
    return shown, shown


def _render(request: Request, store: MailchimpStore, batch: dict[str, Any]) -> dict[str, Any]:
    now = store.now().timestamp()
    status = model.phase(batch, now)
    _, _, finished_at = model.timeline(batch)
    shown_total, finished = _counts(batch, status, now)
    errored = batch["_errored"] if status in ("finalizing", "finished") else 0
    url = ""
    if status == "finished" and batch["id"] in store.batch_results:
        url = f"{batch['_base']}{RESULTS_PATH}/{batch['id']}.tar.gz"
    path = f"/batches/{batch['id']}"
    return {
        "id": batch["id"],
        "status": status,
        "total_operations": shown_total,
        "finished_operations": finished,
        "errored_operations": errored,
        "submitted_at": format_epoch(batch["_submitted"]),
        "completed_at": format_epoch(max(finished_at, batch.get("_done_at") or 0))
        if status == "finished"
        else "",
        "response_body_url": url,
        "_links": [
            link(request, "parent", "/batches"),
            link(request, "self", path),
            link(request, "delete", path, "DELETE"),
        ],
    }


@mc_endpoint(paged=False)
async def batch_create(request: Request, ctx: Ctx) -> dict[str, Any]:
    ops = model.validate_operations(require_object(ctx.json))
    runner = {
        "app": request.app,
        "scheme": request.url.scheme,
        "host": request.headers.get("host", "127.0.0.1"),
        "server": request.scope.get("server") or ("127.0.0.1", 80),
    }
    base = str(request.base_url).rstrip("/")
    batch = model.submit_batch(ctx.store, ops, ctx.now().timestamp(), base, runner)
    ctx.items = len(ops)
    return _render(request, ctx.store, batch)


@mc_endpoint
async def batch_list(request: Request, ctx: Ctx) -> dict[str, Any]:
    store = ctx.store
    batches = model.visible_batches(store)
    page = batches[ctx.offset : ctx.offset + ctx.count]
    for b in page:
        await model.run_due(store, b)
    ctx.items = len(page)
    return {
        "batches": [_render(request, store, b) for b in page],
        "total_items": len(batches),
        "_links": [link(request, "self", "/batches"), link(request, "create", "/batches", "POST")],
    }


@mc_endpoint(paged=False)
async def batch_one(request: Request, ctx: Ctx) -> dict[str, Any]:
    batch = model.get_batch(ctx.store, request.path_params["batch_id"])
    await model.run_due(ctx.store, batch)
    ctx.items = 1
    return _render(request, ctx.store, batch)


@mc_endpoint(paged=False)
async def batch_delete(request: Request, ctx: Ctx) -> None:
    await model.delete_batch(ctx.store, request.path_params["batch_id"])


async def batch_results(request: Request) -> Response:
    """The unauthenticated results archive (like Mailchimp's pre-signed S3 link)."""
    store: MailchimpStore = request.app.state.sandbox.mailchimp
    name = request.path_params["name"]
    batch_id = name.removesuffix(".tar.gz")
    batch = store.batches.get(batch_id)
    data = store.batch_results.get(batch_id)
    if batch is None or data is None or model.expired(store, batch):
        return Response(NO_SUCH_KEY, status_code=404, media_type="application/xml")
    return Response(
        data,
        media_type="application/x-gzip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def batch_routes() -> list[BaseRoute]:
    return [
        *method_routes(API_PREFIX + "/batches", post=batch_create, get=batch_list),
        *method_routes(API_PREFIX + "/batches/{batch_id}", get=batch_one, delete=batch_delete),
        Route(RESULTS_PATH + "/{name}", batch_results, methods=["GET"]),
    ]
