"""bench_memory.py's arithmetic and its results file: the rows per connector, the parts merged.

Fast and without a sandbox: runs shaped like the benchmark's are built by hand.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import bench_memory  # noqa: E402
import peakrss  # noqa: E402
import psutil  # noqa: E402


def _tap(records: int, mb: float) -> dict[str, Any]:
    return {"customers": records // 50, "records": records, "tap": {"peak_rss_mb": mb}}


def _target(records: int, full: float, rerun: float | None = None) -> dict[str, Any]:
    phases = {"full": {"peak_rss_mb": full}}
    if rerun is not None:
        phases["rerun"] = {"peak_rss_mb": rerun}
    return {"customers": records // 18, "records": records, "target": phases}


def test_engagement_rows_each_from_the_runs_of_their_connector() -> None:
    runs = [
        _target(200_000, 100.0, 90.0),
        _tap(250_000, 80.0),
        _tap(1_050_000, 84.0),
        _target(600_000, 120.0),  # no re-run at this size
    ]
    rows = bench_memory.slopes(runs, bench_memory.ENGAGEMENT_SERIES)
    assert rows["tap-mailchimp-engagement"] == {
        "mb_per_100k_records": 0.5,
        "peak_rss_mb_at_1m": 84.0,
        "how": "measured at 1,050,000 records",
    }
    assert rows["target-orocommerce full"] == {
        "mb_per_100k_records": 5.0,
        "peak_rss_mb_at_1m": 140.0,
        "how": "extrapolated from 200,000 and 600,000 records",
    }
    assert rows["target-orocommerce rerun"]["how"] == "one size only"
    assert set(rows) == {n for n, _ in bench_memory.ENGAGEMENT_SERIES}


def test_audience_rows_unchanged_by_the_series() -> None:
    runs = [
        {"records": 100_000, "tap": {"peak_rss_mb": 100.0},
         "target": {"full": {"peak_rss_mb": 150.0}, "rerun": {"peak_rss_mb": 160.0}}},
        {"records": 500_000, "tap": {"peak_rss_mb": 108.0},
         "target": {"full": {"peak_rss_mb": 170.0}, "rerun": {"peak_rss_mb": 180.0}}},
        {"records": 900_000, "tap": {"peak_rss_mb": 112.0}, "target": {}},  # tap only
    ]  # fmt: skip
    rows = bench_memory.slopes(runs)
    assert rows["tap-orocommerce"]["mb_per_100k_records"] == 1.0  # 500k and 900k
    assert rows["tap-orocommerce"]["peak_rss_mb_at_1m"] == 113.0
    assert rows["target-mailchimp full"]["mb_per_100k_records"] == 5.0  # the tap-only run left out
    assert rows["target-mailchimp rerun"]["peak_rss_mb_at_1m"] == 205.0
    assert "tap-mailchimp-engagement" not in rows


def test_each_command_replaces_only_its_own_part() -> None:
    audience = {"benchmark": "audience", "runs": [_tap(1, 1.0)], "connectors": {"a": 1}}
    engagement = {"engagement": {"runs": [_tap(2, 2.0)], "connectors": {"e": 1}}}
    both = bench_memory.merged(audience, engagement, "engagement")
    assert both["benchmark"] == "audience"
    assert both["engagement"] == engagement["engagement"]
    newer = {"benchmark": "audience again", "runs": [], "connectors": {}, "previous": {}}
    again = bench_memory.merged(both, newer, "audience")
    assert again == {**newer, "engagement": engagement["engagement"]}
    assert bench_memory.merged({}, newer, "audience") == newer


def test_engagement_runs_replace_only_the_same_connector_and_size() -> None:
    old = [_tap(300, 1.0), _target(100, 2.0), _target(200, 3.0)]  # sizes 6, 5 and 11 customers
    again = _target(110, 4.0)  # 6 customers: the tap's size, the target's first time
    kept = bench_memory.engagement_runs(old, [again])
    assert [r["records"] for r in kept] == [100, 110, 200, 300]  # sorted by records
    rerun = _target(105, 5.0)  # 5 customers: replaces the target's 100-record run
    assert [r["records"] for r in bench_memory.engagement_runs(old, [rerun])] == [105, 200, 300]
    tap = _tap(320, 6.0)  # 6 customers: replaces the tap's run only
    assert [r["records"] for r in bench_memory.engagement_runs(old, [tap])] == [100, 200, 320]


def test_an_engagement_command_keeps_the_part_s_notes_and_earlier_figures() -> None:
    old = {"commands": ["first"], "runs": [_target(600_000, 120.0, 110.0)], "note": "how it was measured",
           "previous": {"60000 target": {"full": {"peak_rss_mb": 454.0}}}}  # fmt: skip
    doc = bench_memory.engagement_doc(old, [_target(600_000, 100.0, 95.0)], "second")
    assert doc["note"] == "how it was measured"
    assert doc["previous"] == old["previous"]
    assert doc["commands"] == ["first", "second"]
    assert [r["target"]["full"]["peak_rss_mb"] for r in doc["runs"]] == [100.0]


def test_a_plugin_s_peak_is_its_own_not_the_benchmark_s_that_spawned_it(tmp_path: Path) -> None:
    """``ru_maxrss`` survives fork and execve: a child spawned by a 300 MB parent reported >= 300 MB
    (bench_memory.py's target-orocommerce figures were its input generator's). ``peakrss`` reports
    the child's own high-water mark."""
    held = bytearray(300 * 2**20)
    held[:: 4096] = b"\x01" * len(held[:: 4096])  # touch every page: 300 MB resident here
    run = bench_memory.run_plugin(
        "target_orocommerce.target:TargetOroCommerce", ["--about", "--format", "json"], None, tmp_path / "about.json"
    )
    assert '"name": "target-orocommerce"' in (tmp_path / "about.json").read_text()
    assert 20 < run["peak_rss_mb"] < 200, run
    del held


def test_a_sampled_process_s_peak_counts_what_it_freed_before_the_sample() -> None:
    """bench/jobrun.py samples the plugins Meltano runs: ``vm_hwm_kb`` sees a peak between samples."""
    code = "x = bytearray(200 * 2**20)\nx[::4096] = b'1' * len(x[::4096])\ndel x\nprint('freed', flush=True)\ninput()\n"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "freed"
        hwm = peakrss.vm_hwm_kb(proc.pid)
        now = psutil.Process(proc.pid).memory_info().rss / 1024
        assert hwm is not None
        assert hwm > 200 * 1024 > now, (hwm, now)
    finally:
        proc.communicate("\n", timeout=30)
