"""Peak RSS of tap-orocommerce and target-mailchimp as the audience grows (issue 16's memory goal).

    .venv/bin/python bench/bench_memory.py --customers 5000,25000 [--tap-only 100000]
        [--out bench/results/memory.json]

For each sandbox size (``--customers`` accounts, about two customer users each; latency ``none``:
memory, not waiting, is measured) one fresh sandbox:
  1. tap-orocommerce runs once with the audience-sync job's streams (``contacts`` with
     contact_order_stats, contact_last_product and consent_source ``customer_user_field`` as in
     meltano.yml's dev environment, and the ``ecommerce_*`` streams); its output goes to a file;
  2. target-mailchimp reads that file twice: the full load, then the no-op re-run.
Each process reports its own peak RSS (``getrusage`` at exit). The results give, per connector and
phase, the MB per 100,000 records between the two largest sizes (smaller ones still fill fixed
buffers: pages in flight, windows, sqlite's page caches) and the straight-line extrapolation to
1,000,000 records (``bench/report.py`` states the goal from them, labelled as measured or
extrapolated).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from oromc_sandbox.testing import running_sandbox

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
# Runs a plugin's CLI (module:class, then its arguments) and reports its own peak RSS at exit.
_RUNNER = (
    "import atexit, importlib, resource, sys\n"
    "atexit.register(lambda: sys.stderr.write('PEAK_RSS_KB %d\\n' % "
    "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))\n"
    "module, cls = sys.argv[1].split(':')\n"
    "sys.argv = [module] + sys.argv[2:]\n"
    "getattr(importlib.import_module(module), cls).cli()\n"
)


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
            [sys.executable, "-c", _RUNNER, entry, *args],
            stdin=fin, stdout=fout, stderr=subprocess.PIPE, check=False,
        )  # fmt: skip
    wall = time.perf_counter() - started
    stderr = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        sys.stderr.write(stderr[-5000:])
        msg = f"{entry} failed ({proc.returncode})"
        raise RuntimeError(msg)
    rss_kb = next(
        (int(x.split()[1]) for x in stderr.splitlines() if x.startswith("PEAK_RSS_KB ")), 0
    )
    return {"wall_s": round(wall, 1), "peak_rss_mb": round(rss_kb / 1024, 1)}


def count_records(path: Path) -> dict[str, int]:
    """RECORD messages per stream of a Singer output file."""
    counts: dict[str, int] = {}
    with path.open("rb") as fh:
        for line in fh:
            if line.startswith(b'{"type":"RECORD"') or line.startswith(b'{"type": "RECORD"'):
                name = json.loads(line)["stream"]
                counts[name] = counts.get(name, 0) + 1
    return counts


def measure(customers: int, tmpdir: Path, with_target: bool = True) -> dict[str, Any]:
    """One sandbox of ``customers`` accounts: the tap once, the target's full load and re-run
    (unless ``with_target`` is false)."""
    with running_sandbox(
        customers=customers, latency="none", seed=7, startup_timeout=1800, **DEV_SANDBOX_OPTIONS
    ) as sb:
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


def slopes(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per connector and phase: MB per 100k records (the two largest runs) and the figure at 1M
    (measured if a run reached 1M records, else extrapolated on that straight line)."""
    rows: dict[str, Any] = {}
    for name, get in (
        ("tap-orocommerce", lambda r: r["tap"]["peak_rss_mb"]),
        ("target-mailchimp full", lambda r: r["target"]["full"]["peak_rss_mb"]),
        ("target-mailchimp rerun", lambda r: r["target"]["rerun"]["peak_rss_mb"]),
    ):
        measured = [r for r in runs if name.startswith("tap") or r["target"]]
        if not measured:
            continue
        # the slope at scale: between the two largest sizes (smaller ones still fill fixed buffers)
        low, high = measured[max(0, len(measured) - 2)], measured[-1]
        span = high["records"] - low["records"]
        per_100k = (get(high) - get(low)) * 100_000 / span if span > 0 else None
        if high["records"] >= GOAL_RECORDS:
            at_1m, how = get(high), f"measured at {high['records']:,} records"
        elif per_100k is not None:
            at_1m = get(high) + per_100k * (GOAL_RECORDS - high["records"]) / 100_000
            how = f"extrapolated from {low['records']:,} and {high['records']:,} records"
        else:
            at_1m, how = None, "one size only"
        rows[name] = {
            "mb_per_100k_records": None if per_100k is None else round(per_100k, 1),
            "peak_rss_mb_at_1m": None if at_1m is None else round(at_1m, 1),
            "how": how,
        }
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", default="5000,25000", help="comma-separated sandbox sizes")
    parser.add_argument(
        "--tap-only", default="", help="comma-separated larger sizes where only the tap runs"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    sizes = sorted(int(x) for x in args.customers.split(",") if x)
    tap_only = sorted(int(x) for x in args.tap_only.split(",") if x)
    with tempfile.TemporaryDirectory() as tmp:
        runs = [measure(n, Path(tmp)) for n in sizes]
        runs += [measure(n, Path(tmp), with_target=False) for n in tap_only]
    runs.sort(key=lambda r: r["records"])
    doc = {
        "benchmark": "peak RSS of tap-orocommerce and target-mailchimp (audience-sync streams)",
        "latency": "none",
        "command": "bench/bench_memory.py --customers "
        + ",".join(map(str, sizes))
        + (" --tap-only " + ",".join(map(str, tap_only)) if tap_only else ""),
        "runs": runs,
        "connectors": slopes(runs),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
