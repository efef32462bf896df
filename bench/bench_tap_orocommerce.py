"""Benchmark: tap-orocommerce extracting ~100,000 customer users with addresses from the sandbox.

Run:  .venv/bin/python bench/bench_tap_orocommerce.py [--customers 51400] [--page-size 500]
          [--streams customer_users,customer_user_addresses,contacts]

Starts a sandbox (latency "none"), runs the tap CLI once as a subprocess with stdout discarded,
and prints a JSON summary: records per stream, wall time, records/s, API calls (from the sandbox
stats), and the tap process's own CPU time (user+sys from getrusage) per record. ``--customers``
is the sandbox's customer-account count; the number of customer users it seeds is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from oromc_sandbox.testing import running_sandbox


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=51400)  # ~100,000 customer users
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--streams", default="customer_users,customer_user_addresses,contacts")
    args = parser.parse_args()
    streams = args.streams.split(",")
    with (
        running_sandbox(customers=args.customers, latency="none") as sb,
        tempfile.TemporaryDirectory() as tmp,
    ):
        info = sb.info["oro"]
        cfg = Path(tmp) / "config.json"
        cfg.write_text(json.dumps({
            "base_url": sb.oro_base_url, "client_id": info["client_id"],
            "client_secret": info["client_secret"], "page_size": args.page_size, "streams": streams,
        }))  # fmt: skip
        sb.reset_stats()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "tap_orocommerce.tap", "--config", str(cfg)],
            capture_output=True, check=False, env={**os.environ},
        )  # fmt: skip
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr.decode()[-4000:])
            raise SystemExit(proc.returncode)
        counts: dict[str, int] = {}
        for line in proc.stdout.splitlines():
            if line.startswith(b'{"type":"RECORD"'):
                name = json.loads(line)["stream"]
                counts[name] = counts.get(name, 0) + 1
        stats = sb.stats("oro")
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        total = sum(counts.values())
        print(json.dumps({
            "benchmark": "tap-orocommerce extraction",
            "sandbox_customers": args.customers,
            "page_size": args.page_size,
            "records": counts,
            "records_total": total,
            "wall_s": round(wall, 2),
            "records_per_s": round(total / wall, 1) if wall else None,
            "api_calls": stats["total_requests"],
            "api_calls_by_route": {k: sum(v.values()) for k, v in stats["requests"].items()},
            "tap_cpu_s": round(cpu, 2),
            "tap_cpu_ms_per_record": round(1000 * cpu / total, 4) if total else None,
            "note": "tap CPU includes interpreter start-up and JSON parsing of every page",
        }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
