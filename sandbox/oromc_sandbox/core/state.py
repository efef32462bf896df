"""Options, clock and shared state of a running sandbox."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from oromc_sandbox.core.breakpoints import Breakpoint
from oromc_sandbox.core.routes import (
    HTTP_METHODS,
    normalise_methods,
    normalise_routes,
    route_known,
    route_selected,
)

FAULT_KINDS = (
    "429",
    "429_empty",
    "429_html",
    "403",
    "403_html",
    "500",
    "502",
    "503",
    "reset",
    "slow",
    "lost_response",
    "revoke_tokens",
)
"""Every fault kind (the README's sandbox section says what each one does)."""
EDGE_FAULTS = frozenset({"429", "429_empty", "429_html", "403", "403_html", "502", "503"})
"""Kinds answered in front of the application (a proxy, WAF or load balancer): no worker is used."""
API_FAULTS = {"revoke_tokens": "oro"}
"""Kinds that exist on one API only."""
LATENCY_MODES = ("none", "realistic")
SWITCHES = (
    "customeruser_updatedat_filter",
    "tagging",
    "shoppinglists",
    "order_campaign_relation",
    "campaign_statistics_fields",
    "order_external_status_management",
    "marketingactivities_batch",
    "batch_sync_wait_timeout",
    "batch_queue_delay",
    "consent_source",
    "token_ttl",
    "latency",
    "max_connections",
    "oro_workers",
    "oro_backlog",
)
#: Where the Oro sandbox keeps customer users' marketing consent (see oro/README.md, "Consent"):
#: none = stock Oro; customer_user_field = a boolean custom field ``marketing_consent`` added in
#: Entity Management; consent_acceptances = OroConsentBundle's acceptances exposed by an api.yml.
CONSENT_SOURCES = ("none", "customer_user_field", "consent_acceptances")


@dataclass
class SandboxOptions:
    """Every `sandbox serve` flag. The switches can also change at run time (`/_sandbox/config`)."""

    seed: int = 42
    customers: int = 200
    max_audience_members: int = 250_000
    host: str = "127.0.0.1"
    oro_port: int = 8801
    mailchimp_port: int = 8802
    token_ttl: int = 3600
    customeruser_updatedat_filter: bool = False
    tagging: bool = True
    shoppinglists: bool = False
    order_campaign_relation: bool = False
    campaign_statistics_fields: bool = False
    order_external_status_management: bool = False
    marketingactivities_batch: bool = False
    batch_sync_wait_timeout: float = 25.0
    batch_queue_delay: float = 0.05
    consent_source: str = "none"
    latency: str = "none"
    fault_rate: float = 0.0
    fault_kinds: list[str] = field(default_factory=lambda: ["429", "500", "503", "reset"])
    fault_seed: int = 7
    slow_seconds: float = 30.0
    fault_routes: list[str] | None = None
    fault_methods: list[str] | None = None
    max_connections: int = 10
    oro_workers: int = 0
    oro_backlog: int = 128
    epoch: datetime | None = None
    data_dir: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    mailchimp_dc: str = "us21"

    def to_json(self) -> dict[str, Any]:
        """JSON-able view (datetimes as ISO strings)."""
        data = asdict(self)
        data["epoch"] = self.epoch.isoformat() if self.epoch else None
        return data

    @classmethod
    def field_names(cls) -> set[str]:
        """Names of all options."""
        return {f.name for f in fields(cls)}


class Clock:
    """The sandbox clock: wall time moving forward from ``start``, plus an offset.

    ``advance`` moves it forward (never backwards via advance); ``set`` jumps to an instant.
    Time still flows between calls, so records written one after another get increasing stamps;
    ``paused()`` stops it for a block (seeding), so the same seed and start give the same data
    however long seeding takes.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._base = (start or datetime.now(UTC)).astimezone(UTC)
        self._t0 = time.monotonic()
        self._paused_at: datetime | None = None

    def now(self) -> datetime:
        """Current sandbox time (tz-aware UTC)."""
        with self._lock:
            if self._paused_at is not None:
                return self._paused_at
            return self._base + timedelta(seconds=time.monotonic() - self._t0)

    @contextlib.contextmanager
    def paused(self) -> Iterator[datetime]:
        """Stop the clock for a block (it reads the same instant throughout), then let it run on
        from that instant."""
        when = self.now()
        with self._lock:
            self._paused_at = when
        try:
            yield when
        finally:
            with self._lock:
                self._paused_at = None
                self._base = when
                self._t0 = time.monotonic()

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward by ``seconds`` (>= 0) and return the new time."""
        if seconds < 0:
            msg = "advance_seconds must be >= 0"
            raise ValueError(msg)
        with self._lock:
            self._base += timedelta(seconds=seconds)
        return self.now()

    def set(self, when: datetime) -> datetime:
        """Jump to ``when`` (tz-aware)."""
        if when.tzinfo is None:
            msg = "clock time must carry a timezone"
            raise ValueError(msg)
        with self._lock:
            self._base = when.astimezone(UTC)
            self._t0 = time.monotonic()
        return self.now()


@dataclass
class FaultSettings:
    """Fault injection of one API.

    A request is eligible when its route (``"METHOD /template"``, e.g. ``"POST /3.0/lists/{list_id}"``,
    or just ``"/template"`` for every method) is in ``routes`` and its method in ``methods`` (``None``:
    no restriction). The n-th eligible request of a route fails with probability ``rate`` using one of
    ``kinds``; the choice is a hash of (``seed``, route, n), so each route's fault sequence is the same
    on every run whatever the other routes do.
    """

    rate: float = 0.0
    kinds: list[str] = field(default_factory=lambda: ["429", "500", "503", "reset"])
    seed: int = 7
    slow_seconds: float = 30.0
    routes: list[str] | None = None
    methods: list[str] | None = None

    def __post_init__(self) -> None:
        """Normalise routes to ``"METHOD /template"`` / ``"/template"`` and methods to upper case."""
        self.routes = normalise_routes(self.routes)
        self.methods = normalise_methods(self.methods)

    def validate(self, api: str, known_routes: dict[str, frozenset[str]] | None = None) -> None:
        """Raise ValueError on a bad rate, kind, method or route (``known_routes``: path -> methods)."""
        if not 0.0 <= self.rate <= 1.0:
            msg = "rate must be between 0 and 1"
            raise ValueError(msg)
        unknown = [k for k in self.kinds if k not in FAULT_KINDS]
        if unknown or not self.kinds:
            msg = f"unknown fault kinds {unknown}; known: {', '.join(FAULT_KINDS)}"
            raise ValueError(msg)
        foreign = [k for k in self.kinds if API_FAULTS.get(k, api) != api]
        if foreign:
            msg = f"fault kinds {foreign} do not exist on the {api} API"
            raise ValueError(msg)
        if self.slow_seconds < 0:
            msg = "slow_seconds must be >= 0"
            raise ValueError(msg)
        bad_methods = [m for m in self.methods or [] if m not in HTTP_METHODS]
        if bad_methods:
            msg = f"unknown methods {bad_methods}; known: {', '.join(HTTP_METHODS)}"
            raise ValueError(msg)
        if known_routes is None:
            return
        for route in self.routes or []:
            if not route_known(route, known_routes):
                msg = (
                    f"unknown {api} route {route!r}; give 'METHOD /template' or '/template' as "
                    "listed under 'requests' in /_sandbox/stats"
                )
                raise ValueError(msg)

    def applies_to(self, label: str) -> bool:
        """Whether a request labelled ``"METHOD /template"`` is eligible for faults."""
        return route_selected(label, self.routes, self.methods)

    def to_json(self) -> dict[str, Any]:
        """The settings as `/_sandbox/faults` shows them."""
        return {
            "rate": self.rate,
            "kinds": self.kinds,
            "seed": self.seed,
            "slow_seconds": self.slow_seconds,
            "routes": self.routes,
            "methods": self.methods,
        }


class ApiCounters:
    """Request counts per route and status, and simultaneous connections per key.

    ``writes`` counts POST/PUT/PATCH/DELETE requests except the OAuth token endpoint.
    """

    def __init__(self) -> None:
        self.requests: dict[str, Counter[str]] = defaultdict(Counter)
        self.in_flight: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.over_limit: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.lost_responses: dict[str, Counter[str]] = defaultdict(Counter)
        self.latency_ms: Counter[str] = Counter()
        self.capacity = CapacityCounters()

    def to_json(self) -> dict[str, Any]:
        """JSON view for `/_sandbox/stats`."""
        by_status: Counter[str] = Counter()
        for statuses in self.requests.values():
            by_status.update(statuses)
        return {
            "requests": {route: dict(c) for route, c in sorted(self.requests.items())},
            "total_requests": sum(by_status.values()),
            "by_status": dict(by_status),
            "writes": sum(
                sum(c.values())
                for route, c in self.requests.items()
                if route.split(" ", 1)[0] in {"POST", "PUT", "PATCH", "DELETE"}
                and not route.endswith("/oauth2-token")
            ),
            "connections": {
                "peak": dict(self.peak),
                "current": {k: v for k, v in self.in_flight.items() if v},
                "over_limit": dict(self.over_limit),
            },
            "faults_injected": dict(self.faults),
            "lost_responses": {route: dict(c) for route, c in sorted(self.lost_responses.items())},
            "latency_ms_by_route": dict(self.latency_ms),
        }


@dataclass
class CapacityCounters:
    """Worker slots of an API server (Oro's PHP-FPM pool): what is busy, queued, refused."""

    peak_busy: int = 0
    peak_queued: int = 0
    queued_requests: int = 0
    rejected: int = 0
    queue_wait_ms_total: float = 0.0
    queue_wait_ms_max: float = 0.0
    busy_ms_total: float = 0.0  # worker-slot time spent serving (capacity share = busy / (workers x wall))

    def to_json(self, workers: int, backlog: int, busy: int, queued: int) -> dict[str, Any]:
        """JSON view with the pool's settings and live gauges (``workers`` 0 = unlimited)."""
        return {
            "workers": workers,
            "backlog": backlog,
            "busy": busy,
            "queued": queued,
            "peak_busy": self.peak_busy,
            "peak_queued": self.peak_queued,
            "queued_requests": self.queued_requests,
            "rejected": self.rejected,
            "queue_wait_ms_total": round(self.queue_wait_ms_total, 1),
            "queue_wait_ms_max": round(self.queue_wait_ms_max, 1),
            "busy_ms_total": round(self.busy_ms_total, 1),
        }


@dataclass
class SandboxState:
    """Everything a running sandbox holds. Handlers reach it as ``request.app.state.sandbox``."""

    options: SandboxOptions
    clock: Clock
    oro: Any = None
    mailchimp: Any = None
    faults: dict[str, FaultSettings] = field(
        default_factory=lambda: {"oro": FaultSettings(), "mailchimp": FaultSettings()}
    )
    counters: dict[str, ApiCounters] = field(
        default_factory=lambda: {"oro": ApiCounters(), "mailchimp": ApiCounters()}
    )
    data_loaded_from: str | None = None
    #: per API, its breakpoint (disarmed until `/_sandbox/breakpoint`)
    breakpoints: dict[str, Breakpoint] = field(
        default_factory=lambda: {"oro": Breakpoint(), "mailchimp": Breakpoint()}
    )

    def reset_counters(self) -> None:
        """Zero request counts and connection peaks of both APIs."""
        self.counters = {"oro": ApiCounters(), "mailchimp": ApiCounters()}

