"""singer-io tap-mailchimp 1.3.3, a published client nobody here wrote, runs unmodified against the
sandbox: all its streams, every record the sandbox holds, then a second run from its state.

The tap is installed from `requirements/tap-mailchimp-singer.txt` (hashed lock, `make lock`) into
`.venv-tap-mailchimp-singer/` (scripts/peer_venvs.py: git-ignored, created on first use, reused while the
lock is the same).
It builds `https://<dc>.api.mailchimp.com` itself, so the run happens in a private network and mount
namespace (`unshare -n -m`) where that name is the loopback address and the sandbox serves HTTPS on
port 443 with a certificate from a throw-away CA the tap trusts via `REQUESTS_CA_BUNDLE`
(`singer_tap_run.py`). Nothing of the tap is patched. Sources of the rules it exercises: the tap's
`format_selected_fields` (fields it sends on every collection), its `/batches` email-activity export
(every page of each campaign's activity), `GET /automations`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("singer_tap_run.py")
sys.path.insert(0, str(ROOT / "scripts"))
from peer_venvs import ensure  # noqa: E402

STREAMS = {
    "lists",
    "list_members",
    "list_segments",
    "list_segment_members",
    "campaigns",
    "unsubscribes",
    "reports_email_activity",
    "automations",
}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tap = ensure("tap-mailchimp-singer")
    work = tmp_path_factory.mktemp("singer-tap")
    out = work / "report.json"
    proc = subprocess.run(
        ["unshare", "-n", "-m", sys.executable, str(DRIVER), str(tap), str(work), str(out)],
        capture_output=True, timeout=600, check=False, env={**os.environ},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-6000:]
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def _ids(records: list[dict[str, Any]]) -> list[str]:
    return sorted(r["id"] for r in records)


def test_first_run_syncs_every_stream_and_record(report: dict[str, Any]) -> None:
    first, sandbox = report["first"], report["sandbox"]
    assert first["returncode"] == 0, first["stderr_tail"]
    records = first["records"]
    assert set(records) == STREAMS, sorted(records)
    assert len(records["lists"]) == sandbox["lists"]
    assert _ids(records["list_members"]) == sandbox["list_members"]
    assert len(records["list_segments"]) == sandbox["list_segments"]
    assert len(records["list_segment_members"]) == sandbox["list_segment_members"]
    assert _ids(records["campaigns"]) == sandbox["campaigns"]
    assert len(records["unsubscribes"]) == sandbox["unsubscribes"]
    # every activity of every sent campaign: more than one default page (10) per campaign
    assert sandbox["max_recipients"] > 10
    assert len(records["reports_email_activity"]) == sandbox["reports_email_activity"]
    assert sandbox["reports_email_activity"] > 0
    assert len(records["automations"]) == sandbox["automations"] == 2  # welcome, abandoned cart
    for list_bookmarks in first["state"]["bookmarks"]["lists"].values():
        assert list_bookmarks["list_members"]["datetime"]
    assert set(first["state"]["bookmarks"]["reports_email_activity"]) == set(sandbox["campaigns"])


def test_second_run_from_state_reads_what_changed(report: dict[str, Any]) -> None:
    second = report["second"]
    assert second["returncode"] == 0, second["stderr_tail"]
    members = second["records"].get("list_members", [])
    assert report["added_member"] in {m["id"] for m in members}
    # incremental: only members changed since the bookmark (the boundary may repeat), not all
    assert len(members) < len(report["sandbox"]["list_members"])
    assert report["sandbox_after"]["list_members"] == len(report["sandbox"]["list_members"]) + 1
    # email activity resumes after each campaign's bookmark: nothing is read twice
    assert second["records"].get("reports_email_activity", []) == []
