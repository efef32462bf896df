"""The Mailchimp sandbox's shape: one route table, routes unique, the catch-all last."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from oromc_sandbox import mailchimp
from oromc_sandbox.mailchimp import urls
from starlette.routing import Route


def test_route_table_is_unique_and_ends_with_the_catch_all() -> None:
    routes = mailchimp.routes()
    seen: set[tuple[str, str]] = set()
    for route in routes[:-1]:
        assert isinstance(route, Route)
        for method in route.methods or ():
            key = (method, route.path)
            assert key not in seen, key
            seen.add(key)
    last = routes[-1]
    assert isinstance(last, Route)
    assert last.path == "/3.0/{rest:path}"
    assert last.methods is None  # every method reaches the problem+json 404/405


def test_table_rows_are_served() -> None:
    served = {
        (method, r.path)
        for r in mailchimp.routes()
        if isinstance(r, Route)
        for method in r.methods or ()
    }
    for table in (urls.AUDIENCE, urls.CAMPAIGNS_AND_REPORTS, urls.AUTOMATIONS):
        for method, path, _handler in table:
            assert (method, path) in served


MODELS = (
    "validation",
    "members",
    "lists",
    "campaigns",
    "engagement",
    "engagement_seed",
    "automations",
)


def _imports(name: str) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements of the sandbox's Mailchimp module ``name`` (a path without ``.py``)."""
    package = Path(mailchimp.__file__).parent
    tree = ast.parse((package / f"{name}.py").read_text(encoding="utf-8"))
    yield from (n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom))


def test_models_know_nothing_of_http() -> None:
    """Rules and state modules import neither Starlette nor the handlers nor the route table."""
    for name in MODELS:
        for node in _imports(name):
            if isinstance(node, ast.Import):
                mods = [alias.name for alias in node.names]
            else:
                mods = [("." * node.level) + (node.module or "")]
            for mod in mods:
                assert not mod.startswith("starlette"), (name, mod)
                assert mod.lstrip(".").split(".")[0] not in ("responses", "urls"), (name, mod)


# Rules, state, seeding and the HTTP-free leaves: none of them imports `common` (the HTTP plumbing,
# `mc_endpoint`); they take value formats and body checks from `values`. `models/batches.py` is left
# out: its runner executes operations through `common.dispatch`.
NO_PLUMBING = (
    *MODELS,
    "store",
    "audience_seed",
    "ecommerce_seed",
    "models/ecommerce",
    "models/ecommerce_orders",
    "values",
    "schemas",
    "constants",
)


def test_rules_do_not_import_the_http_plumbing() -> None:
    for name in NO_PLUMBING:
        for node in _imports(name):
            if isinstance(node, ast.ImportFrom) and node.level:
                module = node.module or ""
                assert module.split(".")[-1] != "common", (name, module)
                assert not any(alias.name == "common" for alias in node.names), (name, module)
