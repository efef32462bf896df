"""The Mailchimp-shaped e-commerce streams: contract conformance and exact incremental change sets."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator, FormatChecker
from oromc_common.oro import jsonapi_headers
from oromc_sandbox.testing import running_sandbox
from tap_orocommerce.ecommerce import image_path
from target_mailchimp.contract import ECOMMERCE_SCHEMAS

from tests.helpers import TapRun, run_tap, tap_config
from tests.test_incremental import Oro

STREAMS = ["ecommerce_products", "ecommerce_customers", "ecommerce_orders", "ecommerce_carts"]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    with running_sandbox(customers=40, seed=5, shoppinglists=True) as sb:
        yield sb


def _config(sandbox: Any, **extra: Any) -> dict[str, Any]:
    return tap_config(sandbox, **{"page_size": 50, "streams": STREAMS, **extra})


def _ids(run: TapRun, stream: str) -> set[str]:
    return set(run.ids(stream))


def _rel_id(resource: dict[str, Any], name: str) -> str | None:
    data = (resource.get("relationships") or {}).get(name, {}).get("data")
    return str(data["id"]) if isinstance(data, dict) else None


def test_first_run_is_complete_and_conforms_to_the_target_contract(
    sandbox: Any, tmp_path: Path
) -> None:
    oro = Oro(sandbox)
    run = run_tap(tmp_path, _config(sandbox))
    assert run.returncode == 0, run.stderr[-3000:]
    # in the order a store is best filled (the SDK would sort them by name: carts first)
    assert list(run.records) == STREAMS
    checker = FormatChecker()
    for stream in STREAMS:
        assert run.records.get(stream), f"no records in {stream}"
        validator = Draft7Validator(ECOMMERCE_SCHEMAS[stream], format_checker=checker)
        for record in run.records[stream]:
            errors = [e.message for e in validator.iter_errors(record)]
            assert not errors, (stream, record["id"], errors)
        assert len(run.ids(stream)) == len(_ids(run, stream)), f"duplicates in {stream}"

    orders = oro.list("orders")
    products = oro.list("products")
    assert _ids(run, "ecommerce_orders") == {o["id"] for o in orders}
    assert _ids(run, "ecommerce_products") == {p["id"] for p in products}
    buyers = {_rel_id(o, "customerUser") for o in orders} - {None}
    assert _ids(run, "ecommerce_customers") == buyers  # users who ordered, and only those
    lists = oro.list("shoppinglists", include="items")
    assert _ids(run, "ecommerce_carts") == {
        sl["id"] for sl in lists if sl["relationships"]["items"]["data"]
    }

    # one order in detail: ids are Oro ids, lines are its line items, totals are Oro's
    order = orders[len(orders) // 2]
    record = next(r for r in run.records["ecommerce_orders"] if r["id"] == order["id"])
    items = oro.list("orderlineitems", **{"filter[orders]": order["id"]})
    assert record["customer"]["id"] == _rel_id(order, "customerUser")
    assert sorted(line["id"] for line in record["lines"]) == sorted(i["id"] for i in items)
    assert {line["product_id"] for line in record["lines"]} == {
        _rel_id(i, "product") for i in items
    }
    assert record["order_total"] == pytest.approx(float(order["attributes"]["totalValue"]))
    assert record["currency_code"] == order["attributes"]["currency"]
    assert record["updated_at"] == order["attributes"]["updatedAt"]
    user = oro.list("customerusers", **{"filter[id]": record["customer"]["id"]})[0]
    assert record["customer"]["email_address"] == user["attributes"]["email"]
    assert all(r["title"] for r in run.records["ecommerce_products"])
    assert any(r["title"] != r["sku"] for r in run.records["ecommerce_products"])  # real names


def test_incremental_runs_emit_exactly_the_changed_rows(sandbox: Any, tmp_path: Path) -> None:
    oro = Oro(sandbox)
    config = _config(sandbox)
    first = run_tap(tmp_path, config, name="first")
    assert first.returncode == 0, first.stderr[-3000:]
    time.sleep(2.1)  # let the last stamped second end (see test_incremental)
    second = run_tap(tmp_path, config, state=first.state, name="second")
    assert second.returncode == 0, second.stderr[-3000:]
    assert {s: len(r) for s, r in second.records.items() if r} == {}

    orders = oro.list("orders")
    users = oro.list("customerusers")
    buyers = {_rel_id(o, "customerUser") for o in orders} - {None}
    # 1. a line item's quantity changes -> exactly its order (the order's total and updatedAt move)
    order = orders[3]
    item = oro.list("orderlineitems", **{"filter[orders]": order["id"]})[0]
    oro.patch("orderlineitems", item["id"], {"quantity": 77})
    # 2. a buyer and a non-buyer change their names -> only the buyer is an e-commerce customer
    buyer = next(u for u in users if u["id"] in buyers)
    non_buyer = next(u for u in users if u["id"] not in buyers)
    for u in (buyer, non_buyer):
        oro.patch("customerusers", u["id"], {"lastName": f"Changed{u['id']}"})
    # 3. an account is renamed -> its users who ordered (company changes), nobody else
    account = _rel_id(orders[-1], "customer")
    oro.patch("customers", str(account), {"name": "Renamed account"})
    account_buyers = {u["id"] for u in users if _rel_id(u, "customer") == account} & buyers
    # 4. a product changes -> exactly that product
    product = oro.list("products")[5]
    oro.patch("products", product["id"], {"featured": not product["attributes"]["featured"]})

    time.sleep(2.1)
    third = run_tap(tmp_path, config, state=second.state or first.state, name="third")
    assert third.returncode == 0, third.stderr[-3000:]
    assert _ids(third, "ecommerce_orders") == {order["id"]}
    changed = next(r for r in third.records["ecommerce_orders"])
    line = next(ln for ln in changed["lines"] if ln["id"] == item["id"])
    assert line["quantity"] == 77
    assert _ids(third, "ecommerce_customers") == {buyer["id"]} | account_buyers
    renamed = [r for r in third.records["ecommerce_customers"] if r["id"] in account_buyers]
    assert renamed
    assert all(r["company"] == "Renamed account" for r in renamed)
    assert _ids(third, "ecommerce_products") == {product["id"]}
    assert not third.records.get("ecommerce_carts")

    time.sleep(2.1)
    fourth = run_tap(tmp_path, config, state=third.state, name="fourth")
    assert fourth.returncode == 0, fourth.stderr[-3000:]
    assert {s: len(r) for s, r in fourth.records.items() if r} == {}


def _oro_gets(sandbox: Any) -> int:
    requests = sandbox.stats("oro")["requests"]
    return sum(sum(by_status.values()) for route, by_status in requests.items() if route.startswith("GET "))


def test_changed_buyers_spread_over_scan_pages_cost_one_orders_lookup(
    sandbox: Any, tmp_path: Path
) -> None:
    """A few changed customer users, each on another page of the scan: one ``orders`` lookup for all
    of them (held across pages), not one per page they fall on; exactly the changed buyers are out."""
    oro = Oro(sandbox)
    config = _config(sandbox, page_size=10, streams=["ecommerce_customers"])
    orders = oro.list("orders")
    buyers = sorted({_rel_id(o, "customerUser") for o in orders} - {None}, key=int)
    users = sorted((u["id"] for u in oro.list("customerusers")), key=int)
    first = run_tap(tmp_path, config, name="first")
    assert first.returncode == 0, first.stderr[-3000:]
    # The bookmark is the newest emitted (buyer) row: a buyer changed now puts it after every other
    # user, so the quiet run below reads no user as changed (no lookup at all).
    oro.patch("customerusers", buyers[0], {"lastName": "Newest"})
    time.sleep(2.1)  # let the last stamped second end (see test_incremental)
    second = run_tap(tmp_path, config, state=first.state, name="second")
    assert second.returncode == 0, second.stderr[-3000:]
    assert _ids(second, "ecommerce_customers") == {buyers[0]}
    time.sleep(2.1)
    sandbox.reset_stats()
    quiet = run_tap(tmp_path, config, state=second.state, name="quiet")
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    assert not quiet.records.get("ecommerce_customers")
    scan_only = _oro_gets(sandbox)  # nothing changed: the scan's pages, no lookup

    pages = {uid: users.index(uid) // 10 for uid in buyers}
    changed: dict[int, str] = {}
    for uid in buyers:  # one buyer on each of several pages
        changed.setdefault(pages[uid], uid)
    assert len(changed) >= 3
    for uid in changed.values():
        oro.patch("customerusers", uid, {"lastName": f"Spread{uid}"})
    time.sleep(2.1)
    sandbox.reset_stats()
    run = run_tap(tmp_path, config, state=quiet.state or second.state, name="spread")
    assert run.returncode == 0, run.stderr[-3000:]
    assert _ids(run, "ecommerce_customers") == set(changed.values())
    assert _oro_gets(sandbox) == scan_only + 1  # one orders?filter[customerUser]=<ids> lookup


def test_carts_skipped_with_a_reason_when_oro_does_not_expose_shopping_lists(
    sandbox: Any, tmp_path: Path
) -> None:
    sandbox.set_switches(shoppinglists=False)
    try:
        run = run_tap(tmp_path, _config(sandbox, streams=["ecommerce_carts", "ecommerce_orders"]))
    finally:
        sandbox.set_switches(shoppinglists=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert not run.records.get("ecommerce_carts")
    assert run.records.get("ecommerce_orders")
    assert "Stream 'ecommerce_carts' will be skipped" in run.stderr
    assert "does not expose shopping lists" in run.stderr


def test_unusable_orders_are_rejected_with_reason_and_field(sandbox: Any, tmp_path: Path) -> None:
    """An order whose customer user is gone cannot be a Mailchimp order: rejected, run continues."""
    oro = Oro(sandbox)
    orders = oro.list("orders")
    victim = orders[0]
    user_id = _rel_id(victim, "customerUser")
    response = oro.session.delete(
        f"{oro.api}/customerusers/{user_id}", headers=jsonapi_headers(write=True), timeout=30
    )
    assert response.status_code == 204, response.text
    rejects = tmp_path / "rejects.jsonl"
    run = run_tap(
        tmp_path, _config(sandbox, streams=["ecommerce_orders"], rejects_path=str(rejects))
    )
    assert run.returncode == 0, run.stderr[-3000:]
    lost = {o["id"] for o in orders if _rel_id(o, "customerUser") == user_id}
    assert _ids(run, "ecommerce_orders") == {o["id"] for o in orders} - lost
    lines = rejects.read_text().splitlines()
    assert len(lines) == len(lost)
    assert all('"missing_customer"' in ln and '"customerUser"' in ln for ln in lines)


def test_storefront_links_statuses_and_removed_carts(sandbox: Any, tmp_path: Path) -> None:
    """Carts and products link to the storefront; an emptied or deleted cart is removed once; an
    order whose status or shipping status changes is emitted again with the mapped statuses."""
    import requests

    oro = Oro(sandbox)
    shop = "https://shop.example.com"
    config = _config(sandbox, storefront_url=shop + "/", price_list_id=1, price_currency="USD")
    first = run_tap(tmp_path, config, name="first")
    assert first.returncode == 0, first.stderr[-3000:]
    # price: the price list's price for the smallest quantity; tiered products (a lower price from
    # quantity 10) exist, so "smallest quantity" and "lowest value" differ
    tiers: dict[str, list[tuple[float, float]]] = {}
    for price in oro.list("productprices", **{"filter[priceList]": "1"}):
        attrs = price["attributes"]
        tiers.setdefault(str(_rel_id(price, "product")), []).append(
            (float(attrs["quantity"]), float(attrs["value"]))
        )
    assert any(len(t) > 1 and min(t)[1] > min(v for _, v in t) for t in tiers.values())
    priced = {p["id"]: p["price"] for p in first.records["ecommerce_products"]}
    assert set(priced) == {p["id"] for p in oro.list("products")}
    assert priced == {k: pytest.approx(min(tiers[k])[1]) for k in priced}
    carts = first.records["ecommerce_carts"]
    assert all(c["checkout_url"] == f"{shop}/customer/shoppinglist/update/{c['id']}" for c in carts)
    assert not any(c.get("deleted") for c in carts)
    products = first.records["ecommerce_products"]
    assert all(p["url"] == f"{shop}/product/view/{p['id']}" for p in products)
    # image_url: the main image's largest resized version (product_original), on the storefront host
    images = {
        str(_rel_id(i, "product")): str(_rel_id(i, "image")) for i in oro.list("productimages")
    }
    assert images
    assert len(images) < len(products)  # some products have no image
    for product in products:
        file_id = images.get(product["id"])
        if file_id is None:
            assert product["image_url"] is None
        else:
            assert product["image_url"].startswith(
                f"{shop}/media/cache/attachment/filter/product_original/"
            )
            assert product["image_url"].split("/")[-2] == file_id
    internal = {o["id"]: _rel_id(o, "internalStatus") for o in oro.list("orders")}
    shipping = {o["id"]: _rel_id(o, "shippingStatus") for o in oro.list("orders")}
    expect_financial = {"open": "pending", "cancelled": "cancelled", "closed": "paid"}
    for order in first.records["ecommerce_orders"]:
        assert order["financial_status"] == expect_financial.get(internal[order["id"]] or "")
        shipped = {"shipped": "shipped", "not_shipped": None}[shipping[order["id"]] or ""]
        assert order["fulfillment_status"] == shipped

    emptied, deleted = carts[0]["id"], carts[1]["id"]
    control = sandbox.oro_base_url + "/_sandbox/oro"
    for cid, action in ((emptied, "empty"), (deleted, "delete")):
        r = requests.post(f"{control}/shoppinglists/{cid}", json={"action": action}, timeout=30)
        assert r.status_code == 204, r.text
    open_orders = [o for o in first.records["ecommerce_orders"] if internal[o["id"]] == "open"]
    cancelled, shipped_order = open_orders[0]["id"], open_orders[1]["id"]
    r = requests.post(
        f"{control}/orders/{cancelled}", json={"internalStatus": "cancelled"}, timeout=30
    )
    assert r.status_code == 200, r.text
    body = {"data": {"type": "ordershippingstatuses", "id": "shipped"}}
    r = oro.session.patch(
        f"{oro.api}/orders/{shipped_order}/relationships/shippingStatus",
        json=body,
        headers=jsonapi_headers(write=True),
        timeout=30,
    )
    assert r.status_code == 204, r.text
    stamps = {o["id"]: o["updated_at"] for o in first.records["ecommerce_orders"]}
    now = {o["id"]: o["attributes"]["updatedAt"] for o in oro.list("orders")}
    assert now[cancelled] > stamps[cancelled]  # a status change moves updatedAt
    assert now[shipped_order] > stamps[shipped_order]

    time.sleep(2.1)
    second = run_tap(tmp_path, config, state=first.state, name="second")
    assert second.returncode == 0, second.stderr[-3000:]
    removed = second.records.get("ecommerce_carts") or []
    assert sorted((c["id"], c.get("deleted")) for c in removed) == sorted(
        [(emptied, True), (deleted, True)]
    )
    validator = Draft7Validator(ECOMMERCE_SCHEMAS["ecommerce_carts"])
    assert all(not list(validator.iter_errors(c)) for c in removed)
    orders = {o["id"]: o for o in second.records["ecommerce_orders"]}
    assert set(orders) == {cancelled, shipped_order}
    assert orders[cancelled]["financial_status"] == "cancelled"
    assert orders[shipped_order]["fulfillment_status"] == "shipped"
    assert orders[shipped_order]["financial_status"] == "pending"

    time.sleep(2.1)
    third = run_tap(tmp_path, config, state=second.state, name="third")
    assert third.returncode == 0, third.stderr[-3000:]
    assert {s: len(r) for s, r in third.records.items() if r} == {}  # each removal sent once


def test_image_path_reads_both_file_path_shapes() -> None:
    listed = [
        {"url": "/m/product_small/a.jpg", "dimension": "product_small"},
        {"url": "/m/product_original/a.jpg", "dimension": "product_original", "url_webp": "x.webp"},
    ]
    assert image_path(listed) == "/m/product_original/a.jpg"  # Oro 5.1+: a list, largest wins
    assert image_path({"product_small": "/s.jpg", "product_large": "/l.jpg"}) == "/l.jpg"  # older: a map
    assert image_path({"custom_size": "/c.jpg"}) == "/c.jpg"
    assert image_path([]) is None
    assert image_path(None) is None
