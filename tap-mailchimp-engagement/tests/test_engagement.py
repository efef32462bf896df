"""Campaign engagement: clock-driven incremental activity, status changes, windows, 404s, re-runs."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

LOOKBACK = timedelta(minutes=10)
KEY = ("campaign_id", "email_id", "action", "timestamp", "url")


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _truth(tools: Any, sb: Any, campaign_ids: set[str]) -> set[tuple[Any, ...]]:
    """Every activity row of the campaigns, read straight from the API (no `since`)."""
    session = tools.mc_session(sb)
    rows: set[tuple[Any, ...]] = set()
    for cid in campaign_ids:
        offset = 0
        while True:
            page = session.get(
                f"{sb.mailchimp_api_url}/reports/{cid}/email-activity",
                params={"count": 1000, "offset": offset},
            ).json()
            for email in page["emails"]:
                for act in email.get("activity") or []:
                    rows.add((cid, email["email_id"], act["action"], act["timestamp"], act.get("url") or None))
            if len(page["emails"]) < 1000:
                break
            offset += 1000
    return rows


def _send_campaign(tools: Any, sb: Any) -> str:
    session = tools.mc_session(sb)
    api = sb.mailchimp_api_url
    body = {
        "type": "regular",
        "recipients": {"list_id": sb.info["mailchimp"]["list_id"]},
        "settings": {
            "subject_line": "Tap test",
            "title": "Tap test",
            "from_name": "Shop",
            "reply_to": "news@shop.example.com",
        },
    }
    created = session.post(f"{api}/campaigns", json=body)
    assert created.status_code == 200, created.text
    cid = str(created.json()["id"])
    sent = session.post(f"{api}/campaigns/{cid}/actions/send")
    assert sent.status_code == 204, sent.text
    return cid


def _touch_newest_member(tools: Any, sb: Any) -> None:
    """Change one member now, after a pause, so every earlier change is strictly before it.

    The sandbox's HTTP `Date` header does not follow its advanced clock, so after `advance_clock` the
    tap's cut-off comes from the newest `last_changed` (minus one second).
    """
    time.sleep(1.1)
    session = tools.mc_session(sb)
    api = f"{sb.mailchimp_api_url}/lists/{sb.info['mailchimp']['list_id']}/members"
    member = session.get(api, params={"count": 1, "status": "subscribed", "fields": "members.id"}).json()
    mid = member["members"][0]["id"]
    assert session.patch(f"{api}/{mid}", json={"merge_fields": {"LNAME": f"Touched{time.time()}"}}).ok


@pytest.fixture(scope="module")
def timeline(sandbox: Any, tools: Any) -> dict[str, Any]:
    """Run 1 right after sending a campaign, then run 2 three sandbox-hours later."""
    config = tools.tap_config(sandbox, use_batches="never")
    streams = {"email_activity", "unsubscribes", "members"}
    cid = _send_campaign(tools, sandbox)
    first = tools.run_tap(config, streams=streams)
    sandbox.advance_clock(3 * 3600)
    _touch_newest_member(tools, sandbox)
    sandbox.reset_stats()
    second = tools.run_tap(config, state=first.state, streams=streams)
    stats = sandbox.stats("mailchimp")
    return {"config": config, "cid": cid, "first": first, "second": second, "stats": stats}


def _in_window(tools: Any, sb: Any) -> set[str]:
    session = tools.mc_session(sb)
    horizon = datetime.now(UTC) - timedelta(days=30)
    campaigns = session.get(
        f"{sb.mailchimp_api_url}/campaigns", params={"count": 1000, "status": "sent"}
    ).json()["campaigns"]
    return {c["id"] for c in campaigns if c["send_time"] and _ts(c["send_time"]) >= horizon}


def test_second_run_gets_exactly_the_new_activity(timeline: dict[str, Any], sandbox: Any, tools: Any) -> None:
    first, second = timeline["first"], timeline["second"]
    polled = _in_window(tools, sandbox)
    assert timeline["cid"] in polled
    r1 = {k for k in first.keys("email_activity", *KEY) if k[0] in polled}
    r2 = second.keys("email_activity", *KEY)
    truth = _truth(tools, sandbox, polled)
    assert r2 <= truth
    assert r1 | r2 == truth, "nothing visible on the server was skipped"
    new = r2 - r1
    assert any(k[0] == timeline["cid"] for k in new), "the new campaign's activity arrived over time"
    marks = first.state["bookmarks"]["email_activity"]["campaigns"]
    for key in r2 & r1:  # re-read rows only come from the trailing window
        assert _ts(key[3]) > _ts(marks[key[0]]) - LOOKBACK
    for key in new:
        assert not marks[key[0]] or _ts(key[3]) > _ts(marks[key[0]]) - LOOKBACK


def test_campaigns_outside_the_engagement_window_are_not_polled(
    timeline: dict[str, Any], sandbox: Any, tools: Any
) -> None:
    calls = timeline["stats"]["requests"].get("GET /3.0/reports/{campaign_id}/email-activity", {})
    polled = _in_window(tools, sandbox)
    assert sum(calls.values()) == len(polled)  # one page each; the older seeded campaigns are skipped
    ids = {r["campaign_id"] for r in timeline["second"].records["email_activity"]}
    assert ids <= polled


def test_bounces_and_unsubscribes_arrive_as_member_status_changes(timeline: dict[str, Any]) -> None:
    first, second = timeline["first"], timeline["second"]
    members = {r["id"]: r for r in second.records["members"]}
    (list_id,) = second.state["bookmarks"]["members"]["lists"]
    lo = _ts(first.state["bookmarks"]["members"]["lists"][list_id]["since"])
    hi = _ts(second.state["bookmarks"]["members"]["lists"][list_id]["since"])
    bounced = {
        r["email_id"]
        for r in second.records["email_activity"]
        if r["action"] == "bounce" and r["bounce_type"] == "hard" and lo < _ts(r["timestamp"]) <= hi
    }
    unsubscribed = {
        r["email_id"] for r in second.records["unsubscribes"] if lo < _ts(r["timestamp"]) <= hi
    }
    assert bounced or unsubscribed, "three sandbox hours produce status changes"
    for mid in bounced:
        assert members[mid]["status"] == "cleaned"
    for mid in unsubscribed:
        assert members[mid]["status"] == "unsubscribed"
        assert members[mid]["unsubscribe_reason"]
    for row in second.records["unsubscribes"]:
        assert row["campaign_id"]
        assert row["reason"] is None or isinstance(row["reason"], str)


def test_rerun_with_nothing_new_emits_only_the_documented_overlap(
    timeline: dict[str, Any], tools: Any
) -> None:
    second = timeline["second"]
    third = tools.run_tap(timeline["config"], state=second.state, streams={"email_activity", "members"})
    marks = second.state["bookmarks"]["email_activity"]["campaigns"]
    before = second.keys("email_activity", *KEY)
    for key in third.keys("email_activity", *KEY):
        mark = _ts(marks[key[0]]) if marks.get(key[0]) else None
        assert mark is not None
        # either re-read from the trailing window, or activity newer than the bookmark
        assert (key in before and _ts(key[3]) > mark - LOOKBACK) or _ts(key[3]) > mark
    cutoff = second.state["bookmarks"]["members"]["lists"]
    for row in third.records["members"]:
        assert _ts(row["last_changed"]) > _ts(cutoff[row["list_id"]]["since"])


def test_campaign_deleted_mid_run_is_skipped_with_a_warning(
    sandbox: Any, tools: Any, caplog: pytest.LogCaptureFixture
) -> None:
    gone = {
        "id": "0000000000",
        "status": "sent",
        "send_time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        "emails_sent": 5,
        "recipients": {"list_id": sandbox.info["mailchimp"]["list_id"]},
    }

    def stale_campaign_list(tap: Any) -> None:
        tap.mailchimp.campaigns().append(gone)

    caplog.set_level(logging.WARNING)
    run = tools.run_tap(
        tools.tap_config(sandbox),
        streams={"email_activity", "unsubscribes", "sent_to"},
        prepare=stale_campaign_list,
    )
    assert "Skipping email activity of campaign 0000000000" in caplog.text
    assert "Skipping unsubscribes of campaign 0000000000" in caplog.text
    assert run.records["email_activity"], "the other campaigns are still read"
    assert all(r["campaign_id"] != gone["id"] for r in run.records["email_activity"])
    assert "0000000000" not in run.state["bookmarks"]["email_activity"]["campaigns"]
    assert sandbox.info["mailchimp"]["api_key"] not in caplog.text


def test_sent_to_rows_carry_their_campaigns_send_time_also_when_resumed(sandbox: Any, tools: Any) -> None:
    """A run killed in the middle of a campaign's recipients resumes with the campaign unchanged, so
    the change-detected `campaigns` stream does not emit it again: each `sent_to` row itself carries
    the send time that dates its `send` activity (the loader's fallback, the Oro campaign's start
    date, has no time of day)."""
    config = tools.tap_config(sandbox)
    first = tools.run_tap(config, streams={"campaigns", "sent_to"})
    send_times = {c["id"]: c["send_time"] for c in first.records["campaigns"] if c.get("send_time")}
    assert first.records["sent_to"]
    for row in first.records["sent_to"]:
        assert row["send_time"] == send_times[row["campaign_id"]]
    # as if killed before the last campaign's recipients were done
    state = first.state
    resumed_campaign = first.records["sent_to"][-1]["campaign_id"]
    del state["bookmarks"]["sent_to"]["campaigns"][resumed_campaign]
    resumed = tools.run_tap(config, state=state, streams={"campaigns", "sent_to"})
    assert resumed.records["campaigns"] == []  # unchanged: not emitted again
    rows = resumed.records["sent_to"]
    assert {r["campaign_id"] for r in rows} == {resumed_campaign}
    assert {r["send_time"] for r in rows} == {send_times[resumed_campaign]}
