"""dry_run: the audience is read and every write planned, nothing is written, and the real run that
follows does exactly what the dry run announced (counts per action), after which nothing is left to do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from oromc_common.dryrun import ActionPlan, DryRunWriteError
from oromc_common.mailchimp import MailchimpClient
from oromc_common.report import RunReport
from oromc_sandbox.testing import RunningSandbox

from .conftest import DOMAIN, contact, member, run_target, singer_lines, writes


def _changes() -> list[dict[str, Any]]:
    return [
        contact(1, first_name="Renamed"),  # update
        contact(2, marketing_consent=False),  # unsubscribe
        contact(3, customer_group="Wholesale"),  # re-tag (group tag swapped)
        contact(4, erase=True),  # erase
        contact(5),  # unchanged
        contact(6, first_name="Renamed", customer_group="Retail"),  # update + re-tag (added inline)
        *(contact(i) for i in (11, 12, 13)),  # create
    ]


def test_dry_run_writes_nothing_and_the_real_run_does_what_it_announced(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient, tmp_path: Path
) -> None:
    run_target(config, singer_lines([contact(i) for i in range(1, 7)]))
    report = tmp_path / "plan.json"
    dry = {**config, "dry_run": True, "dry_run_report_path": str(report)}
    sb.reset_stats()
    target, states = run_target(dry, singer_lines(_changes()))
    assert writes(sb) == 0
    assert states == []  # no state: the tap's bookmarks must not move past records nobody wrote
    planned = json.loads(report.read_text())
    assert planned["dry_run"] is True
    counts = {action: v["count"] for action, v in planned["actions"].items()}
    assert counts == {"create": 3, "update": 2, "unsubscribe": 1, "re-tag": 2, "erase": 1}
    summary = target.report.summary()["streams"]["contacts"]
    assert {k: summary[k] for k in summary if k.startswith("would_")} == {f"would_{k}": n for k, n in counts.items()}
    assert summary["unchanged"] == 1
    assert "@" not in report.read_text()  # samples name people by source id or subscriber hash
    sample = planned["actions"]["update"]["sample"][0]
    assert (sample["key"], sample["merge_fields"]) == ("customer_user_id=1", ["FNAME"])
    assert [s["add"] for s in planned["actions"]["re-tag"]["sample"]] == [
        ["oro:group:Wholesale"],
        ["oro:group:Retail"],
    ]
    assert member(api, config["list_id"], f"person11@{DOMAIN}") is None
    assert member(api, config["list_id"], f"person1@{DOMAIN}")["merge_fields"]["FNAME"] == "First1"  # type: ignore[index]

    real_report = tmp_path / "real.json"
    target, states = run_target({**config, "dry_run_report_path": str(real_report)}, singer_lines(_changes()))
    assert target.plan.counts() == counts
    assert json.loads(real_report.read_text())["dry_run"] is False
    summary = target.report.summary()["streams"]["contacts"]
    assert (summary["created"], summary["erased"], summary["opted_out"]) == (3, 1, 1)
    assert (summary["tags_added"], summary["tags_removed"]) == (2 + 3 * 2, 2)  # creates: 2 tags each
    assert states  # a real run emits the state
    assert member(api, config["list_id"], f"person1@{DOMAIN}")["merge_fields"]["FNAME"] == "Renamed"  # type: ignore[index]

    target, _ = run_target(dry, singer_lines(_changes()))
    assert target.plan.counts() == {}  # the real run did all of it


def test_a_write_in_a_dry_run_is_refused_before_it_is_sent(sb: RunningSandbox, config: dict[str, Any]) -> None:
    client = MailchimpClient(api_key=config["api_key"], api_url=config["api_url"])
    client.read_only = True
    sb.reset_stats()
    try:
        client.get("/ping")
        raised = None
        try:
            client.post(f"/lists/{config['list_id']}/merge-fields", {"tag": "X", "name": "X", "type": "text"})
        except DryRunWriteError as exc:
            raised = exc
    finally:
        client.close()
    assert raised is not None
    assert writes(sb) == 0


def test_action_plan_counts_samples_and_names_its_counters(tmp_path: Path) -> None:
    report = RunReport("t")
    plan = ActionPlan("t", report, dry_run=True, path=tmp_path / "p.json")
    for i in range(7):
        plan.add("contacts", "create", f"customer_user_id={i}", status="transactional")
    plan.write()
    doc = json.loads((tmp_path / "p.json").read_text())
    assert doc["actions"]["create"]["count"] == 7
    assert len(doc["actions"]["create"]["sample"]) == 5
    assert report.get("contacts", "would_create") == 7
