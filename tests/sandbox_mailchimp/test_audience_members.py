"""Members: create/read/upsert/update/archive/delete-permanent, status machine, error catalogue."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest


def _md5(email: str) -> str:
    return hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest()


def test_member_document_shape(mc: Any, fresh: Any) -> None:
    email = fresh()
    doc = mc.add(email, merge_fields={"FNAME": "Ada", "LNAME": "Lovelace"})
    assert doc["id"] == _md5(email)
    assert len(doc["unique_email_id"]) == 10
    assert len(doc["contact_id"]) == 32
    assert doc["full_name"] == "Ada Lovelace"
    assert doc["status"] == "subscribed"
    assert doc["source"] == "API - Generic"
    assert doc["timestamp_signup"] == ""
    assert doc["last_changed"].endswith("+00:00")
    assert doc["tags_count"] == 0
    assert doc["tags"] == []
    assert doc["list_id"] == mc.list_id
    assert {link["rel"] for link in doc["_links"]} >= {
        "self",
        "upsert",
        "delete",
        "delete_permanent",
    }


def test_get_member_by_hash_email_and_contact_id(mc: Any, fresh: Any) -> None:
    email = fresh()
    doc = mc.add(email.upper().replace("@GMAIL.COM", "@gmail.com"))
    for key in (doc["id"], email, doc["contact_id"]):
        resp = mc.get(f"{mc.members}/{key}")
        assert resp.status_code == 200, key
        assert resp.json()["id"] == doc["id"]


def test_unknown_member_is_404(mc: Any, fresh: Any) -> None:
    resp = mc.get(f"{mc.members}/{_md5(fresh())}")
    assert resp.status_code == 404
    assert resp.json()["detail"] == "The requested resource could not be found."


def test_post_existing_member_is_member_exists(mc: Any, fresh: Any) -> None:
    email = fresh()
    mc.add(email)
    resp = mc.post(mc.members, json={"email_address": email, "status": "subscribed"})
    assert resp.status_code == 400
    body = resp.json()
    assert body["title"] == "Member Exists"
    assert (
        body["detail"]
        == f"{email} is already a list member. Use PUT to insert or update list members."
    )


def test_post_requires_status(mc: Any, fresh: Any) -> None:
    resp = mc.post(mc.members, json={"email_address": fresh()})
    assert resp.status_code == 400
    assert "status" in resp.json()["errors"][0]["message"]


def test_invalid_status_value(mc: Any, fresh: Any) -> None:
    resp = mc.post(mc.members, json={"email_address": fresh(), "status": "archived"})
    assert resp.status_code == 400
    assert resp.json()["errors"][0]["field"] == "status"


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "two@@gmail.com", "x y@gmail.com"])
def test_malformed_email(mc: Any, email: str) -> None:
    resp = mc.post(mc.members, json={"email_address": email, "status": "subscribed"})
    assert resp.status_code == 400
    assert resp.json()["title"] == "Invalid Resource"
    assert resp.json()["detail"] == "Please provide a valid email address."


@pytest.mark.parametrize(
    "email", ["someone@mailinator.com", "test@gmail.com", "person@shop.test", "noreply@company.com"]
)
def test_fake_email(mc: Any, email: str) -> None:
    resp = mc.post(mc.members, json={"email_address": email, "status": "subscribed"})
    assert resp.status_code == 400
    assert (
        resp.json()["detail"]
        == f"{email} looks fake or invalid, please enter a real email address."
    )


def test_signup_throttle(mc: Any) -> None:
    email = "eager.signer@throttled.example.net"
    resp = mc.post(mc.members, json={"email_address": email, "status": "subscribed"})
    assert resp.status_code == 400
    assert (
        resp.json()["detail"]
        == f"{email} has signed up to a lot of lists very recently; we're not allowing more signups for now"
    )


def test_put_creates_with_status_if_new_and_keeps_status_of_existing(mc: Any, fresh: Any) -> None:
    email = fresh()
    created = mc.put(
        f"{mc.members}/{_md5(email)}", json={"email_address": email, "status_if_new": "pending"}
    )
    assert created.status_code == 200
    assert created.json()["status"] == "pending"
    mc.patch(f"{mc.members}/{_md5(email)}", json={"status": "unsubscribed"})
    again = mc.put(
        f"{mc.members}/{_md5(email)}",
        json={
            "email_address": email,
            "status_if_new": "subscribed",
            "merge_fields": {"FNAME": "Bo"},
        },
    )
    assert again.status_code == 200
    assert again.json()["status"] == "unsubscribed"
    assert again.json()["merge_fields"]["FNAME"] == "Bo"


def test_put_new_member_without_status_is_400(mc: Any, fresh: Any) -> None:
    email = fresh()
    resp = mc.put(f"{mc.members}/{email}", json={"email_address": email})
    assert resp.status_code == 400
    assert "status_if_new" in resp.json()["errors"][0]["message"]


def test_put_hash_must_match_email(mc: Any, fresh: Any) -> None:
    resp = mc.put(
        f"{mc.members}/{_md5(fresh())}",
        json={"email_address": fresh(), "status_if_new": "subscribed"},
    )
    assert resp.status_code == 400


def test_patch_unknown_member_is_404(mc: Any, fresh: Any) -> None:
    assert (
        mc.patch(f"{mc.members}/{_md5(fresh())}", json={"status": "subscribed"}).status_code == 404
    )


def test_patch_rejects_transactional(mc: Any, fresh: Any) -> None:
    doc = mc.add(fresh())
    assert (
        mc.patch(f"{mc.members}/{doc['id']}", json={"status": "transactional"}).status_code == 400
    )


@pytest.mark.parametrize("status", ["unsubscribed", "cleaned"])
def test_resubscribe_is_compliance_state(mc: Any, fresh: Any, status: str) -> None:
    email = fresh()
    doc = mc.add(email)
    assert mc.patch(f"{mc.members}/{doc['id']}", json={"status": status}).json()["status"] == status
    for method in ("patch", "put"):
        resp = getattr(mc, method)(
            f"{mc.members}/{doc['id']}", json={"email_address": email, "status": "subscribed"}
        )
        assert resp.status_code == 400
        body = resp.json()
        assert body["title"] == "Member In Compliance State"
        assert body["detail"].startswith(f"{email} is in a compliance state")
    assert mc.get(f"{mc.members}/{doc['id']}").json()["status"] == status


def test_unsubscribed_may_go_pending(mc: Any, fresh: Any) -> None:
    doc = mc.add(fresh(), status="unsubscribed")
    resp = mc.patch(f"{mc.members}/{doc['id']}", json={"status": "pending"})
    assert resp.status_code == 200
    assert resp.json()["status"] == "pending"


def test_unsubscribe_reason_shown_for_unsubscribed(mc: Any, fresh: Any) -> None:
    doc = mc.add(fresh())
    unsub = mc.patch(f"{mc.members}/{doc['id']}", json={"status": "unsubscribed"}).json()
    assert "unsubscribe_reason" in unsub
    assert "unsubscribe_reason" not in doc


def test_archive_then_405_and_unarchive(mc: Any, fresh: Any) -> None:
    email = fresh()
    doc = mc.add(email)
    assert mc.delete(f"{mc.members}/{doc['id']}").status_code == 204
    archived = mc.get(f"{mc.members}/{doc['id']}").json()
    assert archived["status"] == "archived"
    again = mc.delete(f"{mc.members}/{doc['id']}")
    assert again.status_code == 405
    assert again.headers["Allow"] == "GET, PUT"
    assert (
        "Can not archive a contact that is bounced, pending or archived" in again.json()["detail"]
    )
    back = mc.put(
        f"{mc.members}/{doc['id']}", json={"email_address": email, "status": "subscribed"}
    )
    assert back.status_code == 200
    assert back.json()["status"] == "subscribed"


@pytest.mark.parametrize("status", ["pending", "cleaned"])
def test_archive_pending_or_cleaned_is_405(mc: Any, fresh: Any, status: str) -> None:
    doc = mc.add(fresh(), status=status)
    assert mc.delete(f"{mc.members}/{doc['id']}").status_code == 405


def test_204_has_empty_body_and_json_content_type(mc: Any, fresh: Any) -> None:
    doc = mc.add(fresh())
    resp = mc.delete(f"{mc.members}/{doc['id']}")
    assert resp.status_code == 204
    assert resp.content == b""
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"


def test_archived_hidden_from_collection_unless_asked(mc: Any, fresh: Any) -> None:
    doc = mc.add(fresh())
    mc.delete(f"{mc.members}/{doc['id']}")
    since = doc["last_changed"]
    default = mc.get(
        mc.members,
        params={
            "since_last_changed": "2000-01-01T00:00:00+00:00",
            "unique_email_id": doc["unique_email_id"],
        },
    ).json()
    assert default["total_items"] == 0
    archived = mc.get(
        mc.members, params={"status": "archived", "unique_email_id": doc["unique_email_id"]}
    ).json()
    assert archived["total_items"] == 1
    assert since


def test_delete_permanent(mc: Any, fresh: Any) -> None:
    email = fresh()
    doc = mc.add(email)
    assert mc.post(f"{mc.members}/{email}/actions/delete-permanent").status_code == 404  # md5 only
    assert mc.post(f"{mc.members}/{doc['id']}/actions/delete-permanent").status_code == 204
    assert mc.get(f"{mc.members}/{doc['id']}").status_code == 404
    for method, path in (("post", mc.members), ("put", f"{mc.members}/{doc['id']}")):
        resp = getattr(mc, method)(
            path,
            json={"email_address": email, "status": "subscribed", "status_if_new": "subscribed"},
        )
        assert resp.status_code == 400
        assert resp.json()["title"] == "Forgotten Email Not Subscribed"
        assert resp.json()["detail"].startswith(
            f"{email} was permanently deleted and cannot be re-imported."
        )


def test_change_email_via_put(mc: Any, fresh: Any) -> None:
    old, new = fresh(), fresh()
    doc = mc.add(old)
    resp = mc.put(f"{mc.members}/{doc['id']}", json={"email_address": new})
    assert resp.status_code == 200
    assert resp.json()["id"] == _md5(new)
    assert resp.json()["contact_id"] == doc["contact_id"]
    assert mc.get(f"{mc.members}/{doc['id']}").status_code == 404


def test_change_email_to_existing_member(mc: Any, fresh: Any) -> None:
    a, b = mc.add(fresh()), mc.add(fresh())
    resp = mc.put(f"{mc.members}/{a['id']}", json={"email_address": b["email_address"]})
    assert resp.status_code == 400
    assert (
        'is already in this list with a status of "subscribed"'
        in resp.json()["errors"][0]["message"]
    )


def test_last_changed_moves_on_every_change(mc: Any, fresh: Any, sandbox: Any) -> None:
    doc = mc.add(fresh())
    sandbox.advance_clock(5)
    patched = mc.patch(f"{mc.members}/{doc['id']}", json={"merge_fields": {"FNAME": "New"}}).json()
    assert patched["last_changed"] > doc["last_changed"]
    sandbox.advance_clock(5)
    same = mc.patch(f"{mc.members}/{doc['id']}", json={"merge_fields": {"FNAME": "New"}}).json()
    assert same["last_changed"] == patched["last_changed"]  # no-op writes do not move it
    sandbox.advance_clock(5)
    mc.post(
        f"{mc.members}/{doc['id']}/tags", json={"tags": [{"name": "Moved", "status": "active"}]}
    )
    tagged = mc.get(f"{mc.members}/{doc['id']}").json()
    assert tagged["last_changed"] > patched["last_changed"]
