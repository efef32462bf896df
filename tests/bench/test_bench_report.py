"""The whole-job benchmark's arithmetic: the lower-bound model, the derived figures, the goals, the report.

Fast and without a sandbox: a result document shaped like `bench/bench_jobs.py`'s is built by hand.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import bounds  # noqa: E402
import jobrun  # noqa: E402
import profiling  # noqa: E402
import report  # noqa: E402


def _run(
    wall: float, mc: int, oro: int, contacts: dict[str, int], orders: dict[str, int], **extra: Any
) -> dict[str, Any]:
    phase = {
        "wall_s": wall / 2,
        "mailchimp_calls": mc // 2,
        "oro_calls": oro,
        "cpu_s": {"tap": 2.0, "target": 4.0},
        "peak_rss_mb": {"tap": 80.0, "target": 120.0},
    }
    return {
        "wall_s": wall,
        "mailchimp_calls": mc,
        "oro_calls": oro,
        "mailchimp_calls_by_route": {
            "GET /3.0/lists/{list_id}/members": 3,
            "POST /3.0/lists/{list_id}": mc - 3,
        },
        "oro_calls_by_route": {"GET /admin/api/{resource}": oro},
        "peak_connections": 8,
        "responses_429": 0,
        "peak_rss_mb": {"tap": 80.0, "target": 120.0},
        "sandbox_cpu_share": 0.05,
        "phases": {"contacts": phase, "ecommerce": phase},
        "summaries": {
            "tap-orocommerce--audience": {"streams": {"contacts": {"read": contacts["received"]}}},
            "target-mailchimp": {"streams": {"contacts": contacts, "ecommerce_orders": orders}},
        },
        **extra,
    }


def _doc(
    target_contacts: int = 100_000, one_percent_calls: int = 30, rss: float = 120.0, wall: float = 1500.0
) -> dict[str, Any]:
    n = target_contacts
    full = _run(wall, 1000, 500, {"received": n, "created": n}, {"received": n, "created": n})
    full["peak_rss_mb"]["target"] = rss
    reruns = [
        _run(
            60.0,
            10,
            500,
            {"received": n, "unchanged": n},
            {"received": n, "unchanged": n},
            changed_percent=0.0,
        ),
        _run(
            70.0,
            one_percent_calls,
            500,
            {"received": n, "updated": n // 100, "unchanged": n - n // 100},
            {"received": n, "unchanged": n},
            changed_percent=1.0,
            changed_customer_users=n // 100,
        ),
    ]
    return {
        "date": "2026-12-06T01:00:00Z",
        "mode": "full",
        "machine": {"cpu_count": 2, "memory_gb": 23.5, "python": "3.11.7"},
        "sizes": [
            {
                "target_contacts": n,
                "customers": n // 2,
                "audience_members": n,
                "full": full,
                "reruns": reruns,
            }
        ],
    }


def test_calls_are_packed_at_most_per_call_items() -> None:
    calls, seconds = bounds.calls_seconds(bounds.SUBSCRIBE, 1001, 500)
    assert calls == 3
    assert seconds == pytest.approx(
        2 * bounds.call_seconds(bounds.SUBSCRIBE, 500) + bounds.call_seconds(bounds.SUBSCRIBE, 1)
    )
    assert bounds.calls_seconds(bounds.SUBSCRIBE, 0, 500) == (0, 0.0)


def test_contacts_bound_is_the_cheaper_way_and_uses_ten_connections() -> None:
    everyone = bounds.contacts_bound(100_000, 100_000, 100_000)
    assert everyone["way"] == "blind"  # writing all beats reading all and then writing all
    assert everyone["calls"] == 200
    assert everyone["seconds"] == pytest.approx(
        200 * bounds.call_seconds(bounds.SUBSCRIBE, 500) / 10, abs=0.01
    )
    few = bounds.contacts_bound(100_000, 100, 100_000)
    assert few["way"] == "diff"  # reading 100 pages is cheaper than 200 batch subscribes
    assert few["calls"] == 100 + 1
    assert few["seconds"] < everyone["seconds"]


def test_ecommerce_bound_is_one_serial_batch() -> None:
    small, big = bounds.batch_seconds(1000), bounds.batch_seconds(2000)
    per_op = big - small
    # the sandbox runs 5 ms of server time per operation plus the submit call's per-item cost
    assert per_op == pytest.approx(1000 * (0.005 + 0.0002), rel=0.01)
    assert bounds.batch_seconds(0) == 0.0
    assert bounds.ecommerce_bound(1000, 1000, 1000)["way"] == "blind"
    nothing = bounds.ecommerce_bound(100_000, 0, 100_000)
    assert nothing["way"] == "diff"
    assert nothing["operations"] == 0


def test_audience_sync_bound_overlaps_contacts_and_ecommerce() -> None:
    run = _doc()["sizes"][0]["full"]
    bound = bounds.audience_sync_bound(run, 100_000)
    assert bound["seconds"] == max(bound["contacts"]["seconds"], bound["ecommerce"]["seconds"])
    assert bound["contacts"]["records"] == 100_000
    assert bound["ratio"] == pytest.approx(1500.0 / bound["seconds"], abs=0.01)
    assert bounds.ratio(5.0, 0.0) is None


def test_enrich_adds_a_bound_ratio_per_job_and_phase() -> None:
    doc = report.enrich(_doc())
    full = doc["sizes"][0]["full"]
    fig = full["figures"]
    assert fig["audience_sync_bound_ratio"] == full["bound"]["ratio"]
    assert doc["audience_sync_bound_ratio"] == {"100000": fig["audience_sync_bound_ratio"]}
    assert fig["contacts_bound_ratio"] == pytest.approx(
        750.0 / full["bound"]["contacts"]["seconds"], abs=0.01
    )
    assert fig["mailchimp_calls_per_1000_contacts"] == 10.0
    assert fig["contacts_target_cpu_s_per_1000"] == 0.04
    inc = {i["changed_percent"]: i for i in doc["sizes"][0]["incremental"]}
    assert inc[1.0]["calls_fraction"] == pytest.approx(530 / 1500, abs=1e-4)
    assert inc[0.0]["wall_fraction"] == 0.04


def _status(doc: dict[str, Any], start: str, results: Path | None = None) -> str:
    """The status of the goal starting ``start``; stored results from ``results`` (default: the
    repository's bench/results)."""
    return next(
        g["status"]
        for g in report.goals(report.enrich(doc), results)
        if g["goal"].startswith(start)
    )


def test_incremental_goal_allows_two_percent_plus_the_idle_rerun() -> None:
    # full: 1,500 calls -> 2 % = 30; constant = the 0 % re-run's 510 calls: 540 allowed
    assert _status(_doc(one_percent_calls=40), "a 1% change") == "met"  # 540 calls
    assert _status(_doc(one_percent_calls=41), "a 1% change") == "MISSED"  # 541 calls


def test_bound_goal_is_judged_from_100k() -> None:
    assert (
        _status(_doc(), "audience sync") == "MISSED"
    )  # 1,500 s against a bound of about 530 s (100k orders in one batch)
    assert _status(_doc(target_contacts=2000), "audience sync") == "not measured"
    # under the bound at 100k: the goal names 1M too, so it is not met until 1M is run
    assert _status(_doc(wall=600.0), "audience sync") == "met at 100k; 1M not measured"
    assert _status(_doc(target_contacts=1_000_000, wall=600.0), "audience sync") == "met"


def test_memory_goal_missed_as_soon_as_a_run_goes_over(tmp_path: Path) -> None:
    # no stored bench_memory.py results (tmp_path): the job document's figures alone
    assert _status(_doc(rss=350.0), "peak RSS", tmp_path) == "MISSED"
    assert _status(_doc(), "peak RSS", tmp_path) == "not measured"  # under the limit, 1M not run
    doc = _doc()
    doc["sandbox_scale"] = {
        "members": 1_000_000,
        "customer_users": 1_000_000,
        "peak_rss_mb": 3000.0,
        "seed_s": 60,
    }
    assert _status(doc, "the sandbox holds") == "met"
    doc["sandbox_scale"]["peak_rss_mb"] = 5000.0
    assert _status(doc, "the sandbox holds") == "MISSED"


def test_write_stores_json_table_and_charts(tmp_path: Path) -> None:
    doc = _doc()
    table = report.write(copy.deepcopy(doc), tmp_path)
    assert "| 100,000 | 100,000 | 1,500 |" in table
    assert "| 1% | 1,000 | 30 | 500 |" in table
    assert (tmp_path / "latest.md").read_text() == table
    stored = json.loads((tmp_path / "2026-12-06.json").read_text())
    assert stored["audience_sync_bound_ratio"]["100000"] > 1
    assert [g["status"] for g in stored["goals"]][:2] == ["MISSED", "met"]
    for name in report.CHARTS:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report.main([str(tmp_path / "latest.json")]) == 0  # renders a stored document again


def test_plugin_processes_and_ecommerce_calls_are_told_apart() -> None:
    assert (
        jobrun.role_of(
            ["/p/.meltano/extractors/tap-orocommerce/venv/bin/python", "/p/bin/tap-orocommerce"]
        )
        == "tap"
    )
    assert (
        jobrun.role_of(
            ["/p/.meltano/loaders/target-mailchimp/venv/bin/target-mailchimp", "--config"]
        )
        == "target"
    )
    assert jobrun.role_of(["/usr/bin/python", "-m", "meltano"]) is None
    stats = {
        "requests": {
            "POST /3.0/batches": {"200": 2},
            "POST /3.0/ecommerce/stores/{store_id}/orders": {"200": 3, "429": 1},
            "POST /3.0/lists/{list_id}": {"200": 5},
        }
    }
    assert jobrun.ecommerce_calls(stats) == 6
    assert jobrun.count_status(stats, "429") == 1


def test_a_runs_log_is_written_line_by_line_with_the_seconds_since_its_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = iter([100.0, 100.5, 112.25])
    monkeypatch.setattr(jobrun.time, "monotonic", lambda: next(clock))
    path = tmp_path / "run.log"
    write = jobrun.timed_log(path)
    write('{"event": "first"}')
    assert path.read_text() == '     0.50 {"event": "first"}\n'  # readable while the run goes on
    write("second")
    assert path.read_text().splitlines()[1] == "    12.25 second"


def test_profile_summary_names_what_the_project_waits_on() -> None:
    site = "/p/.meltano/loaders/target-mailchimp/venv/lib/python3.11/site-packages"
    text = "\n".join(
        [
            f"main (target.py:1);drain ({site}/target_mailchimp/sync.py:10);"
            f"wait_for_batch ({site}/oromc_common/batches.py:5);sleep (time.py:1) 60",
            f"main (target.py:1);drain ({site}/target_mailchimp/sync.py:10);loads (json/__init__.py:3) 30",
            "_bootstrap (threading.py:1);run (threading.py:2) 10",
            "not a sample line",
        ]
    )
    summary = profiling.summarize(text)
    assert summary["samples"] == 100
    assert summary["top_own_frames"][:3] == [
        ("oromc_common.batches.wait_for_batch", 0.6),
        ("target_mailchimp.sync.drain", 0.3),
        ("(outside the project)", 0.1),
    ]
    assert ("target_mailchimp.sync.drain", 0.9) in summary["top_inclusive"]
    doc = _doc()
    doc["sizes"][0]["full"]["profiles"] = {"target": summary}
    table = report.markdown(report.enrich(doc))
    assert "Profile of the target, full run at 100,000 contacts (100 samples" in table
    assert "`oromc_common.batches.wait_for_batch` 60%" in table


def test_archives_are_operations_of_the_serial_batch() -> None:
    run = _run(100.0, 50, 10, {"received": 1000, "created": 900, "disabled_archived": 100}, {"received": 0})
    bound = bounds.audience_sync_bound(run, 100_000)  # reading it all costs more: blind writes
    assert bound["ecommerce"]["contact_archives_in_batch"] == 100
    assert bound["ecommerce"]["seconds"] == pytest.approx(bounds.batch_seconds(100), abs=0.01)
    assert bound["contacts"]["calls"] == 2  # 1,000 contacts: two batch subscribes, archives apart


def test_peer_and_oro_capacity_goals_come_from_the_connector_benches(tmp_path: Path) -> None:
    doc = report.enrich(_doc(one_percent_calls=40))
    unmeasured = {g["goal"].split(" ")[0]: g["status"] for g in report.goals(doc, tmp_path)}
    assert unmeasured["tap-mailchimp-engagement"] == unmeasured["engagement"] == "not measured"
    peers = {
        "ratios_ours_over_peer": {
            "email_activity:ours/singer": {"rows_per_s": 2.4, "api_calls": 0.5, "rows_read": {"peer_missed": 0}},
            # a peer that under-reads does not count, however slow it is
            "email_activity:ours/airbyte": {"rows_per_s": 12.0, "api_calls": 0.2, "rows_read": {"peer_missed": 9}},
        }
    }
    oro = {"recipients": 1000, "stock": {"capacity_share": 0.79, "rows_per_second": 40, "rejects_left": 0}}
    (tmp_path / "tap_mailchimp_engagement.json").write_text(json.dumps(peers))
    (tmp_path / "job_engagement_oro.json").write_text(json.dumps(oro))
    by_goal = {g["goal"].split(" ")[0]: g for g in report.goals(doc, tmp_path)}
    assert by_goal["tap-mailchimp-engagement"]["status"] == "met"
    assert "airbyte" not in by_goal["tap-mailchimp-engagement"]["detail"]
    assert by_goal["engagement"]["status"] == "MISSED"  # 0.79 < 0.8
    peers["ratios_ours_over_peer"]["email_activity:ours/singer"]["api_calls"] = 8.0  # more calls
    oro["stock"]["capacity_share"] = 0.85
    (tmp_path / "tap_mailchimp_engagement.json").write_text(json.dumps(peers))
    (tmp_path / "job_engagement_oro.json").write_text(json.dumps(oro))
    by_goal = {g["goal"].split(" ")[0]: g for g in report.goals(doc, tmp_path)}
    assert by_goal["tap-mailchimp-engagement"]["status"] == "MISSED"
    assert by_goal["engagement"]["status"] == "met"


def test_tag_writes_count_in_the_contacts_bound() -> None:
    counts = {"received": 1000, "updated": 1000, "tagged": 1000, "tags_added": 1500, "tags_removed": 500}
    run = _run(100.0, 50, 10, counts, {"received": 0})
    bound = bounds.audience_sync_bound(run, 100_000)
    plain = _run(100.0, 50, 10, {"received": 1000, "updated": 1000}, {"received": 0})
    untagged = bounds.audience_sync_bound(plain, 100_000)
    assert bound["contacts"]["calls"] == untagged["contacts"]["calls"] + 4  # 2,000 tag changes, 500 a call
    assert bound["contacts"]["connection_seconds"] == pytest.approx(
        untagged["contacts"]["connection_seconds"] + 4 * bounds.call_seconds(bounds.SEGMENT_ADD, 500), abs=0.01
    )


def _row(at_1m: float, how: str) -> dict[str, Any]:
    return {"mb_per_100k_records": 5.0, "peak_rss_mb_at_1m": at_1m, "how": how}


def _memory(rss: float, at_1m: float, how: str, engagement: bool = True) -> dict[str, Any]:
    """A memory.json: the audience part (one run, every audience row at ``at_1m`` / ``how``) and,
    if ``engagement``, the engagement part the same way."""
    run = {"records": 1000, "tap": {"peak_rss_mb": rss}, "target": {"full": {"peak_rss_mb": 100.0}}}
    doc: dict[str, Any] = {
        "runs": [run],
        "connectors": {
            "tap-orocommerce": _row(at_1m, how),
            "target-mailchimp full": _row(at_1m, how),
        },
    }
    if engagement:
        doc["engagement"] = {
            "runs": [
                {"records": 1000, "tap": {"peak_rss_mb": 90.0}},
                {"records": 1000, "target": {"full": {"peak_rss_mb": 95.0}}},
            ],
            "connectors": {
                "tap-mailchimp-engagement": _row(at_1m, how),
                "target-orocommerce full": _row(at_1m, how),
            },
        }
    return doc


def _memory_goal(tmp_path: Path, stored: dict[str, Any]) -> dict[str, Any]:
    (tmp_path / "memory.json").write_text(json.dumps(stored))
    doc = report.enrich(_doc())
    return next(g for g in report.goals(doc, tmp_path) if g["goal"].startswith("peak RSS"))


def test_memory_goal_states_the_memory_bench_figures_measured_or_extrapolated(
    tmp_path: Path,
) -> None:
    def goal(stored: dict[str, Any]) -> dict[str, Any]:
        return _memory_goal(tmp_path, stored)

    extrapolated = goal(_memory(120.0, 170.0, "extrapolated from 100,000 and 500,000 records"))
    assert extrapolated["status"] == "not measured"  # an extrapolation is no measurement
    assert "170.0 MB at 1M (extrapolated" in extrapolated["detail"]
    assert "extrapolated: under the limit" in extrapolated["detail"]
    assert "over the limit" in goal(_memory(120.0, 900.0, "extrapolated from 1 and 2"))["detail"]
    assert goal(_memory(120.0, 170.0, "measured at 1,000,000 records"))["status"] == "met"
    assert (
        goal(_memory(320.0, 170.0, "extrapolated from 1 and 2"))["status"] == "MISSED"
    )  # a run went over


def test_memory_goal_names_every_connector_and_needs_each_measured(tmp_path: Path) -> None:
    measured = "measured at 1,000,000 records"
    audience_only = _memory_goal(tmp_path, _memory(120.0, 170.0, measured, engagement=False))
    assert audience_only["goal"].startswith("peak RSS of every connector < 300 MB at 1M records")
    for name in report.CONNECTORS:
        assert name in audience_only["goal"]
    assert audience_only["status"] == "not measured"  # two connectors of four
    assert "tap-mailchimp-engagement not measured" in audience_only["detail"]
    assert "target-orocommerce not measured" in audience_only["detail"]
    both = _memory_goal(tmp_path, _memory(120.0, 170.0, measured))
    assert both["status"] == "met"
    assert "tap-mailchimp-engagement 5.0 MB/100k, 170.0 MB at 1M (measured" in both["detail"]
    assert "not measured" not in both["detail"]
    over = _memory(120.0, 170.0, measured)
    over["engagement"]["runs"][1]["target"]["full"]["peak_rss_mb"] = 310.0
    assert _memory_goal(tmp_path, over)["status"] == "MISSED"  # an engagement run went over
