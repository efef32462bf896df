"""Automation emails -> Oro: an abandoned-cart email's click and conversion land like a campaign's.

The sandbox sends its abandoned-cart email to a subscribed buyer's cart; the buyer clicks, and an
order of theirs is attributed to the email. The real tap reads `campaigns`, `email_activity` and
`attributed_orders`; the target makes one Oro campaign for the automation email, a click activity
and the order's campaign relation.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import requests
from oromc_sandbox.testing import RunningSandbox

from .conftest import OroProbe, rejects, run_tap, run_target

STREAMS = {"campaigns", "email_activity", "attributed_orders"}


def _buyer_order(session: requests.Session, sb: RunningSandbox, store_id: str) -> dict[str, Any]:
    """A mirrored (Oro) order, not attributed, whose buyer is a subscribed member."""
    api = sb.mailchimp_api_url
    list_id = sb.info["mailchimp"]["list_id"]
    orders = session.get(f"{api}/ecommerce/stores/{store_id}/orders", params={"count": 1000}).json()
    for order in orders["orders"]:
        email = order["customer"].get("email_address") or ""
        if order.get("campaign_id") or not email:
            continue
        hash_ = hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest()
        member = session.get(f"{api}/lists/{list_id}/members/{hash_}")
        if member.ok and member.json()["status"] == "subscribed":
            return dict(order)
    raise AssertionError("no unattributed order of a subscribed buyer in the seed")


def test_abandoned_cart_email_click_and_conversion_reach_oro(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any], tmp_path: Path
) -> None:
    sb.set_switches(order_campaign_relation=True)
    try:
        session = requests.Session()
        session.auth = ("test", sb.info["mailchimp"]["api_key"])
        api = sb.mailchimp_api_url
        store_id = session.get(f"{api}/ecommerce/stores").json()["stores"][0]["id"]
        order = _buyer_order(session, sb, store_id)
        email = order["customer"]["email_address"]
        line = order["lines"][0]
        cart = {
            "id": f"cart-{order['id']}",
            "customer": {"id": order["customer"]["id"]},
            "currency_code": order["currency_code"],
            "order_total": line["price"],
            "checkout_url": f"https://shop.example.com/checkout/{order['id']}",
            "lines": [{k: line[k] for k in ("id", "product_id", "product_variant_id", "quantity", "price")}],
        }
        assert session.post(f"{api}/ecommerce/stores/{store_id}/carts", json=cart).ok
        session.get(f"{api}/ping")  # the cart is queued for the abandoned-cart email
        sb.advance_clock(3600 + 60)
        autos = session.get(f"{api}/automations").json()["automations"]
        workflow = next(a for a in autos if a["trigger_settings"]["workflow_type"] == "abandonedCart")
        email_id = session.get(f"{api}/automations/{workflow['id']}/emails").json()["emails"][0]["id"]
        clicked = requests.post(
            f"{sb.mailchimp_base_url}/_sandbox/mailchimp/campaigns/{email_id}/engage",
            json={"email_address": email, "action": "click"},
            timeout=10,
        )
        assert clicked.status_code == 200, clicked.text
        # the store reports the order with the email's mc_cid (as the checkout link carries it)
        patched = session.patch(
            f"{api}/ecommerce/stores/{store_id}/orders/{order['id']}", json={"campaign_id": email_id}
        )
        assert patched.ok, patched.text

        summary, _ = run_target(config, run_tap(sb, tmp_path, STREAMS))
        # (activities of Mailchimp-only members of the seeded campaigns are rejected: not this test's)
        mine = [r for r in rejects(config) if email_id in r["key"] or r["stream"] == "campaigns"]
        assert mine == []
        campaign = next(c for c in oro.all("campaigns") if c["attributes"]["code"] == email_id)
        assert campaign["attributes"]["name"] == "Abandoned cart: You left something in your cart"
        assert campaign["attributes"]["description"].startswith("Mailchimp automation email.")
        clicks = [
            a
            for a in oro.mailchimp_activities()
            if a["relationships"]["campaign"]["data"]["id"] == campaign["id"]
            and a["details"]["action"] == "click"
        ]
        assert len(clicks) == 1
        relation = oro.get(f"orders/{order['id']}")["data"]["relationships"]["campaign"]["data"]
        assert relation is not None
        assert relation["id"] == campaign["id"]
        assert summary["streams"]["attributed_orders"]["updated"] >= 1
    finally:
        sb.set_switches(order_campaign_relation=False)
