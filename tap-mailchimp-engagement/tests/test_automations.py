"""Streams `automations` and `automation_emails`, and automation-email engagement in `email_activity`."""

from __future__ import annotations

import uuid
from typing import Any

import requests

DAY = 86400


def _post(sb: Any, path: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(f"{sb.mailchimp_base_url}{path}", json=body, timeout=10)


def test_automations_and_their_emails_are_emitted_when_changed(sandbox: Any, tools: Any) -> None:
    config = tools.tap_config(sandbox)
    streams = {"automations", "automation_emails"}
    first = tools.run_tap(config, streams=streams)
    autos = first.records["automations"]
    assert {a["trigger_settings"]["workflow_type"] for a in autos} == {"welcomeSeries", "abandonedCart"}
    emails = first.records["automation_emails"]
    assert {e["workflow_id"] for e in emails} == {a["id"] for a in autos}
    assert {e["delay"]["action"] for e in emails} == {"signup", "ecomm_abandoned_cart"}
    assert all(e["id"] and e["emails_sent"] == 0 and e["send_time"] is None for e in emails)

    quiet = tools.run_tap(config, state=first.state, streams=streams)
    assert not quiet.records["automations"]
    assert not quiet.records["automation_emails"]

    # a new subscriber receives the welcome email a day later: both streams change
    session = tools.mc_session(sandbox)
    email = f"tap.auto.{uuid.uuid4().hex[:8]}@gmail.com"
    list_id = sandbox.info["mailchimp"]["list_id"]
    added = session.post(
        f"{sandbox.mailchimp_api_url}/lists/{list_id}/members",
        json={"email_address": email, "status": "subscribed"},
    )
    assert added.status_code == 200, added.text
    session.get(f"{sandbox.mailchimp_api_url}/ping")  # a sync: the member is queued
    assert _post(sandbox, "/_sandbox/clock", {"advance_seconds": DAY + 60}).status_code == 200
    after = tools.run_tap(config, state=quiet.state, streams=streams)
    welcome = next(e for e in after.records["automation_emails"] if e["delay"]["action"] == "signup")
    assert welcome["emails_sent"] >= 1
    assert welcome["send_time"] is not None
    assert [a["trigger_settings"]["workflow_type"] for a in after.records["automations"]] == ["welcomeSeries"]


def test_automation_email_engagement_flows_through_campaigns_and_email_activity(
    sandbox: Any, tools: Any
) -> None:
    session = tools.mc_session(sandbox)
    api = sandbox.mailchimp_api_url
    list_id = sandbox.info["mailchimp"]["list_id"]
    email = f"tap.welcome.{uuid.uuid4().hex[:8]}@gmail.com"
    assert session.post(
        f"{api}/lists/{list_id}/members", json={"email_address": email, "status": "subscribed"}
    ).ok
    session.get(f"{api}/ping")
    assert _post(sandbox, "/_sandbox/clock", {"advance_seconds": DAY + 60}).status_code == 200
    autos = session.get(f"{api}/automations").json()["automations"]
    welcome = next(a for a in autos if a["trigger_settings"]["workflow_type"] == "welcomeSeries")
    email_id = session.get(f"{api}/automations/{welcome['id']}/emails").json()["emails"][0]["id"]
    engaged = _post(
        sandbox,
        f"/_sandbox/mailchimp/campaigns/{email_id}/engage",
        {"email_address": email, "action": "click"},
    )
    assert engaged.status_code == 200, engaged.text

    run = tools.run_tap(tools.tap_config(sandbox), streams={"campaigns", "reports", "email_activity"})
    campaign = next(c for c in run.records["campaigns"] if c["id"] == email_id)
    assert (campaign["type"], campaign["status"]) == ("automation", "sending")
    report = next(r for r in run.records["reports"] if r["id"] == email_id)
    assert report["type"] == "automation"
    clicks = [
        r
        for r in run.records["email_activity"]
        if r["campaign_id"] == email_id and r["email_address"] == email and r["action"] == "click"
    ]
    assert len(clicks) == 1
