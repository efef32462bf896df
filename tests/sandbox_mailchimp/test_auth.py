"""Auth, cross-cutting headers, error documents, paging and partial responses."""

from __future__ import annotations

import base64
from typing import Any

import requests

PROBLEM = "application/problem+json; charset=utf-8"


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"whatever:{key}".encode()).decode()}


def test_ping_with_any_username(mc: Any) -> None:
    resp = requests.get(mc.url("/ping"), headers=_basic(mc.api_key), timeout=10)
    assert resp.status_code == 200
    assert resp.json() == {"health_status": "Everything's Chimpy!"}
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    assert resp.headers["Server"] == "openresty"
    assert resp.headers["X-Request-Id"]


def test_missing_key_is_401_api_key_missing(mc: Any) -> None:
    resp = requests.get(mc.url("/ping"), timeout=10)
    assert resp.status_code == 401
    assert resp.headers["Content-Type"] == PROBLEM
    body = resp.json()
    assert body["title"] == "API Key Missing"
    assert body["detail"] == "Your request did not include an API key."
    assert body["instance"] == resp.headers["X-Request-Id"]
    assert set(body) >= {"type", "title", "status", "detail", "instance"}


def test_invalid_key_is_401_api_key_invalid(mc: Any) -> None:
    resp = requests.get(mc.url("/ping"), headers=_basic("0" * 32 + "-" + mc.dc), timeout=10)
    assert resp.status_code == 401
    assert resp.json()["title"] == "API Key Invalid"
    assert "wrong datacenter" in resp.json()["detail"]


def test_key_for_other_datacenter_is_403(mc: Any) -> None:
    secret = mc.api_key.rsplit("-", 1)[0]
    resp = requests.get(mc.url("/ping"), headers=_basic(secret + "-us1"), timeout=10)
    assert resp.status_code == 403
    assert resp.json()["title"] == "Wrong Datacenter"


def test_bearer_and_oauth_token(mc: Any, sandbox: Any) -> None:
    token = sandbox.info["mailchimp"]["oauth_token"]
    for scheme in ("Bearer", "OAuth"):
        resp = requests.get(
            mc.url("/ping"), headers={"Authorization": f"{scheme} {token}"}, timeout=10
        )
        assert resp.status_code == 200
    bad = requests.get(mc.url("/ping"), headers={"Authorization": "Bearer nope"}, timeout=10)
    assert bad.status_code == 401


def test_oauth_metadata_and_invalid_token_quirk(mc: Any, sandbox: Any) -> None:
    base = sandbox.mailchimp_base_url
    token = sandbox.info["mailchimp"]["oauth_token"]
    ok = requests.get(
        base + "/oauth2/metadata", headers={"Authorization": f"OAuth {token}"}, timeout=10
    )
    assert ok.status_code == 200
    assert ok.json()["dc"] == mc.dc
    assert ok.json()["api_endpoint"] == base
    bad = requests.get(
        base + "/oauth2/metadata", headers={"Authorization": "OAuth nope"}, timeout=10
    )
    assert bad.status_code == 200
    assert bad.json()["error"] == "invalid_token"
    assert "api_endpoint" not in bad.json()


def test_account_root(mc: Any) -> None:
    body = mc.get("/").json()
    for key in (
        "account_id",
        "account_name",
        "email",
        "pricing_plan_type",
        "total_subscribers",
        "_links",
    ):
        assert key in body
    assert body["total_subscribers"] > 0


def test_unknown_path_is_problem_404(mc: Any) -> None:
    resp = mc.get("/no-such-thing")
    assert resp.status_code == 404
    assert resp.headers["Content-Type"] == PROBLEM
    assert resp.json()["title"] == "Resource Not Found"


def test_wrong_method_is_405_with_allow(mc: Any) -> None:
    resp = mc.delete("/lists")
    assert resp.status_code == 405
    assert "GET" in resp.headers["Allow"]
    assert resp.json()["title"] == "Method Not Allowed"


def test_count_defaults_to_10_and_max_1000(mc: Any) -> None:
    body = mc.get(mc.members).json()
    assert len(body["members"]) == 10
    assert body["total_items"] > 10
    assert len(mc.get(mc.members, params={"count": 1000}).json()["members"]) == min(
        1000, body["total_items"]
    )
    over = mc.get(mc.members, params={"count": 1001})
    assert over.status_code == 400
    assert over.json()["errors"][0]["field"] == "count"


def test_offset_pages_do_not_overlap(mc: Any) -> None:
    first = mc.get(mc.members, params={"count": 5, "offset": 0}).json()["members"]
    second = mc.get(mc.members, params={"count": 5, "offset": 5}).json()["members"]
    assert not {m["id"] for m in first} & {m["id"] for m in second}


def test_fields_are_root_relative(mc: Any) -> None:
    body = mc.get(
        mc.members, params={"fields": "members.email_address,total_items", "count": 3}
    ).json()
    assert set(body) == {"members", "total_items"}
    assert all(set(m) == {"email_address"} for m in body["members"])


def test_unprefixed_fields_are_422(mc: Any) -> None:
    resp = mc.get(mc.members, params={"fields": "email_address"})
    assert resp.status_code == 422
    assert resp.json()["title"] == "Requested Fields Invalid"


def test_exclude_fields(mc: Any) -> None:
    body = mc.get(mc.members, params={"exclude_fields": "members._links,_links", "count": 2}).json()
    assert "_links" not in body
    assert all("_links" not in m and "email_address" in m for m in body["members"])


def test_bad_json_body_is_400(mc: Any) -> None:
    resp = mc.post(mc.members, data=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    assert resp.json()["title"] == "JSON Parse Error"


def test_method_override_only_on_post(mc: Any) -> None:
    resp = mc.get("/ping", headers={"X-HTTP-Method-Override": "DELETE"})
    assert resp.status_code == 422
    assert resp.json()["title"] == "Invalid Method Override"


def test_method_override_on_post_is_honoured(mc: Any, fresh: Any) -> None:
    doc = mc.add(fresh())
    path = f"{mc.members}/{doc['id']}"
    patched = mc.post(
        path, json={"merge_fields": {"FNAME": "Over"}}, headers={"X-HTTP-Method-Override": "PATCH"}
    )
    assert patched.status_code == 200
    assert patched.json()["merge_fields"]["FNAME"] == "Over"
    archived = mc.post(path, headers={"X-HTTP-Method-Override": "DELETE"})
    assert archived.status_code == 204
    assert mc.get(path).json()["status"] == "archived"
    listed = mc.post(mc.members, params={"count": 2}, headers={"X-HTTP-Method-Override": "GET"})
    assert len(listed.json()["members"]) == 2
