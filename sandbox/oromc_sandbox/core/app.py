"""Build the two ASGI applications of a sandbox."""

from __future__ import annotations

from starlette.applications import Starlette

from oromc_sandbox.core.apis import APIS, known_routes
from oromc_sandbox.core.control import control_routes
from oromc_sandbox.core.middleware import SandboxMiddleware
from oromc_sandbox.core.state import SandboxState


def build_app(state: SandboxState, api: str) -> SandboxMiddleware:
    """One API's Starlette app (its routes + control routes) wrapped in the sandbox middleware."""
    module = APIS[api]
    handlers = getattr(module, "exception_handlers", None)
    app = Starlette(
        routes=[*module.routes(), *control_routes(api)],
        exception_handlers=handlers() if handlers is not None else None,
    )
    app.state.sandbox = state
    app.state.api = api
    app.state.known_routes = known_routes(api)
    wrapped = SandboxMiddleware(app, state, api, dict(module.LATENCY_PROFILE))
    app.state.middlewares = [wrapped]
    return wrapped


def build_apps(state: SandboxState) -> dict[str, SandboxMiddleware]:
    """Both apps, keyed by API name."""
    return {api: build_app(state, api) for api in APIS}
