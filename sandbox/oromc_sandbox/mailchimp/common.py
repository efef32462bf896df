"""Shared HTTP plumbing for the Mailchimp Marketing API v3 emulation.

Everything a Mailchimp handler needs besides its own semantics lives here (the errors themselves
are `exceptions.py`; `error` below names them by slug; value formats and body
checks without HTTP are `values.py`): JSON responses with Mailchimp's headers, authentication,
`count`/`offset` parsing, root-relative `fields`/`exclude_fields`, pagination, `_links`, and
`mc_endpoint`, the wrapper every handler runs in.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .constants import API_PREFIX
from .exceptions import (
    BY_SLUG,
    APIKeyInvalidError,
    APIKeyMissingError,
    FieldError,
    InvalidMethodOverrideError,
    JSONParseError,
    RequestedFieldsInvalidError,
    WrongDatacenterError,
    response_headers,
)
from .exceptions import (
    ApiError as ApiError,  # re-exported: handlers raise it from here
)
from .schemas import check_body
from .values import parse_ts

if TYPE_CHECKING:
    from .store import MailchimpStore


JSON_MEDIA = "application/json; charset=utf-8"
DEFAULT_COUNT = 10
MAX_COUNT = 1000

# Keys whose children are data (merge tags, interest ids, event properties), not schema fields:
# `fields` paths below them are not validated.
DYNAMIC_KEYS = frozenset({"merge_fields", "interests", "properties", "options", "location"})


# --------------------------------------------------------------------------- responses


_headers = response_headers


def json_response(
    request: Request,
    body: Any,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """`application/json; charset=utf-8` response with X-Request-Id and `Server: openresty`."""
    return Response(
        orjson.dumps(body),
        status_code=status,
        headers=_headers(request, headers),
        media_type=JSON_MEDIA,
    )


def no_content(request: Request) -> Response:
    """204 with an empty body that still carries `Content-Type: application/json; charset=utf-8`."""
    resp = Response(b"", status_code=204, headers=_headers(request))
    resp.headers["Content-Type"] = JSON_MEDIA
    return resp


def error(
    request: Request,
    slug: str,
    detail: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Problem response for a catalogue entry (`ERRORS[slug]`), optionally with a specific detail."""
    return BY_SLUG[slug](detail, errors, headers=headers).response(request)


# --------------------------------------------------------------------------- auth


def get_store(request: Request) -> MailchimpStore:
    """The Mailchimp store of the running sandbox."""
    store: MailchimpStore = request.app.state.sandbox.mailchimp
    return store


def authenticate(request: Request) -> Response | None:
    """Check `Authorization`; None when accepted, else the problem response.

    Accepted: `Basic base64(<any user>:<key>-<dc>)`, or `Bearer <token>` / `OAuth <token>` with the
    sandbox OAuth token. Missing -> 401 API Key Missing; unknown key/token -> 401 API Key Invalid;
    the right key with another data-center suffix -> 403 Wrong Datacenter.
    """
    store = get_store(request)
    header = request.headers.get("authorization", "").strip()
    if not header:
        return APIKeyMissingError().response(request)
    scheme, _, credentials = header.partition(" ")
    scheme = scheme.lower()
    credentials = credentials.strip()
    if scheme == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return APIKeyInvalidError().response(request)
        _, sep, key = decoded.partition(":")
        if not sep or not key:
            return APIKeyMissingError().response(request)
        secret, dash, dc = key.rpartition("-")
        if not dash or secret != store.api_secret:
            return APIKeyInvalidError().response(request)
        if dc != store.dc:
            return WrongDatacenterError().response(request)
        return None
    if scheme in ("bearer", "oauth"):
        if credentials and credentials == store.oauth_token:
            return None
        return APIKeyInvalidError().response(request)
    return APIKeyInvalidError().response(request)


# --------------------------------------------------------------------------- fields / paging


def _parse_paths(raw: str) -> list[list[str]]:
    return [list(p.strip().split(".")) for p in raw.split(",") if p.strip()]


def _path_exists(node: Any, path: Sequence[str]) -> bool:
    """True when `path` names something in `node` (or cannot be checked: empty arrays, data maps)."""
    if not path:
        return True
    if isinstance(node, list):
        if not node:
            return True
        return any(_path_exists(item, path) for item in node)
    if isinstance(node, dict):
        head = path[0]
        if head not in node:
            return False
        if head in DYNAMIC_KEYS:
            return True
        return _path_exists(node[head], path[1:])
    return False


def _tree(paths: Iterable[Sequence[str]]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in paths:
        node = tree
        for i, seg in enumerate(path):
            if i == len(path) - 1:
                node[seg] = True  # whole subtree
            else:
                child = node.get(seg)
                if child is True:
                    break
                node = node.setdefault(seg, {})
    return tree


def _include(node: Any, tree: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_include(item, tree) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, sub in tree.items():
        if key in node:
            out[key] = node[key] if sub is True else _include(node[key], sub)
    return out


def _exclude(node: Any, tree: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_exclude(item, tree) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        sub = tree.get(key)
        if sub is True:
            continue
        out[key] = value if sub is None else _exclude(value, sub)
    return out


def apply_fields(body: Any, fields: str | None, exclude_fields: str | None) -> Any:
    """Apply root-relative `fields` / `exclude_fields` (comma lists of dot paths) to a body.

    Paths that name nothing in this document are ignored: production clients send, on every
    collection, paths only some resources have (singer-io tap-mailchimp 1.3.3 `format_selected_fields`
    adds `_links,total_items,constraints,<key>._links`; Airbyte sends `exclude_fields=<key>._links`,
    also on `tag-search`) and the real API answers them. Raises ApiError(422 RequestedFieldsInvalidError)
    only when `fields` is given and none of its paths names anything (e.g. an un-prefixed
    `email_address` on a collection); `exclude_fields` never fails.
    """
    if not fields and not exclude_fields:
        return body
    if fields:
        paths = [p for p in _parse_paths(fields) if _path_exists(body, p)]
        if not paths:
            raise RequestedFieldsInvalidError()
        body = _include(body, _tree(paths))
    if exclude_fields:
        paths = _parse_paths(exclude_fields)
        if paths:
            body = _exclude(body, _tree(paths))
    return body


def paginate(items: Sequence[Any], count: int, offset: int) -> tuple[list[Any], int]:
    """Slice one page out of `items`; returns (page, total_items)."""
    return list(items[offset : offset + count]), len(items)


def parse_int(request: Request, name: str, default: int, minimum: int, maximum: int | None) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise FieldError(name, "Schema describes integer, string found instead") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise FieldError(name, f"Value must be {bound}.")
    return value


def parse_bool(request: Request, name: str, default: bool = False) -> bool:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    low = raw.strip().lower()
    if low in ("true", "1", "yes"):
        return True
    if low in ("false", "0", "no"):
        return False
    raise FieldError(name, "Schema describes boolean, string found instead")


def parse_ts_param(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if len(raw) > 6 and raw[-6] == " " and raw[-3] == ":":
        raw = raw[:-6] + "+" + raw[-5:]  # an unencoded "+00:00" arrives as " 00:00"
    try:
        return parse_ts(raw)
    except ValueError:
        raise FieldError(name, "This value is not a valid date-time (ISO 8601).") from None


def api_base(request: Request) -> str:
    """`http://host:port/3.0` of the server this request came to."""
    return str(request.base_url).rstrip("/") + API_PREFIX


def link(
    request: Request, rel: str, path: str, method: str = "GET", schema: str | None = None
) -> dict[str, Any]:
    """One `_links` entry; `path` is relative to `/3.0`."""
    entry: dict[str, Any] = {"rel": rel, "href": api_base(request) + path, "method": method}
    if schema:
        entry["targetSchema"] = f"https://api.mailchimp.com/schema/3.0/{schema}.json"
    return entry


def links(request: Request, *specs: tuple[str, str] | tuple[str, str, str]) -> list[dict[str, Any]]:
    """`_links` builder: each spec is (rel, path) or (rel, path, method)."""
    out = []
    for spec in specs:
        rel, path = spec[0], spec[1]
        method = spec[2] if len(spec) > 2 else "GET"
        out.append(link(request, rel, path, method))
    return out


def collection_links(
    request: Request, path: str, parent: str | None, methods: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Standard `_links` for a collection: self, parent, plus `create` etc. per given methods."""
    specs: list[tuple[str, str, str]] = [("self", path, "GET")]
    if parent is not None:
        specs.append(("parent", parent, "GET"))
    specs.extend(({"POST": "create", "PUT": "upsert"}.get(m, m.lower()), path, m) for m in methods)
    return links(request, *specs)


def collection_page(
    request: Request,
    ctx: Ctx,
    key: str,
    items: Sequence[Any],
    render: Callable[[Any], Any],
    path: str,
    parent: str | None = None,
    methods: Sequence[str] = (),
    *,
    head: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One page of a collection: `head` fields, the rendered page under `key`, total, `_links`."""
    page, total = paginate(items, ctx.count, ctx.offset)
    ctx.items = len(page)
    return {
        **(head or {}),
        key: [render(x) for x in page],
        "total_items": total,
        "_links": collection_links(request, path, parent, methods),
    }


def item_links(
    request: Request, path: str, parent: str, *, upsert: bool = False, sub: str | None = None
) -> list[dict[str, Any]]:
    """`_links` of one resource: self, parent, update (, upsert), delete (, sub-collection)."""
    specs: list[tuple[str, str] | tuple[str, str, str]] = [
        ("self", path),
        ("parent", parent),
        ("update", path, "PATCH"),
    ]
    if upsert:
        specs.append(("upsert", path, "PUT"))
    specs.append(("delete", path, "DELETE"))
    if sub is not None:
        specs.append((sub, f"{path}/{sub}"))
    return links(request, *specs)


def method_routes(path: str, **handlers: Callable[..., Any]) -> list[BaseRoute]:
    """One `Route` per HTTP method on `path`, in the order given (`get=...`, `post=...`)."""
    return [Route(path, handler, methods=[method.upper()]) for method, handler in handlers.items()]


# --------------------------------------------------------------------------- in-process dispatch


async def dispatch(
    app: Any, scope: dict[str, Any], body: bytes
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Run one request through `app` (the Starlette app, i.e. without the sandbox middleware).

    Returns (status, raw headers, body). Used by `/batches` and `X-HTTP-Method-Override`.
    """
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # never: the handler has its body already
        return {"type": "http.disconnect"}

    status = 500
    headers: list[tuple[bytes, bytes]] = []
    chunks: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, headers, b"".join(chunks)


OVERRIDABLE = ("GET", "PUT", "PATCH", "DELETE")


async def preflight(request: Request, *, auth: bool = True) -> Response | None:
    """The answer due before any route logic: a 401 (when `auth`) or a method-override result."""
    if auth:
        denied = authenticate(request)
        if denied is not None:
            return denied
    return await method_override(request)


async def method_override(request: Request) -> Response | None:
    """Honour `X-HTTP-Method-Override` on POST (422 on other methods); None when absent."""
    override = request.headers.get("x-http-method-override", "").strip().upper()
    if not override:
        return None
    if request.method != "POST" or override not in OVERRIDABLE:
        return InvalidMethodOverrideError().response(request)
    body = await request.body()
    scope = {
        k: v
        for k, v in request.scope.items()
        if k not in ("route", "endpoint", "path_params", "app")
    }
    scope["method"] = override
    scope["headers"] = [
        (k, v) for k, v in request.scope["headers"] if k.lower() != b"x-http-method-override"
    ]
    status, headers, content = await dispatch(request.app, scope, body)
    resp = Response(content, status_code=status)
    resp.raw_headers = headers
    return resp


# --------------------------------------------------------------------------- endpoint wrapper


@dataclass
class Ctx:
    """What an `@mc_endpoint` handler receives besides the request."""

    request: Request
    store: MailchimpStore
    count: int
    offset: int
    json: Any = None
    items: int = 0
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def path_params(self) -> dict[str, Any]:
        return dict(self.request.path_params)

    def now(self) -> datetime:
        return self.store.clock.now()

    def q(self, name: str, default: str | None = None) -> str | None:
        return self.request.query_params.get(name, default)


Handler = Callable[[Request, Ctx], Awaitable["Response | dict[str, Any] | list[Any] | None"]]


def mc_endpoint(func: Handler | None = None, *, auth: bool = True, paged: bool = True) -> Any:
    """Wrap a Mailchimp handler: auth, JSON body, `count`/`offset`, `fields`/`exclude_fields`.

    The handler returns a dict (serialised with `ctx.status` after `fields` filtering), a Response
    (sent as is), or None (204). Raise `ApiError` for problem responses. `count` outside 1..1000 or a
    negative `offset` is a 400 Invalid Resource (the reference documents the maximum, not clamping).
    Set `ctx.items` to the number of items returned/written for the latency profile.
    """

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            try:
                early = await preflight(request, auth=auth)
                if early is not None:
                    return early
                store = get_store(request)
                store.sync_engagement()  # due opens/bounces/unsubscribes land before we answer
                count = (
                    parse_int(request, "count", DEFAULT_COUNT, 1, MAX_COUNT)
                    if paged
                    else DEFAULT_COUNT
                )
                offset = parse_int(request, "offset", 0, 0, None) if paged else 0
                payload: Any = None
                if request.method in ("POST", "PUT", "PATCH"):
                    raw = await request.body()
                    if raw.strip():
                        try:
                            payload = orjson.loads(raw)
                        except orjson.JSONDecodeError:
                            raise JSONParseError() from None
                    route = request.scope.get("route")
                    if payload is not None and route is not None:
                        check_body(request.method, route.path, payload)
                ctx = Ctx(request=request, store=store, count=count, offset=offset, json=payload)
                result = await handler(request, ctx)
                request.state.items = ctx.items
                if isinstance(result, Response):
                    return result
                if result is None:
                    return no_content(request)
                body = apply_fields(
                    result,
                    request.query_params.get("fields"),
                    request.query_params.get("exclude_fields"),
                )
                return json_response(request, body, ctx.status, ctx.headers or None)
            except ApiError as exc:
                return exc.response(request)

        return endpoint

    if func is not None:
        return wrap(func)
    return wrap
