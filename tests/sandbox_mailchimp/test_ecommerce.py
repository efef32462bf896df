"""E-commerce API: stores, customers (opt-in rules), products/variants, orders (attribution), carts (§11)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

PROBLEM = "application/problem+json; charset=utf-8"


def _uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _email() -> str:
    return f"shop.{uuid.uuid4().hex[:10]}@gmail.com"


@pytest.fixture(scope="module")
def store(mc: Any) -> dict[str, Any]:
    body = {
        "id": _uid("store"),
        "list_id": mc.list_id,
        "name": "Test shop",
        "currency_code": "EUR",
        "domain": "test-shop.example.com",
        "is_syncing": True,
    }
    resp = mc.post("/ecommerce/stores", json=body)
    assert resp.status_code == 200, resp.text
    doc: dict[str, Any] = resp.json()
    return doc


@pytest.fixture(scope="module")
def product(mc: Any, store: dict[str, Any]) -> dict[str, Any]:
    body = {
        "id": _uid("prod"),
        "title": "Steel toe boots",
        "variants": [
            {"id": "v1", "title": "Size 42", "sku": "BOOT-42", "price": 80.0},
            {"id": "v2", "title": "Size 44", "sku": "BOOT-44", "price": 85.0},
        ],
    }
    resp = mc.post(f"/ecommerce/stores/{store['id']}/products", json=body)
    assert resp.status_code == 200, resp.text
    doc: dict[str, Any] = resp.json()
    return doc


def _sent_campaign(mc: Any) -> str:
    sent = mc.get(
        "/campaigns",
        params={"status": "sent", "list_id": mc.list_id, "sort_field": "send_time", "count": 1},
    ).json()
    cid: str = sent["campaigns"][0]["id"]
    return cid


def _line(
    product: dict[str, Any], line_id: str, variant: str, quantity: int, price: float
) -> dict[str, Any]:
    """An order or cart line: ``quantity`` of ``product``'s ``variant`` at ``price``."""
    return {
        "id": line_id,
        "product_id": product["id"],
        "product_variant_id": variant,
        "quantity": quantity,
        "price": price,
    }


def _order(
    store: dict[str, Any], product: dict[str, Any], customer: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    return {
        "id": _uid("ord"),
        "customer": customer,
        "currency_code": "EUR",
        "order_total": 165.0,
        "lines": [
            _line(product, "l1", "v1", 1, 80.0),
            _line(product, "l2", "v2", 1, 85.0),
        ],
        **extra,
    }


def test_seeded_store_exists_with_orders(mc: Any) -> None:
    stores = mc.get("/ecommerce/stores").json()
    assert stores["total_items"] >= 1
    seeded = stores["stores"][0]
    assert seeded["list_id"] == mc.list_id
    orders = mc.get(f"/ecommerce/stores/{seeded['id']}/orders").json()
    assert orders["total_items"] > 0
    assert orders["store_id"] == seeded["id"]
    attributed = mc.get("/ecommerce/orders", params={"has_outreach": "true", "count": 1000}).json()[
        "orders"
    ]
    assert attributed
    assert all(o["campaign_id"] for o in attributed)


def test_store_create_get_patch(mc: Any, store: dict[str, Any]) -> None:
    assert store["is_syncing"] is True
    assert store["currency_code"] == "EUR"
    assert store["created_at"].endswith("+00:00")
    resp = mc.patch(
        f"/ecommerce/stores/{store['id']}", json={"is_syncing": False, "name": "Renamed"}
    )
    assert resp.status_code == 200
    got = mc.get(f"/ecommerce/stores/{store['id']}").json()
    assert got["is_syncing"] is False
    assert got["name"] == "Renamed"


def test_store_validation(mc: Any, store: dict[str, Any]) -> None:
    missing = mc.post("/ecommerce/stores", json={"id": _uid("s"), "name": "x"})
    assert missing.status_code == 400
    assert missing.headers["Content-Type"] == PROBLEM
    dup = mc.post(
        "/ecommerce/stores",
        json={"id": store["id"], "list_id": mc.list_id, "name": "x", "currency_code": "EUR"},
    )
    assert dup.status_code == 400
    assert "already exists" in dup.json()["detail"]
    bad_list = mc.post(
        "/ecommerce/stores",
        json={"id": _uid("s"), "list_id": "nolist0000", "name": "x", "currency_code": "EUR"},
    )
    assert bad_list.status_code == 400
    assert (
        mc.patch(f"/ecommerce/stores/{store['id']}", json={"list_id": "other00000"}).status_code
        == 400
    )


def test_store_delete_then_404(mc: Any) -> None:
    sid = _uid("gone")
    assert (
        mc.post(
            "/ecommerce/stores",
            json={"id": sid, "list_id": mc.list_id, "name": "Gone", "currency_code": "USD"},
        ).status_code
        == 200
    )
    assert mc.delete(f"/ecommerce/stores/{sid}").status_code == 204
    assert mc.get(f"/ecommerce/stores/{sid}").status_code == 404
    assert mc.get(f"/ecommerce/stores/{sid}/orders").status_code == 404


def test_customer_put_upserts_and_creates_subscribed_member(mc: Any, store: dict[str, Any]) -> None:
    cid, email = _uid("c"), _email()
    path = f"/ecommerce/stores/{store['id']}/customers/{cid}"
    resp = mc.put(
        path, json={"id": cid, "email_address": email, "opt_in_status": True, "first_name": "Ada"}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["orders_count"] == 0
    assert mc.get(f"{mc.members}/{email}").json()["status"] == "subscribed"
    again = mc.put(
        path,
        json={
            "id": cid,
            "email_address": email,
            "opt_in_status": True,
            "first_name": "Ada",
            "last_name": "Lovelace",
        },
    )
    assert again.status_code == 200
    assert again.json()["last_name"] == "Lovelace"
    listed = mc.get(
        f"/ecommerce/stores/{store['id']}/customers", params={"email_address": email}
    ).json()
    assert listed["total_items"] == 1


def test_opted_out_customer_becomes_transactional_and_opt_in_upgrades(
    mc: Any, store: dict[str, Any]
) -> None:
    cid, email = _uid("c"), _email()
    path = f"/ecommerce/stores/{store['id']}/customers/{cid}"
    assert (
        mc.put(path, json={"id": cid, "email_address": email, "opt_in_status": False}).status_code
        == 200
    )
    assert mc.get(f"{mc.members}/{email}").json()["status"] == "transactional"
    assert mc.patch(path, json={"opt_in_status": True}).status_code == 200
    assert mc.get(f"{mc.members}/{email}").json()["status"] == "subscribed"
    assert mc.patch(path, json={"opt_in_status": False}).status_code == 200
    assert mc.get(f"{mc.members}/{email}").json()["status"] == "subscribed", (
        "opt-out never downgrades"
    )


def test_customer_never_resubscribes_an_unsubscribed_member(mc: Any, store: dict[str, Any]) -> None:
    email = _email()
    assert (
        mc.post(mc.members, json={"email_address": email, "status": "unsubscribed"}).status_code
        == 200
    )
    cid = _uid("c")
    assert (
        mc.put(
            f"/ecommerce/stores/{store['id']}/customers/{cid}",
            json={"id": cid, "email_address": email, "opt_in_status": True},
        ).status_code
        == 200
    )
    assert mc.get(f"{mc.members}/{email}").json()["status"] == "unsubscribed"


def test_customer_post_duplicate_and_validation(mc: Any, store: dict[str, Any]) -> None:
    base = f"/ecommerce/stores/{store['id']}/customers"
    cid = _uid("c")
    assert (
        mc.post(
            base, json={"id": cid, "email_address": _email(), "opt_in_status": False}
        ).status_code
        == 200
    )
    dup = mc.post(base, json={"id": cid, "email_address": _email(), "opt_in_status": False})
    assert dup.status_code == 400
    assert dup.json()["detail"] == "A customer with the provided ID already exists in the account."
    assert (
        mc.post(
            base, json={"id": _uid("c"), "email_address": "not-an-email", "opt_in_status": False}
        ).status_code
        == 400
    )
    assert (
        mc.post(
            base, json={"id": "x" * 51, "email_address": _email(), "opt_in_status": False}
        ).status_code
        == 400
    )
    assert mc.post(base, json={"id": _uid("c"), "email_address": _email()}).status_code == 400
    assert mc.delete(f"{base}/{cid}").status_code == 204
    assert mc.get(f"{base}/{cid}").status_code == 404


def test_products_and_variants(mc: Any, store: dict[str, Any], product: dict[str, Any]) -> None:
    base = f"/ecommerce/stores/{store['id']}/products/{product['id']}"
    assert product["currency_code"] == "EUR"
    assert [v["id"] for v in product["variants"]] == ["v1", "v2"]
    assert (
        mc.put(
            f"{base}/variants/v3", json={"id": "v3", "title": "Size 46", "price": 90}
        ).status_code
        == 200
    )
    assert mc.patch(f"{base}/variants/v3", json={"price": 95}).json()["price"] == 95
    assert mc.get(f"{base}/variants").json()["total_items"] == 3
    assert mc.delete(f"{base}/variants/v3").status_code == 204
    assert mc.get(f"{base}/variants/v3").status_code == 404
    assert (
        mc.patch(base, json={"title": "Steel toe boots II"}).json()["title"] == "Steel toe boots II"
    )
    no_variants = mc.post(
        f"/ecommerce/stores/{store['id']}/products",
        json={"id": _uid("p"), "title": "x", "variants": []},
    )
    assert no_variants.status_code == 400
    dup = mc.post(
        f"/ecommerce/stores/{store['id']}/products",
        json={"id": product["id"], "title": "x", "variants": [{"id": "a", "title": "a"}]},
    )
    assert dup.status_code == 400


def test_attributed_order_feeds_campaign_report(
    mc: Any, store: dict[str, Any], product: dict[str, Any]
) -> None:
    cid = _sent_campaign(mc)
    before = mc.get(f"/reports/{cid}").json()["ecommerce"]
    customer = {"id": _uid("c"), "email_address": _email(), "opt_in_status": True}
    resp = mc.post(
        f"/ecommerce/stores/{store['id']}/orders",
        json=_order(store, product, customer, campaign_id=cid, financial_status="paid"),
    )
    assert resp.status_code == 200, resp.text
    order = resp.json()
    assert order["campaign_id"] == cid
    assert order["outreach"]["id"] == cid
    assert order["store_id"] == store["id"]
    assert order["lines"][0]["product_title"]
    after = mc.get(f"/reports/{cid}").json()["ecommerce"]
    assert after["total_orders"] == before["total_orders"] + 1
    assert after["total_spent"] == round(before["total_spent"] + 165.0, 2)
    summary = mc.get(f"/campaigns/{cid}").json()["report_summary"]["ecommerce"]
    assert summary["total_orders"] == after["total_orders"]
    products = mc.get(f"/reports/{cid}/ecommerce-product-activity", params={"count": 1000}).json()[
        "products"
    ]
    mine = [p for p in products if p["title"].startswith("Steel toe boots")]
    assert len(mine) == 1
    assert mine[0]["total_purchased"] >= 2
    assert mine[0]["total_revenue"] >= 165.0
    by_campaign = mc.get("/ecommerce/orders", params={"campaign_id": cid, "count": 1000}).json()[
        "orders"
    ]
    assert order["id"] in {o["id"] for o in by_campaign}
    assert mc.get(f"{mc.members}/{customer['email_address']}").json()["status"] == "subscribed"


def test_cancelled_order_counts_as_spent_not_revenue(
    mc: Any, store: dict[str, Any], product: dict[str, Any]
) -> None:
    cid = _sent_campaign(mc)
    before = mc.get(f"/reports/{cid}").json()["ecommerce"]
    customer = {"id": _uid("c"), "email_address": _email(), "opt_in_status": False}
    body = _order(store, product, customer, campaign_id=cid, financial_status="cancelled")
    assert mc.post(f"/ecommerce/stores/{store['id']}/orders", json=body).status_code == 200
    after = mc.get(f"/reports/{cid}").json()["ecommerce"]
    assert after["total_spent"] == round(before["total_spent"] + 165.0, 2)
    assert after["total_revenue"] == before["total_revenue"]


def test_order_filters(mc: Any, store: dict[str, Any], product: dict[str, Any]) -> None:
    customer = {"id": _uid("c"), "email_address": _email(), "opt_in_status": True}
    plain = _order(store, product, customer)
    assert mc.post(f"/ecommerce/stores/{store['id']}/orders", json=plain).status_code == 200
    base = f"/ecommerce/stores/{store['id']}/orders"
    mine = mc.get(base, params={"customer_id": customer["id"]}).json()["orders"]
    assert [o["id"] for o in mine] == [plain["id"]]
    no_outreach = mc.get(base, params={"has_outreach": "false", "count": 1000}).json()["orders"]
    assert plain["id"] in {o["id"] for o in no_outreach}
    assert all(not o["campaign_id"] for o in no_outreach)
    with_outreach = mc.get(base, params={"has_outreach": "true", "count": 1000}).json()["orders"]
    assert plain["id"] not in {o["id"] for o in with_outreach}
    cid = _sent_campaign(mc)
    by_outreach = mc.get("/ecommerce/orders", params={"outreach_id": cid, "count": 1000}).json()[
        "orders"
    ]
    assert all(o["outreach"]["id"] == cid for o in by_outreach)


def test_order_validation(mc: Any, store: dict[str, Any], product: dict[str, Any]) -> None:
    base = f"/ecommerce/stores/{store['id']}/orders"
    customer = {"id": _uid("c"), "email_address": _email(), "opt_in_status": True}
    bad_campaign = mc.post(base, json=_order(store, product, customer, campaign_id="ffffffffff"))
    assert bad_campaign.status_code == 400
    assert (
        bad_campaign.json()["detail"]
        == "A campaign with the provided ID does not exist in the account for this list."
    )
    bad_product = _order(store, product, customer)
    bad_product["lines"][0]["product_id"] = "nope"
    assert mc.post(base, json=bad_product).status_code == 400
    no_email = _order(store, product, {"id": _uid("c")})
    resp = mc.post(base, json=no_email)
    assert resp.status_code == 400
    assert resp.json()["errors"][0]["field"] == "customer.email_address"
    missing = mc.post(base, json={"id": _uid("o"), "customer": customer})
    assert missing.status_code == 400
    order = _order(store, product, customer)
    assert mc.post(base, json=order).status_code == 200
    assert mc.post(base, json=order).status_code == 400


def test_order_patch_lines_and_delete(
    mc: Any, store: dict[str, Any], product: dict[str, Any]
) -> None:
    base = f"/ecommerce/stores/{store['id']}/orders"
    order = _order(
        store, product, {"id": _uid("c"), "email_address": _email(), "opt_in_status": True}
    )
    mc.post(base, json=order)
    patched = mc.patch(
        f"{base}/{order['id']}", json={"fulfillment_status": "shipped", "tracking_number": "1Z"}
    ).json()
    assert patched["fulfillment_status"] == "shipped"
    lines = mc.get(f"{base}/{order['id']}/lines").json()
    assert lines["total_items"] == 2
    assert mc.get(f"{base}/{order['id']}/lines/l2").json()["price"] == 85.0
    added = mc.post(
        f"{base}/{order['id']}/lines",
        json=_line(product, "l3", "v1", 4, 80.0),
    )
    assert added.status_code == 200
    assert added.json()["product_variant_title"] == "Size 42"
    assert (
        mc.post(
            f"{base}/{order['id']}/lines",
            json=_line(product, "l3", "v1", 1, 80.0),
        ).status_code
        == 400
    )
    assert mc.patch(f"{base}/{order['id']}/lines/l3", json={"quantity": 5}).json()["quantity"] == 5
    assert (
        mc.patch(f"{base}/{order['id']}/lines/l3", json={"product_variant_id": "nope"}).status_code
        == 400
    )
    assert mc.delete(f"{base}/{order['id']}/lines/l3").status_code == 204
    assert mc.get(f"{base}/{order['id']}/lines/l3").status_code == 404
    assert mc.delete(f"{base}/{order['id']}").status_code == 204
    assert mc.get(f"{base}/{order['id']}").status_code == 404


def test_cart_with_checkout_url_and_lines(
    mc: Any, store: dict[str, Any], product: dict[str, Any]
) -> None:
    base = f"/ecommerce/stores/{store['id']}/carts"
    cart_id = _uid("cart")
    customer = {"id": _uid("c"), "email_address": _email(), "opt_in_status": True}
    body = {
        "id": cart_id,
        "customer": customer,
        "currency_code": "EUR",
        "order_total": 80.0,
        "checkout_url": "https://test-shop.example.com/checkout/abc",
        "lines": [_line(product, "l1", "v1", 1, 80.0)],
    }
    resp = mc.post(base, json=body)
    assert resp.status_code == 200, resp.text
    cart = resp.json()
    assert cart["checkout_url"] == body["checkout_url"]
    assert cart["customer"]["id"] == customer["id"]
    assert cart["created_at"]
    line = mc.post(
        f"{base}/{cart_id}/lines",
        json=_line(product, "l2", "v2", 2, 85.0),
    )
    assert line.status_code == 200
    assert mc.patch(f"{base}/{cart_id}/lines/l2", json={"quantity": 3}).json()["quantity"] == 3
    assert mc.get(f"{base}/{cart_id}/lines").json()["total_items"] == 2
    assert mc.delete(f"{base}/{cart_id}/lines/l1").status_code == 204
    assert mc.patch(f"{base}/{cart_id}", json={"order_total": 255.0}).json()["order_total"] == 255.0
    assert mc.delete(f"{base}/{cart_id}").status_code == 204
    assert mc.get(f"{base}/{cart_id}").status_code == 404


def test_one_customers_totals_match_the_totals_of_every_customer() -> None:
    """An order create's response counts its customer alone; the same figures as the one-pass
    totals a page uses."""
    from oromc_sandbox.mailchimp.models.ecommerce import Shop, customer_totals, customer_totals_of

    shop = Shop(doc={"id": "s"})
    for i in range(30):
        shop.orders[f"o{i}"] = {"customer_id": f"c{i % 4}", "order_total": 10.5 + i}
    every = customer_totals(shop)
    assert {c: customer_totals_of(shop, c) for c in every} == every
    assert customer_totals_of(shop, "nobody") == (0, 0.0)
