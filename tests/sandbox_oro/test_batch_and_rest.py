"""Batch API (§7; checklist 7), old REST marketing lists (§8; checklist 8) and control routes."""

from __future__ import annotations

import time
import uuid
from typing import Any

import requests

SYNC = {"X-Mode": "sync"}


def _customer(name: str) -> dict[str, Any]:
    return {"type": "customers", "attributes": {"name": name}}


def test_sync_batch_creates_in_order(api: Any) -> None:
    names = [f"Batch {uuid.uuid4().hex[:6]} {i}" for i in range(3)]
    r = api.patch("/customers", {"data": [_customer(n) for n in names]}, headers=SYNC)
    assert r.status_code == 200
    assert [d["attributes"]["name"] for d in r.json()["data"]] == names


def test_sync_batch_update_item(api: Any) -> None:
    created = api.post("/customers", {"data": _customer("Before")}).json()["data"]
    r = api.patch("/customers", {"data": [{"type": "customers", "id": created["id"], "meta": {"update": True},
                                           "attributes": {"name": "After"}}]}, headers=SYNC)
    assert r.status_code == 200
    assert api.get(f"/customers/{created['id']}").json()["data"]["attributes"]["name"] == "After"


def test_sync_batch_over_100_is_rejected(api: Any) -> None:
    r = api.patch("/customers", {"data": [_customer(f"n{i}") for i in range(101)]}, headers=SYNC)
    assert r.status_code == 400
    assert r.json()["errors"] == [{"status": "400", "title": "request data constraint", "detail": (
        "The data limit for the synchronous operation exceeded. The maximum number of records that can be "
        "processed by the synchronous operation is 100.")}]


def test_sync_batch_is_atomic(api: Any) -> None:
    name = f"Atomic {uuid.uuid4().hex[:8]}"
    r = api.patch("/customers", {"data": [_customer(name), {"type": "customers", "attributes": {"name": ""}}]},
                  headers=SYNC)
    assert r.status_code == 400
    assert r.json()["errors"][0]["source"] == {"pointer": "/data/1/attributes/name"}
    assert api.get("/customers", params={"filter[name]": name}).json()["data"] == []


def test_bad_x_mode_is_rejected(api: Any) -> None:
    r = api.patch("/customers", {"data": [_customer("x")]}, headers={"X-Mode": "later"})
    assert r.status_code == 400
    assert r.json()["errors"] == [{"status": "400", "title": "invalid header value exception",
                                   "detail": 'The accepted values for the "X-Mode" are "sync" or "async".'}]


def test_batch_on_resource_without_update_list_is_405(api: Any) -> None:
    r = api.patch("/campaigns", {"data": []}, headers=SYNC)
    assert r.status_code == 405
    assert r.content == b""


def test_async_batch_operation_and_errors(api: Any) -> None:
    good = f"Async {uuid.uuid4().hex[:8]}"
    r = api.patch("/customers", {"data": [_customer(good), {"type": "customers", "attributes": {"name": ""}}]})
    assert r.status_code == 202
    op = r.json()["data"]
    assert op["type"] == "asyncoperations"
    assert op["attributes"]["status"] == "new"
    assert r.headers["Content-Location"] == f"{api.base}/asyncoperations/{op['id']}"
    for _ in range(100):
        polled = api.get(f"/asyncoperations/{op['id']}").json()["data"]["attributes"]
        if polled["status"] not in ("new", "running"):
            break
        time.sleep(0.05)
    assert polled["status"] == "success"
    assert polled["summary"]["readCount"] == 2
    assert polled["summary"]["errorCount"] == 1
    errors = api.get(f"/asyncoperations/{op['id']}/errors").json()["data"]
    assert errors[0]["type"] == "asyncoperationerrors"
    assert errors[0]["attributes"]["status"] == 400
    assert errors[0]["attributes"]["source"] == {"pointer": "/data/1/attributes/name"}
    # the valid record was retried in an extra chunk and written (see test_batch_retry.py)
    assert polled["summary"]["writeCount"] == 1
    assert len(api.get("/customers", params={"filter[name]": good}).json()["data"]) == 1


def test_async_batch_success_writes(api: Any) -> None:
    name = f"AsyncOk {uuid.uuid4().hex[:8]}"
    op = api.patch("/customers", {"data": [_customer(name)]}).json()["data"]
    for _ in range(100):
        status = api.get(f"/asyncoperations/{op['id']}").json()["data"]["attributes"]
        if status["status"] == "success":
            break
        time.sleep(0.05)
    assert status["summary"]["createCount"] == 1
    assert len(api.get("/customers", params={"filter[name]": name}).json()["data"]) == 1


def _rest(api: Any, action: str, list_id: int, entity: int) -> requests.Response:
    return requests.post(f"{api.base}/rest/latest/marketinglist/{list_id}/{action}/{entity}",
                         headers={"Authorization": f"Bearer {api.token}", "Accept": "application/json"}, timeout=30)


def test_old_rest_unsubscribe_and_subscribe(sb: Any, api: Any) -> None:
    r = _rest(api, "unsubscribe", 2, 5)
    assert r.status_code == 200
    assert r.json() == {"successful": True, "message": "Customer User unsubscribed"}
    assert 5 in sb.control("oro").get("/_sandbox/oro/marketinglists").json()["2"]["unsubscribed"]
    again = _rest(api, "unsubscribe", 2, 5)
    assert again.status_code == 400
    assert again.json()["violations"][0]["propertyPath"] == "entityId"
    back = _rest(api, "subscribe", 2, 5)
    assert back.status_code == 200
    assert back.json() == {"successful": True, "message": "Customer User subscribed"}
    assert 5 not in sb.control("oro").get("/_sandbox/oro/marketinglists").json()["2"]["unsubscribed"]
    assert _rest(api, "subscribe", 2, 5).status_code == 200  # nothing to remove: still a success


def test_old_rest_unknown_list_is_404(api: Any) -> None:
    assert _rest(api, "unsubscribe", 99, 5).status_code == 404


def test_old_rest_create_and_delete_unsubscribed_item(api: Any) -> None:
    headers = {"Authorization": f"Bearer {api.token}", "Accept": "application/json"}
    created = requests.post(f"{api.base}/rest/latest/marketinglists/unsubscribeditems", json={
        "entityId": 7, "marketingList": 2}, headers=headers, timeout=30)
    assert created.status_code == 201
    item_id = created.json()["id"]
    deleted = requests.delete(f"{api.base}/rest/latest/marketinglists/{item_id}/unsubscribeditem",
                              headers=headers, timeout=30)
    assert deleted.status_code == 204


def test_old_rest_forbidden_for_json_api_only_client(sb: Any, make_api: Any) -> None:
    sb.control("oro").post("/_sandbox/oro/clients", json={"client_id": "jsonapi-only", "client_secret": "x",
                                                           "old_api": False})
    limited = make_api("jsonapi-only", "x")
    r = _rest(limited, "unsubscribe", 2, 9)
    assert r.status_code == 403
    assert r.json()["message"] == "This API is not accessible via the current OAuth2 token."
    assert limited.get("/customers").status_code == 200


def test_old_rest_requires_token(api: Any) -> None:
    r = requests.post(f"{api.base}/rest/latest/marketinglist/1/unsubscribe/5", timeout=30)
    assert r.status_code == 401
    assert r.content == b""


def test_control_summary_counts(sb: Any, api: Any) -> None:
    summary = sb.control("oro").get("/_sandbox/oro/summary").json()
    total = api.get("/customers", headers={"X-Include": "totalCount"}).headers["X-Include-Total-Count"]
    assert summary["counts"]["customers"] == int(total)
    assert summary["counts"]["customerusers"] >= 60


def test_sync_batch_updates_customer_users_and_skips_unchanged(sb: Any, api: Any, new_user: Any) -> None:
    first, second = new_user(), new_user()
    sb.advance_clock(5)
    r = api.patch("/customerusers", {"data": [
        {"type": "customerusers", "id": first["id"], "meta": {"update": True}, "attributes": {"firstName": "Batched"}},
        {"type": "customerusers", "id": second["id"], "meta": {"update": True}, "attributes": {"firstName": "Test"}},
    ]}, headers=SYNC)
    assert r.status_code == 200
    changed, unchanged = r.json()["data"]
    assert changed["attributes"]["firstName"] == "Batched"
    assert changed["attributes"]["updatedAt"] > first["attributes"]["updatedAt"]
    assert unchanged["attributes"]["updatedAt"] == second["attributes"]["updatedAt"]


def test_batch_update_of_missing_record_fails(api: Any) -> None:
    r = api.patch("/customerusers", {"data": [{"type": "customerusers", "id": "999999", "meta": {"update": True},
                                               "attributes": {"firstName": "X"}}]}, headers=SYNC)
    assert r.status_code == 404
    assert r.json()["errors"][0]["source"] == {"pointer": "/data/0/id"}
