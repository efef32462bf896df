"""`make bench`: run every benchmark one after another (each prints JSON and writes bench/results/)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = [
    "bench_sandbox.py",
    "bench_tap_orocommerce.py",
    "bench_target_mailchimp.py",
    "bench_tap_mailchimp_engagement.py",
    "bench_target_orocommerce.py",
]


def main() -> int:
    """Run them; stop at the first failure."""
    for name in BENCHES:
        started = time.monotonic()
        print(f"== {name}", flush=True)
        code = subprocess.call([sys.executable, str(HERE / name)])
        print(f"== {name}: exit {code} in {time.monotonic() - started:.0f} s", flush=True)
        if code:
            return code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
