"""Starlette endpoints of the back-office JSON:API under ``/admin/api``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from . import writes
from .auth import authenticate
from .batch import async_errors, batch_update
from .jsonapi import (
    JSONAPI,
    ApiError,
    EmptyError,
    empty_response,
    error_response,
    fail,
    json_body,
    json_response,
)
from .query import (
    ListQuery,
    check_known_params,
    list_links,
    page_of,
    parse_fields_include,
    parse_list_query,
    select,
)
from .render import Renderer, plain
from .schema import RESOURCES, Rel, Resource, rel_enabled, resource
from .static import StaticTable
from .store import Client, OroStore

SWITCH_NAMES = ("customeruser_updatedat_filter", "tagging", "shoppinglists", "order_campaign_relation",
                "campaign_statistics_fields", "order_external_status_management", "marketingactivities_batch",
                "batch_sync_wait_timeout",
                "batch_queue_delay", "consent_source", "token_ttl")
Handler = Callable[["Ctx"], Awaitable[Response]]


class Ctx:
    """Per-request context."""

    def __init__(self, request: Request, client: Client) -> None:
        self.request = request
        self.client = client
        self.store: OroStore = request.app.state.sandbox.oro
        options = request.app.state.sandbox.options
        self.switches: dict[str, Any] = {name: getattr(options, name, None) for name in SWITCH_NAMES}
        # the two consent customizations are presence switches of fields and resources
        source = self.switches.get("consent_source")
        self.switches["consent_field"] = source == "customer_user_field"
        self.switches["consent_acceptances"] = source == "consent_acceptances"
        self.base = f"{request.url.scheme}://{request.url.netloc}/admin/api"
        include = request.headers.get("x-include", "")
        self.x_include = {p.strip() for p in include.replace(",", ";").split(";") if p.strip()}
        self.hateoas = "noHateoas" not in self.x_include
        self.params: list[tuple[str, str]] = request.query_params.multi_items()

    def resource(self, type_: str) -> Resource:
        res = resource(type_, self.switches)
        if res is None:
            raise fail(404, "resource not accessible exception", "The resource is not accessible.")
        return res

    def permit(self, res: Resource, action: str, record_level: bool = False) -> None:
        action = res.acl_actions.get(action, action)
        if not self.client.allows(res.acl_type or res.type, action):
            detail = "No access to the entity." if record_level else "No access to this type of entities."
            raise fail(403, "access denied exception", detail)

    def renderer(self, fields: dict[str, set[str]] | None = None, meta_title: bool = False) -> Renderer:
        return Renderer(self.store, self.base, self.switches, self.hateoas, fields, meta_title)

    def items(self, n: int) -> None:
        self.request.state.items = n


def _allow(methods: list[str]) -> dict[str, str]:
    return {"Allow": ", ".join(["OPTIONS", *methods])}


def _list_methods(res: Resource, switches: dict[str, Any]) -> list[str]:
    out = []
    if "get_list" in res.actions:
        out.append("GET")
    if res.batch or (res.batch_switch is not None and switches.get(res.batch_switch)):
        out.append("PATCH")
    if "create" in res.actions:
        out.append("POST")
    if "delete_list" in res.actions:
        out.append("DELETE")
    return out


def _item_methods(res: Resource) -> list[str]:
    names = {"get": "GET", "update": "PATCH", "delete": "DELETE"}
    return [method for action, method in names.items() if action in res.actions]


def _wants_jsonapi(request: Request) -> bool:
    return JSONAPI in request.headers.get("accept", "")


def _check_content_type(request: Request) -> None:
    ctype = request.headers.get("content-type")
    if ctype is None:
        if _wants_jsonapi(request):
            return
        raise fail(415, "unsupported media type http exception",
                   'The "Content-Type" request header must be "application/vnd.api+json".')
    base, _, params = ctype.partition(";")
    if base.strip().lower() != JSONAPI or params.strip():
        raise fail(415, "unsupported media type http exception",
                   'The "Content-Type" request header must be "application/vnd.api+json" without '
                   'media type parameters.')


async def guard(request: Request, handler: Handler) -> Response:
    """Authentication, then the handler; errors become Oro's error responses."""
    try:
        client = authenticate(request)
        ctx = Ctx(request, client)
        return await handler(ctx)
    except EmptyError as exc:
        return empty_response(exc.status, exc.headers)
    except ApiError as exc:
        return error_response(exc)


async def no_route(request: Request) -> Response:
    """A URL under the API prefix that no API route matches.

    Oro's ``UnhandledApiErrorExceptionListener`` renders the router's NotFoundHttpException for API
    paths as a JSON:API error document (before authentication: routing runs before the firewall).
    """
    url = str(request.url).split("?", 1)[0]  # Symfony: getUriForPath(getPathInfo()), no query string
    detail = f'No route found for "{request.method} {url}"'
    return error_response(fail(404, "not found http exception", detail))


# ---- /admin/api/{resource} --------------------------------------------------------------------
async def list_endpoint(request: Request) -> Response:
    """GET list, POST create, PATCH batch, DELETE by filter, OPTIONS."""
    return await guard(request, _list_route)


async def _list_route(ctx: Ctx) -> Response:
    res = ctx.resource(ctx.request.path_params["resource"])
    method = ctx.request.method
    allowed = _list_methods(res, ctx.switches)
    if method == "OPTIONS":
        return empty_response(200, _allow(allowed))
    if method not in allowed:
        raise EmptyError(405, _allow(allowed))
    if method == "GET":
        return _get_list(ctx, res)
    _check_content_type(ctx.request)
    if method == "POST":
        ctx.permit(res, "create")
        body = await json_body(ctx.request)
        outcome = writes.create(ctx.store, res, body["data"], ctx.switches)
        ctx.items(1)
        return _item_document(ctx, res, outcome.rid, ListQuery(), 201 if outcome.created else 200)
    if method == "PATCH":
        ctx.permit(res, "update_list")
        return await batch_update(ctx, res)
    ctx.permit(res, "delete_list")
    return _delete_list(ctx, res)


def _require_price_list(ctx: Ctx, query: ListQuery) -> None:
    """PricingBundle's StorePriceListInContextByFilter: a product price list needs filter[priceList]
    naming an existing price list."""
    cond = next((c for c in query.conds if c.field == "priceList"), None)
    if cond is None:
        raise fail(400, "filter constraint", "priceList filter is required")
    if not all(ctx.store.table("pricelists").exists(v) for v in cond.values or []):
        raise fail(400, "filter constraint", "specified priceList does not exist")


def _get_list(ctx: Ctx, res: Resource, base_ids: Any = None) -> Response:
    ctx.permit(res, "get_list")
    if res.type == "ordersubtotals":
        return _order_subtotals(ctx, res)
    tbl = ctx.store.table(res.type)
    query = parse_list_query(res, ctx.params, ctx.switches, not isinstance(tbl, StaticTable) or tbl.int_ids)
    if res.type == "productprices":
        _require_price_list(ctx, query)
    ids = select(ctx.store, res, query, base_ids)
    page, more = page_of(ids, query)
    if not _wants_jsonapi(ctx.request):
        ctx.items(len(page))
        body = [plain(res, rid, tbl.get(rid), ctx.store, ctx.switches) for rid in page]
        return json_response(body, media_type="application/json", headers=_count_header(ctx, ids))
    renderer = ctx.renderer(query.fields, query.meta_title)
    records = [(rid, tbl.get(rid)) for rid in page]
    doc: dict[str, Any] = {"data": [renderer.resource(res, rid, rec) for rid, rec in records]}
    if query.include:
        doc["included"] = renderer.included(res, records, query)
    if ctx.hateoas:
        url = str(ctx.request.url).split("?", 1)[0]
        doc["links"] = list_links(url, ctx.params, query, more)
    ctx.items(len(records))
    return json_response(doc, headers=_count_header(ctx, ids))


def _order_subtotals(ctx: Ctx, res: Resource) -> Response:
    """``GET /ordersubtotals?filter[order]=<id>`` (paging and sorting disabled; the filter is required,
    orocommerce ``Api/Processor/HandleOrderFilter.php``, ``OrderSubtotalsTest``)."""
    for key, _ in ctx.params:
        if key in ("sort", "page[size]", "page[number]"):
            raise fail(400, "filter constraint", "The filter is not supported.", parameter=key)
    query = parse_list_query(res, ctx.params, ctx.switches, True)
    order_id = next((c.values[0] for c in query.conds if c.field == "order" and c.values), None)
    if order_id is None:
        raise fail(400, "filter constraint", 'The "order" filter is required.')
    rows = ctx.store.order_subtotals(order_id)
    renderer = ctx.renderer(query.fields, query.meta_title)
    doc: dict[str, Any] = {"data": [renderer.resource(res, sid, rec) for sid, rec in rows]}
    if query.include:
        doc["included"] = renderer.included(res, rows, query)
    ctx.items(len(rows))
    return json_response(doc)


def _count_header(ctx: Ctx, ids: Any) -> dict[str, str]:
    if "totalCount" in ctx.x_include:
        return {"X-Include-Total-Count": str(len(ids))}
    return {}


def _delete_list(ctx: Ctx, res: Resource) -> Response:
    tbl = ctx.store.table(res.type)
    query = parse_list_query(res, ctx.params, ctx.switches, True)
    if not query.has_filters:
        raise fail(400, "filter constraint", "At least one filter must be provided.")
    ids = list(select(ctx.store, res, query))[:100]
    for rid in ids:  # the whole request is refused when one record may not be deleted
        writes.check_delete(ctx.store, res, rid)
    for rid in ids:
        if tbl.exists(rid):
            writes.delete(ctx.store, res, rid)
    ctx.items(len(ids))
    headers = {"X-Include-Deleted-Count": str(len(ids))} if "deletedCount" in ctx.x_include else {}
    return empty_response(204, headers)


def _item_document(ctx: Ctx, res: Resource, rid: Any, query: ListQuery, status: int = 200) -> Response:
    rec = ctx.store.get(res.type, rid)
    if rec is None:
        raise fail(404, "not found http exception", "An entity with the requested identifier does not exist.")
    if not _wants_jsonapi(ctx.request) and ctx.request.method == "GET":
        return json_response(plain(res, rid, rec, ctx.store, ctx.switches), status, media_type="application/json")
    renderer = ctx.renderer(query.fields, query.meta_title)
    doc: dict[str, Any] = {"data": renderer.resource(res, rid, rec)}
    if query.include:
        doc["included"] = renderer.included(res, [(rid, rec)], query)
    return json_response(doc, status)


# ---- /admin/api/{resource}/{id} ---------------------------------------------------------------
async def item_endpoint(request: Request) -> Response:
    """GET, PATCH, DELETE, OPTIONS of one record."""
    return await guard(request, _item_route)


def _find(ctx: Ctx, res: Resource, raw_id: str) -> Any:
    rid = ctx.store.parse_id(res.type, raw_id)
    if rid is None or ctx.store.get(res.type, rid) is None:
        raise fail(404, "not found http exception", "An entity with the requested identifier does not exist.")
    return rid


async def _item_route(ctx: Ctx) -> Response:
    res = ctx.resource(ctx.request.path_params["resource"])
    raw_id = ctx.request.path_params["id"]
    method = ctx.request.method
    allowed = _item_methods(res)
    if method == "OPTIONS":
        return empty_response(200, _allow(allowed))
    if method not in allowed:
        raise EmptyError(405, _allow(allowed))
    if method == "GET":
        ctx.permit(res, "get", record_level=True)
        rid = _find(ctx, res, raw_id)
        query = ListQuery()
        check_known_params(ctx.params, item=True)
        parse_fields_include(res, ctx.params, ctx.switches, query)
        ctx.items(1)
        return _item_document(ctx, res, rid, query)
    _check_content_type(ctx.request)
    if method == "PATCH":
        ctx.permit(res, "update", record_level=True)
        body = await json_body(ctx.request)
        rid = _find(ctx, res, raw_id)
        writes.update(ctx.store, res, rid, body["data"], ctx.switches, url_id=raw_id)
        ctx.items(1)
        return _item_document(ctx, res, rid, ListQuery())
    ctx.permit(res, "delete", record_level=True)
    rid = _find(ctx, res, raw_id)
    writes.delete(ctx.store, res, rid)
    ctx.items(1)
    return empty_response(204)


# ---- relationships and subresources -------------------------------------------------------------
def _relation(ctx: Ctx, res: Resource, name: str) -> Rel:
    rel = res.rel(name)
    if rel is None or not rel_enabled(rel, ctx.switches) or rel.no_subresource:
        raise fail(404, "relationship constraint", "Unsupported subresource.")
    return rel


async def relationship_endpoint(request: Request) -> Response:
    """GET / POST / PATCH / DELETE ``…/{id}/relationships/{association}``."""
    return await guard(request, _relationship_route)


async def _relationship_route(ctx: Ctx) -> Response:
    res = ctx.resource(ctx.request.path_params["resource"])
    rel = _relation(ctx, res, ctx.request.path_params["association"])
    method = ctx.request.method
    writable = not (rel.ro or rel.computed or rel.create_only or rel.route_ro) and "update" in res.actions
    allowed = ["GET"] + ((["PATCH", "POST", "DELETE"] if rel.many else ["PATCH"]) if writable else [])
    if method == "OPTIONS":
        return empty_response(200, _allow(allowed))
    if method not in allowed:
        raise EmptyError(405, _allow(allowed))
    raw_id = ctx.request.path_params["id"]
    if method == "GET":
        ctx.permit(res, "get", record_level=True)
        rid = _find(ctx, res, raw_id)
        rec = ctx.store.get(res.type, rid)
        raw = ctx.store.related_ids(res.type, rel, rid, rec or {}, ctx.switches)
        ident = Renderer._ident
        data: Any = (
            [ident(rel.target, v) for v in raw] if rel.many else (None if raw is None else ident(rel.target, raw))
        )
        doc: dict[str, Any] = {"data": data}
        if ctx.hateoas:
            doc["links"] = {"self": f"{ctx.base}/{res.type}/{raw_id}/relationships/{rel.name}",
                            "related": f"{ctx.base}/{res.type}/{raw_id}/{rel.name}"}
        ctx.items(len(data) if isinstance(data, list) else 1)
        return json_response(doc)
    _check_content_type(ctx.request)
    ctx.permit(res, "update", record_level=True)
    body = await json_body(ctx.request)
    rid = _find(ctx, res, raw_id)
    writes.relationship_write(ctx.store, res, rid, rel, method, body, ctx.switches)
    ctx.items(1)
    return empty_response(204)


async def subresource_endpoint(request: Request) -> Response:
    """GET ``…/{id}/{association}`` (the related records)."""
    return await guard(request, _subresource_route)


async def _subresource_route(ctx: Ctx) -> Response:
    res = ctx.resource(ctx.request.path_params["resource"])
    name = ctx.request.path_params["association"]
    if res.type == "asyncoperations" and name == "errors":
        return async_errors(ctx)
    rel = _relation(ctx, res, name)
    if ctx.request.method == "OPTIONS":
        return empty_response(200, _allow(["GET"]))
    if ctx.request.method != "GET":
        raise EmptyError(405, _allow(["GET"]))
    ctx.permit(res, "get", record_level=True)
    rid = _find(ctx, res, ctx.request.path_params["id"])
    rec = ctx.store.get(res.type, rid) or {}
    raw = ctx.store.related_ids(res.type, rel, rid, rec, ctx.switches)
    if rel.target is None:  # polymorphic: render each related record
        renderer = ctx.renderer()
        items = raw if rel.many else ([] if raw is None else [raw])
        data = [renderer.resource(RESOURCES[t], i, ctx.store.get(t, i) or {}) for t, i in items if ctx.store.get(t, i)]
        ctx.items(len(data))
        return json_response({"data": data if rel.many else (data[0] if data else None)})
    if rel.target not in RESOURCES:  # a resource the sandbox does not serve: its records never exist here
        check_known_params(ctx.params, item=not rel.many)
        ctx.items(0)
        return json_response({"data": [] if rel.many else None})
    target = ctx.resource(rel.target)
    if rel.many:
        return _get_list(ctx, target, base_ids=list(raw))
    if raw is None:
        return json_response({"data": None})
    query = ListQuery()
    check_known_params(ctx.params, item=True)
    parse_fields_include(target, ctx.params, ctx.switches, query)
    ctx.items(1)
    return _item_document(ctx, target, raw, query)
