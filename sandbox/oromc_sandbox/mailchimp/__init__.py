"""Mailchimp Marketing API v3 emulation (audience side + engagement side).

Core-facing API: `create_store`, `create_store_from_dump`, `routes`, `LATENCY_PROFILE`, `sandbox_info`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.routing import BaseRoute

from .store import MailchimpStore, apply_oro_opt_outs, seed_audience

seed_engagement: Callable[..., Any] | None
engagement_routes: Callable[..., list[BaseRoute]] | None
engagement_latency: dict[str, tuple[float, float]]
try:  # the engagement half (campaigns, reports, e-commerce) is built in parallel
    from .engagement import engagement_routes, seed_engagement
except ImportError:  # pragma: no cover - only before the engagement part exists
    seed_engagement = None
    engagement_routes = None
try:
    from .engagement import LATENCY_PROFILE as engagement_latency  # noqa: N811
except ImportError:  # pragma: no cover
    engagement_latency = {}

__all__ = [
    "LATENCY_PROFILE",
    "MailchimpStore",
    "create_store",
    "create_store_from_dump",
    "routes",
    "sandbox_info",
]


def create_store(options: Any, clock: Any, oro_store: Any = None) -> MailchimpStore:
    """Seed a Mailchimp account deterministically from `options.seed` (members from `oro_store`)."""
    store = MailchimpStore(options, clock)
    store.oro_source = oro_store  # the e-commerce seed mirrors Oro's orders (ecommerce.OroMirror)
    seed_audience(store, options, clock, oro_store)
    if seed_engagement is not None:
        seed_engagement(store, options, clock)
    apply_oro_opt_outs(store, clock)
    return store


def create_store_from_dump(
    data: dict[str, Any], options: Any, clock: Any, oro_store: Any = None
) -> MailchimpStore:
    """Rebuild a store saved with `MailchimpStore.dump()`."""
    store = MailchimpStore.load(data, options, clock)
    try:
        from .engagement import load_engagement
    except ImportError:  # pragma: no cover
        return store
    load_engagement(store, data.get("engagement"), options, clock)
    return store


def routes() -> list[BaseRoute]:
    """All Mailchimp routes (absolute paths on the Mailchimp server)."""
    from .audience import audience_routes, fallback_routes
    from .batches import batch_routes

    out: list[BaseRoute] = [*audience_routes(), *batch_routes()]
    if engagement_routes is not None:
        out.extend(engagement_routes())
    out.extend(fallback_routes())  # problem+json 404/405 for anything else under /3.0
    return out


def exception_handlers() -> dict[Any, Callable[..., Any]]:
    """Starlette exception handlers of the Mailchimp app: its own 404/405 become problem+json."""
    from starlette.exceptions import HTTPException

    from .audience import http_exception_problem

    return {HTTPException: http_exception_problem}


def sandbox_info(store: MailchimpStore) -> dict[str, Any]:
    """Credentials for `sandbox info --json`."""
    return {
        "api_key": store.api_key,
        "dc": store.dc,
        "list_id": store.default_list_id(),
        "oauth_token": store.oauth_token,
    }


# "METHOD /route/template" -> (base_ms, per_item_ms). Mailchimp publishes no latency figures; these
# are estimates from typical observed API timings (simple GETs ~150-250 ms from Europe/US, member
# pages grow with page size, writes slower, batch subscribe ~ per member cost). See README.
LATENCY_PROFILE: dict[str, tuple[float, float]] = {
    "*": (180.0, 0.0),
    "GET /3.0/ping": (90.0, 0.0),
    "GET /3.0/": (160.0, 0.0),
    "GET /3.0/lists": (200.0, 2.0),
    "GET /3.0/lists/{list_id}": (180.0, 0.0),
    "GET /3.0/lists/{list_id}/members": (220.0, 0.6),
    "GET /3.0/lists/{list_id}/members/{subscriber_hash}": (150.0, 0.0),
    "POST /3.0/lists/{list_id}/members": (300.0, 0.0),
    "PUT /3.0/lists/{list_id}/members/{subscriber_hash}": (300.0, 0.0),
    "PATCH /3.0/lists/{list_id}/members/{subscriber_hash}": (280.0, 0.0),
    "DELETE /3.0/lists/{list_id}/members/{subscriber_hash}": (250.0, 0.0),
    "POST /3.0/lists/{list_id}/members/{subscriber_hash}/tags": (250.0, 5.0),
    "POST /3.0/lists/{list_id}": (400.0, 8.0),
    "GET /3.0/lists/{list_id}/merge-fields": (150.0, 0.5),
    "GET /3.0/lists/{list_id}/segments": (180.0, 1.0),
    "POST /3.0/lists/{list_id}/segments/{segment_id}": (300.0, 3.0),
    "POST /3.0/batches": (250.0, 0.2),
    "GET /3.0/batches/{batch_id}": (120.0, 0.0),
}
LATENCY_PROFILE.update(engagement_latency)
