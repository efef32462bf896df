"""Switch `order_campaign_relation`: the custom many-to-one relation Order -> Campaign.

An admin adds a relation `campaign` from Order to Campaign in Entity Management; Oro then exposes it
in the back-office API like any other to-one relationship (read, write, filter, relationship route).
Without it the relationship is absent and writing it is an "extra fields constraint".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def relation_on(sb: Any) -> Iterator[None]:
    sb.set_switches(order_campaign_relation=True)
    try:
        yield
    finally:
        sb.set_switches(order_campaign_relation=False)


def _order(api: Any, oid: int) -> dict[str, Any]:
    r = api.get(f"/orders/{oid}")
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()["data"]
    return doc


def test_off_by_default_relation_absent_and_write_rejected(api: Any) -> None:
    assert "campaign" not in _order(api, 1)["relationships"]
    body = {
        "data": {
            "type": "orders",
            "id": "1",
            "relationships": {"campaign": {"data": {"type": "campaigns", "id": "1"}}},
        }
    }
    r = api.patch("/orders/1", body)
    assert r.status_code == 400
    assert r.json()["errors"][0]["title"] == "extra fields constraint"
    assert api.get("/orders", params={"filter[campaign]": "1"}).status_code == 400
    assert api.get("/orders/1/relationships/campaign").status_code == 404


def test_relation_read_write_filter(sb: Any, api: Any, relation_on: None) -> None:
    order = _order(api, 2)
    assert order["relationships"]["campaign"]["data"] is None
    before = order["attributes"]["updatedAt"]
    sb.advance_clock(5)
    body = {
        "data": {
            "type": "orders",
            "id": "2",
            "relationships": {"campaign": {"data": {"type": "campaigns", "id": "3"}}},
        }
    }
    r = api.patch("/orders/2", body)
    assert r.status_code == 200, r.text
    after = r.json()["data"]
    assert after["relationships"]["campaign"]["data"] == {"type": "campaigns", "id": "3"}
    assert after["attributes"]["updatedAt"] > before  # a relationship change is a change
    listed = api.get("/orders", params={"filter[campaign]": "3", "page[size]": 100}).json()["data"]
    assert "2" in {o["id"] for o in listed}
    rel = api.get("/orders/2/relationships/campaign").json()
    assert rel["data"] == {"type": "campaigns", "id": "3"}
    included = api.get("/orders/2", params={"include": "campaign"}).json()["included"]
    assert [(i["type"], i["id"]) for i in included] == [("campaigns", "3")]
    # unchanged value: no write, updatedAt stays
    stamp = after["attributes"]["updatedAt"]
    sb.advance_clock(5)
    assert api.patch("/orders/2", body).json()["data"]["attributes"]["updatedAt"] == stamp
    # unknown campaign: validation error on the relationship pointer
    bad = {
        "data": {
            "type": "orders",
            "id": "2",
            "relationships": {"campaign": {"data": {"type": "campaigns", "id": "9999"}}},
        }
    }
    r = api.patch("/orders/2", bad)
    assert r.status_code == 400
    assert r.json()["errors"][0]["source"]["pointer"] == "/data/relationships/campaign/data"


def test_relation_in_sync_batch(api: Any, relation_on: None) -> None:
    items = [
        {
            "meta": {"update": True},
            "type": "orders",
            "id": str(i),
            "relationships": {"campaign": {"data": {"type": "campaigns", "id": "1"}}},
        }
        for i in (4, 5)
    ]
    r = api.patch("/orders", {"data": items}, headers={"X-Mode": "sync"})
    assert r.status_code == 200, r.text
    for oid in (4, 5):
        assert _order(api, oid)["relationships"]["campaign"]["data"] == {
            "type": "campaigns",
            "id": "1",
        }
