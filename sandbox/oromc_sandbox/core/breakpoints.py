"""Breakpoints: freeze a client at its N-th call of a route, so a test can kill it at an exact point.

``POST /_sandbox/breakpoint {"at": 12, "routes": ["POST /3.0/lists/{list_id}"], "methods": null,
"phase": "before"}`` arms one API's breakpoint: its 12th matching request is held (``before``: not
applied; ``after``: applied, answer held), and so is every later request to that API. ``"writes":
true`` counts only writes (POST, PUT, PATCH, DELETE; not the OAuth token endpoint, as in the stats). ``GET`` tells
whether it was hit; ``DELETE`` releases the held requests by closing their connections without an
answer (the client was killed meanwhile: what it sent before the breakpoint is applied, what it sent
after is not) and disarms it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from oromc_sandbox.core.routes import normalise_methods, normalise_routes, route_selected

PHASES = ("before", "after")
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


@dataclass
class Breakpoint:
    """One API's breakpoint (``at`` 0 = disarmed)."""

    at: int = 0
    phase: str = "before"
    routes: list[str] | None = None
    methods: list[str] | None = None
    writes: bool = False
    seen: int = 0
    held: int = 0
    hit: bool = False
    released: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Breakpoint:
        """Parse and check a `/_sandbox/breakpoint` body (raises ValueError)."""
        at = body.get("at")
        if isinstance(at, bool) or not isinstance(at, int) or at < 1:
            msg = "at must be an integer >= 1 (the n-th matching request is held)"
            raise ValueError(msg)
        phase = body.get("phase", "before")
        if phase not in PHASES:
            msg = f"phase must be one of {', '.join(PHASES)}"
            raise ValueError(msg)
        writes = body.get("writes", False)
        if not isinstance(writes, bool):
            msg = "writes must be true or false"
            raise ValueError(msg)
        # the same route/method syntax and normalisation as fault injection
        return cls(
            at=at,
            phase=phase,
            routes=normalise_routes(body.get("routes")),
            methods=normalise_methods(body.get("methods")),
            writes=writes,
        )

    def matches(self, label: str) -> bool:
        """Whether a request labelled ``"METHOD /template"`` counts towards ``at``."""
        method, _, path = label.partition(" ")
        if self.writes and (method not in WRITE_METHODS or path.endswith("/oauth2-token")):
            return False
        return route_selected(label, self.routes, self.methods)

    def decide(self, label: str) -> str | None:
        """For a new request: None (serve it), ``"before"`` or ``"after"`` (hold it)."""
        if self.at <= 0:
            return None
        if self.hit:
            return "before"  # everything after the breakpoint waits too
        if not self.matches(label):
            return None
        self.seen += 1
        if self.seen < self.at:
            return None
        self.hit = True
        return self.phase

    async def hold(self) -> None:
        """Wait until released."""
        self.held += 1
        await self.released.wait()

    def release(self) -> None:
        """Let every held request go (they are answered by a closed connection)."""
        self.released.set()

    def to_json(self) -> dict[str, Any]:
        """What `GET /_sandbox/breakpoint` shows."""
        return {
            "armed": self.at > 0,
            "at": self.at,
            "phase": self.phase,
            "routes": self.routes,
            "methods": self.methods,
            "writes": self.writes,
            "seen": self.seen,
            "hit": self.hit,
            "held": self.held,
        }
