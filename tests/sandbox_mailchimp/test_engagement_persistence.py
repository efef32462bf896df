"""Engagement state survives a restart with --data-dir; moving the clock back hides later events.

Own sandboxes (not the shared session one): these tests restart servers and set the clock back.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from oromc_sandbox.testing import running_sandbox


def _session(sb: Any) -> requests.Session:
    session = requests.Session()
    session.auth = ("anystring", sb.info["mailchimp"]["api_key"])
    return session


def _snapshot(sb: Any) -> dict[str, Any]:
    s = _session(sb)
    api = sb.mailchimp_api_url
    reports = s.get(f"{api}/reports", params={"count": 1000}, timeout=30).json()["reports"]
    first = reports[0]["id"]
    return {
        "campaigns": [
            (c["id"], c["status"], c["emails_sent"])
            for c in s.get(f"{api}/campaigns", params={"count": 1000}, timeout=30).json()[
                "campaigns"
            ]
        ],
        "reports": [
            (
                r["id"],
                r["opens"]["opens_total"],
                r["clicks"]["clicks_total"],
                r["unsubscribed"],
                r["ecommerce"]["total_orders"],
            )
            for r in reports
        ],
        "activity": s.get(
            f"{api}/reports/{first}/email-activity", params={"count": 50}, timeout=30
        ).json()["emails"],
        "orders": s.get(f"{api}/ecommerce/orders", params={"count": 1000}, timeout=30).json()[
            "total_items"
        ],
    }


def test_campaigns_reports_and_orders_survive_restart(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "data")
    with running_sandbox(customers=80, data_dir=data_dir) as sb:
        s = _session(sb)
        api = sb.mailchimp_api_url
        list_id = sb.info["mailchimp"]["list_id"]
        created = s.post(
            f"{api}/campaigns",
            json={
                "type": "regular",
                "recipients": {"list_id": list_id},
                "settings": {
                    "subject_line": "Kept",
                    "from_name": "Acme",
                    "reply_to": "news@acme-shop.com",
                },
            },
            timeout=30,
        ).json()
        assert (
            s.post(f"{api}/campaigns/{created['id']}/actions/send", timeout=30).status_code == 204
        )
        sb.advance_clock(2 * 86400)
        before = _snapshot(sb)
        assert (
            requests.post(sb.mailchimp_base_url + "/_sandbox/save", timeout=60).status_code == 200
        )
    with running_sandbox(customers=80, data_dir=data_dir) as sb:
        after = _snapshot(sb)
    assert after["campaigns"] == before["campaigns"]
    assert created["id"] in {c[0] for c in after["campaigns"]}
    assert after["reports"] == before["reports"]
    assert after["orders"] == before["orders"]
    assert [r["activity"] for r in after["activity"]] == [r["activity"] for r in before["activity"]]


def test_setting_the_clock_back_hides_later_events_but_keeps_member_changes() -> None:
    with running_sandbox(customers=80) as sb:
        s = _session(sb)
        api = sb.mailchimp_api_url
        ctl = sb.mailchimp_base_url + "/_sandbox/clock"
        recent = max(
            s.get(f"{api}/reports", params={"count": 1000}, timeout=30).json()["reports"],
            key=lambda r: r["send_time"],
        )
        start = datetime.fromisoformat(requests.get(ctl, timeout=10).json()["now"])
        sb.advance_clock(5 * 86400)
        later = s.get(f"{api}/reports/{recent['id']}", timeout=30).json()
        assert later["opens"]["opens_total"] > recent["opens"]["opens_total"]
        unsubs = s.get(
            f"{api}/reports/{recent['id']}/unsubscribed", params={"count": 1000}, timeout=30
        ).json()["unsubscribes"]
        assert unsubs, "the seeded recent campaign always has an unsubscribe within a day"
        back = start - timedelta(minutes=1)
        assert requests.post(ctl, json={"set": back.isoformat()}, timeout=10).status_code == 200
        again = s.get(f"{api}/reports/{recent['id']}", timeout=30).json()
        assert again["opens"]["opens_total"] <= recent["opens"]["opens_total"]
        member = s.get(
            f"{api}/lists/{sb.info['mailchimp']['list_id']}/members/{unsubs[0]['email_id']}",
            timeout=30,
        ).json()
        assert member["status"] == "unsubscribed"


def test_automation_queue_and_sends_survive_restart(tmp_path: Path) -> None:
    """A welcome email queued before the save is sent after the restart, once the delay passed."""
    data_dir = str(tmp_path / "data")
    email = "kept.welcome@gmail.com"
    with running_sandbox(customers=40, data_dir=data_dir) as sb:
        s = _session(sb)
        api = sb.mailchimp_api_url
        list_id = sb.info["mailchimp"]["list_id"]
        member = s.post(
            f"{api}/lists/{list_id}/members",
            json={"email_address": email, "status": "subscribed"},
            timeout=30,
        ).json()
        autos = s.get(f"{api}/automations", timeout=30).json()["automations"]
        welcome = next(a for a in autos if a["trigger_settings"]["workflow_type"] == "welcomeSeries")
        email_id = s.get(f"{api}/automations/{welcome['id']}/emails", timeout=30).json()["emails"][
            0
        ]["id"]
        queue = f"{api}/automations/{welcome['id']}/emails/{email_id}/queue/{member['id']}"
        assert s.get(queue, timeout=30).status_code == 200
        assert (
            requests.post(sb.mailchimp_base_url + "/_sandbox/save", timeout=60).status_code == 200
        )
    with running_sandbox(customers=40, data_dir=data_dir) as sb:
        s = _session(sb)
        assert s.get(queue.replace(api, sb.mailchimp_api_url), timeout=30).status_code == 200
        sb.advance_clock(86400 + 60)
        row = s.get(
            f"{sb.mailchimp_api_url}/reports/{email_id}/email-activity/{member['id']}", timeout=30
        )
        assert row.status_code == 200, row.text
