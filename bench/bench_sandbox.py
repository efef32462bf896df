"""How fast is the sandbox itself? (It must never be the bottleneck of a connector benchmark.)

Measures, against a real `sandbox serve` subprocess over loopback HTTP:
  * simple requests per second: `GET /3.0/ping` and an Oro item GET, from N client threads;
  * time to serve one 1,000-member page of a large audience (`count=1000`, median of 15);
  * time to serve one 1,000-customer-user page from Oro (`page[size]=1000`, median of 15);
  * seeding time for 100,000 customers (both stores, in-process).

Usage: .venv/bin/python bench/bench_sandbox.py [--customers 100000] [--threads 4] [--seconds 5]
Prints one JSON document (and writes it to bench/results/sandbox.json).
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import requests
from oromc_sandbox.core.state import SandboxOptions
from oromc_sandbox.core.stores import new_state
from oromc_sandbox.testing import running_sandbox


def _rps(url: str, threads: int, seconds: float, **kwargs: Any) -> float:
    counts = [0] * threads
    stop = time.monotonic() + seconds

    def worker(i: int) -> None:
        session = requests.Session()
        while time.monotonic() < stop:
            response = session.get(url, timeout=30, **kwargs)
            response.raise_for_status()
            counts[i] += 1

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(counts) / seconds


def _median_ms(url: str, repeat: int = 15, **kwargs: Any) -> float:
    session = requests.Session()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = session.get(url, timeout=120, **kwargs)
        response.raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


def main() -> None:
    """Run the measurements and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()

    started = time.perf_counter()
    state = new_state(SandboxOptions(customers=args.customers))
    seed_s = time.perf_counter() - started
    del state

    result: dict[str, Any] = {"customers": args.customers, "seed_seconds": round(seed_s, 2)}
    with running_sandbox(customers=args.customers, startup_timeout=600) as sb:
        mc, oro = sb.info["mailchimp"], sb.info["oro"]
        auth = ("bench", mc["api_key"])
        token = requests.post(
            oro["token_url"],
            json={
                "grant_type": "client_credentials",
                "client_id": oro["client_id"],
                "client_secret": oro["client_secret"],
            },
            timeout=30,
        ).json()["access_token"]
        oro_headers = {"Authorization": f"Bearer {token}", "Accept": "application/vnd.api+json"}
        result["mailchimp_ping_rps"] = round(
            _rps(f"{mc['api_url']}/ping", args.threads, args.seconds, auth=auth)
        )
        result["oro_item_get_rps"] = round(
            _rps(f"{oro['api_url']}/customergroups/1", args.threads, args.seconds, headers=oro_headers)
        )
        members_url = f"{mc['api_url']}/lists/{mc['list_id']}/members"
        members = requests.get(members_url, params={"count": 1}, auth=auth, timeout=60).json()[
            "total_items"
        ]
        result["audience_members"] = members
        result["mailchimp_1000_member_page_ms"] = _median_ms(
            members_url, params={"count": 1000, "offset": members // 2}, auth=auth
        )
        result["oro_1000_customer_user_page_ms"] = _median_ms(
            f"{oro['api_url']}/customerusers",
            params={"page[size]": 1000, "page[number]": 20},
            headers=oro_headers,
        )
        result["client_threads"] = args.threads
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "sandbox.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
