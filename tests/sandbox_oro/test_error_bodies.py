"""No request produces a 5xx, and every error body under the API prefix is JSON (issue 12).

A bounded sweep over the served resources: every method on list/item/relationship/subresource routes
with malformed and odd bodies, reads after deleting referenced records, wrong-typed attribute values and
relationship data on every writable field, odd filter/sort/page/include values on every filter. Wider
sweeps (about 200,000 requests over the same space with more values) were run while fixing the sandbox;
the one 5xx they missed (a deleted product broke reading seeded orders) this sweep found.

Error bodies: JSON:API ``{"errors": [...]}`` under ``/admin/api`` (Oro's
``UnhandledApiErrorExceptionListener`` renders even an unmatched URL there as a JSON:API error), plain
JSON under ``/admin/api/rest`` (FOSRest), empty bodies only for 401/405 (and 204/OPTIONS).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from oromc_sandbox.oro.schema import KNOWN_OPERATORS, RESOURCES
from oromc_sandbox.testing import RunningSandbox, running_sandbox

JSONAPI = "application/vnd.api+json"
MAIN = ("customerusers", "customers", "customeruseraddresses", "orders", "orderlineitems", "products", "tags",
        "campaigns", "marketingactivities")
BODIES = (None, "{", json.dumps({"data": {}}), json.dumps({"data": [1, None]}))


def _problem(method: str, url: str, r: requests.Response) -> str | None:
    ctype = r.headers.get("content-type", "")
    if r.status_code >= 500:
        return f"{r.status_code} {method} {url}: {r.text[:120]}"
    if r.status_code < 400 or not r.content:
        return None
    old_rest = "/admin/api/rest/" in url
    want = "application/json" if old_rest else JSONAPI
    if not ctype.startswith(want):
        return f"{r.status_code} {method} {url}: {ctype} {r.text[:80]}"
    body = r.json()
    if not old_rest and not (isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"]):
        return f"{r.status_code} {method} {url}: not an errors document"
    return None


class Sweep:
    def __init__(self, api: Any) -> None:
        self.api = api
        self.session = requests.Session()
        self.headers = {**api.headers(body=True)}
        self.problems: list[str] = []
        self.sent = 0

    def send(self, method: str, path: str, body: str | None = None, params: Any = None) -> None:
        url = path if path.startswith("http") else self.api.base + path
        r = self.session.request(method, url, data=body, params=params, headers=self.headers, timeout=30)
        self.sent += 1
        problem = _problem(method, r.url, r)
        if problem:
            self.problems.append(problem)


@pytest.fixture(scope="module")
def own_sb() -> Iterator[RunningSandbox]:
    """A sandbox of its own: the sweep deletes records the shared one's tests rely on."""
    with running_sandbox(customers=20, seed=13) as sandbox:
        yield sandbox


@pytest.fixture
def own_api(own_sb: RunningSandbox, make_client: Any) -> Any:
    return make_client(own_sb)


@pytest.fixture
def sweep(own_api: Any) -> Sweep:
    return Sweep(own_api)


def test_deleting_a_product_leaves_seeded_orders_readable(own_api: Any) -> None:
    api = own_api
    # found by test_error_bodies.py: seeded line items were derived from the live product rows (500)
    item = api.get("/orderlineitems/1").json()["data"]
    product_id = item["relationships"]["product"]["data"]["id"]
    order_id = item["relationships"]["orders"]["data"][0]["id"]
    before = api.get(f"/orders/{order_id}").json()["data"]["attributes"]["subtotalValue"]
    assert api.delete(f"/products/{product_id}").status_code == 204
    assert api.get(f"/orders/{order_id}").json()["data"]["attributes"]["subtotalValue"] == before
    assert api.get("/orderlineitems/1").json()["data"]["attributes"]["productSku"] == item["attributes"]["productSku"]
    assert api.get("/orders", params={"page[size]": -1, "include": "lineItems"}).status_code == 200


def test_routes_and_bodies(sweep: Sweep) -> None:
    for type_, res in [*RESOURCES.items(), ("nosuch", None)]:
        main = type_ in MAIN
        for method in ("GET", "POST", "PATCH", "DELETE", "PUT", "OPTIONS", "TRACE") if main else ("POST", "PATCH"):
            for body in BODIES[:2] if main else BODIES[1:2]:
                sweep.send(method, f"/{type_}", body)
                sweep.send(method, f"/{type_}/abc", body)
        if res is None or not main:
            continue
        for rel in [*res.rels, None]:
            name = rel.name if rel else "nosuch"
            for method in ("GET", "POST", "PATCH", "DELETE"):
                for body in BODIES[1:3]:
                    sweep.send(method, f"/{type_}/2/{name}", body)
                    sweep.send(method, f"/{type_}/2/relationships/{name}", body)
        sweep.send("DELETE", f"/{type_}/1")  # then read what referenced it
        sweep.send("GET", f"/{type_}", params={"include": ",".join(r.name for r in res.rels), "page[size]": -1})
    for path in ("", "/", "/a/b/c/d/e", "/customers/1/users/2", "/customers/1/relationships", "/rest/latest/nosuch",
                 "/rest/latest/marketinglist/1/unsubscribe/2", "/rest/latest/marketinglists/1/unsubscribeditem"):
        for method in ("GET", "POST", "PATCH", "DELETE", "PUT", "OPTIONS", "TRACE"):
            sweep.send(method, path, "{}")
    assert sweep.problems == [], f"{len(sweep.problems)} of {sweep.sent}: {sweep.problems[:10]}"


def test_wrong_typed_values_on_every_writable_field(sweep: Sweep) -> None:
    odd_values: list[Any] = [{}, [1], 1.5, True]
    odd_linkage: list[Any] = [{}, 1, [{"type": "users"}], {"type": "customers", "id": 1}]
    for type_ in MAIN:
        res = RESOURCES[type_]
        for attr in res.attrs:
            for value in odd_values:
                data = {"type": type_, "attributes": {attr.name: value}}
                sweep.send("POST", f"/{type_}", json.dumps({"data": data}))
                sweep.send("PATCH", f"/{type_}/1", json.dumps({"data": {**data, "id": "1"}}))
        for rel in res.rels:
            for value in odd_linkage:
                data = {"type": type_, "id": "1", "relationships": {rel.name: {"data": value}}}
                sweep.send("PATCH", f"/{type_}/1", json.dumps({"data": data}))
                sweep.send("PATCH", f"/{type_}/1", json.dumps({"data": {**data, "relationships": {rel.name: value}}}))
        for meta in ({"upsert": "x"}, {"upsert": [1]}, {"update": "yes"}, [1]):
            for mode in ("sync", "async"):
                sweep.send("PATCH", f"/{type_}", json.dumps({"data": [{"type": type_, "meta": meta}]}))
                sweep.headers["X-Mode"] = mode
            sweep.headers.pop("X-Mode", None)
    assert sweep.problems == [], f"{len(sweep.problems)} of {sweep.sent}: {sweep.problems[:10]}"


def test_odd_query_values(sweep: Sweep) -> None:
    values = ["", "1..", "a..b", "1,,2", "ü", "99999999999999999999"]
    for type_ in MAIN:
        res = RESOURCES[type_]
        for name in [*res.filters, "nosuch"]:
            for op in (None, "gt", "foo"):
                key = f"filter[{name}]" if op is None else f"filter[{name}][{op}]"
                for value in values if op is None else values[:3]:
                    sweep.send("GET", f"/{type_}", params={key: value})
        for key, value in (("sort", ","), ("sort", "--id"), ("page[size]", "1e3"), ("page[number]", "0"),
                           ("include", "a..b"), ("include", "."), ("fields[nosuch]", "a"), ("filter[]", "1"),
                           ("filter[id][gt][x]", "1"), ("meta", "title,x")):
            sweep.send("GET", f"/{type_}", params={key: value})
            sweep.send("GET", f"/{type_}/1", params={key: value})
    for op in KNOWN_OPERATORS:
        sweep.send("DELETE", "/customers", params={f"filter[id][{op}]": "abc"})
    assert sweep.problems == [], f"{len(sweep.problems)} of {sweep.sent}: {sweep.problems[:10]}"


def test_unmatched_url_under_the_api_prefix_is_a_json_api_404(own_api: Any) -> None:
    api = own_api
    r = requests.get(api.base + "/customers/1/users/2", timeout=30)  # before authentication, as Symfony routes first
    assert r.status_code == 404
    assert r.headers["content-type"].startswith(JSONAPI)
    (error,) = r.json()["errors"]
    assert (error["status"], error["title"]) == ("404", "not found http exception")
    assert error["detail"].startswith('No route found for "GET ')


def test_old_rest_wrong_method_is_a_plain_405(own_api: Any) -> None:
    api = own_api
    r = requests.get(api.base + "/rest/latest/marketinglist/1/unsubscribe/2", timeout=30,
                     headers={"Authorization": f"Bearer {api.token}"})
    assert r.status_code == 405
    assert r.headers["Allow"] == "POST"
    assert r.json()["code"] == 405

