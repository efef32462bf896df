"""ASGI middleware shared by both APIs: request ids, counting, connection limit, faults, latency.

Pure ASGI (no BaseHTTPMiddleware) so it adds little per request and can break connections.
"""

from __future__ import annotations

import asyncio
import base64
import random
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from email.utils import formatdate
from typing import Any

import orjson

from oromc_sandbox.core.state import SandboxState

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CONTROL_PREFIX = "/_sandbox/"

HTML_PAGES = {
    502: b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>openresty</center>\r\n</body>\r\n</html>\r\n",
    503: b"<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n<hr><center>openresty</center>\r\n</body>\r\n</html>\r\n",
}


class InjectedResetError(ConnectionResetError):
    """Raised after a partial response so the server drops the connection (a simulated reset)."""


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def connection_key(scope: Scope, api: str) -> str:
    """The identity whose simultaneous connections are counted.

    Mailchimp: the API key (Basic password, or a Bearer/OAuth token), shown masked.
    Oro: the bearer token's last characters (or ``anonymous``).
    """
    auth = _header(scope, b"authorization") or ""
    scheme, _, value = auth.partition(" ")
    secret = ""
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=False).decode("utf-8", "replace")
        except (ValueError, UnicodeDecodeError):
            decoded = ""
        secret = decoded.partition(":")[2]
    elif scheme.lower() in {"bearer", "oauth"}:
        secret = value.strip()
    if not secret:
        return "anonymous"
    if api == "mailchimp" and "-" in secret:
        key, _, dc = secret.rpartition("-")
        return f"...{key[-4:]}-{dc}"
    return f"...{secret[-6:]}"


class SandboxMiddleware:
    """Wraps one API's Starlette app."""

    def __init__(
        self,
        app: ASGIApp,
        state: SandboxState,
        api: str,
        latency_profile: dict[str, tuple[float, float]],
    ) -> None:
        self.app = app
        self.state = state
        self.api = api
        self.latency_profile = latency_profile
        self._rng = random.Random(state.faults[api].seed)

    def reseed_faults(self) -> None:
        """Restart the deterministic fault sequence (after `/_sandbox/faults` changes)."""
        self._rng = random.Random(self.state.faults[self.api].seed)

    def _pick_fault(self) -> str | None:
        faults = self.state.faults[self.api]
        if faults.rate <= 0:
            return None
        roll = self._rng.random()
        kind = self._rng.choice(faults.kinds)
        return kind if roll < faults.rate else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        counters = self.state.counters[self.api]
        request_id = str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id
        key = connection_key(scope, self.api)
        counters.in_flight[key] += 1
        current = counters.in_flight[key]
        counters.peak[key] = max(counters.peak[key], current)
        status_holder: dict[str, Any] = {"status": 0}
        try:
            if self.api == "mailchimp" and current > self.state.options.max_connections:
                counters.over_limit[key] += 1
                await self._too_many_connections(scope, send, request_id, status_holder)
                return
            fault = self._pick_fault()
            if fault is not None:
                counters.faults[fault] += 1
                await self._inject(fault, scope, receive, send, request_id, status_holder)
                return
            await self._serve(scope, receive, send, request_id, status_holder)
        finally:
            counters.in_flight[key] -= 1
            counters.requests[self._route_label(scope)][
                str(status_holder["status"] or "reset")
            ] += 1

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        request_id: str,
        status_holder: dict[str, Any],
    ) -> None:
        started = time.perf_counter()
        buffered: list[Message] = []
        realistic = self.state.options.latency == "realistic"

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                headers = list(message.get("headers", []))
                if not any(k == b"x-request-id" for k, _ in headers):
                    headers.append((b"x-request-id", request_id.encode()))
                headers.append((b"date", self._date()))
                message["headers"] = headers
            if not realistic:
                await send(message)
                return
            buffered.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                planned = self._latency_seconds(scope)
                self.state.counters[self.api].latency_ms[self._route_label(scope)] += round(
                    planned * 1000
                )
                delay = planned - (time.perf_counter() - started)
                if delay > 0:
                    await asyncio.sleep(delay)
                for item in buffered:
                    await send(item)
                buffered.clear()

        await self.app(scope, receive, capture)

    def _date(self) -> bytes:
        """The HTTP ``Date`` header from the sandbox clock (servers report their own time)."""
        return formatdate(self.state.clock.now().timestamp(), usegmt=True).encode()

    def _route_label(self, scope: Scope) -> str:
        """``METHOD /route/template`` of the request (matched now if routing did not run)."""
        route = scope.get("route")
        if route is None:
            for candidate in getattr(getattr(self.app, "router", None), "routes", []):
                match, _ = candidate.matches(scope)
                if match.name == "FULL":
                    route = candidate
                    break
        template = getattr(route, "path", None) or "(unmatched)"
        return f"{scope['method']} {template}"

    def _latency_seconds(self, scope: Scope) -> float:
        label = self._route_label(scope)
        base_ms, per_item_ms = self.latency_profile.get(
            label, self.latency_profile.get("*", (100.0, 0.0))
        )
        items = int(scope.get("state", {}).get("items", 0) or 0)
        return (base_ms + per_item_ms * items) / 1000.0

    async def _too_many_connections(
        self, scope: Scope, send: Send, request_id: str, status_holder: dict[str, Any]
    ) -> None:
        limit = self.state.options.max_connections
        body = {
            "type": "https://mailchimp.com/developer/marketing/docs/errors/",
            "title": "Too Many Requests",
            "status": 429,
            "detail": f"You have exceeded the limit of {limit} simultaneous connections.",
            "instance": request_id,
        }
        await self._send_simple(
            send, 429, orjson.dumps(body), b"application/problem+json; charset=utf-8", request_id
        )
        status_holder["status"] = 429

    async def _inject(
        self,
        fault: str,
        scope: Scope,
        receive: Receive,
        send: Send,
        request_id: str,
        status_holder: dict[str, Any],
    ) -> None:
        if fault == "slow":
            await asyncio.sleep(self.state.faults[self.api].slow_seconds)
            await self._serve(scope, receive, send, request_id, status_holder)
            return
        if fault == "reset":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", b"4096"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b'{"partial":', "more_body": True})
            status_holder["status"] = 0
            raise InjectedResetError("sandbox: injected connection reset")
        status = int(fault)
        status_holder["status"] = status
        if status in HTML_PAGES:
            await self._send_simple(send, status, HTML_PAGES[status], b"text/html", request_id)
            return
        if status == 403:  # body-less 403, as Mailchimp's edge sends under load
            await self._send_simple(send, 403, b"", b"text/html", request_id)
            return
        if self.api == "mailchimp":
            detail = {
                429: "You have exceeded the limit of 10 simultaneous connections.",
                500: "An unexpected internal error has occurred. Please contact Support for more information.",
            }[status]
            title = {429: "Too Many Requests", 500: "Internal Server Error"}[status]
            body = orjson.dumps(
                {
                    "type": "https://mailchimp.com/developer/marketing/docs/errors/",
                    "title": title,
                    "status": status,
                    "detail": detail,
                    "instance": request_id,
                }
            )
            await self._send_simple(
                send, status, body, b"application/problem+json; charset=utf-8", request_id
            )
            return
        # Oro: a 429 comes from hosting infrastructure (Oro has no rate limiter) with Retry-After;
        # a 500 is Oro's JSON:API error document.
        if status == 429:
            await self._send_simple(
                send, 429, b"Too Many Requests", b"text/plain", request_id, [(b"retry-after", b"1")]
            )
            return
        body = orjson.dumps(
            {
                "errors": [
                    {
                        "status": "500",
                        "title": "runtime exception",
                        "detail": "Internal Server Error",
                    }
                ]
            }
        )
        await self._send_simple(send, 500, body, b"application/vnd.api+json", request_id)

    async def _send_simple(
        self,
        send: Send,
        status: int,
        body: bytes,
        content_type: bytes,
        request_id: str,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        headers = [
            (b"date", self._date()),
            (b"content-type", content_type),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", request_id.encode()),
            *(extra or []),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
