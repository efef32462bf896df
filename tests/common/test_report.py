"""The shared run report: rejects and actions in one file, told apart, counted apart."""

from __future__ import annotations

import json
from pathlib import Path

from oromc_common.report import RunReport


def test_actions_are_counted_apart_from_rejects_and_written_with_their_kind(tmp_path: Path) -> None:
    path = tmp_path / "rejects.jsonl"
    report = RunReport("target-x", rejects_path=path)
    report.reject("members", "list/abc", "no_customer_user", "no match", "email_address")
    report.action("forgotten_members", "list/oro:7", "gdpr_erasure_request", "erase customer user 7")
    report.action("forgotten_members", "list/oro:8", "gdpr_erasure_request", "erase customer user 8")
    report.close()

    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(line["kind"], line["reason"]) for line in lines] == [
        ("reject", "no_customer_user"),
        ("action", "gdpr_erasure_request"),
        ("action", "gdpr_erasure_request"),
    ]
    summary = report.summary()
    assert summary["actions_required"] == 2
    forgotten = summary["streams"]["forgotten_members"]
    assert forgotten["actions"] == 2
    assert forgotten["actions_by_reason"] == {"gdpr_erasure_request": 2}
    assert "rejected" not in forgotten
    assert summary["streams"]["members"]["rejected"] == 1
    assert "actions_by_reason" not in summary["streams"]["members"]
