"""OroCommerce back-office API emulation (JSON:API under ``/admin/api``, ``POST /oauth2-token``).

What the core imports: :func:`create_store`, :func:`create_store_from_dump`, :func:`routes`,
:data:`LATENCY_PROFILE`, :func:`sandbox_info`, :class:`OroStore`. See ``README.md`` here.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute, Route

from .auth import token_endpoint
from .extra import (
    control_clients,
    control_marketing_lists,
    control_order,
    control_shopping_list,
    control_summary,
    marketing_list_action,
    old_rest_not_found,
    unsubscribed_item_create,
    unsubscribed_item_delete,
)
from .handlers import (
    item_endpoint,
    list_endpoint,
    no_route,
    relationship_endpoint,
    subresource_endpoint,
)
from .store import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
    OroStore,
    create_store,
    create_store_from_dump,
)

__all__ = ["LATENCY_PROFILE", "OroStore", "create_store", "create_store_from_dump", "routes", "sandbox_info"]

_ALL = ["GET", "POST", "PATCH", "DELETE", "OPTIONS", "PUT", "TRACE"]
API = "/admin/api"

# (base ms, ms per item) per "METHOD /route/template". Estimates: Oro publishes no API latency
# figures (reference §10 only has ~717 hits/min on one node, i.e. ~85 ms per hit at full load);
# these model a mid-size production instance on PostgreSQL: token issue (bcrypt-free client
# secret check + JWT signing), list reads that pay per serialized entity, and writes that pay for
# validation, Doctrine flush and the message-queue fan-out.
LATENCY_PROFILE: dict[str, tuple[float, float]] = {
    "POST /oauth2-token": (150.0, 0.0),
    f"GET {API}/{{resource}}": (120.0, 0.6),
    f"GET {API}/{{resource}}/{{id}}": (90.0, 0.0),
    f"GET {API}/{{resource}}/{{id}}/{{association}}": (110.0, 0.6),
    f"GET {API}/{{resource}}/{{id}}/relationships/{{association}}": (80.0, 0.1),
    f"POST {API}/{{resource}}": (180.0, 0.0),
    f"PATCH {API}/{{resource}}/{{id}}": (160.0, 0.0),
    f"DELETE {API}/{{resource}}/{{id}}": (120.0, 0.0),
    f"PATCH {API}/{{resource}}": (200.0, 12.0),  # batch: per item (sync) / enqueue cost (async)
    f"DELETE {API}/{{resource}}": (150.0, 8.0),
    f"POST {API}/{{resource}}/{{id}}/relationships/{{association}}": (110.0, 0.0),
    f"PATCH {API}/{{resource}}/{{id}}/relationships/{{association}}": (110.0, 0.0),
    f"DELETE {API}/{{resource}}/{{id}}/relationships/{{association}}": (110.0, 0.0),
    f"POST {API}/rest/{{version}}/marketinglist/{{ml_id}}/{{action}}/{{entity_id}}": (100.0, 0.0),
    "*": (100.0, 0.0),
}


def routes() -> list[BaseRoute]:
    """All Oro routes (specific ones first)."""
    return [
        Route("/oauth2-token", token_endpoint, methods=["POST", "OPTIONS"]),
        Route(f"{API}/rest/{{version}}/marketinglist/{{ml_id}}/{{action}}/{{entity_id}}", marketing_list_action,
              methods=_ALL),
        Route(f"{API}/rest/{{version}}/marketinglists/unsubscribeditems", unsubscribed_item_create, methods=_ALL),
        Route(f"{API}/rest/{{version}}/marketinglists/{{item_id}}/unsubscribeditem", unsubscribed_item_delete,
              methods=_ALL),
        Route(f"{API}/rest/{{path:path}}", old_rest_not_found, methods=_ALL),
        Route(f"{API}/{{resource}}", list_endpoint, methods=_ALL),
        Route(f"{API}/{{resource}}/{{id}}", item_endpoint, methods=_ALL),
        Route(f"{API}/{{resource}}/{{id}}/relationships/{{association}}", relationship_endpoint, methods=_ALL),
        Route(f"{API}/{{resource}}/{{id}}/{{association}}", subresource_endpoint, methods=_ALL),
        Route(API, no_route, methods=_ALL), Route(f"{API}/{{path:path}}", no_route, methods=_ALL),
        Route("/_sandbox/oro/clients", control_clients, methods=["GET", "POST"]),
        Route("/_sandbox/oro/summary", control_summary, methods=["GET"]),
        Route("/_sandbox/oro/marketinglists", control_marketing_lists, methods=["GET"]),
        Route("/_sandbox/oro/orders/{order_id}", control_order, methods=["POST"]),
        Route("/_sandbox/oro/shoppinglists/{list_id}", control_shopping_list, methods=["POST"]),
    ]


def sandbox_info(store: OroStore) -> dict[str, Any]:
    """Default credentials for `sandbox info --json`."""
    return {
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET,
        "username": DEFAULT_USERNAME,
        "password": DEFAULT_PASSWORD,
        "marketing_list_ids": sorted(store.marketing_lists),
    }
