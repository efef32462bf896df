"""Build the two ASGI applications of a sandbox."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Match, Route, Router, get_route_path
from starlette.types import Receive, Scope, Send
from typing_extensions import override

from oromc_sandbox.core.apis import APIS, known_routes
from oromc_sandbox.core.control import control_routes
from oromc_sandbox.core.middleware import SandboxMiddleware
from oromc_sandbox.core.state import SandboxState


def _head(path: str) -> str | None:
    """The first two segments of a path (`3.0/ecommerce`), None for a shorter path."""
    parts = path.split("/", 3)
    return f"{parts[1]}/{parts[2]}" if len(parts) >= 3 else None


def _route_head(route: BaseRoute) -> str | None:
    """The literal first two segments of a `Route`'s template; None when it may match any path."""
    if not isinstance(route, Route):
        return None
    head = _head(route.path)
    return head if head is not None and "{" not in head else None


class IndexedRouter(Router):
    """Starlette's router, trying only the routes whose first two path segments can match.

    Starlette tries every route in turn (about 90 per Mailchimp request, and each `/batches`
    operation is a request: a tenth of the sandbox's CPU in a large backfill, issue 16). Here a
    `Route` whose template begins with two literal segments is tried only for paths beginning with
    them; any other route for every path. The candidates keep the table's order, so the route
    chosen, and the route that answers 405 for another method, are Starlette's; a path no route
    matches goes to Starlette's own handling (slash redirect, 404) over the whole table.
    """

    _index: tuple[int, dict[str, list[BaseRoute]], list[BaseRoute]] | None = None

    def candidates(self, path: str) -> list[BaseRoute]:
        """The routes that may match ``path``, in the table's order."""
        if self._index is None or self._index[0] != len(self.routes):
            heads = [_route_head(r) for r in self.routes]
            pairs = list(zip(self.routes, heads, strict=True))
            every = [r for r, h in pairs if h is None]
            by_head = {
                key: [r for r, h in pairs if h is None or h == key]
                for key in {h for h in heads if h is not None}
            }
            self._index = (len(self.routes), by_head, every)
        _, by_head, every = self._index
        head = _head(path)
        return every if head is None else by_head.get(head, every)

    @override
    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().app(scope, receive, send)
            return
        if "router" not in scope:
            scope["router"] = self
        partial: Any = None
        partial_scope: Scope = {}
        for route in self.candidates(get_route_path(scope)):
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                scope["route"] = route
                scope.update(child_scope)
                await route.handle(scope, receive, send)
                return
            if match is Match.PARTIAL and partial is None:
                partial, partial_scope = route, child_scope
        if partial is not None:  # e.g. 405 Method Not Allowed
            scope["route"] = partial
            scope.update(partial_scope)
            await partial.handle(scope, receive, send)
            return
        await super().app(scope, receive, send)


def build_app(state: SandboxState, api: str) -> SandboxMiddleware:
    """One API's Starlette app (its routes + control routes) wrapped in the sandbox middleware."""
    module = APIS[api]
    handlers = getattr(module, "exception_handlers", None)
    app = Starlette(
        routes=[*module.routes(), *control_routes(api)],
        exception_handlers=handlers() if handlers is not None else None,
    )
    app.router = IndexedRouter(app.router.routes)
    app.state.sandbox = state
    app.state.api = api
    app.state.known_routes = known_routes(api)
    wrapped = SandboxMiddleware(app, state, api, dict(module.LATENCY_PROFILE))
    app.state.middlewares = [wrapped]
    return wrapped


def build_apps(state: SandboxState) -> dict[str, SandboxMiddleware]:
    """Both apps, keyed by API name."""
    return {api: build_app(state, api) for api in APIS}
