"""Run singer-io tap-mailchimp 1.3.3, unmodified, against the sandbox on the real host name.

Executed by test_singer_tap_mailchimp.py inside a private network and mount namespace
(`unshare -n -m`), as root there (scripts/real_host.py): loopback up, `/etc/hosts` replaced (bind mount, this namespace
only) so that `<dc>.api.mailchimp.com` is 127.0.0.1, the sandbox serving HTTPS on port 443 with a
certificate for that name signed by a throw-away CA, and the tap trusting that CA through
`REQUESTS_CA_BUNDLE` (nothing else about the tap changes). Writes a JSON report:

    python singer_tap_run.py <tap executable> <work dir> <report.json>

The report holds, per run, the exit code, the records per stream and the stderr tail, and the counts
the sandbox itself gives for the same data (through its API), so the test can compare them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests
from oromc_sandbox.testing import running_sandbox

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from real_host import loopback_up, make_ca_and_cert, point_hosts_at_loopback

CUSTOMERS = 24  # small: a handful of campaigns with more than one default page (10) of recipients


def select_all(catalog: dict[str, Any]) -> dict[str, Any]:
    for entry in catalog["streams"]:
        if not any(meta["breadcrumb"] == [] for meta in entry["metadata"]):
            entry["metadata"].append({"breadcrumb": [], "metadata": {}})
        for meta in entry["metadata"]:
            meta["metadata"]["selected"] = True
    return catalog


def run_tap(tap: str, args: list[str], env: dict[str, str], out: Path) -> dict[str, Any]:
    start = time.perf_counter()
    with out.open("wb") as sink:
        proc = subprocess.run(
            [tap, *args], stdout=sink, stderr=subprocess.PIPE, env=env, check=False
        )
    records: dict[str, list[dict[str, Any]]] = {}
    state: Any = None
    for line in out.read_bytes().splitlines():
        message = json.loads(line)
        if message["type"] == "RECORD":
            records.setdefault(message["stream"], []).append(message["record"])
        elif message["type"] == "STATE":
            state = message["value"]
    return {
        "returncode": proc.returncode,
        "seconds": round(time.perf_counter() - start, 2),
        "records": records,
        "state": state,
        "stderr_tail": proc.stderr.decode(errors="replace")[-4000:],
    }


def all_items(session: requests.Session, url: str, key: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        body = session.get(url, params={**params, "count": 1000, "offset": len(items)}).json()
        items.extend(body[key])
        if len(items) >= body["total_items"] or not body[key]:
            return items


def sandbox_view(sb: Any, session: requests.Session) -> dict[str, Any]:
    """What the sandbox holds, read through its API: the ids/counts the tap should reproduce."""
    api = sb.mailchimp_api_url
    lists = all_items(session, f"{api}/lists", "lists")
    members, segments, segment_members = [], [], 0
    for lst in lists:
        members += all_items(session, f"{api}/lists/{lst['id']}/members", "members")
        segs = all_items(session, f"{api}/lists/{lst['id']}/segments", "segments")
        segments += segs
        for seg in segs:
            segment_members += len(
                all_items(
                    session, f"{api}/lists/{lst['id']}/segments/{seg['id']}/members", "members"
                )
            )
    sent = all_items(session, f"{api}/campaigns", "campaigns", status="sent")
    unsubscribes = activity = 0
    for campaign in sent:
        unsubscribes += len(
            all_items(session, f"{api}/reports/{campaign['id']}/unsubscribed", "unsubscribes")
        )
        rows = all_items(session, f"{api}/reports/{campaign['id']}/email-activity", "emails")
        activity += sum(len(row.get("activity", [])) for row in rows)
    return {
        "lists": len(lists),
        "list_members": sorted(m["id"] for m in members),
        "list_segments": len(segments),
        "list_segment_members": segment_members,
        "campaigns": sorted(c["id"] for c in sent),
        "unsubscribes": unsubscribes,
        "reports_email_activity": activity,
        "automations": len(all_items(session, f"{api}/automations", "automations")),
        "max_recipients": max((c["emails_sent"] for c in sent), default=0),
    }


def main() -> int:
    tap, work, report_path = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    loopback_up()
    dc = "us21"
    host = f"{dc}.api.mailchimp.com"
    ca, cert, key = make_ca_and_cert(work, host)
    point_hosts_at_loopback(work, [host, "login.mailchimp.com"])
    # requests prefers these variables to a session's `verify`: the CA is the one trust anchor here
    os.environ["REQUESTS_CA_BUNDLE"] = os.environ["CURL_CA_BUNDLE"] = str(ca)
    env = dict(os.environ)
    started = time.perf_counter()
    with running_sandbox(
        customers=CUSTOMERS,
        latency="none",
        mailchimp_dc=dc,
        mailchimp_port=443,
        tls_cert=str(cert),
        tls_key=str(key),
    ) as sb:
        info = sb.info["mailchimp"]
        startup = round(time.perf_counter() - started, 2)
        session = requests.Session()
        session.auth = ("anystring", info["api_key"])
        session.verify = str(ca)
        config = work / "config.json"
        config.write_text(json.dumps({
            "api_key": info["api_key"], "dc": info["dc"], "start_date": "2000-01-01T00:00:00Z",
            "user_agent": "oromc-conformance-test",
        }))  # fmt: skip
        catalog_out = work / "catalog.json"
        with catalog_out.open("wb") as sink:
            subprocess.run(
                [tap, "--config", str(config), "--discover"], stdout=sink, env=env, check=True
            )
        catalog = work / "selected.json"
        catalog.write_text(json.dumps(select_all(json.loads(catalog_out.read_text()))))
        report: dict[str, Any] = {"host": host, "sandbox_startup_s": startup}
        report["sandbox"] = sandbox_view(sb, session)
        first = run_tap(
            tap, ["--config", str(config), "--catalog", str(catalog)], env, work / "run1.jsonl"
        )
        report["first"] = first
        # something new for the second run, from the first run's state
        email = f"second.run.{int(time.time())}@gmail.com"
        added = session.post(
            f"{sb.mailchimp_api_url}/lists/{info['list_id']}/members",
            json={"email_address": email, "status": "subscribed"},
        )
        report["added_member"] = added.json().get("id")
        state = work / "state.json"
        state.write_text(json.dumps(first["state"] or {}))
        report["second"] = run_tap(
            tap, ["--config", str(config), "--catalog", str(catalog), "--state", str(state)],
            env, work / "run2.jsonl",
        )  # fmt: skip
        report["sandbox_after"] = {"list_members": len(sandbox_view(sb, session)["list_members"])}
        session.close()  # an open keep-alive connection would hold up the sandbox's shutdown
    report_path.write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
