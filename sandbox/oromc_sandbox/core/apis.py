"""The two emulated APIs and the route templates each one serves (what faults and breakpoints can target).

A module of its own so the app builder, the middleware and the store/fault set-up all read the
route list from here, none of them importing another for it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from starlette.routing import Route

from oromc_sandbox import mailchimp, oro

APIS: dict[str, Any] = {"oro": oro, "mailchimp": mailchimp}

CONTROL_PREFIX = "/_sandbox/"
"""Paths under it are the sandbox's control routes, not part of an emulated API."""


@cache
def known_routes(api: str) -> dict[str, frozenset[str]]:
    """``{"/route/template": methods}`` of an API's emulated routes (what faults can target)."""
    routes: dict[str, frozenset[str]] = {}
    for route in APIS[api].routes():
        if isinstance(route, Route) and not route.path.startswith(CONTROL_PREFIX):
            routes[route.path] = routes.get(route.path, frozenset()) | frozenset(
                route.methods or ()
            )
    return routes
