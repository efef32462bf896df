"""`/batches` for large volumes (resumed after a kill) and 429/5xx/reset storms."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from tap_mailchimp_engagement.tap import TapMailchimpEngagement

KEY = ("campaign_id", "email_id", "action", "timestamp", "url")


def _catalog_for(config: dict[str, Any], streams: set[str]) -> dict[str, Any]:
    catalog = TapMailchimpEngagement(config=config, parse_env_config=False).catalog_dict
    for entry in catalog["streams"]:
        for meta in entry["metadata"]:
            if meta["breadcrumb"] == []:
                meta["metadata"]["selected"] = entry["tap_stream_id"] in streams
    return catalog


def test_batch_is_resumed_after_a_kill_not_submitted_again(
    sandbox: Any, tools: Any, tmp_path: Path
) -> None:
    config = tools.tap_config(sandbox, use_batches="always", batch_poll_seconds=3)
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "catalog.json").write_text(json.dumps(_catalog_for(config, {"email_activity"})))
    sandbox.reset_stats()
    state: dict[str, Any] = {}
    with sandbox.full_batch_timeline():
        proc = subprocess.Popen(
            [sys.executable, "-m", "tap_mailchimp_engagement.tap", "--config", str(tmp_path / "config.json"),
             "--catalog", str(tmp_path / "catalog.json")],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ},
        )
        assert proc.stdout is not None
        for raw in proc.stdout:
            msg = json.loads(raw)
            if msg["type"] == "STATE" and msg["value"].get("bookmarks", {}).get("email_activity", {}).get("batch"):
                state = msg["value"]
                proc.send_signal(signal.SIGKILL)  # killed while the batch runs
                break
        proc.wait(timeout=60)
    pending = state["bookmarks"]["email_activity"]["batch"]
    assert pending["id"]

    resumed = tools.run_tap(config, state=state, streams={"email_activity"})
    calls = sandbox.stats("mailchimp")["requests"]
    assert sum(calls["POST /3.0/batches"].values()) == 1, "the resumed run re-used the batch in state"
    assert "batch" not in resumed.state["bookmarks"]["email_activity"]
    assert set(resumed.state["bookmarks"]["email_activity"]["campaigns"]) == set(pending["campaigns"])

    paged = tools.run_tap(tools.tap_config(sandbox, use_batches="never"), streams={"email_activity"})
    submitted = datetime.fromisoformat(pending["submitted_at"])
    stable = {k for k in paged.keys("email_activity", *KEY) if datetime.fromisoformat(k[3]) <= submitted}
    got = resumed.keys("email_activity", *KEY)
    assert stable <= got, "the batch path returns what the paged path returns"
    assert got <= paged.keys("email_activity", *KEY)
    assert len(got) > 1000


def test_pipelined_jobs_are_both_resumed_after_a_kill(sandbox: Any, tools: Any, tmp_path: Path) -> None:
    """The next job is submitted as soon as the previous finishes, before its results are read; a kill then
    leaves both ids in state, and the resumed run reads both without submitting either again."""
    config = tools.tap_config(sandbox, use_batches="always", batch_max_operations=1, batch_poll_seconds=0.5)
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "catalog.json").write_text(json.dumps(_catalog_for(config, {"email_activity"})))
    sandbox.reset_stats()
    state: dict[str, Any] = {}
    with sandbox.full_batch_timeline():
        proc = subprocess.Popen(
            [sys.executable, "-m", "tap_mailchimp_engagement.tap", "--config", str(tmp_path / "config.json"),
             "--catalog", str(tmp_path / "catalog.json")],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={**os.environ},
        )  # fmt: skip
        assert proc.stdout is not None
        for raw in proc.stdout:
            msg = json.loads(raw)
            bookmarks = msg["value"].get("bookmarks", {}).get("email_activity", {}) if msg["type"] == "STATE" else {}
            if bookmarks.get("batch") and bookmarks.get("next_batch"):
                state = msg["value"]
                proc.send_signal(signal.SIGKILL)  # killed with one job finished (being read) and the next running
                break
        proc.wait(timeout=60)
    both = state["bookmarks"]["email_activity"]
    posted = sum(sandbox.stats("mailchimp")["requests"]["POST /3.0/batches"].values())
    assert posted == 2

    resumed = tools.run_tap(config, state=state, streams={"email_activity"})
    marks = resumed.state["bookmarks"]["email_activity"]
    assert "batch" not in marks
    assert "next_batch" not in marks
    assert set(both["batch"]["campaigns"]) | set(both["next_batch"]["campaigns"]) <= set(marks["campaigns"])
    posts = sum(sandbox.stats("mailchimp")["requests"]["POST /3.0/batches"].values())
    assert posts == posted + len(marks["campaigns"]) - 2, "the two jobs in state were not submitted again"


def test_storm_of_429_5xx_403_and_resets_changes_nothing(sandbox: Any, tools: Any) -> None:
    config = tools.tap_config(sandbox, use_batches="never", max_tries=10)
    streams = {"members", "campaigns", "merge_fields", "segments", "lists", "sent_to"}
    calm = tools.run_tap(config, streams=streams)
    sandbox.reset_stats()
    sandbox.set_faults("mailchimp", rate=0.3, kinds=["429", "500", "502", "503", "403", "reset"], seed=5)
    try:
        stormy = tools.run_tap(config, streams=streams)
    finally:
        sandbox.set_faults("mailchimp", rate=0)
    stats = sandbox.stats("mailchimp")
    assert sum(stats["faults_injected"].values()) > 10
    assert stormy.keys("members", "list_id", "id") == calm.keys("members", "list_id", "id")
    assert stormy.keys("sent_to", "campaign_id", "email_id") == calm.keys("sent_to", "campaign_id", "email_id")
    assert stormy.keys("campaigns", "id") == calm.keys("campaigns", "id")
    peaks = stats["connections"]["peak"]
    assert peaks
    assert max(peaks.values()) <= 8


def test_batches_are_split_into_small_jobs_at_most_two_open(sandbox: Any, tools: Any) -> None:
    sandbox.reset_stats()
    split = tools.run_tap(
        tools.tap_config(sandbox, use_batches="always", batch_max_operations=1, batch_poll_seconds=0.5),
        streams={"email_activity"},
    )
    posts = sum(sandbox.stats("mailchimp")["requests"]["POST /3.0/batches"].values())
    campaigns = split.state["bookmarks"]["email_activity"]["campaigns"]
    assert posts == len(campaigns) > 1, "one job per campaign (each fits one page)"
    jobs = tools.mc_session(sandbox).get(f"{sandbox.mailchimp_api_url}/batches", params={"count": 1000}).json()
    mine = sorted((b for b in jobs["batches"] if b["total_operations"] == 1), key=lambda b: b["submitted_at"])
    assert len(mine) >= posts
    for earlier, later in zip(mine[-posts:], mine[-posts + 1 :], strict=False):
        assert later["submitted_at"] >= earlier["completed_at"], "the next job waits for the previous one"
    paged = tools.run_tap(tools.tap_config(sandbox, use_batches="never"), streams={"email_activity"})
    stable_until = min(datetime.fromisoformat(v) for v in campaigns.values() if v)
    assert {k for k in paged.keys("email_activity", *KEY) if datetime.fromisoformat(k[3]) <= stable_until} <= (
        split.keys("email_activity", *KEY)
    )


def test_a_batches_run_makes_three_calls_and_learns_the_jobs_duration(sandbox: Any, tools: Any) -> None:
    """One job for every campaign, polled once (when it should be finished), no clock or audience call:
    ``GET /campaigns``, ``POST /batches``, ``GET /batches/{id}``; again in the next run from its state,
    whose first poll waits what the first job took per operation."""
    config = tools.tap_config(sandbox, use_batches="always")
    state: dict[str, Any] | None = None
    for _ in range(2):
        sandbox.reset_stats()
        run = tools.run_tap(config, state=state, streams={"email_activity"})
        calls = {route: sum(n.values()) for route, n in sandbox.stats("mailchimp")["requests"].items()}
        assert calls == {"GET /3.0/campaigns": 1, "POST /3.0/batches": 1, "GET /3.0/batches/{batch_id}": 1}
        marks = run.state["bookmarks"]["email_activity"]
        assert marks["batch_seconds_per_operation"] >= 0
        assert "batch" not in marks
        state = run.state
