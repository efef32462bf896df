"""`make bench` / `make bench-quick`: the whole-job benchmark (bench_jobs.py), optionally the connectors'.

    .venv/bin/python bench/run_all.py --quick         # `make bench-quick`: 2,000 contacts, < 3 min
    .venv/bin/python bench/run_all.py                 # `make bench`: 1M-member sandbox, 10,000 contacts
    .venv/bin/python bench/run_all.py --connectors    # also every per-connector benchmark (hours)

bench_jobs.py writes bench/results/<date>.json, latest.json, latest.md and the PNG charts, and prints
the table with each goal's status. Each per-connector benchmark prints JSON and most write
bench/results/*.json.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONNECTOR_BENCHES = [
    "bench_sandbox.py",
    "bench_tap_orocommerce.py",
    "bench_target_mailchimp.py",
    "bench_tap_mailchimp_engagement.py",
    "bench_target_orocommerce.py",
]


def _run(name: str, *args: str) -> int:
    started = time.monotonic()
    print(f"== {name} {' '.join(args)}".rstrip(), flush=True)
    code = subprocess.call([sys.executable, str(HERE / name), *args])
    print(f"== {name}: exit {code} in {time.monotonic() - started:.0f} s", flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    """Run them; stop at the first failure."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="the quick whole-job run only")
    parser.add_argument("--connectors", action="store_true", help="also each connector's benchmark")
    args = parser.parse_args(argv)
    code = _run("bench_jobs.py", *(["--quick"] if args.quick else []))
    if code or not args.connectors:
        return code
    for name in CONNECTOR_BENCHES:
        code = _run(name)
        if code:
            return code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
