"""Campaigns and engagement -> Oro campaigns and marketing activities, exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from oromc_sandbox.testing import RunningSandbox

from .conftest import OroProbe, engagement, messages, run_target

TARGET = [sys.executable, "-c", "from target_orocommerce.target import TargetOroCommerce; TargetOroCommerce.cli()"]


def _emails(oro: OroProbe, n: int) -> list[str]:
    users = [u for u in oro.all("customerusers") if not u["attributes"].get("isGuest")]
    emails = sorted({u["attributes"]["email"] for u in users})
    assert len(emails) >= n
    return emails[:n]


def _expected(streams: dict[str, list[dict[str, Any]]], granularity: str) -> Counter[str]:
    """Activity types the input asks for, counted the way the granularity defines them."""
    kinds: Counter[str] = Counter()
    seen = set()
    for row in streams["email_activity"]:
        kind = {"open": "open", "click": "click"}.get(row["action"]) or f"{row['bounce_type']}_bounce"
        key: tuple[Any, ...] = (kind, row["email_id"], row["timestamp"], row["url"])
        if granularity == "first_per_action" and kind in {"open", "click"}:
            key = (kind, row["email_id"])
        if key not in seen:
            seen.add(key)
            kinds[kind] += 1
    kinds["send"] = len(streams["sent_to"])
    return kinds


def _activity_keys(oro: OroProbe) -> list[str]:
    return [a["details"]["key"] for a in oro.mailchimp_activities()]


def test_campaign_upserted_by_code_and_activities_created_once_on_replay(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    streams = engagement(_emails(oro, 10))
    summary, _ = run_target(config, messages(streams))
    campaigns = [c for c in oro.all("campaigns") if c["attributes"]["code"] == "c0ffee0001"]
    assert len(campaigns) == 1
    assert campaigns[0]["attributes"]["name"] == "Spring sale"
    activities = oro.mailchimp_activities()
    expected = _expected(streams, "first_per_action")  # the default
    assert Counter(a["relationships"]["marketingActivityType"]["data"]["id"] for a in activities) == expected
    assert all(a["relationships"]["campaign"]["data"]["id"] == campaigns[0]["id"] for a in activities)
    click = next(a for a in activities if a["details"]["action"] == "click")
    assert click["details"]["url"].startswith("https://shop.example.com/p/")
    assert summary["streams"]["email_activity"]["skipped_not_first_of_action"] == 20  # 2 later opens x 10

    # The whole input again, twice in one stream: nothing new.
    summary, _ = run_target(config, messages(streams) + messages(streams))
    assert len(oro.mailchimp_activities()) == len(activities)
    assert summary["streams"]["email_activity"]["created"] == 0
    assert summary["streams"]["campaigns"]["unchanged"] >= 1


def test_every_event_granularity_writes_each_event(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    streams = engagement(_emails(oro, 6))
    cfg = {**config, "activity_granularity": "every_event"}
    run_target(cfg, messages(streams))
    run_target(cfg, messages(streams))
    kinds = Counter(a["relationships"]["marketingActivityType"]["data"]["id"] for a in oro.mailchimp_activities())
    assert kinds == _expected(streams, "every_event")
    assert kinds["open"] == 18


def test_unsubscribe_from_report_and_member_status_is_one_activity(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    from .conftest import BASE_TIME, email_id, iso, member

    email = _emails(oro, 1)[0]
    when = iso(BASE_TIME)
    unsub = {"campaign_id": "c0ffee0001", "email_id": email_id(email), "email_address": email,
             "timestamp": when, "reason": "N/A (Unsubscribed by user)", "list_id": "a1b2c3d4e5"}
    gone = member(email, status="unsubscribed", last_changed=when)
    run_target(config, messages({"unsubscribes": [unsub], "members": [gone]}))
    unsubs = [a for a in oro.mailchimp_activities() if a["details"]["action"] == "unsubscribe"]
    assert len(unsubs) == 1
    assert unsubs[0]["details"]["reason"] == "N/A (Unsubscribed by user)"


def test_kill_mid_run_then_replay_creates_each_activity_once(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any], tmp_path: Path
) -> None:
    streams = engagement(_emails(oro, 30), opens_per_member=4)
    cfg = {**config, "activity_granularity": "every_event", "max_connections": 2, "batch_size_rows": 50}
    lines = messages(streams, state_every=40)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    (tmp_path / "input.jsonl").write_text("\n".join(lines) + "\n")
    expected = sum(_expected(streams, "every_event").values())

    def activities_in_oro() -> int:
        counts: dict[str, int] = sb.control("oro").get("/_sandbox/oro/summary").json()["counts"]
        return counts["marketingactivities"]

    seeded = activities_in_oro()
    sb.set_switches(latency="realistic")  # slow each request down so the kill lands mid-run
    with (tmp_path / "out.jsonl").open("w") as out, (tmp_path / "err.log").open("w") as err:
        proc = subprocess.Popen(
            [*TARGET, "--config", str(tmp_path / "config.json"), "--input", str(tmp_path / "input.jsonl")],
            stdout=out, stderr=err, env={**os.environ},
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if activities_in_oro() - seeded >= expected // 3:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the target finished before it could be killed; make the input bigger"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    sb.set_switches(latency="none")
    partial = len(_activity_keys(oro))
    assert 0 < partial < expected
    states = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines() if line]
    assert states, "with a state every 40 records some state must have been emitted before the kill"
    # A state {"n": k} covers the first k records: 1 campaign, then one activity per record.
    # It may only have been emitted once all of those activities were in Oro.
    for state in states:
        assert state["n"] - len(streams["campaigns"]) <= partial

    run_target(cfg, lines)
    keys = _activity_keys(oro)
    assert len(keys) == expected
    assert len(set(keys)) == expected


def test_activity_types_setting_leaves_sends_out(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    streams = engagement(_emails(oro, 4))
    cfg = {**config, "activity_types": ["open", "click", "soft_bounce", "hard_bounce", "unsubscribe"]}
    summary, _ = run_target(cfg, messages(streams))
    kinds = Counter(a["relationships"]["marketingActivityType"]["data"]["id"] for a in oro.mailchimp_activities())
    assert "send" not in kinds
    assert kinds["open"] == 4
    assert summary["streams"]["sent_to"]["skipped_type_not_configured"] == 4
