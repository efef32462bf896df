"""`IndexedRouter` chooses the route Starlette's router chooses, for every route of both APIs.

For each route template (parameters filled in), a variant with a trailing slash, an unknown tail and
a few paths no route has, under every method: the first route that matches fully and the first that
matches partially (405) are the same whether every route is tried or only the candidates.
"""

from __future__ import annotations

import re
from typing import Any

from oromc_sandbox.core.app import IndexedRouter, build_apps
from oromc_sandbox.core.state import SandboxOptions
from oromc_sandbox.core.stores import new_state
from starlette.routing import BaseRoute, Match, Route

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
ODD = ("/", "/3.0", "/3.0/", "/admin", "/admin/api", "/nothing/here", "/_sandbox", "/x/y/z")


def _scope(path: str, method: str) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}


def _choice(routes: list[BaseRoute], scope: dict[str, Any]) -> tuple[Any, Any]:
    full = partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL and full is None:
            full = route
        elif match is Match.PARTIAL and partial is None:
            partial = route
    return full, partial


def test_the_candidates_give_starlettes_choice_of_route() -> None:
    apps = build_apps(new_state(SandboxOptions(customers=10)))
    checked = 0
    for api, wrapped in apps.items():
        router = wrapped.app.router  # type: ignore[attr-defined]
        assert isinstance(router, IndexedRouter), api
        paths = set(ODD)
        for route in router.routes:
            if isinstance(route, Route):
                path = re.sub(r"\{[^}]*\}", "x1", route.path)
                paths.update({path, path + "/", path + "/unknown", path.rstrip("/") + "x"})
        for path in sorted(paths):
            for method in METHODS:
                scope = _scope(path, method)
                chosen = _choice(router.routes, scope)
                assert _choice(router.candidates(path), scope) == chosen, (api, method, path)
                checked += 1
    assert checked > 1000
