"""Classic automations: the seeded welcome series and abandoned-cart emails "send" as the clock moves.

Members and carts are fresh per test; the clock only moves forward. Automation emails are
campaigns of type `automation` with reports and email activity (sandbox README, "Automations").
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

HOUR = 3600
DAY = 24 * HOUR


def _automation(mc: Any, workflow_type: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(automation, its first email) of the seeded workflow of that type."""
    autos = mc.get("/automations").json()["automations"]
    auto = next(a for a in autos if a["trigger_settings"]["workflow_type"] == workflow_type)
    emails = mc.get(f"/automations/{auto['id']}/emails").json()["emails"]
    return auto, emails[0]


def _subscribed(mc: Any) -> dict[str, Any]:
    return mc.add(f"auto.{uuid.uuid4().hex[:10]}@gmail.com")


@pytest.fixture(scope="module")
def shop(mc: Any) -> dict[str, Any]:
    store = mc.get("/ecommerce/stores").json()["stores"][0]
    product = mc.get(f"/ecommerce/stores/{store['id']}/products", params={"count": 1}).json()[
        "products"
    ][0]
    return {"id": store["id"], "product": product}


def _cart(mc: Any, shop: dict[str, Any], member: dict[str, Any]) -> str:
    """A cart of a new store customer who is the (subscribed) `member`; returns the cart id."""
    cart_id = f"cart-{uuid.uuid4().hex[:10]}"
    product = shop["product"]
    body = {
        "id": cart_id,
        "customer": {
            "id": f"cust-{uuid.uuid4().hex[:10]}",
            "email_address": member["email_address"],
            "opt_in_status": False,
        },
        "currency_code": "USD",
        "order_total": 20.0,
        "checkout_url": f"https://shop.example.com/checkout/{cart_id}",
        "lines": [
            {
                "id": "l1",
                "product_id": product["id"],
                "product_variant_id": product["variants"][0]["id"],
                "quantity": 2,
                "price": 10.0,
            }
        ],
    }
    resp = mc.post(f"/ecommerce/stores/{shop['id']}/carts", json=body)
    assert resp.status_code == 200, resp.text
    return cart_id


def _order_of_cart(mc: Any, shop: dict[str, Any], cart_id: str) -> dict[str, Any]:
    """The order a cart becomes (same customer and lines), without `campaign_id`."""
    cart = mc.get(f"/ecommerce/stores/{shop['id']}/carts/{cart_id}").json()
    keys = ("id", "product_id", "product_variant_id", "quantity", "price")
    return {
        "id": f"ord-{uuid.uuid4().hex[:10]}",
        "customer": {"id": cart["customer"]["id"]},
        "currency_code": "USD",
        "order_total": 20.0,
        "lines": [{k: line[k] for k in keys} for line in cart["lines"]],
    }


def _received(mc: Any, email_id: str, member: dict[str, Any]) -> bool:
    resp = mc.get(f"/reports/{email_id}/email-activity/{member['id']}")
    assert resp.status_code in (200, 404), resp.text
    return resp.status_code == 200


def test_seeded_workflows_are_documented_resources(mc: Any) -> None:
    body = mc.get("/automations", params={"status": "sending"}).json()
    types = {a["trigger_settings"]["workflow_type"] for a in body["automations"]}
    assert types == {"welcomeSeries", "abandonedCart"}
    assert body["total_items"] == 2
    auto, email = _automation(mc, "abandonedCart")
    assert auto["recipients"]["store_id"]
    assert mc.get(f"/automations/{auto['id']}").json()["id"] == auto["id"]
    assert email["delay"]["action"] == "ecomm_abandoned_cart"
    assert (email["delay"]["amount"], email["delay"]["type"]) == (1, "hour")
    got = mc.get(f"/automations/{auto['id']}/emails/{email['id']}").json()
    assert got["workflow_id"] == auto["id"]
    assert mc.get("/automations/nope000000").status_code == 404
    assert mc.get(f"/automations/{auto['id']}/emails/nope").status_code == 404
    assert mc.get("/automations", params={"status": "bogus"}).status_code == 400
    assert mc.post("/automations", json={}).status_code == 405


def test_welcome_email_reaches_a_new_subscribed_member_after_its_delay(
    mc: Any, sandbox: Any
) -> None:
    _, email = _automation(mc, "welcomeSeries")
    member = _subscribed(mc)
    pending = mc.add(f"auto.{uuid.uuid4().hex[:10]}@gmail.com", status="pending")
    queue = f"/automations/{email['workflow_id']}/emails/{email['id']}/queue"
    assert mc.get(queue).json()["total_items"] >= 1
    entry = mc.get(f"{queue}/{member['id']}").json()
    assert entry["email_address"] == member["email_address"]
    assert mc.get(f"{queue}/{pending['id']}").status_code == 404
    assert not _received(mc, email["id"], member)
    sandbox.advance_clock(DAY + 60)
    assert _received(mc, email["id"], member)
    assert not _received(mc, email["id"], pending)
    campaigns = mc.get(
        "/campaigns", params={"type": "automation", "member_id": member["id"]}
    ).json()["campaigns"]
    assert [c["id"] for c in campaigns] == [email["id"]]
    assert campaigns[0]["status"] == "sending"
    report = mc.get(f"/reports/{email['id']}").json()
    assert report["type"] == "automation"
    assert report["emails_sent"] >= 1
    # sent once: a later clock move does not send it again
    sandbox.advance_clock(DAY)
    sent_to = mc.get(f"/reports/{email['id']}/sent-to", params={"count": 1000}).json()
    assert [r["email_address"] for r in sent_to["sent_to"]].count(member["email_address"]) == 1


def test_abandoned_cart_sends_after_delay_once_and_not_for_removed_or_converted_carts(
    mc: Any, sandbox: Any, shop: dict[str, Any]
) -> None:
    _, email = _automation(mc, "abandonedCart")
    abandoned, removed, converted = _subscribed(mc), _subscribed(mc), _subscribed(mc)
    _cart(mc, shop, abandoned)
    removed_cart = _cart(mc, shop, removed)
    converted_cart = _cart(mc, shop, converted)
    mc.get("/ping")  # a sync: the carts are queued
    assert mc.delete(f"/ecommerce/stores/{shop['id']}/carts/{removed_cart}").status_code == 204
    order = _order_of_cart(mc, shop, converted_cart)
    assert mc.post(f"/ecommerce/stores/{shop['id']}/orders", json=order).status_code == 200
    sandbox.advance_clock(30 * 60)
    assert not _received(mc, email["id"], abandoned)  # younger than the 1-hour delay
    sandbox.advance_clock(31 * 60)
    assert _received(mc, email["id"], abandoned)
    assert not _received(mc, email["id"], removed)
    assert not _received(mc, email["id"], converted)
    sandbox.advance_clock(2 * HOUR)
    sent_to = mc.get(f"/reports/{email['id']}/sent-to", params={"count": 1000}).json()
    assert [r["email_address"] for r in sent_to["sent_to"]].count(abandoned["email_address"]) == 1


def test_abandoned_cart_click_is_activity_and_attributes_the_next_order(
    mc: Any, sandbox: Any, shop: dict[str, Any]
) -> None:
    _, email = _automation(mc, "abandonedCart")
    member = _subscribed(mc)
    cart_id = _cart(mc, shop, member)
    mc.get("/ping")
    sandbox.advance_clock(HOUR + 60)
    assert _received(mc, email["id"], member)
    resp = requests.post(
        f"{sandbox.mailchimp_base_url}/_sandbox/mailchimp/campaigns/{email['id']}/engage",
        json={"email_address": member["email_address"], "action": "click"},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    row = mc.get(f"/reports/{email['id']}/email-activity/{member['id']}").json()
    assert "click" in {a["action"] for a in row["activity"]}
    before = mc.get(f"/reports/{email['id']}").json()["ecommerce"]["total_orders"]
    order = _order_of_cart(mc, shop, cart_id)
    placed = mc.post(f"/ecommerce/stores/{shop['id']}/orders", json=order).json()
    assert placed["campaign_id"] == email["id"]
    assert placed["outreach"]["type"] == "automation"
    report = mc.get(f"/reports/{email['id']}").json()
    assert report["ecommerce"]["total_orders"] == before + 1
    assert report["clicks"]["clicks_total"] >= 1


def test_queue_post_and_pause_all_emails(mc: Any, sandbox: Any) -> None:
    auto, email = _automation(mc, "welcomeSeries")
    queue = f"/automations/{auto['id']}/emails/{email['id']}/queue"
    assert mc.post(queue, json={"email_address": "nobody.here@gmail.com"}).status_code == 400
    member = _subscribed(mc)
    entry = mc.post(queue, json={"email_address": member["email_address"]}).json()
    assert entry["email_address"] == member["email_address"]
    assert mc.get(f"{queue}/{member['id']}").json()["next_send"] == entry["next_send"]
    assert mc.post(f"/automations/{auto['id']}/actions/pause-all-emails").status_code == 204
    try:
        assert mc.get(f"/automations/{auto['id']}").json()["status"] == "paused"
        sandbox.advance_clock(DAY + 60)
        assert not _received(mc, email["id"], member)  # paused: the queue waits
    finally:
        assert mc.post(f"/automations/{auto['id']}/actions/start-all-emails").status_code == 204
    mc.get("/ping")
    sandbox.advance_clock(60)
    assert _received(mc, email["id"], member)
