"""`POST /lists/{list_id}`: batch subscribe/unsubscribe with per-member errors."""

from __future__ import annotations

from typing import Any


def _batch(
    mc: Any, members: list[dict[str, Any]], params: dict[str, str] | None = None, **flags: Any
) -> Any:
    return mc.post(f"/lists/{mc.list_id}", json={"members": members, **flags}, params=params or {})


def test_new_and_updated_and_totals(mc: Any, fresh: Any) -> None:
    existing = mc.add(fresh())
    new = fresh()
    body = _batch(
        mc,
        [
            {"email_address": new, "status": "subscribed"},
            {
                "email_address": existing["email_address"],
                "status": "subscribed",
                "merge_fields": {"FNAME": "Upd"},
            },
        ],
        update_existing=True,
    ).json()
    assert body["total_created"] == 1
    assert body["total_updated"] == 1
    assert body["error_count"] == 0
    assert body["new_members"][0]["email_address"] == new
    assert body["updated_members"][0]["merge_fields"]["FNAME"] == "Upd"


def test_existing_without_update_existing_is_contact_exists(mc: Any, fresh: Any) -> None:
    existing = mc.add(fresh())
    body = _batch(mc, [{"email_address": existing["email_address"], "status": "subscribed"}]).json()
    assert body["error_count"] == 1
    assert body["errors"][0]["error_code"] == "ERROR_CONTACT_EXISTS"
    assert body["errors"][0]["email_address"] == existing["email_address"]


def test_per_member_errors_do_not_fail_the_call(mc: Any, fresh: Any) -> None:
    good = fresh()
    resp = _batch(
        mc,
        [
            {"email_address": "broken", "status": "subscribed"},
            {"email_address": "x@mailinator.com", "status": "subscribed"},
            {
                "email_address": fresh(),
                "status": "subscribed",
                "merge_fields": {"BIRTHDAY": "99/99"},
            },
            {"email_address": good, "status": "subscribed"},
        ],
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["total_created"] == 1
    assert body["error_count"] == 3
    codes = {e["error_code"] for e in body["errors"]}
    assert codes == {"ERROR_GENERIC"}
    fake = next(e for e in body["errors"] if e["email_address"] == "x@mailinator.com")
    assert "looks fake or invalid" in fake["error"]
    merge = next(e for e in body["errors"] if e["field"] == "BIRTHDAY")
    assert merge["field_message"] == "Please enter a valid birthday"


def test_compliance_rules_apply(mc: Any, fresh: Any) -> None:
    unsub = mc.add(fresh(), status="unsubscribed")
    body = _batch(
        mc,
        [{"email_address": unsub["email_address"], "status": "subscribed"}],
        update_existing=True,
    ).json()
    assert body["error_count"] == 1
    assert "compliance state" in body["errors"][0]["error"]
    assert mc.get(f"{mc.members}/{unsub['id']}").json()["status"] == "unsubscribed"


def test_status_if_new_does_not_touch_existing(mc: Any, fresh: Any) -> None:
    unsub = mc.add(fresh(), status="unsubscribed")
    body = _batch(
        mc,
        [
            {
                "email_address": unsub["email_address"],
                "status_if_new": "subscribed",
                "merge_fields": {"LNAME": "Kept"},
            }
        ],
        update_existing=True,
    ).json()
    assert body["total_updated"] == 1
    assert body["updated_members"][0]["status"] == "unsubscribed"


def test_more_than_500_members_is_400(mc: Any) -> None:
    resp = _batch(
        mc, [{"email_address": f"many{i}@gmail.com", "status": "subscribed"} for i in range(501)]
    )
    assert resp.status_code == 400
    assert resp.json()["errors"][0]["field"] == "members"


def test_duplicates_error_unless_skipped(mc: Any, fresh: Any) -> None:
    email = fresh()
    members = [
        {"email_address": email, "status": "subscribed"},
        {"email_address": email.upper(), "status": "unsubscribed"},
    ]
    body = _batch(mc, members).json()
    assert body["total_created"] == 1
    assert body["error_count"] == 1
    email2 = fresh()
    members = [
        {"email_address": email2, "status": "pending"},
        {"email_address": email2, "status": "subscribed"},
    ]
    body = _batch(mc, members, params={"skip_duplicate_check": "true"}).json()
    assert body["total_created"] == 1
    assert body["error_count"] == 0
    assert body["new_members"][0]["status"] == "pending"


def test_tags_and_sync_tags(mc: Any, fresh: Any) -> None:
    email = fresh()
    _batch(
        mc, [{"email_address": email, "status": "subscribed", "tags": ["Alpha Sync", "Beta Sync"]}]
    )
    body = _batch(
        mc,
        [{"email_address": email, "status": "subscribed", "tags": ["Beta Sync"]}],
        update_existing=True,
        sync_tags=True,
    ).json()
    assert [t["name"] for t in body["updated_members"][0]["tags"]] == ["Beta Sync"]


def test_tags_on_an_existing_member_without_sync_tags_are_added_and_keep_the_rest(
    mc: Any, fresh: Any
) -> None:
    """`tags` in an update item without `sync_tags` add tags (created by name, matched
    case-insensitively) and keep the member's other tags, also ones added by hand; an item without
    `status` keeps the member's status, whatever it is (tags never change a status)."""
    email, opted_out = fresh(), fresh()
    mc.add(email, tags=["Alpha Keep"])
    mc.add(opted_out, status="unsubscribed")
    doc = mc.add(fresh(), tags=["Gamma Add"])  # the tag exists, in another case
    assert doc["tags"][0]["name"] == "Gamma Add"
    hand = mc.post(
        f"{mc.members}/{mc.hash(email)}/tags", json={"tags": [{"name": "By Hand", "status": "active"}]}
    )
    assert hand.status_code == 204, hand.text
    body = _batch(
        mc,
        [
            {"email_address": email, "merge_fields": {"FNAME": "Upd"}, "tags": ["gamma add", "Delta New"]},
            {"email_address": opted_out, "tags": ["Delta New"]},
        ],
        update_existing=True,
    ).json()
    assert body["error_count"] == 0
    assert body["total_updated"] == 2
    by_email = {m["email_address"]: m for m in body["updated_members"]}
    assert sorted(t["name"] for t in by_email[email]["tags"]) == [
        "Alpha Keep", "By Hand", "Delta New", "Gamma Add"
    ]
    assert by_email[email]["status"] == "subscribed"
    assert by_email[email]["merge_fields"]["FNAME"] == "Upd"
    assert [t["name"] for t in by_email[opted_out]["tags"]] == ["Delta New"]
    assert by_email[opted_out]["status"] == "unsubscribed"


def test_unsubscribe_via_batch(mc: Any, fresh: Any) -> None:
    doc = mc.add(fresh())
    body = _batch(
        mc,
        [{"email_address": doc["email_address"], "status": "unsubscribed"}],
        update_existing=True,
    ).json()
    assert body["updated_members"][0]["status"] == "unsubscribed"
