"""The seeded e-commerce store mirrors Oro's orders, so conversions can be matched back to Oro.

As if an earlier tap-orocommerce -> target-mailchimp sync had pushed them: Mailchimp order id = Oro
order id, customer id = Oro customer user id (same e-mail), line ids = Oro line item ids, product
id = Oro product id; totals are Oro's. An order is attributed to a sent campaign only when its buyer
clicked that campaign in the 30 days before the order.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import requests
from oromc_common.oro import OroOAuth2Authenticator, jsonapi_headers

from tests.sandbox_mailchimp.conftest import MailchimpClient


def _oro_session(sb: Any) -> requests.Session:
    info = sb.info["oro"]
    session = requests.Session()
    session.auth = OroOAuth2Authenticator(
        base_url=sb.oro_base_url, client_id=info["client_id"], client_secret=info["client_secret"]
    )
    session.headers.update(jsonapi_headers())
    return session


def _all(mc: MailchimpClient, path: str, key: str, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        page = mc.get(path, params={"count": 1000, "offset": len(out), **params}).json()
        out += page[key]
        if len(out) >= page["total_items"]:
            return out


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_seeded_orders_are_oro_orders(sandbox: Any, mc: MailchimpClient) -> None:
    store = mc.get("/ecommerce/stores").json()["stores"][0]
    orders = _all(mc, f"/ecommerce/stores/{store['id']}/orders", "orders")
    assert len(orders) >= 20
    oro = _oro_session(sandbox)
    ids = ",".join(o["id"] for o in orders[:50])
    response = oro.get(
        sandbox.oro_api_url + "/orders",
        params={"filter[id]": ids, "include": "lineItems,customerUser", "page[size]": 100},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    doc = response.json()
    oro_orders = {o["id"]: o for o in doc["data"]}
    included = {(r["type"], r["id"]): r for r in doc.get("included", [])}
    assert set(oro_orders) == {o["id"] for o in orders[:50]}  # every seeded id is an Oro order
    for order in orders[:50]:
        oro_order = oro_orders[order["id"]]
        user_ref = oro_order["relationships"]["customerUser"]["data"]
        user = included[("customerusers", user_ref["id"])]
        assert order["customer"]["id"] == user_ref["id"]
        assert order["customer"]["email_address"] == user["attributes"]["email"]
        line_ids = {ref["id"] for ref in oro_order["relationships"]["lineItems"]["data"]}
        assert {line["id"] for line in order["lines"]} == line_ids
        for line in order["lines"]:
            item = included[("orderlineitems", line["id"])]
            assert line["product_id"] == item["relationships"]["product"]["data"]["id"]
        assert order["order_total"] == round(float(oro_order["attributes"]["totalValue"]), 4)
        assert _when(order["processed_at_foreign"]) == _when(oro_order["attributes"]["createdAt"])
    products = _all(mc, f"/ecommerce/stores/{store['id']}/products", "products")
    assert {line["product_id"] for o in orders for line in o["lines"]} <= {
        p["id"] for p in products
    }


def test_attributed_orders_follow_a_click_of_the_campaign(mc: MailchimpClient) -> None:
    store = mc.get("/ecommerce/stores").json()["stores"][
        0
    ]  # the seeded store (other tests add theirs)
    attributed = _all(mc, f"/ecommerce/stores/{store['id']}/orders", "orders", has_outreach="true")
    # orders attributed to abandoned-cart emails by other tests: test_automations.py checks those
    attributed = [o for o in attributed if o["outreach"]["type"] != "automation"]
    assert attributed
    sent = {
        c["id"]: c
        for c in mc.get("/campaigns", params={"status": "sent", "count": 100}).json()["campaigns"]
    }
    for order in attributed:
        campaign_id = order["campaign_id"]
        assert campaign_id in sent
        email = order["customer"]["email_address"]
        activity = mc.get(f"/reports/{campaign_id}/email-activity", params={"count": 1000}).json()[
            "emails"
        ]
        mine = next(a for a in activity if a["email_address"] == email)
        placed = _when(order["processed_at_foreign"])
        clicks = [_when(a["timestamp"]) for a in mine["activity"] if a["action"] == "click"]
        assert any(c <= placed <= c + timedelta(days=30) for c in clicks), order["id"]
