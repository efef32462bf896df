"""Campaign upsert, marketing activities, tags relationship, shopping lists, permissions (§5.7-5.10, §6.3)."""

from __future__ import annotations

import uuid
from typing import Any

MA_TYPES = {"send", "open", "click", "soft_bounce", "hard_bounce", "unsubscribe"}


def _campaign(code: str, name: str, upsert: Any = None) -> dict[str, Any]:
    data: dict[str, Any] = {"type": "campaigns", "attributes": {"code": code, "name": name}}
    if upsert is not None:
        data["meta"] = {"upsert": upsert}
    return {"data": data}


def _code() -> str:
    return "c" + uuid.uuid4().hex[:10]


def test_campaign_upsert_by_code_creates_then_updates(api: Any) -> None:
    code = _code()
    first = api.post("/campaigns", _campaign(code, "First", ["code"]))
    assert first.status_code == 201
    second = api.post("/campaigns", _campaign(code, "Second", ["code"]))
    assert second.status_code == 200
    assert second.json()["data"]["id"] == first.json()["data"]["id"]
    assert second.json()["data"]["attributes"]["name"] == "Second"
    assert "meta" not in second.json()["data"]
    listed = api.get("/campaigns", params={"filter[code]": code}).json()["data"]
    assert len(listed) == 1


def test_campaign_duplicate_code_without_upsert_is_400(api: Any) -> None:
    code = _code()
    assert api.post("/campaigns", _campaign(code, "A")).status_code == 201
    r = api.post("/campaigns", _campaign(code, "B"))
    assert r.status_code == 400
    assert r.json()["errors"][0]["source"] == {"pointer": "/data/attributes/code"}


def test_campaign_code_validation(api: Any) -> None:
    r = api.post("/campaigns", _campaign("bad code!", "x" * 101))
    titles = {e["source"]["pointer"]: e["title"] for e in r.json()["errors"]}
    assert titles == {"/data/attributes/code": "regex constraint", "/data/attributes/name": "length constraint"}
    r = api.post("/campaigns", _campaign("a" * 21, "ok"))
    assert r.json()["errors"][0]["detail"] == "This value is too long. It should have 20 characters or less."


def test_upsert_by_identifier_is_rejected_for_auto_id(api: Any) -> None:
    r = api.post("/campaigns", _campaign(_code(), "x", True))
    assert r.status_code == 400
    assert r.json()["errors"] == [{"status": "400", "title": "value constraint",
                                   "detail": "The upsert operation cannot use the entity identifier to find an entity.",
                                   "source": {"pointer": "/meta/upsert"}}]


def test_upsert_by_non_unique_field_is_rejected(api: Any) -> None:
    r = api.post("/campaigns", _campaign(_code(), "x", ["name"]))
    assert r.json()["errors"][0]["detail"] == "The upsert operation cannot use this field to find an entity."
    r = api.post("/campaigns", _campaign(_code(), "x", ["name", "code"]))
    assert r.json()["errors"][0]["detail"] == "The upsert operation cannot use these fields to find an entity."


def test_customer_user_upsert_is_not_allowed(api: Any) -> None:
    body = {"data": {"type": "customerusers", "meta": {"upsert": ["email"]}, "attributes": {"email": "a@b.co"}}}
    r = api.post("/customerusers", body)
    assert r.status_code == 400
    assert r.json()["errors"][0]["detail"] == "The upsert operation is not allowed."


def test_patch_upsert_is_not_supported_for_auto_ids(api: Any) -> None:
    r = api.patch("/campaigns/1", {"data": {"type": "campaigns", "id": "1", "meta": {"upsert": True},
                                            "attributes": {"name": "x"}}})
    assert r.status_code == 400
    assert r.json()["errors"][0]["detail"] == (
        "The upsert operation is not supported for resources with auto-generated identifier value.")


def test_marketing_activity_types(api: Any) -> None:
    ids = {t["id"] for t in api.get("/marketingactivitytypes", params={"page[size]": -1}).json()["data"]}
    assert ids == MA_TYPES


def test_create_marketing_activity_for_each_type(api: Any) -> None:
    for kind in sorted(MA_TYPES):
        r = api.post("/marketingactivities", {"data": {
            "type": "marketingactivities", "attributes": {"actionDate": "2025-01-02T10:30:00Z", "details": '{"k":1}'},
            "relationships": {"marketingActivityType": {"data": {"type": "marketingactivitytypes", "id": kind}},
                              "entity": {"data": {"type": "customerusers", "id": "2"}},
                              "campaign": {"data": {"type": "campaigns", "id": "1"}}}}})
        assert r.status_code == 201, r.text
        data = r.json()["data"]
        assert data["attributes"]["actionDate"] == "2025-01-02T10:30:00Z"
        assert data["relationships"]["entity"]["data"] == {"type": "customerusers", "id": "2"}
        assert data["relationships"]["marketingActivityType"]["data"]["id"] == kind


def _activity(kind: str) -> dict[str, Any]:
    return {"type": "marketingactivities", "attributes": {"actionDate": "2025-01-03T10:30:00Z"},
            "relationships": {"marketingActivityType": {"data": {"type": "marketingactivitytypes", "id": kind}},
                              "entity": {"data": {"type": "customerusers", "id": "2"}}}}


def test_marketing_activity_batch_api_is_405_in_stock_oro_and_served_with_the_switch(api: Any, sb: Any) -> None:
    body = {"data": [_activity("open"), _activity("click")]}
    stock = api.patch("/marketingactivities", body, headers={"X-Mode": "sync"})
    assert stock.status_code == 405
    assert "PATCH" not in stock.headers["Allow"]
    sb.set_switches(marketingactivities_batch=True)
    try:
        r = api.patch("/marketingactivities", body, headers={"X-Mode": "sync"})
        assert r.status_code == 200, r.text
        created = r.json()["data"]
        assert [d["relationships"]["marketingActivityType"]["data"]["id"] for d in created] == ["open", "click"]
        for item in created:
            assert api.get(f"/marketingactivities/{item['id']}").status_code == 200
    finally:
        sb.set_switches(marketingactivities_batch=False)


def test_marketing_activity_required_fields(api: Any) -> None:
    r = api.post("/marketingactivities", {"data": {"type": "marketingactivities"}})
    assert r.status_code == 400
    assert sorted(e["source"]["pointer"] for e in r.json()["errors"]) == [
        "/data/attributes/actionDate", "/data/relationships/entity/data",
        "/data/relationships/marketingActivityType/data"]


def test_marketing_activity_unknown_type_is_rejected(api: Any) -> None:
    r = api.post("/marketingactivities", {"data": {
        "type": "marketingactivities", "attributes": {"actionDate": "2025-01-02T10:30:00Z"},
        "relationships": {"marketingActivityType": {"data": {"type": "marketingactivitytypes", "id": "conversion"}},
                          "entity": {"data": {"type": "customerusers", "id": "2"}}}}})
    assert r.status_code == 400
    assert r.json()["errors"][0]["source"] == {"pointer": "/data/relationships/marketingActivityType/data"}


def test_datetime_without_timezone_is_rejected(api: Any) -> None:
    r = api.post("/marketingactivities", {"data": {
        "type": "marketingactivities", "attributes": {"actionDate": "2025-01-02T10:30:00"},
        "relationships": {"marketingActivityType": {"data": {"type": "marketingactivitytypes", "id": "open"}},
                          "entity": {"data": {"type": "customerusers", "id": "2"}}}}})
    assert r.status_code == 400
    assert r.json()["errors"][0]["source"] == {"pointer": "/data/attributes/actionDate"}


def test_tags_relationship_add_remove_replace(sb: Any, api: Any, new_user: Any) -> None:
    user = new_user()
    path = f"/customerusers/{user['id']}/relationships/tags"
    assert api.get(path).json()["data"] == []
    sb.advance_clock(5)
    assert api.post(path, {"data": [{"type": "tags", "id": "1"}, {"type": "tags", "id": "2"}]}).status_code == 204
    assert api.get(path).json()["data"] == [{"type": "tags", "id": "1"}, {"type": "tags", "id": "2"}]
    after_add = api.get(f"/customerusers/{user['id']}").json()["data"]["attributes"]["updatedAt"]
    assert after_add > user["attributes"]["updatedAt"]
    assert api.delete(path, {"data": [{"type": "tags", "id": "1"}]}).status_code == 204
    assert api.get(path).json()["data"] == [{"type": "tags", "id": "2"}]
    assert api.patch(path, {"data": [{"type": "tags", "id": "3"}]}).status_code == 204
    assert api.get(path).json()["data"] == [{"type": "tags", "id": "3"}]
    entities = api.get("/tags/3").json()["data"]["relationships"]["entities"]["data"]
    assert {"type": "customerusers", "id": user["id"]} in entities


def test_create_tag_and_unique_name(api: Any) -> None:
    name = "tag-" + uuid.uuid4().hex[:8]
    assert api.post("/tags", {"data": {"type": "tags", "attributes": {"name": name}}}).status_code == 201
    r = api.post("/tags", {"data": {"type": "tags", "attributes": {"name": name}}})
    assert r.status_code == 400
    assert api.get("/tags", params={"filter[name]": name}).json()["data"][0]["attributes"]["name"] == name


def test_tagging_switch_off_hides_tags_relationship(sb: Any, api: Any) -> None:
    sb.set_switches(tagging=False)
    try:
        user = api.get("/customerusers/1").json()["data"]
        assert "tags" not in user["relationships"]
        assert api.get("/customerusers/1/relationships/tags").status_code == 404
        assert "included" not in api.get("/customerusers/1", params={"include": "tags"}).json()
    finally:
        sb.set_switches(tagging=True)
    assert "tags" in api.get("/customerusers/1").json()["data"]["relationships"]


def test_shoppinglists_only_with_switch(sb: Any, api: Any) -> None:
    r = api.get("/shoppinglists")
    assert r.status_code == 404
    assert r.json()["errors"][0]["title"] == "resource not accessible exception"
    sb.set_switches(shoppinglists=True)
    try:
        lists = api.get("/shoppinglists", params={"page[size]": -1, "include": "items",
                                                  "filter[updatedAt][gte]": "2000-01-01"}).json()
        assert lists["data"]
        first = lists["data"][0]
        assert first["relationships"]["customerUser"]["data"]["type"] == "customerusers"
        assert {i["type"] for i in lists["included"]} == {"shoppinglistitems"}
        assert api.post("/shoppinglists", {"data": {"type": "shoppinglists"}}).status_code == 405
    finally:
        sb.set_switches(shoppinglists=False)


def test_denied_create_gets_403(sb: Any, make_api: Any) -> None:
    control = sb.control("oro")
    created = control.post("/_sandbox/oro/clients", json={"client_id": "no-ma", "client_secret": "s3cret",
                                                             "denied": {"marketingactivities": ["create"]}})
    assert created.status_code == 201
    limited = make_api("no-ma", "s3cret")
    r = limited.post("/marketingactivities", {"data": {
        "type": "marketingactivities", "attributes": {"actionDate": "2025-01-02T10:30:00Z"},
        "relationships": {"marketingActivityType": {"data": {"type": "marketingactivitytypes", "id": "open"}},
                          "entity": {"data": {"type": "customerusers", "id": "2"}}}}})
    assert r.status_code == 403
    assert r.json() == {"errors": [{"status": "403", "title": "access denied exception",
                                    "detail": "No access to this type of entities."}]}
    assert limited.get("/marketingactivities").status_code == 200


def test_denied_view_gets_403_on_item(sb: Any, make_api: Any) -> None:
    sb.control("oro").post("/_sandbox/oro/clients", json={"client_id": "no-view", "client_secret": "x",
                                                           "denied": {"customers": ["view"]}})
    limited = make_api("no-view", "x")
    assert limited.get("/customers/1").json()["errors"][0]["detail"] == "No access to the entity."
    assert limited.get("/customers").status_code == 403


def test_datetime_input_with_offset_and_fraction_is_stored_in_utc(api: Any) -> None:
    r = api.post("/marketingactivities", {"data": {
        "type": "marketingactivities", "attributes": {"actionDate": "2025-01-02T12:30:00.250+02:00"},
        "relationships": {"marketingActivityType": {"data": {"type": "marketingactivitytypes", "id": "click"}},
                          "entity": {"data": {"type": "customerusers", "id": "3"}}}}})
    assert r.status_code == 201
    assert r.json()["data"]["attributes"]["actionDate"] == "2025-01-02T10:30:00Z"
    found = api.get("/marketingactivities", params={"filter[actionDate]": "2025-01-02T10:30:00Z"}).json()["data"]
    assert r.json()["data"]["id"] in {a["id"] for a in found}


def test_denied_edit_gets_403_on_patch(sb: Any, make_api: Any) -> None:
    sb.control("oro").post("/_sandbox/oro/clients", json={"client_id": "no-edit", "client_secret": "y",
                                                           "denied": {"customerusers": ["edit"]}})
    limited = make_api("no-edit", "y")
    r = limited.patch("/customerusers/1", {"data": {"type": "customerusers", "id": "1",
                                                    "attributes": {"firstName": "Nope"}}})
    assert r.status_code == 403
    assert r.json()["errors"][0] == {"status": "403", "title": "access denied exception",
                                     "detail": "No access to the entity."}
    assert limited.get("/customerusers/1").status_code == 200


def test_order_upsert_by_identifier(api: Any) -> None:
    identifier = "EXT-" + uuid.uuid4().hex[:8]
    body = {"data": {"type": "orders", "meta": {"upsert": ["identifier"]}, "attributes": {"identifier": identifier},
                     "relationships": {"customer": {"data": {"type": "customers", "id": "1"}}}}}
    created = api.post("/orders", body)
    assert created.status_code == 201
    body["data"]["attributes"]["poNumber"] = "PO-UPSERT"
    updated = api.post("/orders", body)
    assert updated.status_code == 200
    assert updated.json()["data"]["id"] == created.json()["data"]["id"]
    assert updated.json()["data"]["attributes"]["poNumber"] == "PO-UPSERT"
