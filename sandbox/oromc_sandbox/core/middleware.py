"""ASGI middleware shared by both APIs: request ids, counting, connection limit, faults, capacity,
latency.

Pure ASGI (no BaseHTTPMiddleware) so it adds little per request and can break connections.

Order of a request: connection counting -> Mailchimp's connection limit -> fault decision -> faults
answered in front of the application (429/403/502/503 pages) -> a worker slot (Oro's capacity; 503
when the queue is full) -> faults inside the application (500, reset, slow, lost response, token
revocation) or the real handler -> simulated latency.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

import orjson

from oromc_sandbox.core.apis import CONTROL_PREFIX
from oromc_sandbox.core.capacity import WorkerPool
from oromc_sandbox.core.state import EDGE_FAULTS, CapacityCounters, SandboxState

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _edge_page(status: int, reason: str) -> bytes:
    """The HTML error page of an nginx/openresty edge (what a proxy or WAF answers)."""
    title = f"{status} {reason}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>openresty</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()


HTML_PAGES = {
    403: _edge_page(403, "Forbidden"),
    429: _edge_page(429, "Too Many Requests"),
    502: _edge_page(502, "Bad Gateway"),
    503: _edge_page(503, "Service Temporarily Unavailable"),
}


_TOO_MANY = "You have exceeded the limit of 10 simultaneous connections."
_INTERNAL = (
    "An unexpected internal error has occurred. Please contact Support for more information."
)


def _problem(status: int, title: str, detail: str, request_id: str) -> bytes:
    """A Mailchimp problem document."""
    return orjson.dumps(
        {
            "type": "https://mailchimp.com/developer/marketing/docs/errors/",
            "title": title,
            "status": status,
            "detail": detail,
            "instance": request_id,
        }
    )


async def _discard_send(message: Message) -> None:
    return None


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


@dataclass
class _Exchange:
    """One request on its way through the middleware: the ASGI triple, its id, and the status it is
    counted under (0 until answered; "lost" or "held" when no answer is sent)."""

    scope: Scope
    receive: Receive
    send: Send
    request_id: str
    status: int | str = 0


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
        self.workers = WorkerPool(self._capacity_counters)
        self._fault_sequence: Counter[str] = Counter()  # eligible requests seen per route

    def _capacity_counters(self) -> CapacityCounters:
        return self.state.counters[self.api].capacity

    def reseed_faults(self) -> None:
        """Restart the deterministic fault sequences (after `/_sandbox/faults` changes)."""
        self._fault_sequence.clear()

    def capacity_json(self) -> dict[str, Any]:
        """Worker slots, queue and their statistics (Oro's PHP-FPM pool) for `/_sandbox/stats`."""
        options = self.state.options
        return self._capacity_counters().to_json(
            options.oro_workers, options.oro_backlog, self.workers.busy, self.workers.queued
        )

    def _pick_fault(self, label: str) -> str | None:
        """The fault for this request, from (seed, route, n-th eligible request of the route)."""
        faults = self.state.faults[self.api]
        if faults.rate <= 0 or not faults.applies_to(label):
            return None
        n = self._fault_sequence[label]
        self._fault_sequence[label] = n + 1
        digest = hashlib.blake2b(f"{faults.seed}\0{label}\0{n}".encode(), digest_size=16).digest()
        roll = int.from_bytes(digest[:8], "big") / 2.0**64
        if roll >= faults.rate:
            return None
        return faults.kinds[int.from_bytes(digest[8:], "big") % len(faults.kinds)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        counters = self.state.counters[self.api]
        ex = _Exchange(scope, receive, send, str(uuid.uuid4()))
        scope.setdefault("state", {})["request_id"] = ex.request_id
        key = connection_key(scope, self.api)
        counters.in_flight[key] += 1
        current = counters.in_flight[key]
        counters.peak[key] = max(counters.peak[key], current)
        breakpoint_ = self.state.breakpoints[self.api]
        # the route is matched up front only when faults or a breakpoint need it (the router sets it
        # otherwise)
        needs_label = self.state.faults[self.api].rate > 0 or breakpoint_.at > 0
        label = self._route_label(scope) if needs_label else ""
        try:
            held = breakpoint_.decide(label) if label else None
            if held is not None:
                await self._held(held, ex)
                return
            if self.api == "mailchimp" and current > self.state.options.max_connections:
                counters.over_limit[key] += 1
                await self._too_many_connections(ex)
                return
            fault = self._pick_fault(label) if label else None
            if fault is not None:
                counters.faults[fault] += 1
            if fault in EDGE_FAULTS:
                await self._edge_fault(str(fault), ex)
                return
            await self._in_worker(fault, label, ex)
        finally:
            counters.in_flight[key] -= 1
            self.state.counters[self.api].requests[label or self._route_label(scope)][
                str(ex.status or "reset")
            ] += 1

    async def _in_worker(self, fault: str | None, label: str, ex: _Exchange) -> None:
        """Run the request in a worker slot (Oro's capacity; unlimited on Mailchimp)."""
        options = self.state.options
        limited = self.api == "oro"
        workers = options.oro_workers if limited else 0
        if not await self.workers.acquire(workers, options.oro_backlog):
            ex.status = 503  # the queue is full: the edge gives up on the pool
            await self._send_simple(ex, 503, HTML_PAGES[503], b"text/html")
            return
        started = time.perf_counter()
        try:
            if fault is None:
                await self._serve(ex)
            else:
                await self._app_fault(fault, label, ex)
        finally:
            self._capacity_counters().busy_ms_total += (time.perf_counter() - started) * 1000
            self.workers.release(options.oro_workers if limited else 0)

    async def _serve(self, ex: _Exchange, send: Send | None = None) -> None:
        """The real handler, answering through ``send`` (default: the client's)."""
        send = send or ex.send
        scope = ex.scope
        started = time.perf_counter()
        buffered: list[Message] = []
        realistic = self.state.options.latency == "realistic"

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                ex.status = message["status"]
                headers = list(message.get("headers", []))
                if not any(k == b"x-request-id" for k, _ in headers):
                    headers.append((b"x-request-id", ex.request_id.encode()))
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

        await self.app(scope, ex.receive, capture)

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

    async def _too_many_connections(self, ex: _Exchange) -> None:
        limit = self.state.options.max_connections
        detail = f"You have exceeded the limit of {limit} simultaneous connections."
        body = _problem(429, "Too Many Requests", detail, ex.request_id)
        await self._send_simple(ex, 429, body, b"application/problem+json; charset=utf-8")
        ex.status = 429

    async def _edge_fault(self, fault: str, ex: _Exchange) -> None:
        """A fault answered in front of the application: 429/403 (API-shaped, empty or HTML), 502/503."""
        status_text, _, shape = fault.partition("_")
        status = int(status_text)
        ex.status = status
        if shape == "html" or status in {502, 503}:
            await self._send_simple(ex, status, HTML_PAGES[status], b"text/html")
            return
        if status == 403 or shape == "empty":  # body-less, as Mailchimp's edge sends under load
            await self._send_simple(ex, status, b"", b"text/html")
            return
        if self.api == "mailchimp":  # 429: Mailchimp's own problem document
            await self._send_simple(
                ex,
                429,
                _problem(429, "Too Many Requests", _TOO_MANY, ex.request_id),
                b"application/problem+json; charset=utf-8",
            )
            return
        # Oro has no rate limiter: a 429 comes from hosting infrastructure, with Retry-After.
        await self._send_simple(ex, 429, b"Too Many Requests", b"text/plain", [(b"retry-after", b"1")])

    async def _app_fault(self, fault: str, label: str, ex: _Exchange) -> None:
        """A fault inside the application (the request holds a worker)."""
        if fault == "slow":
            await asyncio.sleep(self.state.faults[self.api].slow_seconds)
            await self._serve(ex)
            return
        if fault == "revoke_tokens":
            self.state.oro.revoke_tokens()
            await self._serve(ex)
            return
        if fault == "lost_response":
            await self._lose_response(label, ex)
            return
        if fault == "reset":
            await self._partial_response_then_reset(ex, ex.send)
        # 500
        ex.status = 500
        if self.api == "mailchimp":
            body = _problem(500, "Internal Server Error", _INTERNAL, ex.request_id)
            await self._send_simple(ex, 500, body, b"application/problem+json; charset=utf-8")
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
        await self._send_simple(ex, 500, body, b"application/vnd.api+json")

    async def _partial_response_then_reset(self, ex: _Exchange, send: Send) -> None:
        """Send the start of a response through ``send``, then drop the connection (raises)."""
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
        ex.status = 0
        raise InjectedResetError("sandbox: injected connection reset")

    async def _lose_response(self, label: str, ex: _Exchange) -> None:
        """Apply the request, then close the connection without sending a byte of the answer."""
        await self._serve(ex, _discard_send)
        applied = str(ex.status)
        self.state.counters[self.api].lost_responses[label][applied] += 1
        await self._close_without_answer(ex)

    async def _held(self, phase: str, ex: _Exchange) -> None:
        """A request at or after the breakpoint: applied first (phase ``after``) or not at all, then
        held until `DELETE /_sandbox/breakpoint`, then answered by a closed connection."""
        if phase == "after":
            await self._serve(ex, _discard_send)
        await self.state.breakpoints[self.api].hold()
        await self._close_without_answer(ex)
        ex.status = "held"

    async def _close_without_answer(self, ex: _Exchange) -> None:
        """Close the request's connection without sending a byte of an answer."""
        ex.status = "lost"
        cycle = getattr(ex.receive, "__self__", None)  # uvicorn's per-request cycle
        transport = getattr(cycle, "transport", None)
        if transport is None:  # pragma: no cover - not under uvicorn: a reset is the closest
            await self._partial_response_then_reset(ex, _discard_send)
            return
        transport.close()
        for _ in range(100):  # let the server notice, so it does not answer a 500 for us
            if getattr(cycle, "disconnected", True):
                break
            await asyncio.sleep(0.005)

    async def _send_simple(
        self,
        ex: _Exchange,
        status: int,
        body: bytes,
        content_type: bytes,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        headers = [
            (b"date", self._date()),
            (b"content-type", content_type),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", ex.request_id.encode()),
            *(extra or []),
        ]
        await ex.send({"type": "http.response.start", "status": status, "headers": headers})
        await ex.send({"type": "http.response.body", "body": body})
