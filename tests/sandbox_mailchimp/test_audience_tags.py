"""Member tags, segments (static = tags), tag search, events, activity, webhooks."""

from __future__ import annotations

from typing import Any


def _tags(mc: Any, member_id: str) -> list[dict[str, Any]]:
    return mc.get(f"{mc.members}/{member_id}/tags", params={"count": 100}).json()["tags"]


def test_tags_post_active_creates_inactive_removes(mc: Any, fresh: Any) -> None:
    doc = mc.add(fresh())
    path = f"{mc.members}/{doc['id']}/tags"
    resp = mc.post(
        path,
        json={
            "tags": [
                {"name": "Brand New Tag X1", "status": "active"},
                {"name": "VIP", "status": "active"},
            ]
        },
    )
    assert resp.status_code == 204
    assert resp.content == b""
    names = {t["name"] for t in _tags(mc, doc["id"])}
    assert names == {"Brand New Tag X1", "VIP"}
    assert all(t["date_added"].endswith("+00:00") for t in _tags(mc, doc["id"]))
    mc.post(path, json={"tags": [{"name": "vip", "status": "inactive"}], "is_syncing": True})
    assert {t["name"] for t in _tags(mc, doc["id"])} == {"Brand New Tag X1"}
    member = mc.get(f"{mc.members}/{doc['id']}").json()
    assert member["tags_count"] == 1
    assert member["tags"][0]["name"] == "Brand New Tag X1"


def test_tag_names_keep_mailchimp_casing(mc: Any, fresh: Any) -> None:
    doc = mc.add(fresh())
    mc.post(
        f"{mc.members}/{doc['id']}/tags",
        json={"tags": [{"name": "newsletter", "status": "active"}]},
    )
    assert [t["name"] for t in _tags(mc, doc["id"])] == ["Newsletter"]


def test_tags_on_unknown_member_404(mc: Any, fresh: Any) -> None:
    resp = mc.post(
        f"{mc.members}/{fresh()}/tags", json={"tags": [{"name": "x", "status": "active"}]}
    )
    assert resp.status_code == 404


def test_tags_body_validation(mc: Any, fresh: Any) -> None:
    doc = mc.add(fresh())
    bad = mc.post(f"{mc.members}/{doc['id']}/tags", json={"tags": [{"name": "x", "status": "on"}]})
    assert bad.status_code == 400


def test_member_shows_at_most_50_tags(mc: Any, fresh: Any) -> None:
    doc = mc.add(fresh())
    tags = [{"name": f"Bulk tag {i:02d}", "status": "active"} for i in range(55)]
    mc.post(f"{mc.members}/{doc['id']}/tags", json={"tags": tags})
    member = mc.get(f"{mc.members}/{doc['id']}").json()
    assert member["tags_count"] == 55
    assert len(member["tags"]) == 50
    page = mc.get(f"{mc.members}/{doc['id']}/tags", params={"count": 10, "offset": 50}).json()
    assert page["total_items"] == 55
    assert len(page["tags"]) == 5


def test_post_member_with_tags(mc: Any, fresh: Any) -> None:
    doc = mc.add(fresh(), tags=["Webinar 2026", "Fresh Lead"])
    assert {t["name"] for t in doc["tags"]} == {"Webinar 2026", "Fresh Lead"}


def test_tag_search_prefix(mc: Any) -> None:
    body = mc.get(f"/lists/{mc.list_id}/tag-search", params={"name": "Web"}).json()
    assert body["total_items"] >= 1
    assert all(t["name"].lower().startswith("web") for t in body["tags"])


def test_static_segment_mirrors_tags(mc: Any, fresh: Any) -> None:
    a, b = mc.add(fresh()), mc.add(fresh())
    seg = mc.post(
        f"/lists/{mc.list_id}/segments",
        json={"name": "Segment Mirror", "static_segment": [a["email_address"]]},
    )
    assert seg.status_code == 200
    sid = seg.json()["id"]
    assert seg.json()["type"] == "static"
    assert seg.json()["member_count"] == 1
    assert "Segment Mirror" in {t["name"] for t in _tags(mc, a["id"])}
    resp = mc.post(
        f"/lists/{mc.list_id}/segments/{sid}",
        json={
            "members_to_add": [b["email_address"], fresh()],
            "members_to_remove": [a["email_address"]],
        },
    )
    body = resp.json()
    assert body["total_added"] == 1
    assert body["total_removed"] == 1
    assert body["error_count"] == 1
    assert "Segment Mirror" not in {t["name"] for t in _tags(mc, a["id"])}
    members = mc.get(f"/lists/{mc.list_id}/segments/{sid}/members").json()
    assert [m["id"] for m in members["members"]] == [b["id"]]
    assert mc.delete(f"/lists/{mc.list_id}/segments/{sid}").status_code == 204
    assert mc.get(f"/lists/{mc.list_id}/segments/{sid}").status_code == 404
    assert "Segment Mirror" not in {t["name"] for t in _tags(mc, b["id"])}


def test_segment_batch_limit_500(mc: Any) -> None:
    seg = mc.post(
        f"/lists/{mc.list_id}/segments", json={"name": "Big batch", "static_segment": []}
    ).json()
    resp = mc.post(
        f"/lists/{mc.list_id}/segments/{seg['id']}",
        json={"members_to_add": [f"p{i}@gmail.com" for i in range(501)]},
    )
    assert resp.status_code == 400
    mc.delete(f"/lists/{mc.list_id}/segments/{seg['id']}")


def test_segments_type_filter(mc: Any) -> None:
    body = mc.get(f"/lists/{mc.list_id}/segments", params={"type": "static", "count": 100}).json()
    assert body["total_items"] >= 5
    assert all(s["type"] == "static" for s in body["segments"])


def test_events_post_and_get(mc: Any, fresh: Any) -> None:
    doc = mc.add(fresh())
    path = f"{mc.members}/{doc['id']}/events"
    ok = mc.post(
        path,
        json={
            "name": "purchased",
            "properties": {"order": "A1"},
            "occurred_at": "2026-01-02T03:04:05+00:00",
        },
    )
    assert ok.status_code == 204
    body = mc.get(path).json()
    assert body["total_items"] == 1
    assert body["events"][0] == {
        "occurred_at": "2026-01-02T03:04:05+00:00",
        "name": "purchased",
        "properties": {"order": "A1"},
    }


def test_event_name_length(mc: Any, fresh: Any) -> None:
    doc = mc.add(fresh())
    path = f"{mc.members}/{doc['id']}/events"
    assert mc.post(path, json={"name": "x"}).status_code == 400
    assert mc.post(path, json={"name": "x" * 31}).status_code == 400
    assert mc.post(path, json={}).status_code == 400
    assert mc.post(path, json={"name": "ok"}).status_code == 204


def test_member_activity_shape(mc: Any, fresh: Any) -> None:
    doc = mc.add(fresh())
    body = mc.get(f"{mc.members}/{doc['id']}/activity").json()
    assert body["email_id"] == doc["id"]
    assert body["activity"] == []


def test_webhooks_registry(mc: Any) -> None:
    path = f"/lists/{mc.list_id}/webhooks"
    created = mc.post(
        path,
        json={
            "url": "https://hooks.example.org/mc?secret=s",
            "events": {"unsubscribe": True},
            "sources": {"api": False},
        },
    )
    assert created.status_code == 200
    hook = created.json()
    assert hook["events"]["unsubscribe"] is True
    assert hook["sources"]["api"] is False
    assert mc.post(path, json={"url": "https://hooks.example.org/mc?secret=s"}).status_code == 400
    assert mc.post(path, json={"url": "not a url"}).status_code == 400
    assert any(h["id"] == hook["id"] for h in mc.get(path).json()["webhooks"])
    patched = mc.patch(f"{path}/{hook['id']}", json={"events": {"campaign": True}})
    assert patched.json()["events"]["campaign"] is True
    assert mc.delete(f"{path}/{hook['id']}").status_code == 204
    assert mc.get(f"{path}/{hook['id']}").status_code == 404


def test_segment_members_to_add_per_address_outcome(mc: Any, fresh: Any) -> None:
    """What a writer of tags through ``members_to_add`` relies on (target-mailchimp's segment mode):
    an unsubscribed contact is tagged like any other (tags are not consent); an address the list no
    longer has (permanently deleted) or never had is not added and comes back by address in
    ``errors[].email_addresses`` (the spec's "could not be added"), counted in ``error_count``; the
    other addresses of the call are still added."""
    ok, unsub, gone = mc.add(fresh()), mc.add(fresh(), status="unsubscribed"), mc.add(fresh())
    assert mc.post(f"{mc.members}/{gone['id']}/actions/delete-permanent").status_code == 204
    never = fresh()
    seg = mc.post(
        f"/lists/{mc.list_id}/segments", json={"name": "Outcome Per Address", "static_segment": []}
    ).json()
    body = mc.post(
        f"/lists/{mc.list_id}/segments/{seg['id']}",
        json={"members_to_add": [ok["email_address"], unsub["email_address"], gone["email_address"], never]},
    ).json()
    assert sorted(m["id"] for m in body["members_added"]) == sorted([ok["id"], unsub["id"]])
    assert body["total_added"] == 2
    assert body["error_count"] == 2
    failed = {e for row in body["errors"] for e in row["email_addresses"]}
    assert failed == {gone["email_address"], never}
    assert "Outcome Per Address" in {t["name"] for t in _tags(mc, unsub["id"])}
    assert mc.get(f"{mc.members}/{unsub['id']}").json()["status"] == "unsubscribed"
    mc.delete(f"/lists/{mc.list_id}/segments/{seg['id']}")
