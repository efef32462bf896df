"""Orders as Oro serves them: relationships, statuses, totals (items 12 and 13 of issue 12).

Sources: orocommerce ``src/Oro/Bundle/OrderBundle`` at 6.1.0 / 6.1.9:
* ``Tests/Functional/Api/RestJsonApi/responses/get_order.yml`` (the relationships of an order),
* ``Resources/config/oro/api.yml`` (``internalStatus``: ``mapped: false`` and no ``update_relationship``;
  ``orderSubtotals``: computed, subresource disabled; ``OrderSubtotal``: get_list with ``filter[order]``),
* ``Resources/doc/api/order.md`` (internalStatus and totals read-only; ``status`` read-only unless
  "Enable External Status Management"),
* ``Api/Processor/ConfigureOrderStatusField.php`` (without that option ``status`` has no property path),
* ``Tests/Functional/Api/RestJsonApi/OrderWithExternalStatusManagementTest.php`` (with it: PATCH and
  ``PATCH …/relationships/status`` take effect; a new order gets ``open``),
* ``Migrations/Data/ORM/LoadOrderInternalStatuses.php``, ``LoadAdditionalOrderInternalStatuses.php``,
  ``LoadOrderShippingStatuses.php``, ``Tests/Functional/DataFixtures/LoadOrderStatuses.php``,
* ``Resources/config/oro/actions.yml`` (``oro_order_cancel``/``oro_order_close``: back-office actions, not API),
* ``Tests/Functional/Api/RestJsonApi/OrderSubtotalsTest.php``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

GET_ORDER_YML_RELATIONSHIPS = [
    "billingAddress", "shippingAddress", "lineItems", "discounts", "shippingTrackings", "paymentTerm",
    "internalStatus", "status", "shippingStatus", "source", "owner", "organization", "customerUser", "customer",
    "orderSubtotals", "documents",
]


def _order(api: Any, oid: str, **params: str) -> dict[str, Any]:
    r = api.get(f"/orders/{oid}", params=params)
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    return doc


def _order_with_addresses(api: Any) -> dict[str, Any]:
    for order in api.get("/orders", params={"page[size]": 50}).json()["data"]:
        if order["relationships"]["billingAddress"]["data"] is not None:
            return order  # type: ignore[no-any-return]
    raise AssertionError("no seeded order with addresses")


def _patch_order(api: Any, oid: str, **rels: Any) -> requests.Response:
    body = {"data": {"type": "orders", "id": oid, "relationships": {
        name: {"data": value} for name, value in rels.items()}}}
    r: requests.Response = api.patch(f"/orders/{oid}", body)
    return r


def _control(sb: Any, oid: str, **body: Any) -> requests.Response:
    r: requests.Response = sb.control("oro").post(f"/_sandbox/oro/orders/{oid}", json=body)
    return r


def test_order_has_the_relationships_of_get_order_yml(api: Any) -> None:
    order = _order_with_addresses(api)
    rels = order["relationships"]
    assert list(rels) == GET_ORDER_YML_RELATIONSHIPS
    oid = order["id"]
    assert rels["billingAddress"]["data"]["type"] == "orderaddresses"
    assert rels["shippingAddress"]["data"]["type"] == "orderaddresses"
    assert rels["discounts"]["data"] == []
    assert rels["shippingTrackings"]["data"] == []
    assert rels["status"]["data"] is None  # "Enable External Status Management" is off
    assert rels["shippingStatus"]["data"]["type"] == "ordershippingstatuses"
    assert rels["source"]["data"] is None
    assert rels["documents"]["data"] == []
    assert [s["id"] for s in rels["orderSubtotals"]["data"]] == [
        f"{oid}-subtotal-0", f"{oid}-discount-1", f"{oid}-shipping_cost-2"]
    assert "links" not in rels["orderSubtotals"]  # its subresource is disabled
    assert rels["shippingStatus"]["links"]["related"].endswith(f"/orders/{oid}/shippingStatus")


def test_order_addresses_are_copies_of_the_buyers_address(api: Any) -> None:
    order = _order_with_addresses(api)
    oid = order["id"]
    doc = _order(api, oid, include="billingAddress,shippingAddress,customerUser.addresses")
    included = {(i["type"], i["id"]): i for i in doc["included"]}
    billing = included[("orderaddresses", order["relationships"]["billingAddress"]["data"]["id"])]
    shipping = included[("orderaddresses", order["relationships"]["shippingAddress"]["data"]["id"])]
    user_addresses = [i for i in doc["included"] if i["type"] == "customeruseraddresses"]
    assert user_addresses
    source = user_addresses[0]
    for address in (billing, shipping):
        for key in ("street", "city", "postalCode", "firstName", "lastName", "phone"):
            assert address["attributes"][key] == source["attributes"][key]
        assert address["relationships"]["country"]["data"] == source["relationships"]["country"]["data"]
    # an order address is its own record: changing the buyer's address leaves the order's alone
    r = api.patch(f"/customeruseraddresses/{source['id']}", {"data": {
        "type": "customeruseraddresses", "id": source["id"], "attributes": {"street": "1 Changed Street"}}})
    assert r.status_code == 200, r.text
    again = api.get(f"/orders/{oid}/billingAddress").json()["data"]
    assert again["attributes"]["street"] == billing["attributes"]["street"] != "1 Changed Street"
    assert api.get(f"/orderaddresses/{billing['id']}").status_code == 200
    assert api.post("/orderaddresses", {"data": {"type": "orderaddresses"}}).status_code == 405


def test_relationships_to_resources_the_sandbox_does_not_serve(api: Any) -> None:
    assert api.get("/orders/1/discounts").json() == {"data": []}
    assert api.get("/orders/1/relationships/shippingTrackings").json()["data"] == []
    assert api.get("/orders/1/documents").json()["data"] == []  # `files` is served (product images)
    r = api.get("/orderdiscounts")
    assert r.status_code == 404
    assert r.json()["errors"][0]["title"] == "resource not accessible exception"
    r = api.get("/orders/1/orderSubtotals")
    assert r.status_code == 404
    assert r.json()["errors"][0]["detail"] == "Unsupported subresource."


def test_order_subtotals(api: Any) -> None:
    r = api.get("/ordersubtotals")
    assert r.json()["errors"] == [{"status": "400", "title": "filter constraint",
                                   "detail": 'The "order" filter is required.'}]
    r = api.get("/ordersubtotals", params={"filter[order]": "text"})
    assert r.json()["errors"][0]["detail"] == 'Expected integer value. Given "text".'
    assert r.json()["errors"][0]["source"] == {"parameter": "filter[order]"}
    order = _order(api, "1")["data"]
    subtotals = api.get("/ordersubtotals", params={"filter[order]": "1"}).json()["data"]
    first = subtotals[0]
    assert first["id"] == "1-subtotal-0"
    assert first["attributes"]["orderSubtotalType"] == "subtotal"
    assert first["attributes"]["amount"] == order["attributes"]["subtotalValue"]
    assert first["relationships"]["order"]["data"] == {"type": "orders", "id": "1"}
    total = sum(float(s["attributes"]["signedAmount"]) for s in subtotals)
    assert f"{total:.4f}" == order["attributes"]["totalValue"]
    assert api.get("/ordersubtotals", params={"filter[order]": "99999999"}).json()["data"] == []
    included = _order(api, "1", include="orderSubtotals")["included"]
    assert [i["id"] for i in included] == ["1-subtotal-0", "1-discount-1", "1-shipping_cost-2"]


def test_internal_status_is_read_only_through_the_api(sb: Any, api: Any) -> None:
    before = _order(api, "3")["data"]
    sb.advance_clock(5)
    target = "cancelled" if before["relationships"]["internalStatus"]["data"]["id"] != "cancelled" else "open"
    r = _patch_order(api, "3", internalStatus={"type": "orderinternalstatuses", "id": target})
    assert r.status_code == 200  # "The read-only field. A passed value will be ignored."
    after = r.json()["data"]
    assert after["relationships"]["internalStatus"] == before["relationships"]["internalStatus"]
    assert after["attributes"]["updatedAt"] == before["attributes"]["updatedAt"]
    r = api.patch("/orders/3/relationships/internalStatus", {"data": {"type": "orderinternalstatuses", "id": target}})
    assert r.status_code == 405
    assert r.headers["Allow"] == "OPTIONS, GET"


def test_status_is_ignored_without_external_status_management(sb: Any, api: Any) -> None:
    before = _order(api, "4")["data"]
    sb.advance_clock(5)
    r = _patch_order(api, "4", status={"type": "orderstatuses", "id": "wait_for_approval"})
    assert r.status_code == 200
    assert r.json()["data"]["relationships"]["status"]["data"] is None
    assert r.json()["data"]["attributes"]["updatedAt"] == before["attributes"]["updatedAt"]
    r = api.patch("/orders/4/relationships/status", {"data": {"type": "orderstatuses", "id": "closed"}})
    assert r.status_code == 204
    assert api.get("/orders/4/relationships/status").json()["data"] is None
    assert api.get("/orders", params={"filter[status]": "open"}).json()["errors"][0]["detail"] == \
        "The filter is not supported."


@pytest.fixture
def external_status(sb: Any) -> Iterator[None]:
    sb.set_switches(order_external_status_management=True)
    try:
        yield
    finally:
        sb.set_switches(order_external_status_management=False)


def test_status_is_writable_with_external_status_management(sb: Any, api: Any, external_status: None) -> None:
    before = _order(api, "5")["data"]
    sb.advance_clock(5)
    r = _patch_order(api, "5", status={"type": "orderstatuses", "id": "wait_for_approval"})
    assert r.status_code == 200, r.text
    after = r.json()["data"]
    assert after["relationships"]["status"]["data"] == {"type": "orderstatuses", "id": "wait_for_approval"}
    assert after["attributes"]["updatedAt"] > before["attributes"]["updatedAt"]
    listed = api.get("/orders", params={"filter[status]": "wait_for_approval", "page[size]": -1}).json()["data"]
    assert "5" in {o["id"] for o in listed}
    r = api.patch("/orders/5/relationships/status", {"data": {"type": "orderstatuses", "id": "open"}})
    assert r.status_code == 204
    assert api.get("/orders/5/relationships/status").json()["data"] == {"type": "orderstatuses", "id": "open"}
    assert _patch_order(api, "5", status={"type": "orderstatuses", "id": "shipped"}).status_code == 400
    created = api.post("/orders", {"data": {"type": "orders", "relationships": {
        "customer": {"data": {"type": "customers", "id": "1"}}}}}).json()["data"]
    assert created["relationships"]["status"]["data"] == {"type": "orderstatuses", "id": "open"}
    assert created["relationships"]["internalStatus"]["data"] == {"type": "orderinternalstatuses", "id": "open"}
    assert created["relationships"]["shippingStatus"]["data"] == {"type": "ordershippingstatuses", "id": "not_shipped"}


def test_shipping_status_is_writable(sb: Any, api: Any) -> None:
    before = _order(api, "6")["data"]
    sb.advance_clock(5)
    r = _patch_order(api, "6", shippingStatus={"type": "ordershippingstatuses", "id": "partially_shipped"})
    assert r.status_code == 200, r.text
    after = r.json()["data"]
    assert after["relationships"]["shippingStatus"]["data"]["id"] == "partially_shipped"
    assert after["attributes"]["updatedAt"] > before["attributes"]["updatedAt"]


def test_shipping_cost_change_recomputes_the_total(sb: Any, api: Any) -> None:
    before = _order(api, "7")["data"]["attributes"]
    r = api.patch("/orders/7", {"data": {"type": "orders", "id": "7", "attributes": {
        "overriddenShippingCostAmount": "12.5"}}})
    assert r.status_code == 200, r.text
    after = r.json()["data"]["attributes"]
    expected = float(before["subtotalValue"]) - float(before["totalDiscountsAmount"]) + 12.5
    assert after["totalValue"] == f"{expected:.4f}"
    assert after["subtotalValue"] == before["subtotalValue"]


def test_control_route_changes_internal_status_and_discounts(sb: Any, api: Any) -> None:
    before = _order(api, "8")["data"]
    stamp = before["attributes"]["updatedAt"]
    sb.advance_clock(5)
    r = _control(sb, "8", internalStatus="processing", totalDiscountsAmount=3)
    assert r.status_code == 200, r.text
    after = _order(api, "8")["data"]
    assert after["relationships"]["internalStatus"]["data"] == {"type": "orderinternalstatuses", "id": "processing"}
    assert after["attributes"]["totalDiscountsAmount"] == "3.0000"
    attrs = after["attributes"]
    shipping = float(attrs["overriddenShippingCostAmount"] or attrs["estimatedShippingCostAmount"] or 0)
    assert attrs["totalValue"] == f"{float(attrs['subtotalValue']) - 3 + shipping:.4f}"
    assert attrs["updatedAt"] > stamp
    # an incremental reader sees the change
    changed = api.get("/orders", params={"filter[updatedAt][gt]": stamp, "page[size]": -1}).json()["data"]
    assert "8" in {o["id"] for o in changed}
    # the same values again: nothing written, updatedAt stays
    sb.advance_clock(5)
    assert _control(sb, "8", internalStatus="processing").status_code == 200
    assert _order(api, "8")["data"]["attributes"]["updatedAt"] == attrs["updatedAt"]


def test_control_route_rejects_bad_input(sb: Any) -> None:
    assert _control(sb, "8", internalStatus="shipped").status_code == 400
    assert _control(sb, "8", colour="red").status_code == 400
    assert _control(sb, "8", totalDiscountsAmount="lots").status_code == 400
    assert _control(sb, "99999999", internalStatus="open").status_code == 404
    name = f"x{uuid.uuid4().hex[:4]}"
    assert _control(sb, name, internalStatus="open").status_code == 404

