"""Campaign results end to end: the real tap-mailchimp-engagement reads the sandbox's campaigns and
reports, the target writes each report's figures to the Oro campaign's custom fields (the sandbox's
``campaign_statistics_fields`` switch), a changed report updates them, a quiet cycle writes nothing.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import requests
from oromc_sandbox.testing import RunningSandbox
from target_orocommerce.results import DEFAULT_FIELDS, field_map, report_figures

from .conftest import OroProbe, last_state, rejects, run_tap, run_target

STREAMS = {"campaigns", "reports"}
TWO_DAYS = 2 * 86400  # the newest seeded campaign's engagement is over, it is still inside the window


def _mailchimp(sb: RunningSandbox) -> requests.Session:
    return sb.mailchimp_client().session


def _reports(sb: RunningSandbox) -> dict[str, dict[str, Any]]:
    """Campaign id -> its report, read from the sandbox's Mailchimp ``/reports``."""
    page = _mailchimp(sb).get(f"{sb.mailchimp_api_url}/reports", params={"count": 1000}, timeout=30).json()
    return {r["id"]: r for r in page["reports"]}


def _expected(report: dict[str, Any]) -> dict[str, Any]:
    """The figures an Oro user should see for ``report`` (written independently of the target's code)."""
    return {
        "mc_emails_sent": report["emails_sent"],
        "mc_opens": report["opens"]["opens_total"],
        "mc_unique_opens": report["opens"]["unique_opens"],
        "mc_clicks": report["clicks"]["clicks_total"],
        "mc_bounces": report["bounces"]["hard_bounces"] + report["bounces"]["soft_bounces"],
        "mc_unsubscribes": report["unsubscribed"],
        "mc_open_rate": report["opens"]["open_rate"],
        "mc_click_rate": report["clicks"]["click_rate"],
        "mc_orders": report["ecommerce"]["total_orders"],
        "mc_revenue": report["ecommerce"]["total_revenue"],
    }


def _assert_oro_matches(oro: OroProbe, reports: dict[str, dict[str, Any]]) -> None:
    by_code = {c["attributes"]["code"]: c["attributes"] for c in oro.all("campaigns")}
    for cid, report in reports.items():
        held = by_code[cid]
        for name, value in _expected(report).items():
            assert held[name] is not None, (cid, name)
            assert math.isclose(float(held[name]), float(value), rel_tol=1e-9, abs_tol=1e-4), (cid, name)


def _oro_writes(sb: RunningSandbox) -> dict[str, int]:
    """Write requests to Oro since the last stats reset: route template -> how many."""
    return {route: sum(statuses.values()) for route, statuses in sb.stats("oro")["requests"].items()
            if route.split(" ", 1)[0] in {"POST", "PATCH", "DELETE"} and "oauth2-token" not in route}


def test_report_figures_land_on_the_oro_campaign_and_follow_the_report(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any], tmp_path: Path
) -> None:
    sb.set_switches(campaign_statistics_fields=True)
    sb.advance_clock(TWO_DAYS)
    config = {**config, "campaign_results": True}
    try:
        first = run_tap(sb, tmp_path, STREAMS)
        reports = _reports(sb)
        sb.reset_stats()
        dry, _ = run_target({**config, "dry_run": True}, first)  # plans every campaign, writes nothing
        assert dry["streams"]["reports"]["would_update_campaign_results"] == len(reports)
        assert _oro_writes(sb) == {}
        summary, _ = run_target(config, first)
        assert summary["streams"]["reports"]["updated"] == len(reports) > 0
        assert summary["streams"]["reports"]["planned_update_campaign_results"] == len(reports)
        assert rejects(config) == []
        _assert_oro_matches(oro, reports)

        # A recipient of the newest campaign opens it: only that report changes, only it is written.
        newest = max(reports.values(), key=lambda r: r["send_time"])["id"]
        mc = _mailchimp(sb)
        sent_to = mc.get(f"{sb.mailchimp_api_url}/reports/{newest}/sent-to", params={"count": 1}, timeout=30).json()
        engaged = mc.post(f"{sb.mailchimp_base_url}/_sandbox/mailchimp/campaigns/{newest}/engage", timeout=30,
                          json={"email_address": sent_to["sent_to"][0]["email_address"], "action": "open"})
        assert engaged.status_code < 300, engaged.text
        sb.reset_stats()
        second = run_tap(sb, tmp_path, STREAMS, last_state(first))
        summary, _ = run_target(config, second)
        assert summary["streams"]["reports"]["updated"] == 1
        after = _reports(sb)
        assert after[newest]["opens"]["opens_total"] == reports[newest]["opens"]["opens_total"] + 1
        _assert_oro_matches(oro, after)
        assert _oro_writes(sb) == {"PATCH /admin/api/{resource}/{id}": 1}

        # A quiet cycle: the tap emits no report, the target writes nothing; the same reports replayed
        # are compared with what Oro holds and written nowhere either.
        sb.reset_stats()
        third = run_tap(sb, tmp_path, STREAMS, last_state(second))
        summary, _ = run_target(config, third)
        assert summary["streams"].get("reports", {}).get("read", 0) == 0
        summary, _ = run_target(config, second)
        assert summary["streams"]["reports"]["unchanged"] == 1
        assert _oro_writes(sb) == {}
    finally:
        sb.set_switches(campaign_statistics_fields=False)


def test_without_the_oro_fields_every_report_is_rejected_with_the_instruction(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any], tmp_path: Path
) -> None:
    config = {**config, "campaign_results": True}
    summary, _ = run_target(config, run_tap(sb, tmp_path, STREAMS))
    reports = _reports(sb)
    found = [r for r in rejects(config) if r["stream"] == "reports"]
    assert {r["reason"] for r in found} == {"campaign_results_fields_missing"}
    assert len(found) == len(reports) == summary["streams"]["reports"]["read"]
    assert "Entity Management" in found[0]["detail"]
    assert all("mc_opens" not in c["attributes"] for c in oro.all("campaigns"))


def test_field_map_renames_drops_and_refuses_unknown_figures() -> None:
    fields = field_map({"revenue": "campaign_revenue", "bounces": ""})
    assert fields["revenue"] == "campaign_revenue"
    assert "bounces" not in fields
    assert fields["opens"] == DEFAULT_FIELDS["opens"] == "mc_opens"
    with pytest.raises(ValueError, match="unknown figures"):
        field_map({"conversions": "x"})


def test_report_figures_sum_bounces_and_leave_out_what_a_report_lacks() -> None:
    report = {"emails_sent": 10, "bounces": {"hard_bounces": 1, "soft_bounces": 2, "syntax_errors": 5},
              "opens": {"opens_total": 4, "unique_opens": 3, "open_rate": 3 / 7}, "unsubscribed": None}
    figures = report_figures(report, field_map(None))
    assert figures == {"mc_emails_sent": 10, "mc_bounces": 3, "mc_opens": 4, "mc_unique_opens": 3,
                       "mc_open_rate": 3 / 7}  # no clicks, no e-commerce, a null: nothing written for them
    assert report_figures({"ecommerce": {"total_revenue": 12.345678}}, {"revenue": "rev"}) == {"rev": 12.3457}
