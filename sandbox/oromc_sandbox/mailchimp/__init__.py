"""Mailchimp Marketing API v3 emulation (audience side + engagement side).

Core-facing API: `create_store`, `create_store_from_dump`, `routes`, `LATENCY_PROFILE`, `sandbox_info`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .audience_seed import apply_oro_opt_outs, seed_audience
from .engagement import load_engagement
from .engagement_seed import seed_engagement
from .store import MailchimpStore
from .urls import routes

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
    store.oro_source = oro_store  # the e-commerce seed mirrors Oro's orders (ecommerce_seed.OroMirror)
    seed_audience(store, options, clock, oro_store)
    seed_engagement(store, options, clock)
    apply_oro_opt_outs(store, clock)
    return store


def create_store_from_dump(
    data: dict[str, Any], options: Any, clock: Any, oro_store: Any = None
) -> MailchimpStore:
    """Rebuild a store saved with `MailchimpStore.dump()`."""
    store = MailchimpStore.load(data, options, clock)
    load_engagement(store, data.get("engagement"), options, clock)
    return store


def exception_handlers() -> dict[Any, Callable[..., Any]]:
    """Starlette exception handlers of the Mailchimp app: its own 404/405 become problem+json."""
    from starlette.exceptions import HTTPException

    from .responses.audience import http_exception_problem

    return {HTTPException: http_exception_problem}


def sandbox_info(store: MailchimpStore) -> dict[str, Any]:
    """Credentials for `sandbox info --json`."""
    return {
        "api_key": store.api_key,
        "dc": store.dc,
        "list_id": store.default_list_id(),
        "oauth_token": store.oauth_token,
    }


# "METHOD /route/template" -> (base_ms, per_item_ms); merged into LATENCY_PROFILE below.
# Estimates (Mailchimp publishes none): report reads are heavier than member reads, email-activity
# pages cost per row; e-commerce writes are moderately slow.
ENGAGEMENT_LATENCY: dict[str, tuple[float, float]] = {
    "GET /3.0/campaigns": (220.0, 3.0),
    "GET /3.0/campaigns/{campaign_id}": (170.0, 0.0),
    "POST /3.0/campaigns": (350.0, 0.0),
    "PATCH /3.0/campaigns/{campaign_id}": (300.0, 0.0),
    "DELETE /3.0/campaigns/{campaign_id}": (300.0, 0.0),
    "POST /3.0/campaigns/{campaign_id}/actions/send": (600.0, 0.0),
    "GET /3.0/reports": (300.0, 5.0),
    "GET /3.0/reports/{campaign_id}": (250.0, 0.0),
    "GET /3.0/reports/{campaign_id}/email-activity": (300.0, 0.8),
    "GET /3.0/reports/{campaign_id}/email-activity/{subscriber_hash}": (180.0, 0.0),
    "GET /3.0/reports/{campaign_id}/open-details": (280.0, 0.6),
    "GET /3.0/reports/{campaign_id}/click-details": (220.0, 1.0),
    "GET /3.0/reports/{campaign_id}/click-details/{link_id}/members": (250.0, 0.5),
    "GET /3.0/reports/{campaign_id}/unsubscribed": (220.0, 0.5),
    "GET /3.0/reports/{campaign_id}/sent-to": (280.0, 0.6),
    "GET /3.0/reports/{campaign_id}/ecommerce-product-activity": (250.0, 1.0),
    "GET /3.0/ecommerce/stores": (180.0, 1.0),
    "GET /3.0/ecommerce/orders": (260.0, 1.5),
    "GET /3.0/ecommerce/stores/{store_id}/orders": (250.0, 1.5),
    "POST /3.0/ecommerce/stores/{store_id}/orders": (320.0, 0.0),
    "GET /3.0/ecommerce/stores/{store_id}/customers": (220.0, 1.0),
    "PUT /3.0/ecommerce/stores/{store_id}/customers/{customer_id}": (280.0, 0.0),
    "GET /3.0/ecommerce/stores/{store_id}/products": (220.0, 1.5),
    "POST /3.0/ecommerce/stores/{store_id}/products": (300.0, 0.0),
    "GET /3.0/ecommerce/stores/{store_id}/carts": (220.0, 1.0),
    "POST /3.0/ecommerce/stores/{store_id}/carts": (300.0, 0.0),
    "GET /3.0/automations": (200.0, 3.0),
    "GET /3.0/automations/{workflow_id}/emails": (200.0, 3.0),
    "POST /3.0/automations/{workflow_id}/emails/{workflow_email_id}/queue": (280.0, 0.0),
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
LATENCY_PROFILE.update(ENGAGEMENT_LATENCY)
