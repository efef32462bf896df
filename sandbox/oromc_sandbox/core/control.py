"""`/_sandbox/...` control and introspection routes (not part of the emulated APIs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from oromc_sandbox.core.breakpoints import Breakpoint
from oromc_sandbox.core.state import (
    CONSENT_SOURCES,
    LATENCY_MODES,
    SWITCHES,
    FaultSettings,
    SandboxState,
)
from oromc_sandbox.core.stores import load_state, save_state, seed_stores


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _error(detail: str, status: int = 400) -> Response:
    return _json({"error": detail}, status)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    data = orjson.loads(raw)
    if not isinstance(data, dict):
        msg = "body must be a JSON object"
        raise ValueError(msg)
    return data


def _state(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


async def health(request: Request) -> Response:
    """Liveness and identity of this server."""
    state = _state(request)
    return _json({"ok": True, "api": request.app.state.api, "now": state.clock.now().isoformat()})


async def stats(request: Request) -> Response:
    """Request counts per route and status; peak/current simultaneous connections per key; Oro's
    worker slots and queue."""
    state = _state(request)
    api = request.app.state.api
    body = state.counters[api].to_json()
    if api == "oro":
        body["capacity"] = request.app.state.middlewares[0].capacity_json()
    return _json(body)


async def reset_stats(request: Request) -> Response:
    """Zero the counters of both APIs (data untouched)."""
    _state(request).reset_counters()
    return _json({"ok": True})


async def reset(request: Request) -> Response:
    """Re-seed both stores (optionally with a new ``seed``/``customers``) and zero counters."""
    state = _state(request)
    try:
        body = await _body(request)
    except ValueError as exc:
        return _error(str(exc))
    for name in ("seed", "customers"):
        if name in body:
            setattr(state.options, name, int(body[name]))
    seconds = seed_stores(state)
    state.reset_counters()
    return _json({"ok": True, "seeded_in_s": round(seconds, 3)})


async def clock(request: Request) -> Response:
    """GET the sandbox time; POST ``{"advance_seconds": n}`` or ``{"set": iso}``."""
    state = _state(request)
    if request.method == "POST":
        try:
            body = await _body(request)
            if "advance_seconds" in body:
                state.clock.advance(float(body["advance_seconds"]))
            elif "set" in body:
                state.clock.set(datetime.fromisoformat(str(body["set"])))
            else:
                return _error("give advance_seconds or set")
        except ValueError as exc:
            return _error(str(exc))
    return _json({"now": state.clock.now().isoformat()})


def _str_list(body: dict[str, Any], name: str, current: list[str] | None) -> list[str] | None:
    """A list of strings from the body (``null``: no restriction; absent: unchanged)."""
    if name not in body:
        return current
    value = body[name]
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        msg = f"{name} must be a list of strings or null"
        raise ValueError(msg)
    return [v.upper() for v in value] if name == "methods" else list(value)


async def faults(request: Request) -> Response:
    """GET/POST this API's fault injection: rate, kinds, seed, slow_seconds, routes, methods.

    A POST changes the fields it names and restarts the fault sequences.
    """
    state = _state(request)
    api = request.app.state.api
    settings = state.faults[api]
    if request.method == "POST":
        try:
            body = await _body(request)
            new = FaultSettings(
                rate=float(body.get("rate", settings.rate)),
                kinds=list(body.get("kinds", settings.kinds)),
                seed=int(body.get("seed", settings.seed)),
                slow_seconds=float(body.get("slow_seconds", settings.slow_seconds)),
                routes=_str_list(body, "routes", settings.routes),
                methods=_str_list(body, "methods", settings.methods),
            )
            new.validate(api, request.app.state.known_routes)
        except (ValueError, TypeError) as exc:
            return _error(str(exc))
        state.faults[api] = new
        for mw in request.app.state.middlewares:
            mw.reseed_faults()
    return _json(state.faults[api].to_json())


def _switch_value(name: str, current: Any, value: Any) -> Any:
    """Check one `/_sandbox/config` value against the type and range of its option."""
    if isinstance(current, bool):
        if not isinstance(value, bool):
            msg = f"{name} must be true or false"
            raise ValueError(msg)
        return value
    if name == "consent_source":
        if value not in CONSENT_SOURCES:
            msg = f"consent_source must be one of {', '.join(CONSENT_SOURCES)}"
            raise ValueError(msg)
        return value
    if name == "latency":
        if value not in LATENCY_MODES:
            msg = f"latency must be one of {', '.join(LATENCY_MODES)}"
            raise ValueError(msg)
        return value
    if isinstance(current, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            msg = f"{name} must be a number"
            raise ValueError(msg)
        value = float(value)
    elif isinstance(value, bool) or not isinstance(value, int):
        msg = f"{name} must be an integer"
        raise ValueError(msg)
    minimum = 1 if name in {"max_connections", "token_ttl"} else 0
    if value < minimum:
        msg = f"{name} must be >= {minimum}"
        raise ValueError(msg)
    return value


async def config(request: Request) -> Response:
    """GET/POST the live switches (see ``SWITCHES``)."""
    state = _state(request)
    if request.method == "POST":
        try:
            body = await _body(request)
            unknown = sorted(set(body) - set(SWITCHES))
            if unknown:
                msg = f"unknown switches {unknown}; known: {', '.join(SWITCHES)}"
                raise ValueError(msg)
            values = {
                name: _switch_value(name, getattr(state.options, name), value)
                for name, value in body.items()
            }
        except ValueError as exc:
            return _error(str(exc))
        for name, value in values.items():
            setattr(state.options, name, value)
    return _json({name: getattr(state.options, name) for name in SWITCHES})


async def revoke_tokens(request: Request) -> Response:
    """``POST /_sandbox/oro/tokens/revoke``: revoke all issued Oro tokens now."""
    return _json({"ok": True, **_state(request).oro.revoke_tokens()})


async def save(request: Request) -> Response:
    """Persist both stores to ``--data-dir`` now."""
    path = save_state(_state(request))
    if path is None:
        return _error("the sandbox was started without --data-dir", 409)
    return _json({"ok": True, "path": str(path)})


async def load(request: Request) -> Response:
    """Restore both stores and the clock from what `/_sandbox/save` wrote; zero the counters."""
    state = _state(request)
    if not state.options.data_dir:
        return _error("the sandbox was started without --data-dir", 409)
    if not load_state(state):
        return _error("nothing saved yet: POST /_sandbox/save first", 409)
    state.reset_counters()
    return _json({"ok": True, "path": state.data_loaded_from, "now": state.clock.now().isoformat()})


async def breakpoint_(request: Request) -> Response:
    """GET this API's breakpoint; POST arms it (see ``oromc_sandbox.core.breakpoints``); DELETE
    releases what it holds and disarms it."""
    state = _state(request)
    api = request.app.state.api
    if request.method == "POST":
        try:
            new = Breakpoint.from_json(await _body(request))
            FaultSettings(routes=new.routes, methods=new.methods).validate(
                api, request.app.state.known_routes
            )
        except (ValueError, TypeError) as exc:
            return _error(str(exc))
        state.breakpoints[api].release()
        state.breakpoints[api] = new
    elif request.method == "DELETE":
        old = state.breakpoints[api]
        old.release()
        state.breakpoints[api] = Breakpoint()
        return _json({**old.to_json(), "armed": False})
    return _json(state.breakpoints[api].to_json())


def control_routes(api: str) -> list[Route]:
    """The control routes mounted on ``api``'s server (most on both)."""
    only_oro = [Route("/_sandbox/oro/tokens/revoke", revoke_tokens, methods=["POST"])]
    return [
        *(only_oro if api == "oro" else []),
        Route("/_sandbox/health", health, methods=["GET"]),
        Route("/_sandbox/stats", stats, methods=["GET"]),
        Route("/_sandbox/stats/reset", reset_stats, methods=["POST"]),
        Route("/_sandbox/reset", reset, methods=["POST"]),
        Route("/_sandbox/clock", clock, methods=["GET", "POST"]),
        Route("/_sandbox/faults", faults, methods=["GET", "POST"]),
        Route("/_sandbox/config", config, methods=["GET", "POST"]),
        Route("/_sandbox/save", save, methods=["POST"]),
        Route("/_sandbox/load", load, methods=["POST"]),
        Route("/_sandbox/breakpoint", breakpoint_, methods=["GET", "POST", "DELETE"]),
    ]
