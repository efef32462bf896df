"""`make soak`'s script, in two short cycles: it measures every process and writes its chart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from e2e_harness import ROOT  # noqa: F401 - puts scripts/ on the path
from soak import main

ROLES = {
    "sandbox",
    "audience-sync:meltano",
    "engagement-sync:meltano",
    "tap-orocommerce",
    "target-mailchimp",
    "tap-mailchimp-engagement",
    "target-orocommerce",
}


@pytest.mark.usefixtures("meltano_ready")
def test_two_cycles_measure_every_process_and_the_changes_arrive(tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = ["--cycles", "2", "--interval", "0", "--customers", "10", "--out", str(out)]
    assert main([*argv, "--workdir", str(tmp_path / "work")]) == 0
    report = json.loads((out / "soak.json").read_text())
    cycles = report["cycles"]
    assert [c["number"] for c in cycles] == [1, 2]
    for cycle in cycles:
        assert set(cycle["exit_codes"].values()) == {0}
        assert set(cycle["rss_mb"]) == ROLES
        assert all(mb > 10 for mb in cycle["rss_mb"].values())
        assert len(cycle["state_bytes"]) == 2
        assert all(size > 100 for size in cycle["state_bytes"].values())
    # cycle 2 renamed two people in Oro; audience-sync carried both names to Mailchimp
    assert cycles[1]["changes_made"] == 2
    assert cycles[1]["backlog"] == 0
    assert report["summary"]["failed_runs"] == 0
    assert set(report["summary"]["memory"]) == ROLES
    assert (out / "soak.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
