"""Peak RSS of every connector as the records grow (issue 16's memory goal).

    .venv/bin/python bench/bench_memory.py --customers 5000,25000 [--tap-only 100000]
        [--engagement 12000,58000 [--engagement-only tap|target] [--no-rerun]]
        [--merge OTHER-memory.json] [--out bench/results/memory.json]

audience-sync (``--customers`` sandbox sizes: accounts, about two customer users each; latency
``none``: memory, not waiting, is measured), one fresh sandbox per size:
  1. tap-orocommerce runs once with the audience-sync job's streams (``contacts`` with
     contact_order_stats, contact_last_product and consent_source ``customer_user_field`` as in
     meltano.yml's dev environment, and the ``ecommerce_*`` streams); its output goes to a file;
  2. target-mailchimp reads that file twice: the full load, then the no-op re-run.
engagement-sync (``--engagement`` sandbox sizes, the same unit), per size:
  3. tap-mailchimp-engagement on a fresh sandbox with ``EXTRA_CAMPAIGNS`` more campaigns sent
     (about 49 output records per customer: sent_to and email_activity mostly), from empty state,
     every stream but ``member_ids`` (meltano.yml's select) and the dev settings; output to a file;
  4. target-orocommerce on another fresh sandbox reads ``TARGET_CAMPAIGNS`` generated campaigns
     sent to every non-guest customer user (bench_target_orocommerce.py's generator, about 18
     input records per customer) with the dev settings: the full load, then the no-op re-run.
``--engagement-only`` runs one of the two, so their sizes can differ: a 1M-records run needs
~21,000 customers for the tap, ~58,000 for the target. A new run replaces a stored one of the same
connector and size; the other stored engagement runs stay (each command is listed in ``commands``).
Each process reports its own peak RSS at exit (``VmHWM``, :mod:`peakrss`: not ``getrusage``,
which counts the RSS this script had when it spawned the process). The results give, per connector and
phase, the MB per 100,000 records between the two largest sizes (smaller ones still fill fixed
buffers: pages in flight, windows, sqlite's page caches) and the figure at 1,000,000 records,
measured when a run reached it, else the straight-line extrapolation (``bench/report.py`` states
the goal from them). The audience runs are memory.json's top-level keys, the engagement runs its
``engagement`` key; each command rewrites only its own part of an existing ``--out``, and
``--merge`` takes another file's audience part (e.g. a run made elsewhere) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import peakrss
import requests
from bench_tap_mailchimp_engagement import add_campaigns, select
from bench_target_orocommerce import _emails, _engagement, _lines
from oromc_sandbox.testing import RunningSandbox, running_sandbox
from tap_mailchimp_engagement.tap import TapMailchimpEngagement

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from pipelines import DEV_SANDBOX_OPTIONS

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "memory.json"
GOAL_RECORDS = 1_000_000
STREAMS = [
    "contacts",
    "ecommerce_customers",
    "ecommerce_products",
    "ecommerce_orders",
    "ecommerce_carts",
]
# engagement-sync (meltano.yml): the tap's dev settings and the streams it leaves out, the target's
# dev settings (its rejects_path aside)
ENGAGEMENT_TAP_SETTINGS = {"start_date": "2000-01-01T00:00:00Z", "engagement_window_days": 365}
ENGAGEMENT_TAP_DESELECTED = {"member_ids"}
ENGAGEMENT_TARGET_SETTINGS = {
    "marketing_list_ids": [1, 2],
    "consent_source": "customer_user_field",
    "campaign_results": True,
}
EXTRA_CAMPAIGNS = 16  # sent before the tap runs: ~17 email-activity rows per customer in all
TARGET_CAMPAIGNS = 5  # each to every customer user: ~19 input records per customer


def run_plugin(
    entry: str, args: list[str], stdin: Path | None, stdout: Path | None
) -> dict[str, Any]:
    """Run one plugin CLI; its wall time and peak RSS (MB)."""
    started = time.perf_counter()
    with (
        stdin.open("rb") if stdin else open("/dev/null", "rb") as fin,
        stdout.open("wb") if stdout else open("/dev/null", "wb") as fout,
    ):
        proc = subprocess.run(
            [sys.executable, peakrss.RUNNER, entry, *args],
            stdin=fin, stdout=fout, stderr=subprocess.PIPE, check=False,
        )  # fmt: skip
    wall = time.perf_counter() - started
    stderr = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        sys.stderr.write(stderr[-5000:])
        msg = f"{entry} failed ({proc.returncode})"
        raise RuntimeError(msg)
    return {"wall_s": round(wall, 1), "peak_rss_mb": peakrss.peak_mb(stderr)}


def count_records(path: Path) -> dict[str, int]:
    """RECORD messages per stream of a Singer output file."""
    counts: dict[str, int] = {}
    with path.open("rb") as fh:
        for line in fh:
            if line.startswith(b'{"type":"RECORD"') or line.startswith(b'{"type": "RECORD"'):
                name = json.loads(line)["stream"]
                counts[name] = counts.get(name, 0) + 1
    return counts


def _sandbox(customers: int) -> AbstractContextManager[RunningSandbox]:
    """A fresh sandbox of ``customers`` accounts, latency ``none`` (memory, not waiting, is measured),
    the same seed and the dev environment's options for every run."""
    return running_sandbox(
        customers=customers, latency="none", seed=7, startup_timeout=1800, **DEV_SANDBOX_OPTIONS
    )


def measure(customers: int, tmpdir: Path, with_target: bool = True) -> dict[str, Any]:
    """One sandbox of ``customers`` accounts: the tap once, the target's full load and re-run
    (unless ``with_target`` is false)."""
    with _sandbox(customers) as sb:
        oro, mc = sb.info["oro"], sb.info["mailchimp"]
        tap_cfg = tmpdir / f"tap-{customers}.json"
        tap_cfg.write_text(json.dumps({
            "base_url": sb.oro_base_url, "client_id": oro["client_id"],
            "client_secret": oro["client_secret"], "start_date": "2000-01-01T00:00:00Z",
            "consent_source": "customer_user_field", "contact_order_stats": True,
            "contact_last_product": True, "streams": STREAMS,
        }))  # fmt: skip
        out = tmpdir / f"tap-{customers}.jsonl"
        tap = run_plugin(
            "tap_orocommerce.tap:TapOroCommerce", ["--config", str(tap_cfg)], None, out
        )
        counts = count_records(out)
        tap["records"] = counts
        print(json.dumps({"customers": customers, "tap": tap}), flush=True)
        target_cfg = tmpdir / f"target-{customers}.json"
        target_cfg.write_text(json.dumps({
            "api_key": mc["api_key"], "api_url": sb.mailchimp_api_url, "list_id": mc["list_id"],
            "store_id": f"bench-memory-{customers}", "rejects_path": str(tmpdir / "rejects.jsonl"),
        }))  # fmt: skip
        target: dict[str, Any] = {}
        for phase in ("full", "rerun") if with_target else ():
            target[phase] = run_plugin(
                "target_mailchimp.target:TargetMailchimp", ["--config", str(target_cfg)], out, None
            )
            print(
                json.dumps({"customers": customers, f"target_{phase}": target[phase]}), flush=True
            )
        out.unlink()
    return {
        "customers": customers,
        "contacts": counts.get("contacts", 0),
        "records": sum(counts.values()),
        "tap": tap,
        "target": target,
    }


def measure_engagement_tap(customers: int, tmpdir: Path) -> dict[str, Any]:
    """tap-mailchimp-engagement once, from empty state, on a sandbox of ``customers`` accounts with
    ``EXTRA_CAMPAIGNS`` more campaigns sent: the engagement-sync job's streams (every one but
    ``member_ids``, as meltano.yml selects) and its dev settings."""
    with _sandbox(customers) as sb:
        key = sb.info["mailchimp"]["api_key"]
        session = requests.Session()
        session.auth = ("bench", key)
        add_campaigns(sb, session, EXTRA_CAMPAIGNS)
        session.close()
        cfg = {"api_key": key, "api_url": sb.mailchimp_api_url, **ENGAGEMENT_TAP_SETTINGS}
        config, catalog = tmpdir / f"etap-{customers}.json", tmpdir / f"etap-{customers}-catalog.json"
        config.write_text(json.dumps(cfg))
        tap_catalog = TapMailchimpEngagement(config=cfg, parse_env_config=False).catalog_dict
        wanted = [
            s["tap_stream_id"]
            for s in tap_catalog["streams"]
            if s["tap_stream_id"] not in ENGAGEMENT_TAP_DESELECTED
        ]
        catalog.write_text(json.dumps(select(tap_catalog, wanted)))
        out = tmpdir / f"etap-{customers}.jsonl"
        tap = run_plugin(
            "tap_mailchimp_engagement.tap:TapMailchimpEngagement",
            ["--config", str(config), "--catalog", str(catalog)], None, out,
        )  # fmt: skip
        tap["records"] = count_records(out)
        out.unlink()
    run = {"customers": customers, "extra_campaigns": EXTRA_CAMPAIGNS,
           "records": sum(tap["records"].values()), "tap": tap}  # fmt: skip
    print(json.dumps(run), flush=True)
    return run


def write_engagement_input(emails: list[str], campaigns: int, path: Path) -> dict[str, int]:
    """``campaigns`` campaigns, each sent to every one of ``emails`` with engagement in Mailchimp-like
    proportions (bench_target_orocommerce.py's generator, its own seed per campaign), as the Singer
    lines of the engagement-sync job, one campaign after another; RECORD lines per stream."""
    counts: dict[str, int] = {}
    with path.open("w") as fh:
        for n in range(campaigns):
            streams = _engagement(emails, seed=n + 1, campaign=f"benchmem{n:03d}")
            fh.write(_lines(streams))
            for name, rows in streams.items():
                counts[name] = counts.get(name, 0) + len(rows)
    return counts


def measure_engagement_target(
    customers: int, tmpdir: Path, with_rerun: bool = True
) -> dict[str, Any]:
    """target-orocommerce on a sandbox of ``customers`` accounts: ``TARGET_CAMPAIGNS`` campaigns sent
    to every non-guest customer user (:func:`write_engagement_input`), read with meltano.yml's dev
    settings; the full load, then the no-op re-run (unless ``with_rerun`` is false)."""
    with _sandbox(customers) as sb:
        emails = _emails(sb, customers * 10)
        data = tmpdir / f"etarget-{customers}.jsonl"
        counts = write_engagement_input(emails, TARGET_CAMPAIGNS, data)
        oro = sb.info["oro"]
        config = tmpdir / f"etarget-{customers}.json"
        config.write_text(json.dumps({
            "base_url": sb.oro_base_url, "client_id": oro["client_id"],
            "client_secret": oro["client_secret"], "rejects_path": str(tmpdir / "rejects.jsonl"),
            **ENGAGEMENT_TARGET_SETTINGS,
        }))  # fmt: skip
        run: dict[str, Any] = {"customers": customers, "recipients": len(emails),
                               "campaigns": TARGET_CAMPAIGNS, "records": sum(counts.values()),
                               "input": counts, "target": {}}  # fmt: skip
        for phase in ("full", "rerun") if with_rerun else ("full",):
            run["target"][phase] = run_plugin(
                "target_orocommerce.target:TargetOroCommerce", ["--config", str(config)], data, None
            )
            print(json.dumps({"customers": customers, f"target_{phase}": run["target"][phase]}),
                  flush=True)  # fmt: skip
        data.unlink()
    return run


Getter = Callable[[dict[str, Any]], "float | None"]


def _rss(*path: str) -> Getter:
    """A run's peak RSS at ``path`` (e.g. ``"tap"`` or ``"target", "full"``), None where the run has none."""

    def get(run: dict[str, Any]) -> float | None:
        node: Any = run
        for key in path:
            node = (node or {}).get(key)
        return None if not node else node["peak_rss_mb"]

    return get


# (row of the results, how a run gives its figure); a run without the figure is not part of the row
AUDIENCE_SERIES: tuple[tuple[str, Getter], ...] = (
    ("tap-orocommerce", _rss("tap")),
    ("target-mailchimp full", _rss("target", "full")),
    ("target-mailchimp rerun", _rss("target", "rerun")),
)
ENGAGEMENT_SERIES: tuple[tuple[str, Getter], ...] = (
    ("tap-mailchimp-engagement", _rss("tap")),
    ("target-orocommerce full", _rss("target", "full")),
    ("target-orocommerce rerun", _rss("target", "rerun")),
)


def slopes(
    runs: list[dict[str, Any]], series: tuple[tuple[str, Getter], ...] = AUDIENCE_SERIES
) -> dict[str, Any]:
    """Per connector and phase: MB per 100k records (the two largest runs) and the figure at 1M
    (measured if a run reached 1M records, else extrapolated on that straight line)."""
    rows: dict[str, Any] = {}
    for name, get in series:
        points = sorted((r["records"], mb) for r in runs if (mb := get(r)) is not None)
        if not points:
            continue
        # the slope at scale: between the two largest sizes (smaller ones still fill fixed buffers)
        (low_n, low_mb), (high_n, high_mb) = points[max(0, len(points) - 2)], points[-1]
        span = high_n - low_n
        per_100k = (high_mb - low_mb) * 100_000 / span if span > 0 else None
        if high_n >= GOAL_RECORDS:
            at_1m, how = high_mb, f"measured at {high_n:,} records"
        elif per_100k is not None:
            at_1m = high_mb + per_100k * (GOAL_RECORDS - high_n) / 100_000
            how = f"extrapolated from {low_n:,} and {high_n:,} records"
        else:
            at_1m, how = None, "one size only"
        rows[name] = {
            "mb_per_100k_records": None if per_100k is None else round(per_100k, 1),
            "peak_rss_mb_at_1m": None if at_1m is None else round(at_1m, 1),
            "how": how,
        }
    return rows


def merged(existing: dict[str, Any], new: dict[str, Any], part: str) -> dict[str, Any]:
    """``existing`` (a memory.json) with ``new``'s ``part`` in it, the other part kept: ``audience``
    is every top-level key but ``engagement`` (the file's original layout), ``engagement`` that key."""
    if part == "engagement":
        return {**existing, "engagement": new["engagement"]}
    doc = {k: v for k, v in new.items() if k != "engagement"}
    if "engagement" in existing:
        doc["engagement"] = existing["engagement"]
    return doc


def _audience(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    sizes = sorted(int(x) for x in args.customers.split(",") if x)
    tap_only = sorted(int(x) for x in args.tap_only.split(",") if x)
    runs = [measure(n, tmp) for n in sizes]
    runs += [measure(n, tmp, with_target=False) for n in tap_only]
    runs.sort(key=lambda r: r["records"])
    return {
        "benchmark": "peak RSS of tap-orocommerce and target-mailchimp (audience-sync streams)",
        "latency": "none",
        "command": "bench/bench_memory.py --customers "
        + ",".join(map(str, sizes))
        + (" --tap-only " + ",".join(map(str, tap_only)) if tap_only else ""),
        "runs": runs,
        "connectors": slopes(runs),
    }


def engagement_runs(existing: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The engagement runs to store: ``new``, plus the ``existing`` runs no new run replaces (one of
    the same connector, ``tap`` or ``target``, and the same sandbox size); by records."""

    def key(run: dict[str, Any]) -> tuple[str, int]:
        return ("tap" if "tap" in run else "target", run["customers"])

    fresh = {key(r) for r in new}
    kept = [r for r in existing if key(r) not in fresh]
    return sorted(kept + new, key=lambda r: r["records"])


def _engagement_part(
    args: argparse.Namespace, tmp: Path, existing: dict[str, Any]
) -> dict[str, Any]:
    sizes = sorted(int(x) for x in args.engagement.split(",") if x)
    new: list[dict[str, Any]] = []
    for n in sizes:
        if args.engagement_only in ("", "tap"):
            new.append(measure_engagement_tap(n, tmp))
        if args.engagement_only in ("", "target"):
            new.append(measure_engagement_target(n, tmp, with_rerun=not args.no_rerun))
    command = "bench/bench_memory.py --engagement " + ",".join(map(str, sizes))
    if args.engagement_only:
        command += f" --engagement-only {args.engagement_only}"
    command += " --no-rerun" if args.no_rerun else ""
    return {"engagement": engagement_doc(existing.get("engagement") or {}, new, command)}


def engagement_doc(old: dict[str, Any], new: list[dict[str, Any]], command: str) -> dict[str, Any]:
    """The engagement part after ``command`` measured ``new``: its runs merged into ``old``'s
    (:func:`engagement_runs`), the command added, the rows recomputed; ``old``'s other keys (notes,
    earlier figures, experiments) kept."""
    runs = engagement_runs(old.get("runs") or [], new)
    return {
        **old,
        "benchmark": "peak RSS of tap-mailchimp-engagement and target-orocommerce (engagement-sync)",
        "latency": "none",
        "commands": [*(old.get("commands") or []), command],
        "runs": runs,
        "connectors": slopes(runs, ENGAGEMENT_SERIES),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--customers", default="", help="comma-separated sandbox sizes of the audience-sync runs"
    )
    parser.add_argument(
        "--tap-only", default="", help="comma-separated larger sizes where only the tap runs"
    )
    parser.add_argument(
        "--engagement", default="", help="comma-separated sandbox sizes of the engagement-sync runs"
    )
    parser.add_argument("--engagement-only", choices=["tap", "target"], default="")
    parser.add_argument("--no-rerun", action="store_true", help="target-orocommerce: no re-run")
    parser.add_argument(
        "--merge", type=Path, help="take this memory.json's audience part into --out, then stop"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    existing = json.loads(args.out.read_text()) if args.out.exists() else {}
    if args.merge:
        doc = merged(existing, json.loads(args.merge.read_text()), "audience")
    else:
        if not (args.customers or args.tap_only or args.engagement):
            parser.error("nothing to measure: --customers, --tap-only or --engagement")
        doc = existing
        with tempfile.TemporaryDirectory() as tmp:
            if args.customers or args.tap_only:
                doc = merged(doc, _audience(args, Path(tmp)), "audience")
            if args.engagement:
                doc = merged(doc, _engagement_part(args, Path(tmp), doc), "engagement")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(doc, indent=2))

if __name__ == "__main__":
    main()
