"""dry_run: Oro is read and every write planned, nothing is written, no state is emitted; the real run
that follows plans the same actions and does them, after which a dry run has nothing left to plan."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from oromc_common.dryrun import ActionPlan, DryRunWriteError
from oromc_common.oro import OroOAuth2Authenticator
from oromc_common.report import RunReport
from oromc_sandbox.testing import RunningSandbox
from target_orocommerce.client import OroWriter

from .conftest import (
    BASE_TIME,
    LIST_ID,
    OroProbe,
    engagement,
    iso,
    member,
    messages,
    rejects,
    run_target,
)


def _writes(sb: RunningSandbox) -> dict[str, int]:
    """Requests by method other than GET on Oro's data routes (any status; the token endpoint excepted)."""
    out: dict[str, int] = {}
    for route, statuses in sb.stats("oro")["requests"].items():
        method = route.split(" ", 1)[0]
        if method != "GET" and "oauth2-token" not in route:
            out[method] = out.get(method, 0) + sum(statuses.values())
    return out


def _reads(sb: RunningSandbox) -> int:
    return sum(sum(s.values()) for r, s in sb.stats("oro")["requests"].items() if r.startswith("GET "))


@pytest.fixture
def consent_sb(sb: RunningSandbox) -> Iterator[RunningSandbox]:
    sb.set_switches(consent_source="customer_user_field")
    yield sb
    sb.set_switches(consent_source="none")


def _input(oro: OroProbe) -> tuple[list[str], dict[str, str]]:
    """Names, a phone, a new tag, an opt-out and an erasure in Mailchimp (consent, list, activity each),
    a new campaign and its activities."""
    edited = oro.users_with_primary_phone_address(2)
    taken = {u["id"] for u in edited}
    consenting, forgotten = [
        u for u in sorted(oro.all("customerusers"), key=lambda u: int(u["id"]))
        if u["id"] not in taken and not u["attributes"].get("isGuest")
        and u["attributes"].get("marketing_consent") is True
    ][:2]
    renamed, same = (u["attributes"]["email"] for u in edited)
    gone = consenting["attributes"]["email"]
    members = [
        member(renamed, merge_fields={"FNAME": "Dryrun", "PHONE": "+1 555 0199 123"},
               tags=[{"id": 1, "name": "DryRunVIP"}], tags_count=1),
        member(same),
        member(gone, status="unsubscribed", timestamp_opt=iso(BASE_TIME - timedelta(days=90))),
    ]
    erased = {"list_id": LIST_ID, "oro_id": forgotten["id"], "identity_merge_field": "OROID",
              "detected_at": iso(BASE_TIME), "previous_sweep_at": iso(BASE_TIME - timedelta(days=1))}
    streams = {"members": members, "forgotten_members": [erased], **engagement([renamed], opens_per_member=2)}
    return messages(streams, state_every=2), {
        "renamed": edited[0]["id"], "gone": consenting["id"], "forgotten": forgotten["id"]
    }


def test_dry_run_writes_nothing_and_the_real_run_does_what_it_announced(
    consent_sb: RunningSandbox, oro: OroProbe, config: dict[str, Any], tmp_path: Path
) -> None:
    sb = consent_sb
    cfg = {**config, "consent_source": "customer_user_field", "marketing_list_ids": [1]}
    lines, ids = _input(oro)
    report = tmp_path / "plan.json"
    dry = {**cfg, "dry_run": True, "dry_run_report_path": str(report)}

    sb.reset_stats()
    summary, states = run_target(dry, lines)
    assert _writes(sb) == {}
    assert _reads(sb) > 0  # it read what it compares against
    assert states == []  # the tap's bookmarks must not move past records nobody wrote
    planned = json.loads(report.read_text())
    assert (planned["dry_run"], planned["component"]) == (True, "target-orocommerce")
    counts = {action: v["count"] for action, v in planned["actions"].items()}
    assert counts == {
        "update_names": 1,
        "update_phone": 1,
        "create_tag": 1,
        "re-tag": 1,
        "withdraw_consent": 2,  # the opt-out and the erasure
        "unsubscribe_marketing_list": 2,
        "create_unsubscribe_activity": 2,
        "create_campaign": 1,
        "create_marketing_activity": 3,  # send, first open, first click
    }
    would: Counter[str] = Counter()
    for stream in summary["streams"].values():
        would.update({k.removeprefix("would_"): n for k, n in stream.items() if k.startswith("would_")})
    assert would == counts
    assert summary["streams"]["email_activity"]["would_create_marketing_activity"] == 2
    assert summary["streams"]["forgotten_members"]["would_withdraw_consent"] == 1
    (erasure,) = (a for a in rejects(dry) if a["reason"] == "gdpr_erasure_request")  # reported, as in a real run
    assert "A dry run: would be done here: marketing consent set to false" in erasure["detail"]
    assert "@" not in report.read_text()  # samples name records by key and ids, never an address
    assert "Dryrun" not in report.read_text()  # nor a value
    assert "0199" not in report.read_text()
    names = planned["actions"]["update_names"]["sample"][0]
    assert (names["customer_user"], names["fields"]) == (ids["renamed"], ["firstName"])
    assert planned["actions"]["re-tag"]["sample"][0]["add"] == ["mc:DryRunVIP"]
    assert planned["actions"]["withdraw_consent"]["sample"][0]["customer_user"] == ids["gone"]
    assert oro.user(ids["renamed"])["attributes"]["firstName"] != "Dryrun"
    assert oro.user(ids["gone"])["attributes"]["marketing_consent"] is True
    assert oro.user(ids["forgotten"])["attributes"]["marketing_consent"] is True

    real_report = tmp_path / "real.json"
    sb.reset_stats()
    summary, states = run_target({**cfg, "dry_run_report_path": str(real_report)}, lines)
    real = json.loads(real_report.read_text())
    assert real["dry_run"] is False
    assert {action: v["count"] for action, v in real["actions"].items()} == counts
    assert set(_writes(sb)) == {"POST", "PATCH"}  # names, phone, consent; tag, list, campaign, activities
    assert states
    assert states[-1]["done"] is True
    members = summary["streams"]["members"]
    assert (members["names_updated"], members["phones_updated"], members["consent_withdrawn"]) == (1, 1, 1)
    assert members["planned_update_names"] == 1
    assert oro.user(ids["renamed"])["attributes"]["firstName"] == "Dryrun"
    assert oro.user(ids["gone"])["attributes"]["marketing_consent"] is False
    assert oro.user(ids["forgotten"])["attributes"]["marketing_consent"] is False

    report.unlink()
    sb.reset_stats()
    run_target(dry, lines)
    assert _writes(sb) == {}
    assert json.loads(report.read_text())["actions"] == {}  # the real run did all of it


def test_a_write_in_a_dry_run_is_refused_before_it_is_sent(sb: RunningSandbox) -> None:
    oro = sb.info["oro"]
    report = RunReport("t")
    writer = OroWriter(
        base_url=sb.oro_base_url,
        api_prefix="/admin/api",
        auth=OroOAuth2Authenticator(
            base_url=sb.oro_base_url, client_id=oro["client_id"], client_secret=oro["client_secret"]
        ),
        report=report,
        plan=ActionPlan("t", report, dry_run=True),
    )
    sb.reset_stats()
    try:
        assert writer.get_json("customerusers", {"page[size]": "1"})["data"]
        body = {"data": [{"type": "customerusers", "id": "1", "attributes": {"firstName": "X"}}]}
        with pytest.raises(DryRunWriteError):
            writer.call("PATCH", "customerusers/1", body={"data": body["data"][0]})
        with pytest.raises(DryRunWriteError):  # the Batch API path
            writer.call("PATCH", "customerusers", body=body, headers={"X-Mode": "sync"})
        with pytest.raises(DryRunWriteError):
            writer.call("POST", "rest/latest/marketinglist/1/unsubscribe/1")
    finally:
        writer.close()
    assert _writes(sb) == {}
