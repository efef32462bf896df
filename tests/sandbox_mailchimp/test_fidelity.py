"""Sandbox fidelity (issue 12): rules where the sandbox was stricter or kinder than the real API.

Each test names its source: the Mailchimp OpenAPI description (operation id), Mailchimp's docs, or
what production clients send and the real API answers.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest

SINGER_COLLECTION_FIELDS = "_links,total_items,constraints,{key}._links"


def test_fields_with_paths_the_resource_lacks_are_answered(mc: Any) -> None:
    """singer-io tap-mailchimp 1.3.3 `format_selected_fields` adds these to every collection.

    `constraints` exists only on `GET /lists`; the tap works against the real API, so the members
    collection must answer 200 with what does exist.
    """
    fields = "members.email_address," + SINGER_COLLECTION_FIELDS.format(key="members")
    resp = mc.get(mc.members, params={"fields": fields, "count": 2})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == {"members", "total_items", "_links"}
    assert all(set(m) == {"email_address", "_links"} for m in body["members"])


def test_exclude_fields_with_absent_paths_are_answered(mc: Any) -> None:
    """Airbyte's source-mailchimp sends `exclude_fields=<key>._links` on every call, tag-search too."""
    resp = mc.get(
        f"/lists/{mc.list_id}/tag-search", params={"exclude_fields": "tags._links,nothing.here"}
    )
    assert resp.status_code == 200, resp.text
    assert "tags" in resp.json()


def test_fields_naming_nothing_at_all_is_422(mc: Any) -> None:
    """Error glossary: RequestedFieldsInvalid, when no requested path exists in the response."""
    resp = mc.get(mc.members, params={"fields": "email_address,nothing"})
    assert resp.status_code == 422
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["title"] == "Requested Fields Invalid"


def _draft(mc: Any) -> dict[str, Any]:
    body = mc.get("/campaigns", params={"status": "save", "count": 1}).json()
    assert body["campaigns"], "the seed has a draft campaign"
    draft: dict[str, Any] = body["campaigns"][0]
    return draft


def test_report_collections_of_a_draft_are_empty_pages(mc: Any) -> None:
    """Airbyte's source-mailchimp (`source_mailchimp/streams.py` `EmailActivity.stream_slices`)
    reads email activity for every campaign `/campaigns` lists, drafts included, fails on HTTP
    errors, and works against real accounts with drafts: the collections answer empty, not 404."""
    draft = _draft(mc)
    for sub, key in (
        ("email-activity", "emails"),
        ("unsubscribed", "unsubscribes"),
        ("sent-to", "sent_to"),
        ("open-details", "members"),
        ("click-details", "urls_clicked"),
        ("ecommerce-product-activity", "products"),
    ):
        resp = mc.get(f"/reports/{draft['id']}/{sub}")
        assert resp.status_code == 200, (sub, resp.text)
        body = resp.json()
        assert body[key] == [], sub
        assert body["total_items"] == 0, sub
    assert mc.get(f"/reports/{draft['id']}/email-activity/{'0' * 32}").status_code == 404
    assert mc.get(f"/reports/{'f' * 10}/email-activity").status_code == 404


def test_segment_member_count_is_active_subscribers(mc: Any, fresh: Any) -> None:
    """OpenAPI `getListsIdSegmentsId` `member_count`: "The number of active subscribers currently
    included in the segment"."""
    sub, uns = mc.add(fresh()), mc.add(fresh(), status="unsubscribed")
    pending = mc.add(fresh(), status="pending")
    emails = [sub["email_address"], uns["email_address"], pending["email_address"]]
    seg = mc.post(
        f"/lists/{mc.list_id}/segments", json={"name": "Active Only", "static_segment": emails}
    )
    assert seg.status_code == 200, seg.text
    assert seg.json()["member_count"] == 1
    again = mc.get(f"/lists/{mc.list_id}/segments/{seg.json()['id']}").json()
    assert again["member_count"] == 1


def test_other_methods_and_unknown_paths_are_problem_json(mc: Any) -> None:
    """Mailchimp error glossary: 404 ResourceNotFound, 405 MethodNotAllowed "See the Allow header";
    every error is a problem document (OpenAPI `ProblemDetailDocument`)."""
    for method in ("OPTIONS", "TRACE", "PROPFIND"):
        resp = mc.request(method, "/lists")
        assert resp.status_code == 405, method
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert set(resp.headers["allow"].split(", ")) == {"GET", "POST"}
    for path in ("/nothing/here", "/lists/%2F%2F/odd", f"/lists/{mc.list_id}/members/a/b/c/d"):
        resp = mc.get(path)
        assert resp.status_code == 404, path
        assert resp.headers["content-type"].startswith("application/problem+json"), path
    outside = mc.session.get(mc.base.removesuffix("/3.0") + "/not-the-api", timeout=30)
    assert outside.status_code == 404
    assert outside.json()["title"] == "Resource Not Found"


def _uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def shop(mc: Any) -> dict[str, Any]:
    """A fresh store with one product (variant `v1`) and one customer."""
    sid = _uid("store")
    resp = mc.post(
        "/ecommerce/stores",
        json={"id": sid, "list_id": mc.list_id, "name": "Typed shop", "currency_code": "EUR"},
    )
    assert resp.status_code == 200, resp.text
    pid = _uid("prod")
    product = {"id": pid, "title": "Boots", "variants": [{"id": "v1", "title": "42", "price": 8.0}]}
    assert mc.post(f"/ecommerce/stores/{sid}/products", json=product).status_code == 200
    return {"id": sid, "product_id": pid}


def _type_error(resp: Any, field: str, message: str) -> None:
    assert resp.status_code == 400, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["title"] == "Invalid Resource"
    assert {"field": field, "message": message} in body["errors"], body


def test_write_bodies_are_type_checked_against_the_openapi_schemas(
    mc: Any, shop: dict[str, Any], fresh: Any
) -> None:
    """Mailchimp validates bodies against its JSON schema: 400 Invalid Resource, "Schema describes
    <type>, <type> found instead" per field (OpenAPI `postEcommerceStoresIdCustomers` `address`,
    `patchListsId` `contact`, `postEcommerceStores` `address`; null: drewm/mailchimp-api#212)."""
    base = f"/ecommerce/stores/{shop['id']}"
    customer = {
        "id": _uid("c"),
        "email_address": fresh(),
        "opt_in_status": False,
        "address": {"country_code": {}},
    }
    _type_error(
        mc.post(f"{base}/customers", json=customer),
        "address.country_code",
        "Schema describes string, object found instead",
    )
    _type_error(
        mc.patch(f"/lists/{mc.list_id}", json={"contact": {"city": -11648430}}),
        "contact.city",
        "Schema describes string, integer found instead",
    )
    _type_error(
        mc.patch(base, json={"address": {"latitude": {}}}),
        "address.latitude",
        "Schema describes number, object found instead",
    )
    _type_error(
        mc.patch(base, json={"name": None}), "name", "Schema describes string, NULL found instead"
    )
    assert mc.get(base).json()["name"] == "Typed shop"  # nothing stored
    assert mc.get(f"{base}/customers/{customer['id']}").status_code == 404


def test_order_line_product_id_object_is_400_not_500(
    mc: Any, shop: dict[str, Any], fresh: Any
) -> None:
    """No input may produce a 5xx: OpenAPI `postEcommerceStoresIdOrders` `lines[].product_id` is a
    string; the same on PATCH and on the order-lines sub-resource."""
    base = f"/ecommerce/stores/{shop['id']}/orders"
    line = {"id": "l1", "product_id": {}, "product_variant_id": "v1", "quantity": 1, "price": 8.0}
    order = {
        "id": _uid("ord"),
        "customer": {"id": _uid("c"), "email_address": fresh(), "opt_in_status": False},
        "currency_code": "EUR",
        "order_total": 8.0,
        "lines": [line],
    }
    msg = "Schema describes string, object found instead"
    _type_error(mc.post(base, json=order), "lines.0.product_id", msg)
    good = {**order, "lines": [{**line, "product_id": shop["product_id"]}]}
    assert mc.post(base, json=good).status_code == 200
    _type_error(
        mc.patch(f"{base}/{order['id']}", json={"lines": [line]}), "lines.0.product_id", msg
    )
    _type_error(
        mc.post(f"{base}/{order['id']}/lines", json={**line, "id": "l2"}), "product_id", msg
    )
    assert mc.patch(f"{base}/{order['id']}/lines/l1", json={"product_id": []}).status_code == 400


def test_every_emulated_route_is_an_openapi_operation() -> None:
    """The conformance check (conftest `MailchimpClient.request` -> `openapi_check.check_response`)
    covers every route: each `/3.0` method+path the sandbox serves is an operation of Mailchimp's
    OpenAPI file, and each one answering 200 has a 200 schema there."""
    from oromc_sandbox import mailchimp
    from oromc_sandbox.mailchimp.schemas import openapi_types, operation_key
    from starlette.routing import Route

    table = openapi_types()
    known = {operation_key(*op.split(" ", 1)) for op in table["operations"]}
    with_200 = {operation_key(*op.split(" ", 1)) for op in table["responses"]}
    served = {
        operation_key(method, route.path)
        for route in mailchimp.routes()
        if isinstance(route, Route) and route.path.startswith("/3.0/") and route.methods
        for method in route.methods - {"HEAD"}
    }
    assert served, "routes found"
    assert served <= known, sorted(served - known)
    assert {op for op in served if op.startswith("GET ")} <= with_200


def test_the_conformance_check_sees_a_contradiction() -> None:
    """A mistyped field, an unknown enum value, `""` for unset, and the repaired schemas of the
    3.0.55 file's de-duplicated collections (member collection and single member, email activity)."""
    import json

    from openapi_check import SPEC_DEFECTS, response_problems
    from oromc_sandbox.mailchimp.schemas import openapi_types

    bad = {"lists": [{"id": 5, "stats": {"member_count": "7"}}], "total_items": 1}
    problems = response_problems("GET", "/lists", bad)
    assert any("lists.0.id" in p for p in problems), problems
    assert any("lists.0.stats.member_count" in p for p in problems), problems
    assert response_problems("GET", "/ecommerce/stores/s1/orders/o1", {"tracking_code": "nope"})
    assert not response_problems("GET", "/ecommerce/stores/s1/orders/o1", {"tracking_code": ""})
    members = "/lists/l1/members"
    assert response_problems("GET", members, {"members": [{"email_address": 5}]})
    assert response_problems("GET", members + "/abc", {"status": 5})
    assert not response_problems("GET", members + "/abc", {"status": "subscribed", "vip": False})
    activity = "/reports/c1/email-activity"
    row = {"email_address": "a@b.co", "activity": [{"action": "open", "timestamp": ""}]}
    assert not response_problems("GET", activity, {"emails": [row], "total_items": 1})
    assert response_problems("GET", activity, {"emails": [{"activity": 3}]})
    assert response_problems("GET", activity + "/abc", {"activity": 3})
    # every de-duplicated schema of the file is one the check repairs
    text = json.dumps(openapi_types()["responses"])
    names = set(re.findall(r'"x-recursive-ref": "([^"]+)"', text))
    assert names, "the defect is present in the derived table"
    assert names <= set(SPEC_DEFECTS), sorted(names - set(SPEC_DEFECTS))


def test_automations_family_answers_unknown_workflows_like_mailchimp(mc: Any) -> None:
    """OpenAPI `getAutomations`: the seeded workflows (test_automations.py has their behaviour);
    creating one is not offered (405, `Allow: GET`) and unknown ids are 404 at every level."""
    body = mc.get("/automations", params={"status": "sending"}).json()
    assert body["total_items"] == len(body["automations"]) == 2
    assert mc.get("/automations", params={"status": "bogus"}).status_code == 400
    create = mc.post("/automations", json={"recipients": {"list_id": mc.list_id}})
    assert create.status_code == 405
    assert create.headers["allow"] == "GET"
    for path in (
        "/automations/abc123",
        "/automations/abc123/emails",
        "/automations/a/emails/b/queue",
    ):
        assert mc.get(path).status_code == 404, path
    readme = Path(__file__).resolve().parents[2] / "sandbox/oromc_sandbox/mailchimp/README.md"
    assert "### Automations" in readme.read_text(encoding="utf-8")


def test_batch_get_runs_every_page_of_a_collection(mc: Any, sandbox: Any) -> None:
    """OpenAPI `postBatches` (`Batch.total_operations`): "For GET requests requiring pagination,
    each page counts as a separate operation". singer-io tap-mailchimp 1.3.3 sends email-activity
    operations without `count` (default 10) and must get every row."""
    import io
    import json
    import tarfile

    import requests

    report = mc.get("/reports", params={"count": 1, "sort_field": "send_time"}).json()["reports"][0]
    path = f"/reports/{report['id']}/email-activity"
    expected = mc.get(path, params={"count": 1000}).json()
    assert expected["total_items"] > 10, "a campaign with more than one default page"
    fields = "emails.email_id,emails.activity," + SINGER_COLLECTION_FIELDS.format(key="emails")
    op = {"method": "GET", "path": path, "operation_id": report["id"], "params": {"fields": fields}}
    batch = mc.post("/batches", json={"operations": [op]}).json()
    sandbox.advance_clock(30)
    done = mc.get(f"/batches/{batch['id']}").json()
    pages = -(-expected["total_items"] // 10)
    assert done["status"] == "finished"
    assert done["total_operations"] == pages
    assert done["finished_operations"] == pages
    archive = requests.get(done["response_body_url"], timeout=30).content
    rows = []
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r|gz") as tar:
        for entry in tar:
            if entry.isfile():
                data = tar.extractfile(entry)
                assert data is not None
                rows.extend(json.loads(data.read()))
    assert len(rows) == pages
    assert {r["operation_id"] for r in rows} == {report["id"]}
    emails = [e for r in rows for e in json.loads(r["response"])["emails"]]
    assert [e["email_id"] for e in emails] == [e["email_id"] for e in expected["emails"]]
    # an operation naming its page (count/offset) is that one page: no duplicates for clients
    # that plan one operation per page
    planned = [
        {
            "method": "GET",
            "path": path,
            "operation_id": f"p{i}",
            "params": {"count": 10, "offset": i},
        }
        for i in (0, 10)
    ]
    batch = mc.post("/batches", json={"operations": planned}).json()
    sandbox.advance_clock(30)
    assert mc.get(f"/batches/{batch['id']}").json()["total_operations"] == 2


def _junk(schema: dict[str, Any], depth: int = 0) -> Any:
    """A value of the schema's JSON types whose contents are odd: empty/space strings, negative and
    fractional numbers, one-item arrays, every property present."""
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {name: _junk(sub, depth + 1) for name, sub in props.items()} if depth < 6 else {}
    if kind == "array":
        return [_junk(schema.get("items", {}), depth + 1)] if depth < 6 else []
    if kind == "integer":
        return -1
    if kind == "number":
        return -0.5
    if kind == "boolean":
        return True
    if kind == "string":
        return " " if depth % 2 else ""
    return {}


def _mistyped(schema: dict[str, Any], depth: int = 0) -> Any:
    """Every leaf replaced by a value of another JSON type (objects for scalars, a string for
    containers)."""
    if schema.get("type") == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return (
            {name: _mistyped(sub, depth + 1) for name, sub in props.items()} if depth < 6 else "x"
        )
    return "x" if schema.get("type") in ("array", "object") else {}


def test_no_write_body_produces_a_5xx(mc: Any, shop: dict[str, Any], fresh: Any) -> None:
    """No input may produce a 5xx: every write route the sandbox serves gets a body built from its
    OpenAPI request schema with odd values of the right types, then one with every value of the
    wrong type; each answer is < 500 (the conformance hook also requires problem+json errors)."""
    from oromc_sandbox import mailchimp
    from oromc_sandbox.mailchimp.schemas import schema_for
    from starlette.routing import Route

    sid = shop["id"]
    member = mc.add(fresh())
    order = {
        "id": _uid("ord"),
        "customer": {"id": _uid("c"), "email_address": fresh(), "opt_in_status": False},
        "currency_code": "EUR",
        "order_total": 8.0,
        "lines": [{"id": "l1", "product_id": shop["product_id"], "product_variant_id": "v1",
                   "quantity": 1, "price": 8.0}],
    }  # fmt: skip
    assert mc.post(f"/ecommerce/stores/{sid}/orders", json=order).status_code == 200
    cart = {**order, "id": _uid("cart"), "customer": {"id": order["customer"]["id"]}}
    assert mc.post(f"/ecommerce/stores/{sid}/carts", json=cart).status_code == 200
    segment = mc.post(
        f"/lists/{mc.list_id}/segments", json={"name": _uid("seg"), "static_segment": []}
    ).json()
    workflow = mc.get("/automations").json()["automations"][0]
    workflow_email = mc.get(f"/automations/{workflow['id']}/emails").json()["emails"][0]
    ids = {
        "list_id": mc.list_id,
        "subscriber_hash": member["id"],
        "store_id": sid,
        "product_id": shop["product_id"],
        "variant_id": "v1",
        "order_id": order["id"],
        "cart_id": cart["id"],
        "customer_id": order["customer"]["id"],
        "line_id": "l1",
        "segment_id": str(segment["id"]),
        "merge_id": "1",
        "webhook_id": "nowebhook0",
        "campaign_id": _draft(mc)["id"],
        "workflow_id": workflow["id"],
        "workflow_email_id": workflow_email["id"],
    }
    sent = 0
    for route in mailchimp.routes():
        if not (isinstance(route, Route) and route.path.startswith("/3.0/") and route.methods):
            continue
        for method in sorted(route.methods & {"POST", "PUT", "PATCH"}):
            schema = schema_for("requests", method, route.path)
            if schema is None or route.path.endswith("/batches"):
                continue
            path = route.path.removeprefix("/3.0").format(**ids)
            for body in (_junk(schema), _mistyped(schema)):
                resp = mc.request(method, path, json=body)  # the hook fails on any 5xx
                assert resp.status_code < 500, (method, path, resp.text[:300])
                sent += 1
    assert sent >= 70
