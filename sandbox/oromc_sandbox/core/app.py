"""Build the two ASGI applications of a sandbox."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette

from oromc_sandbox import mailchimp, oro
from oromc_sandbox.core.control import control_routes
from oromc_sandbox.core.middleware import SandboxMiddleware
from oromc_sandbox.core.state import SandboxState

APIS: dict[str, Any] = {"oro": oro, "mailchimp": mailchimp}


def build_app(state: SandboxState, api: str) -> SandboxMiddleware:
    """One API's Starlette app (its routes + control routes) wrapped in the sandbox middleware."""
    module = APIS[api]
    app = Starlette(routes=[*module.routes(), *control_routes()])
    app.state.sandbox = state
    app.state.api = api
    wrapped = SandboxMiddleware(app, state, api, dict(module.LATENCY_PROFILE))
    app.state.middlewares = [wrapped]
    return wrapped


def build_apps(state: SandboxState) -> dict[str, SandboxMiddleware]:
    """Both apps, keyed by API name."""
    return {api: build_app(state, api) for api in APIS}
