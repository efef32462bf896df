"""Engagement over time: a sent campaign's events arrive as the sandbox clock moves.

Campaigns here go to a fresh static segment (tag) of fresh members, so other tests' members are
never bounced or unsubscribed. The clock only moves forward.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests

HOUR = 3600


def _now(sandbox: Any) -> datetime:
    return datetime.fromisoformat(sandbox.now())


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _engage(sandbox: Any, campaign_id: str, **body: Any) -> requests.Response:
    return requests.post(
        f"{sandbox.mailchimp_base_url}/_sandbox/mailchimp/campaigns/{campaign_id}/engage",
        json=body,
        timeout=10,
    )


def _send_to_fresh(mc: Any, n: int) -> tuple[str, list[str]]:
    emails = [f"eng.{uuid.uuid4().hex[:10]}@gmail.com" for _ in range(n)]
    for email in emails:
        assert (
            mc.post(mc.members, json={"email_address": email, "status": "subscribed"}).status_code
            == 200
        )
    seg = mc.post(
        f"/lists/{mc.list_id}/segments",
        json={"name": f"eng-{uuid.uuid4().hex[:8]}", "static_segment": emails},
    )
    assert seg.status_code == 200, seg.text
    resp = mc.post(
        "/campaigns",
        json={
            "type": "regular",
            "recipients": {
                "list_id": mc.list_id,
                "segment_opts": {"saved_segment_id": seg.json()["id"]},
            },
            "settings": {
                "subject_line": "Engagement test",
                "title": "Engagement test",
                "from_name": "Acme",
                "reply_to": "news@acme-shop.com",
            },
        },
    )
    assert resp.status_code == 200, resp.text
    cid = resp.json()["id"]
    assert mc.post(f"/campaigns/{cid}/actions/send").status_code == 204
    return cid, emails


def _activity(mc: Any, cid: str, **params: Any) -> list[dict[str, Any]]:
    body = mc.get(f"/reports/{cid}/email-activity", params={"count": 1000, **params}).json()
    rows: list[dict[str, Any]] = body["emails"]
    return rows


def _pick(mc: Any, sent: dict[str, Any]) -> str:
    """A recipient not used by another test, still subscribed, with no engagement so far."""
    rows = {r["email_address"]: r for r in _activity(mc, sent["id"])}
    for email in sent["emails"]:
        if email in sent["used"] or rows[email]["activity"]:
            continue
        if mc.get(f"{mc.members}/{email}").json()["status"] == "subscribed":
            sent["used"].add(email)
            return email
    raise AssertionError("no quiet recipient left")


@pytest.fixture(scope="module")
def sent(mc: Any, sandbox: Any) -> dict[str, Any]:
    """A campaign to 40 fresh members, sent at the current sandbox time."""
    at = _now(sandbox)
    cid, emails = _send_to_fresh(mc, 40)
    return {"id": cid, "emails": emails, "sent_at": at, "used": set()}


def test_nothing_but_sends_at_send_time(mc: Any, sent: dict[str, Any]) -> None:
    report = mc.get(f"/reports/{sent['id']}").json()
    assert report["emails_sent"] == 40
    assert report["opens"]["opens_total"] == 0
    rows = _activity(mc, sent["id"])
    assert len(rows) == 40
    assert all(r["activity"] == [] for r in rows)
    assert mc.get(f"/reports/{sent['id']}/sent-to").json()["total_items"] == 40


def test_opens_arrive_as_the_clock_moves(mc: Any, sandbox: Any, sent: dict[str, Any]) -> None:
    t0 = _now(sandbox)
    sandbox.advance_clock(24 * HOUR)
    first = mc.get(f"/reports/{sent['id']}").json()
    assert first["opens"]["opens_total"] > 0
    window1 = _activity(mc, sent["id"], since=_iso(t0))
    stamps1 = [a["timestamp"] for r in window1 for a in r["activity"]]
    assert stamps1
    assert all(_iso(t0) < s <= _iso(_now(sandbox)) for s in stamps1)
    t1 = _now(sandbox)
    sandbox.advance_clock(10 * 24 * HOUR)
    later = mc.get(f"/reports/{sent['id']}").json()
    assert later["opens"]["opens_total"] >= first["opens"]["opens_total"]
    window2 = _activity(mc, sent["id"], since=_iso(t1))
    stamps2 = [a["timestamp"] for r in window2 for a in r["activity"]]
    assert all(s > _iso(t1) for s in stamps2)
    everything = [a["timestamp"] for r in _activity(mc, sent["id"]) for a in r["activity"]]
    assert sorted(stamps1 + stamps2) == sorted(s for s in everything if s > _iso(t0))


def test_engaged_unsubscribe_changes_member_at_event_time(
    mc: Any, sandbox: Any, sent: dict[str, Any]
) -> None:
    email = _pick(mc, sent)
    before = _now(sandbox)
    resp = _engage(sandbox, sent["id"], email_address=email, action="unsub")
    assert resp.status_code == 200, resp.text
    member = mc.get(f"{mc.members}/{email}").json()
    assert member["status"] == "unsubscribed"
    assert member["unsubscribe_reason"]
    assert member["last_changed"] >= _iso(before)
    changed = mc.get(
        mc.members,
        params={
            "since_last_changed": _iso(before - timedelta(seconds=1)),
            "status": "unsubscribed",
            "count": 1000,
        },
    ).json()["members"]
    assert email in {m["email_address"] for m in changed}
    unsubs = mc.get(f"/reports/{sent['id']}/unsubscribed", params={"count": 1000}).json()[
        "unsubscribes"
    ]
    row = next(u for u in unsubs if u["email_address"] == email)
    assert row["reason"] == member["unsubscribe_reason"]
    assert mc.get(f"/reports/{sent['id']}").json()["unsubscribed"] == len(unsubs)


def test_engaged_hard_bounce_cleans_member(mc: Any, sandbox: Any, sent: dict[str, Any]) -> None:
    email = _pick(mc, sent)
    assert (
        _engage(sandbox, sent["id"], email_address=email, action="bounce", type="hard").status_code
        == 200
    )
    assert mc.get(f"{mc.members}/{email}").json()["status"] == "cleaned"
    row = mc.get(f"/reports/{sent['id']}/email-activity/{email}").json()
    assert {"action": "bounce", "type": "hard"}.items() <= row["activity"][-1].items()
    sent_to = mc.get(f"/reports/{sent['id']}/sent-to/{email}").json()
    assert sent_to["status"] == "hard"


def test_soft_bounce_keeps_member_subscribed(mc: Any, sandbox: Any, sent: dict[str, Any]) -> None:
    email = _pick(mc, sent)
    status = mc.get(f"{mc.members}/{email}").json()["status"]
    assert (
        _engage(sandbox, sent["id"], email_address=email, action="bounce", type="soft").status_code
        == 200
    )
    assert mc.get(f"{mc.members}/{email}").json()["status"] == status


def test_engaged_click_shows_in_click_details(mc: Any, sandbox: Any, sent: dict[str, Any]) -> None:
    urls = mc.get(f"/reports/{sent['id']}/click-details").json()["urls_clicked"]
    target = urls[-1]
    email = _pick(mc, sent)
    assert (
        _engage(
            sandbox, sent["id"], email_address=email, action="click", url=target["url"]
        ).status_code
        == 200
    )
    after = mc.get(f"/reports/{sent['id']}/click-details/{target['id']}").json()
    assert after["total_clicks"] == target["total_clicks"] + 1
    members = mc.get(
        f"/reports/{sent['id']}/click-details/{target['id']}/members", params={"count": 1000}
    ).json()["members"]
    assert email in {m["email_address"] for m in members}
    clicks = [
        a
        for a in mc.get(f"/reports/{sent['id']}/email-activity/{email}").json()["activity"]
        if a["action"] == "click"
    ]
    assert target["url"] in {c["url"] for c in clicks}


def test_future_event_applies_only_when_the_clock_passes_it(
    mc: Any, sandbox: Any, sent: dict[str, Any]
) -> None:
    email = _pick(mc, sent)
    at = _now(sandbox) + timedelta(hours=2)
    assert (
        _engage(sandbox, sent["id"], email_address=email, action="unsub", at=_iso(at)).status_code
        == 200
    )
    assert mc.get(f"/reports/{sent['id']}/unsubscribed/{email}").status_code == 404
    assert mc.get(f"{mc.members}/{email}").json()["status"] == "subscribed"
    sandbox.advance_clock(3 * HOUR)
    assert mc.get(f"/reports/{sent['id']}/unsubscribed/{email}").json()["timestamp"] == _iso(at)
    member = mc.get(f"{mc.members}/{email}").json()
    assert member["status"] == "unsubscribed"
    assert member["last_changed"] == _iso(at)


def test_member_reads_see_due_events_without_reading_reports_first(
    mc: Any, sandbox: Any, sent: dict[str, Any]
) -> None:
    """A tap that reads members before reports must not miss status changes (since_last_changed)."""
    email = _pick(mc, sent)
    mark = _now(sandbox)
    at = mark + timedelta(hours=1)
    assert (
        _engage(
            sandbox, sent["id"], email_address=email, action="bounce", type="hard", at=_iso(at)
        ).status_code
        == 200
    )
    sandbox.advance_clock(2 * HOUR)
    changed = mc.get(mc.members, params={"since_last_changed": _iso(mark), "count": 1000}).json()[
        "members"
    ]
    assert email in {m["email_address"] for m in changed if m["status"] == "cleaned"}


def test_member_activity_feed_records_engagement(
    mc: Any, sandbox: Any, sent: dict[str, Any]
) -> None:
    email = _pick(mc, sent)
    assert _engage(sandbox, sent["id"], email_address=email, action="open").status_code == 200
    feed = mc.get(f"{mc.members}/{email}/activity").json()["activity"]
    assert any(a["action"] == "open" and a["campaign_id"] == sent["id"] for a in feed)


def test_engage_rejects_unknown_campaign_recipient_and_action(
    sandbox: Any, sent: dict[str, Any]
) -> None:
    assert (
        _engage(sandbox, "0000000000", email_address=sent["emails"][0], action="open").status_code
        == 404
    )
    assert (
        _engage(sandbox, sent["id"], email_address="stranger@gmail.com", action="open").status_code
        == 404
    )
    assert (
        _engage(sandbox, sent["id"], email_address=sent["emails"][0], action="forward").status_code
        == 400
    )
    assert (
        _engage(
            sandbox,
            sent["id"],
            email_address=sent["emails"][0],
            action="click",
            url="https://elsewhere.example/",
        ).status_code
        == 400
    )


def test_list_stats_count_sent_campaigns(mc: Any) -> None:
    stats = mc.get(f"/lists/{mc.list_id}").json()["stats"]
    sent = mc.get("/campaigns", params={"status": "sent", "list_id": mc.list_id}).json()[
        "total_items"
    ]
    assert stats["campaign_count"] == sent
    assert stats["campaign_last_sent"]
    assert 0 < stats["open_rate"] <= 100
