"""`/_sandbox/...` control and introspection routes (not part of the emulated APIs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from oromc_sandbox.core.state import CONSENT_SOURCES, SWITCHES, SandboxState


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
    """Request counts per route and status; peak/current simultaneous connections per key."""
    state = _state(request)
    return _json(state.counters[request.app.state.api].to_json())


async def reset_stats(request: Request) -> Response:
    """Zero the counters of both APIs (data untouched)."""
    _state(request).reset_counters()
    return _json({"ok": True})


async def reset(request: Request) -> Response:
    """Re-seed both stores (optionally with a new ``seed``/``customers``) and zero counters."""
    from oromc_sandbox.core.stores import seed_stores

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


async def faults(request: Request) -> Response:
    """GET/POST this API's fault injection: rate, kinds, seed, slow_seconds."""
    state = _state(request)
    api = request.app.state.api
    settings = state.faults[api]
    if request.method == "POST":
        try:
            body = await _body(request)
            new = type(settings)(
                rate=float(body.get("rate", settings.rate)),
                kinds=list(body.get("kinds", settings.kinds)),
                seed=int(body.get("seed", settings.seed)),
                slow_seconds=float(body.get("slow_seconds", settings.slow_seconds)),
            )
            new.validate()
        except (ValueError, TypeError) as exc:
            return _error(str(exc))
        state.faults[api] = new
        for mw in request.app.state.middlewares:
            mw.reseed_faults()
    current = state.faults[api]
    return _json(
        {
            "rate": current.rate,
            "kinds": current.kinds,
            "seed": current.seed,
            "slow_seconds": current.slow_seconds,
        }
    )


async def config(request: Request) -> Response:
    """GET/POST the live switches (customeruser_updatedat_filter, tagging, shoppinglists, consent_source, ...)."""
    state = _state(request)
    if request.method == "POST":
        try:
            body = await _body(request)
        except ValueError as exc:
            return _error(str(exc))
        unknown = sorted(set(body) - set(SWITCHES) - {"latency", "max_connections"})
        if unknown:
            return _error(f"unknown switches {unknown}; known: {', '.join(SWITCHES)}")
        if "consent_source" in body and body["consent_source"] not in CONSENT_SOURCES:
            return _error(f"consent_source must be one of {', '.join(CONSENT_SOURCES)}")
        for name, value in body.items():
            current = getattr(state.options, name)
            setattr(state.options, name, type(current)(value))
    return _json(
        {name: getattr(state.options, name) for name in (*SWITCHES, "latency", "max_connections")}
    )


async def save(request: Request) -> Response:
    """Persist both stores to ``--data-dir`` now."""
    from oromc_sandbox.core.stores import save_state

    path = save_state(_state(request))
    if path is None:
        return _error("the sandbox was started without --data-dir", 409)
    return _json({"ok": True, "path": str(path)})


def control_routes() -> list[Route]:
    """The control routes mounted on both servers."""
    return [
        Route("/_sandbox/health", health, methods=["GET"]),
        Route("/_sandbox/stats", stats, methods=["GET"]),
        Route("/_sandbox/stats/reset", reset_stats, methods=["POST"]),
        Route("/_sandbox/reset", reset, methods=["POST"]),
        Route("/_sandbox/clock", clock, methods=["GET", "POST"]),
        Route("/_sandbox/faults", faults, methods=["GET", "POST"]),
        Route("/_sandbox/config", config, methods=["GET", "POST"]),
        Route("/_sandbox/save", save, methods=["POST"]),
    ]
