"""JSON:API documents: shape, links, media types, value formats, fields, include (§2, §3.1, §3.5, §3.6)."""

from __future__ import annotations

import re
from typing import Any

import requests

JSONAPI = "application/vnd.api+json"
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
MONEY = re.compile(r"^-?\d+\.\d{4}$")


def test_list_document_shape_and_links(api: Any) -> None:
    r = api.get("/customerusers")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith(JSONAPI)
    doc = r.json()
    assert doc["links"]["self"] == api.base + "/customerusers"
    item = doc["data"][0]
    assert item["type"] == "customerusers"
    assert isinstance(item["id"], str)
    assert item["links"]["self"] == f"{api.base}/customerusers/{item['id']}"
    customer = item["relationships"]["customer"]
    assert customer["links"] == {
        "self": f"{api.base}/customerusers/{item['id']}/relationships/customer",
        "related": f"{api.base}/customerusers/{item['id']}/customer",
    }
    assert customer["data"]["type"] == "customers"
    assert isinstance(customer["data"]["id"], str)
    assert set(item["attributes"]) >= {"email", "firstName", "lastName", "enabled", "isGuest", "createdAt", "updatedAt"}
    assert "password" not in item["attributes"]


def test_item_document(api: Any) -> None:
    r = api.get("/customers/1")
    assert r.status_code == 200
    data = r.json()["data"]
    assert data["id"] == "1"
    assert data["type"] == "customers"
    assert "group" in data["relationships"]
    assert isinstance(data["relationships"]["users"]["data"], list)


def test_no_hateoas_removes_links(api: Any) -> None:
    r = api.get("/customerusers", headers={"X-Include": "noHateoas"})
    doc = r.json()
    assert "links" not in doc
    assert "links" not in doc["data"][0]
    assert "links" not in doc["data"][0]["relationships"]["customer"]


def test_plain_accept_gets_plain_json(api: Any) -> None:
    r = api.get("/customers/1", headers={"Accept": "application/json"})
    assert r.status_code == 200
    body = r.json()
    assert "data" not in body
    assert body["id"] == 1
    assert "name" in body


def test_unknown_resource_is_404(api: Any) -> None:
    r = api.get("/nosuchthings")
    assert r.status_code == 404
    assert r.json()["errors"][0]["title"] == "resource not accessible exception"


def test_unknown_id_is_404_not_found(api: Any) -> None:
    r = api.get("/customers/999999")
    assert r.status_code == 404
    assert r.json() == {"errors": [{"status": "404", "title": "not found http exception",
                                    "detail": "An entity with the requested identifier does not exist."}]}


def test_datetimes_are_utc_seconds_with_z_and_money_is_string(api: Any) -> None:
    order = api.get("/orders", params={"page[size]": 1}).json()["data"][0]["attributes"]
    assert DATETIME.match(order["createdAt"])
    assert DATETIME.match(order["updatedAt"])
    for name in ("subtotalValue", "totalValue", "totalDiscountsAmount"):
        assert isinstance(order[name], str)
        assert MONEY.match(order[name])
    item = api.get("/orderlineitems", params={"page[size]": 1}).json()["data"][0]["attributes"]
    assert MONEY.match(item["value"])


def test_enum_relationships_use_internal_ids(api: Any) -> None:
    order = api.get("/orders", params={"page[size]": 1}).json()["data"][0]
    assert order["relationships"]["internalStatus"]["data"]["type"] == "orderinternalstatuses"
    assert order["relationships"]["internalStatus"]["data"]["id"] in {"open", "closed", "cancelled"}


def test_sparse_fieldsets(api: Any) -> None:
    r = api.get("/customerusers", params={"fields[customerusers]": "email,customer"})
    item = r.json()["data"][0]
    assert set(item["attributes"]) == {"email"}
    assert set(item["relationships"]) == {"customer"}


def test_fields_for_unknown_type_is_400(api: Any) -> None:
    r = api.get("/customerusers", params={"fields[nosuch]": "a"})
    assert r.status_code == 400
    assert r.json()["errors"] == [{"status": "400", "title": "filter constraint",
                                   "detail": "An entity type is not known.",
                                   "source": {"parameter": "fields[nosuch]"}}]


def test_include_puts_related_resources_in_included(api: Any) -> None:
    r = api.get("/customerusers", params={"include": "customer", "page[size]": 5})
    doc = r.json()
    wanted = {d["relationships"]["customer"]["data"]["id"] for d in doc["data"]}
    included = {(i["type"], i["id"]) for i in doc["included"]}
    assert {("customers", cid) for cid in wanted} == included
    customer = next(i for i in doc["included"] if i["type"] == "customers")
    assert "name" in customer["attributes"]


def test_include_nested_path(api: Any) -> None:
    r = api.get("/orders", params={"include": "customer.group", "page[size]": 20})
    types = {i["type"] for i in r.json()["included"]}
    assert "customers" in types
    assert "customergroups" in types


def test_include_unknown_relationship_is_ignored(api: Any) -> None:
    r = api.get("/customerusers", params={"include": "nosuch", "page[size]": 1})
    assert r.status_code == 200
    assert "included" not in r.json()


def test_include_and_fields_list_syntax_errors(api: Any) -> None:
    # platform ApiBundle Tests/Functional/RestJsonApi/GetWithIncludeFieldsTest.php:
    # testIncludeFilterWithEmptyValue / ...WithEndingComma / testFieldsFilterWithStartingComma (NormalizeString)
    r = api.get("/customerusers", params={"include": "customer,"})
    assert r.json()["errors"] == [{"status": "400", "title": "filter constraint",
                                   "detail": 'Expected an array of not empty strings. Given "customer,".',
                                   "source": {"parameter": "include"}}]
    r = api.get("/customerusers", params={"include": ""})
    assert r.json()["errors"] == [{"status": "400", "title": "filter constraint",
                                   "detail": 'Expected not empty string value. Given "".',
                                   "source": {"parameter": "include"}}]
    r = api.get("/customerusers", params={"fields[customerusers]": ",email"})
    assert r.json()["errors"] == [{"status": "400", "title": "filter constraint",
                                   "detail": 'Expected an array of not empty strings. Given ",email".',
                                   "source": {"parameter": "fields[customerusers]"}}]
    r = api.get("/customerusers", params={"fields": "email"})
    assert r.json()["errors"][0]["detail"] == "An entity type is not specified."


def test_fields_items_are_not_trimmed_and_empty_means_none(api: Any) -> None:
    item = api.get("/customerusers", params={"fields[customerusers]": "email, firstName"}).json()["data"][0]
    assert set(item["attributes"]) == {"email"}
    bare = api.get("/customerusers", params={"fields[customerusers]": ""}).json()["data"][0]
    assert "attributes" not in bare
    assert "relationships" not in bare


def test_unknown_query_parameter_is_an_unsupported_filter(api: Any) -> None:
    r = api.get("/customers", params={"foo": "bar"})
    assert r.status_code == 400
    assert r.json()["errors"][0] == {"status": "400", "title": "filter constraint",
                                     "detail": "The filter is not supported.", "source": {"parameter": "foo"}}
    assert api.get("/customers/1", params={"page[size]": 5}).status_code == 400


def test_meta_title(api: Any) -> None:
    item = api.get("/customers", params={"meta": "title", "page[size]": 1}).json()["data"][0]
    assert item["meta"]["title"] == item["attributes"]["name"]
    r = api.get("/marketingactivities", params={"meta": "title"})
    assert r.status_code == 400
    assert r.json()["errors"][0]["source"] == {"parameter": "meta"}


def test_unknown_association_route_is_unsupported_subresource(api: Any) -> None:
    r = api.get("/customers/1/relationships/nosuch")
    assert r.status_code == 404
    assert r.json()["errors"] == [{"status": "404", "title": "relationship constraint",
                                   "detail": "Unsupported subresource."}]


def test_allow_header_order_on_batch_resources(api: Any) -> None:
    r = api.send("PUT", "/customers", {"data": []})
    assert r.status_code == 405
    assert r.headers["Allow"] == "OPTIONS, GET, PATCH, POST, DELETE"


def test_subresource_and_relationship_endpoints(api: Any) -> None:
    user = api.get("/customerusers/1").json()["data"]
    cid = user["relationships"]["customer"]["data"]["id"]
    related = api.get("/customerusers/1/customer").json()["data"]
    assert (related["type"], related["id"]) == ("customers", cid)
    rel = api.get("/customerusers/1/relationships/customer").json()
    assert rel["data"] == {"type": "customers", "id": cid}
    users = api.get(f"/customers/{cid}/users", params={"page[size]": -1}).json()["data"]
    assert "1" in {u["id"] for u in users}


def test_read_only_relationship_write_is_405(api: Any) -> None:
    r = api.post("/customerusers/1/relationships/addresses", {"data": []})
    assert r.status_code == 405
    assert r.content == b""
    assert r.headers["Allow"] == "OPTIONS, GET"


def test_put_is_not_implemented_405(api: Any) -> None:
    r = api.send("PUT", "/customers/1", {"data": {"type": "customers", "id": "1"}})
    assert r.status_code == 405
    assert r.content == b""
    assert r.headers["Allow"] == "OPTIONS, GET, PATCH, DELETE"


def test_batch_patch_on_marketingactivities_is_405_with_allow(api: Any) -> None:
    r = api.patch("/marketingactivities", {"data": []})
    assert r.status_code == 405
    assert r.content == b""
    assert r.headers["Allow"] == "OPTIONS, GET, POST, DELETE"


def test_read_only_dictionary_rejects_delete_405(api: Any) -> None:
    r = api.delete("/marketingactivitytypes/open")
    assert r.status_code == 405
    assert r.headers["Allow"] == "OPTIONS, GET"


def test_options_on_item_route(api: Any) -> None:
    r = requests.options(api.base + "/customers/1", headers=api.headers(), timeout=30)
    assert r.status_code == 200
    assert r.headers["Allow"] == "OPTIONS, GET, PATCH, DELETE"


def test_write_without_jsonapi_content_type_is_415(api: Any) -> None:
    r = api.session.post(api.base + "/customergroups", json={"data": {"type": "customergroups"}},
                         headers={"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"},
                         timeout=30)
    assert r.status_code == 415


def test_content_type_with_media_type_parameters_is_415(api: Any) -> None:
    r = api.post("/customergroups", {"data": {"type": "customergroups", "attributes": {"name": "x"}}},
                 headers={"Content-Type": JSONAPI + "; charset=utf-8"})
    assert r.status_code == 415


def test_ids_are_strings_everywhere(api: Any) -> None:
    doc = api.get("/orders", params={"include": "lineItems", "page[size]": 3}).json()
    for item in doc["data"] + doc["included"]:
        assert isinstance(item["id"], str)
        for rel in item.get("relationships", {}).values():
            data = rel["data"]
            for ident in data if isinstance(data, list) else [data] if data else []:
                assert isinstance(ident["id"], str)
