"""Options, clock and shared state of a running sandbox."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any

FAULT_KINDS = ("429", "500", "502", "503", "403", "reset", "slow")
SWITCHES = (
    "customeruser_updatedat_filter",
    "tagging",
    "shoppinglists",
    "order_campaign_relation",
    "consent_source",
    "token_ttl",
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
    host: str = "127.0.0.1"
    oro_port: int = 8801
    mailchimp_port: int = 8802
    token_ttl: int = 3600
    customeruser_updatedat_filter: bool = False
    tagging: bool = True
    shoppinglists: bool = False
    order_campaign_relation: bool = False
    consent_source: str = "none"
    latency: str = "none"
    fault_rate: float = 0.0
    fault_kinds: list[str] = field(default_factory=lambda: ["429", "500", "503", "reset"])
    fault_seed: int = 7
    slow_seconds: float = 30.0
    max_connections: int = 10
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
    Time still flows between calls, so records written one after another get increasing stamps.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._base = (start or datetime.now(UTC)).astimezone(UTC)
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        """Current sandbox time (tz-aware UTC)."""
        with self._lock:
            return self._base + timedelta(seconds=time.monotonic() - self._t0)

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
    """Fault injection: each API request fails with probability ``rate`` using one of ``kinds``."""

    rate: float = 0.0
    kinds: list[str] = field(default_factory=lambda: ["429", "500", "503", "reset"])
    seed: int = 7
    slow_seconds: float = 30.0

    def validate(self) -> None:
        """Raise ValueError on an unknown kind or a rate outside [0, 1]."""
        if not 0.0 <= self.rate <= 1.0:
            msg = "rate must be between 0 and 1"
            raise ValueError(msg)
        unknown = [k for k in self.kinds if k not in FAULT_KINDS]
        if unknown or not self.kinds:
            msg = f"unknown fault kinds {unknown}; known: {', '.join(FAULT_KINDS)}"
            raise ValueError(msg)


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
        self.latency_ms: Counter[str] = Counter()

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
            "latency_ms_by_route": dict(self.latency_ms),
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

    def reset_counters(self) -> None:
        """Zero request counts and connection peaks of both APIs."""
        self.counters = {"oro": ApiCounters(), "mailchimp": ApiCounters()}
