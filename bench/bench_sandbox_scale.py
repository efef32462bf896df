"""Can the sandbox hold a big shop? Seed 1,000,000 audience members and 1,000,000 Oro customer users.

    .venv/bin/python bench/bench_sandbox_scale.py                      # 545,000 customers, no member cap
    .venv/bin/python bench/bench_sandbox_scale.py --customers 20000    # a small one

Seeds both stores in a fresh process (as `sandbox serve` does before it serves) and reports the seeding
time (wall and CPU: on a shared machine the wall time waits for the CPU), the process's peak
resident memory (the budget: < 4 GB) and what it holds: Oro customer users, orders and audience
members (with the seeded campaigns and engagement). Prints JSON and writes bench/results/sandbox_scale.json
(`bench_jobs.py` puts it in its report, with the goal's status).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import peakrss
import psutil
from oromc_sandbox.core.state import SandboxOptions
from oromc_sandbox.core.stores import new_state

RESULTS = Path(__file__).resolve().parent / "results"
CUSTOMERS_FOR_1M = 545_000
"""About 1.06M customer users, of which ~90 % become members, plus 10 % Mailchimp-only members."""


def _count(obj: Any) -> int:
    try:
        return len(obj)
    except TypeError:
        return len(list(obj))


def measure(customers: int, max_members: int) -> dict[str, Any]:
    """Seed both stores in this process; what it took and what they hold."""
    rss0 = psutil.Process().memory_info().rss
    cpu0 = time.process_time()
    started = time.perf_counter()
    state = new_state(SandboxOptions(customers=customers, max_audience_members=max_members))
    seed_s = time.perf_counter() - started
    seed_cpu_s = time.process_time() - cpu0
    rss = psutil.Process().memory_info().rss
    mc = state.mailchimp
    members = sum(_count(m) for m in mc.members.values())
    tables = state.oro.tables
    return {
        "customers": customers,
        "max_audience_members": max_members,
        "customer_users": _count(tables["customerusers"].ids()),
        "orders": _count(tables["orders"].ids()) if "orders" in tables else None,
        "members": members,
        "seed_s": round(seed_s, 1),
        "seed_cpu_s": round(seed_cpu_s, 1),
        "rss_mb": round(rss / 2**20, 1),
        "seeded_mb": round((rss - rss0) / 2**20, 1),
        "peak_rss_mb": round(peakrss.own_peak_kb() / 1024, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=CUSTOMERS_FOR_1M)
    parser.add_argument("--max-audience-members", type=int, default=2_000_000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = measure(args.customers, args.max_audience_members)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sandbox_scale.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
