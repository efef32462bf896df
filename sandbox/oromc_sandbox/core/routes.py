"""Route selectors shared by fault injection and breakpoints.

A selector names a route as ``"METHOD /template"`` (e.g. ``"POST /3.0/lists/{list_id}"``) or
``"/template"`` (every method); a request is labelled ``"METHOD /template"``. A leaf module: the
fault settings (``state``) and the breakpoints both match requests with it.
"""

from __future__ import annotations

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD")


def split_route(route: str) -> tuple[str | None, str]:
    """``"POST /3.0/lists/{list_id}"`` -> ``("POST", "/3.0/lists/{list_id}")``; a bare path -> ``(None, path)``."""
    head, _, rest = route.strip().partition(" ")
    if rest and head.upper() in HTTP_METHODS:
        return head.upper(), rest.strip()
    return None, route.strip()


def normalise_routes(routes: list[str] | None) -> list[str] | None:
    """Selectors as ``"METHOD /template"`` / ``"/template"`` (method upper case, blanks trimmed)."""
    if routes is None:
        return None
    return [" ".join(p for p in split_route(r) if p) for r in routes]


def normalise_methods(methods: list[str] | None) -> list[str] | None:
    """Methods in upper case."""
    return None if methods is None else [m.upper() for m in methods]


def route_selected(label: str, routes: list[str] | None, methods: list[str] | None) -> bool:
    """Whether a request labelled ``"METHOD /template"`` is selected by (normalised) ``routes`` and
    ``methods`` (``None``: no restriction)."""
    method, _, path = label.partition(" ")
    if methods is not None and method not in methods:
        return False
    return routes is None or label in routes or path in routes


def route_known(route: str, known_routes: dict[str, frozenset[str]]) -> bool:
    """Whether ``route`` (``"METHOD /template"`` or ``"/template"``) names one of ``known_routes``."""
    method, path = split_route(route)
    methods = known_routes.get(path)
    return methods is not None and (method is None or method in methods)
