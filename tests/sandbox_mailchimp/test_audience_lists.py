"""Lists (audiences) and merge fields."""

from __future__ import annotations

from typing import Any


def test_lists_collection_shape_and_constraints(mc: Any) -> None:
    body = mc.get("/lists").json()
    assert body["total_items"] == 1
    assert body["constraints"] == {
        "may_create": False,
        "max_instances": 1,
        "current_total_instances": 1,
    }
    lst = body["lists"][0]
    assert lst["id"] == mc.list_id
    for key in (
        "web_id",
        "name",
        "contact",
        "campaign_defaults",
        "date_created",
        "stats",
        "_links",
    ):
        assert key in lst
    assert "total_contacts" not in lst["stats"]


def test_list_stats_match_member_counts(mc: Any) -> None:
    stats = mc.get(f"/lists/{mc.list_id}", params={"include_total_contacts": "true"}).json()[
        "stats"
    ]
    subscribed = mc.get(mc.members, params={"status": "subscribed", "count": 1}).json()[
        "total_items"
    ]
    unsubscribed = mc.get(mc.members, params={"status": "unsubscribed", "count": 1}).json()[
        "total_items"
    ]
    cleaned = mc.get(mc.members, params={"status": "cleaned", "count": 1}).json()["total_items"]
    assert stats["member_count"] == subscribed
    assert stats["unsubscribe_count"] == unsubscribed
    assert stats["cleaned_count"] == cleaned
    assert stats["total_contacts"] == mc.get(mc.members, params={"count": 1}).json()["total_items"]


def test_list_stats_follow_a_new_subscriber(mc: Any, fresh: Any) -> None:
    before = mc.get(f"/lists/{mc.list_id}").json()["stats"]["member_count"]
    mc.add(fresh())
    assert mc.get(f"/lists/{mc.list_id}").json()["stats"]["member_count"] == before + 1


def test_list_email_filter(mc: Any, fresh: Any) -> None:
    doc = mc.add(fresh())
    assert mc.get("/lists", params={"email": doc["email_address"]}).json()["total_items"] == 1
    assert mc.get("/lists", params={"email": fresh()}).json()["total_items"] == 0


def test_unknown_list_is_404(mc: Any) -> None:
    assert mc.get("/lists/0000000000").status_code == 404
    assert mc.get("/lists/0000000000/members").status_code == 404


def test_patch_list_and_validation(mc: Any) -> None:
    resp = mc.patch(f"/lists/{mc.list_id}", json={"permission_reminder": "You bought from us."})
    assert resp.status_code == 200
    assert resp.json()["permission_reminder"] == "You bought from us."
    bad = mc.patch(f"/lists/{mc.list_id}", json={"double_optin": "yes"})
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "double_optin"


def test_create_list_is_forbidden_by_constraints(mc: Any) -> None:
    assert mc.post("/lists", json={"name": "x"}).status_code == 403


def test_default_merge_fields(mc: Any) -> None:
    body = mc.get(f"/lists/{mc.list_id}/merge-fields", params={"count": 100}).json()
    tags = {m["tag"]: m for m in body["merge_fields"]}
    assert {"FNAME", "LNAME", "ADDRESS", "PHONE", "BIRTHDAY"} <= set(tags)
    assert tags["ADDRESS"]["type"] == "address"
    assert tags["BIRTHDAY"]["options"]["date_format"] == "MM/DD"
    assert body["list_id"] == mc.list_id
    assert body["total_items"] >= 5


def test_merge_field_create_patch_delete(mc: Any) -> None:
    path = f"/lists/{mc.list_id}/merge-fields"
    created = mc.post(path, json={"name": "Lifetime value", "type": "number", "tag": "LTVX"})
    assert created.status_code == 200
    mf = created.json()
    assert mf["tag"] == "LTVX"
    assert isinstance(mf["merge_id"], int)
    dup = mc.post(path, json={"name": "Again", "type": "text", "tag": "LTVX"})
    assert dup.status_code == 400
    assert dup.json()["detail"] == 'A Merge Field with the tag "LTVX" already exists for this list.'
    assert (
        mc.patch(f"{path}/{mf['merge_id']}", json={"required": True}).status_code == 400
    )  # name required
    patched = mc.patch(f"{path}/{mf['merge_id']}", json={"name": "LTV"})
    assert patched.json()["name"] == "LTV"
    assert mc.delete(f"{path}/{mf['merge_id']}").status_code == 204
    assert mc.get(f"{path}/{mf['merge_id']}").status_code == 404


def test_merge_field_type_enum_and_auto_tag(mc: Any) -> None:
    path = f"/lists/{mc.list_id}/merge-fields"
    bad = mc.post(path, json={"name": "X", "type": "boolean"})
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "type"
    auto = mc.post(path, json={"name": "Auto", "type": "text"}).json()
    assert auto["tag"].startswith("MERGE")
    mc.delete(f"{path}/{auto['merge_id']}")


def test_merge_fields_type_filter(mc: Any) -> None:
    body = mc.get(f"/lists/{mc.list_id}/merge-fields", params={"type": "address"}).json()
    assert [m["tag"] for m in body["merge_fields"]] == ["ADDRESS"]
