"""ActionPlan.finish: the end-of-run step both targets share (report file, and a dry run says so)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from oromc_common.dryrun import ActionPlan
from oromc_common.report import RunReport


@pytest.mark.parametrize("dry_run", [True, False])
def test_finish_writes_the_report_and_logs_only_a_dry_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, dry_run: bool
) -> None:
    plan = ActionPlan("t", RunReport("t"), dry_run=dry_run, path=tmp_path / "plan.json")
    plan.add("members", "update", "subscriber=abc", fields=["FNAME"])
    logger = logging.getLogger("test.dryrun")
    with caplog.at_level(logging.INFO, logger="test.dryrun"):
        plan.finish(logger)
    assert json.loads((tmp_path / "plan.json").read_text())["actions"]["update"]["count"] == 1
    said = [r.getMessage() for r in caplog.records if r.name == "test.dryrun"]
    expected = ["DRY RUN: nothing was written; planned actions: {'update': 1}"] if dry_run else []
    assert said == expected
