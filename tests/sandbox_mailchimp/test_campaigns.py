"""Campaigns: collection, filters, sorting, create, send, delete (reference §10.1)."""

from __future__ import annotations

import uuid
from typing import Any

PROBLEM = "application/problem+json; charset=utf-8"


def _new_list(mc: Any, n_members: int) -> tuple[dict[str, Any], list[str]]:
    """`n_members` fresh subscribed members in a new static segment (a tag) of the audience.

    Campaigns sent to that segment reach only these members, isolating the test from others.
    Returns (recipients option for a campaign, emails).
    """
    emails = [f"camp.{uuid.uuid4().hex[:10]}@gmail.com" for _ in range(n_members)]
    for email in emails:
        r = mc.post(mc.members, json={"email_address": email, "status": "subscribed"})
        assert r.status_code == 200, r.text
    resp = mc.post(
        f"/lists/{mc.list_id}/segments",
        json={"name": f"camp-{uuid.uuid4().hex[:8]}", "static_segment": emails},
    )
    assert resp.status_code == 200, resp.text
    return {"list_id": mc.list_id, "segment_opts": {"saved_segment_id": resp.json()["id"]}}, emails


def _create(mc: Any, recipients: dict[str, Any] | str, **settings: Any) -> dict[str, Any]:
    if isinstance(recipients, str):
        recipients = {"list_id": recipients}
    body = {
        "type": "regular",
        "recipients": recipients,
        "settings": {
            "subject_line": "Hello",
            "title": "Test campaign",
            "from_name": "Acme",
            "reply_to": "news@acme-shop.com",
            **settings,
        },
    }
    resp = mc.post("/campaigns", json=body)
    assert resp.status_code == 200, resp.text
    doc: dict[str, Any] = resp.json()
    return doc


def test_seeded_account_has_sent_campaigns_and_a_draft(mc: Any) -> None:
    resp = mc.get("/campaigns", params={"count": 1000})
    assert resp.status_code == 200
    body = resp.json()
    statuses = [c["status"] for c in body["campaigns"]]
    assert statuses.count("sent") >= 5
    assert "save" in statuses
    assert body["total_items"] >= len(statuses)
    sent = next(c for c in body["campaigns"] if c["status"] == "sent")
    for key in (
        "id",
        "web_id",
        "type",
        "create_time",
        "archive_url",
        "emails_sent",
        "send_time",
        "recipients",
        "settings",
        "tracking",
        "report_summary",
        "delivery_status",
        "_links",
    ):
        assert key in sent, key
    assert len(sent["id"]) == 10
    assert sent["send_time"].endswith("+00:00")
    assert sent["recipients"]["list_id"] == mc.list_id
    assert sent["emails_sent"] > 0


def test_default_count_is_ten(mc: Any) -> None:
    body = mc.get("/campaigns").json()
    assert len(body["campaigns"]) == min(10, body["total_items"])


def test_draft_has_empty_send_time_and_no_report_summary(mc: Any) -> None:
    drafts = mc.get("/campaigns", params={"status": "save", "count": 1000}).json()["campaigns"]
    assert drafts
    assert all(c["status"] == "save" for c in drafts)
    assert drafts[0]["send_time"] == ""
    assert drafts[0]["emails_sent"] == 0
    assert "report_summary" not in drafts[0]


def test_status_filter_rejects_unknown_value(mc: Any) -> None:
    resp = mc.get("/campaigns", params={"status": "bogus"})
    assert resp.status_code == 400
    assert resp.headers["Content-Type"] == PROBLEM
    assert resp.json()["errors"][0]["field"] == "status"


def test_since_send_time_is_strict_and_before_is_inclusive(mc: Any) -> None:
    sent = mc.get(
        "/campaigns",
        params={"status": "sent", "sort_field": "send_time", "sort_dir": "ASC", "count": 1000},
    ).json()["campaigns"]
    pivot = sent[1]["send_time"]
    after = mc.get("/campaigns", params={"since_send_time": pivot, "count": 1000}).json()[
        "campaigns"
    ]
    before = mc.get("/campaigns", params={"before_send_time": pivot, "count": 1000}).json()[
        "campaigns"
    ]
    assert all(c["send_time"] > pivot for c in after)
    assert sent[1]["id"] not in {c["id"] for c in after}
    assert sent[1]["id"] in {c["id"] for c in before}
    assert all(c["send_time"] and c["send_time"] <= pivot for c in before)


def test_sort_by_send_time_desc(mc: Any) -> None:
    sent = mc.get(
        "/campaigns",
        params={"status": "sent", "sort_field": "send_time", "sort_dir": "DESC", "count": 1000},
    ).json()["campaigns"]
    times = [c["send_time"] for c in sent]
    assert times == sorted(times, reverse=True)


def test_bad_sort_field_is_400(mc: Any) -> None:
    assert mc.get("/campaigns", params={"sort_field": "title"}).status_code == 400


def test_list_id_filter(mc: Any) -> None:
    other = mc.get("/campaigns", params={"list_id": "0000000000"}).json()
    assert other["total_items"] == 0
    mine = mc.get("/campaigns", params={"list_id": mc.list_id, "count": 1000}).json()
    assert mine["total_items"] > 0
    assert all(c["recipients"]["list_id"] == mc.list_id for c in mine["campaigns"])


def test_fields_are_root_relative(mc: Any) -> None:
    body = mc.get(
        "/campaigns", params={"fields": "campaigns.id,campaigns.status,total_items"}
    ).json()
    assert set(body) == {"campaigns", "total_items"}
    assert all(set(c) == {"id", "status"} for c in body["campaigns"])


def test_unknown_campaign_is_404_problem(mc: Any) -> None:
    resp = mc.get("/campaigns/ffffffffff")
    assert resp.status_code == 404
    assert resp.headers["Content-Type"] == PROBLEM
    assert resp.json()["title"] == "Resource Not Found"
    assert resp.json()["instance"] == resp.headers["X-Request-Id"]


def test_create_requires_type(mc: Any) -> None:
    resp = mc.post("/campaigns", json={"recipients": {"list_id": mc.list_id}})
    assert resp.status_code == 400
    assert "type" in resp.json()["errors"][0]["message"]


def test_create_rejects_unknown_type_and_unknown_list(mc: Any) -> None:
    assert mc.post("/campaigns", json={"type": "fax"}).status_code == 400
    resp = mc.post("/campaigns", json={"type": "regular", "recipients": {"list_id": "nolist0000"}})
    assert resp.status_code == 400
    assert resp.json()["errors"][0]["field"] == "recipients.list_id"


def test_create_answers_200_with_a_draft(mc: Any) -> None:
    doc = _create(mc, mc.list_id, title="Created by test")
    assert doc["status"] == "save"
    assert doc["settings"]["title"] == "Created by test"
    assert doc["send_time"] == ""
    assert mc.get(f"/campaigns/{doc['id']}").json()["id"] == doc["id"]


def test_patch_updates_a_draft(mc: Any) -> None:
    doc = _create(mc, mc.list_id)
    resp = mc.patch(f"/campaigns/{doc['id']}", json={"settings": {"subject_line": "Changed"}})
    assert resp.status_code == 200
    assert resp.json()["settings"]["subject_line"] == "Changed"
    assert resp.json()["settings"]["from_name"] == "Acme"


def test_send_reaches_subscribed_members_only(mc: Any) -> None:
    recipients, emails = _new_list(mc, 5)
    gone = emails[0]
    assert (
        mc.patch(f"/lists/{mc.list_id}/members/{gone}", json={"status": "unsubscribed"}).status_code
        == 200
    )
    doc = _create(mc, recipients)
    resp = mc.post(f"/campaigns/{doc['id']}/actions/send")
    assert resp.status_code == 204
    assert resp.content == b""
    sent = mc.get(f"/campaigns/{doc['id']}").json()
    assert sent["status"] == "sent"
    assert sent["emails_sent"] == 4
    assert sent["send_time"]
    recipients = mc.get(f"/reports/{doc['id']}/sent-to", params={"count": 100}).json()["sent_to"]
    assert {r["email_address"] for r in recipients} == set(emails[1:])


def test_send_twice_is_400(mc: Any) -> None:
    recipients, _ = _new_list(mc, 1)
    doc = _create(mc, recipients)
    assert mc.post(f"/campaigns/{doc['id']}/actions/send").status_code == 204
    again = mc.post(f"/campaigns/{doc['id']}/actions/send")
    assert again.status_code == 400
    assert again.headers["Content-Type"] == PROBLEM


def test_send_without_subject_is_not_ready(mc: Any) -> None:
    doc = _create(mc, mc.list_id, subject_line="")
    resp = mc.post(f"/campaigns/{doc['id']}/actions/send")
    assert resp.status_code == 400
    assert resp.json()["detail"] == "Your Campaign is not ready to send."


def test_patch_of_sent_campaign_is_refused(mc: Any) -> None:
    recipients, _ = _new_list(mc, 1)
    doc = _create(mc, recipients)
    mc.post(f"/campaigns/{doc['id']}/actions/send")
    assert mc.patch(f"/campaigns/{doc['id']}", json={"settings": {"title": "x"}}).status_code == 400


def test_member_id_filter_finds_campaigns_sent_to_member(mc: Any) -> None:
    recipients, emails = _new_list(mc, 2)
    doc = _create(mc, recipients)
    mc.post(f"/campaigns/{doc['id']}/actions/send")
    member_hash = mc.get(f"{mc.members}/{emails[0]}").json()["id"]
    found = mc.get("/campaigns", params={"member_id": member_hash, "count": 1000}).json()[
        "campaigns"
    ]
    assert [c["id"] for c in found] == [doc["id"]]


def test_delete_removes_campaign_and_report(mc: Any) -> None:
    recipients, _ = _new_list(mc, 1)
    doc = _create(mc, recipients)
    mc.post(f"/campaigns/{doc['id']}/actions/send")
    assert mc.get(f"/reports/{doc['id']}").status_code == 200
    resp = mc.delete(f"/campaigns/{doc['id']}")
    assert resp.status_code == 204
    assert mc.get(f"/campaigns/{doc['id']}").status_code == 404
    assert mc.get(f"/reports/{doc['id']}").status_code == 404
    assert mc.get(f"/reports/{doc['id']}/email-activity").status_code == 404
    assert mc.delete(f"/campaigns/{doc['id']}").status_code == 404
