"""Engagement sync into Oro against Oro's modelled capacity (issue 16, item 3).

    .venv/bin/python bench/job_engagement_oro.py [--recipients 10000] [--workers 8] [--backlog 16]
        [--max-connections N] [--phases stock,stock_fixed,batch] [--profile] [--out NAME.json]

One campaign sent to ``--recipients`` real Oro customer users, engagement in Mailchimp-like
proportions (the generator of ``bench_target_orocommerce.py``), every event written
(``activity_granularity=every_event``). The sandbox runs with ``--latency realistic`` and a pool of
``--workers`` worker slots with a queue of ``--backlog`` (beyond it: 503, like PHP-FPM behind
nginx). Oro publishes no rate limit; this pool is the capacity the target is measured against:

    capacity share = busy worker-slot time / (workers x wall time of the run)

Phases (each its own campaign, so none dedupes against another):
  * ``stock``: stock Oro (no Batch API for ``marketingactivities``), the target's defaults;
  * ``stock_fixed``: the same with a fixed concurrency of ``max_connections`` (no adaptation;
    ``--workers`` unless ``--max-connections`` is given);
  * ``batch``: Oro with the Batch API enabled for ``marketingactivities`` (sandbox switch
    ``marketingactivities_batch``), the target's defaults.
Reported per phase: wall seconds, activity rows in, activities written, rows/s, API calls by
method, 503s received, rejects left and whether the run stopped (an overload error left unretried
fails the run), the capacity share and the target's concurrency limit. ``--profile`` profiles each
phase's main thread with pyinstrument and stores the top frames. JSON to stdout and ``bench/results/<--out>``.
The machine's load moves these figures: compare phases of one run, not runs of different days.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
from pathlib import Path
from typing import Any

from bench_target_orocommerce import _emails, _engagement, _lines
from oromc_common.oro import clear_token_cache
from oromc_sandbox.testing import RunningSandbox, running_sandbox
from target_orocommerce.concurrency import AdaptiveLimit
from target_orocommerce.target import TargetOroCommerce

ROOT = Path(__file__).resolve().parent.parent
PHASES = ("stock", "stock_fixed", "batch")
GOAL_SHARE = 0.8


def _input(emails: list[str], campaign: str) -> tuple[str, int]:
    streams = _engagement(emails, campaign=campaign)
    return _lines(streams), len(streams["sent_to"]) + len(streams["email_activity"])


def _profile_summary(profiler: Any, limit: int = 10) -> dict[str, list[dict[str, Any]]]:
    """The main thread's profile: heaviest frames by self time, and the target's own functions by
    total time (where its wall time goes: reading, lookups, waiting for the creates behind)."""
    session = profiler.last_session
    own: dict[str, float] = {}
    ours: dict[str, float] = {}
    stack = [session.root_frame()]
    while stack:
        frame = stack.pop()
        if frame is None:
            continue
        stack.extend(frame.children)
        if frame.function.startswith("[") or not frame.file_path:
            continue
        name = f"{frame.function} ({Path(frame.file_path).name}:{frame.line_no})"
        own[name] = own.get(name, 0.0) + frame.total_self_time
        if "target_orocommerce" in frame.file_path:
            ours[name] = max(ours.get(name, 0.0), frame.time)  # recursion: the outermost call

    def top(table: dict[str, float]) -> list[dict[str, Any]]:
        rows = sorted(table.items(), key=lambda kv: -kv[1])[:limit]
        return [{"frame": name, "seconds": round(sec, 2)} for name, sec in rows]

    return {"self_time": top(own), "target_functions_total_time": top(ours)}


def _phase(sb: RunningSandbox, config: dict[str, Any], lines: str, rows: int, workers: int,
           *, fixed: bool, profile: bool) -> dict[str, Any]:
    clear_token_cache()
    sb.reset_stats()
    target = TargetOroCommerce(config=config, validate_config=True)
    writer = target.services.writer
    if fixed:
        ceiling = int(config["max_connections"])
        writer.limit = AdaptiveLimit(ceiling, initial=ceiling, adaptive=False)
    profiler: Any = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.005)
        profiler.start()
    started = time.perf_counter()
    failure = None
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            target.listen(io.StringIO(lines))
    except Exception as exc:  # a run the overload stopped is a result too
        failure = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - started
    if profiler is not None:
        profiler.stop()
    summary = target.services.report.summary()
    streams = summary["streams"]
    written = sum(streams.get(s, {}).get("created", 0) for s in ("email_activity", "sent_to"))
    stats = sb.stats("oro")
    capacity = stats["capacity"]
    calls: dict[str, int] = {}
    for route, by_status in stats["requests"].items():
        if "oauth2-token" in route:
            continue
        method = route.split(" ", 1)[0]
        calls[method] = calls.get(method, 0) + sum(by_status.values())
    out = {
        "seconds": round(seconds, 2),
        "activity_rows_in": rows,
        "activities_written": written,
        "rows_per_second": round(written / seconds, 1),  # written: a stopped run wrote only some
        "api_calls": sum(calls.values()),
        "api_calls_by_method": calls,
        "overload_503_received": stats["by_status"].get("503", 0),
        "rejects_left": sum(s.get("rejected", 0) for s in streams.values()),
        "capacity_share": round(capacity["busy_ms_total"] / (workers * seconds * 1000), 3),
        "peak_busy_workers": capacity["peak_busy"],
        "peak_queued": capacity["peak_queued"],
        "queue_wait_ms_total": capacity["queue_wait_ms_total"],
        "concurrency": writer.limit.stats(),
        "run_failed": failure,
    }
    if profiler is not None:
        out["profile_main_thread"] = _profile_summary(profiler)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=8, help="Oro worker slots (PHP-FPM pm.max_children)")
    parser.add_argument("--backlog", type=int, default=16, help="requests that may wait for a slot; then 503")
    parser.add_argument("--max-connections", type=int, default=None, help="target setting (default: its own)")
    parser.add_argument("--phases", default=",".join(PHASES))
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--out", default="job_engagement_oro.json", help="file name under bench/results/")
    args = parser.parse_args()
    phases = [p for p in args.phases.split(",") if p]
    unknown = set(phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases {sorted(unknown)}; known: {', '.join(PHASES)}")

    report: dict[str, Any] = {"recipients": args.recipients, "latency": "realistic", "oro_workers": args.workers,
                              "oro_backlog": args.backlog, "goal_capacity_share": GOAL_SHARE}
    with running_sandbox(customers=max(args.recipients * 2, 200), seed=3, latency="none") as sb:
        emails = _emails(sb, args.recipients)
        sb.set_switches(latency="realistic", oro_workers=args.workers, oro_backlog=args.backlog)
        oro = sb.info["oro"]
        base: dict[str, Any] = {
            "base_url": sb.oro_base_url, "client_id": oro["client_id"], "client_secret": oro["client_secret"],
            "rejects_path": str(ROOT / "output" / "job-engagement-oro.rejects.jsonl"),
            "activity_granularity": "every_event",
        }
        if args.max_connections is not None:
            base["max_connections"] = args.max_connections
        for n, name in enumerate(phases):
            lines, rows = _input(emails, f"benchjob{n:03d}")
            sb.set_switches(marketingactivities_batch=name == "batch")
            config = dict(base)
            fixed = name == "stock_fixed"
            if fixed:
                config.setdefault("max_connections", args.workers)
            report[name] = _phase(sb, config, lines, rows, args.workers, fixed=fixed, profile=args.profile)
            share, rejects = report[name]["capacity_share"], report[name]["rejects_left"]
            report[name]["goal_met"] = share >= GOAL_SHARE and rejects == 0 and not report[name]["run_failed"]
            print(f"{name}: share {share:.2f}, {report[name]['rows_per_second']} rows/s, "
                  f"{report[name]['overload_503_received']} x 503, {rejects} rejects, "
                  f"failed: {report[name]['run_failed']}", flush=True)
    out = ROOT / "bench" / "results" / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
