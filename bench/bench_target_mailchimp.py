"""Benchmark target-mailchimp against the sandbox's realistic latency profile.

    .venv/bin/python bench/bench_target_mailchimp.py [--contacts 100000] [--baseline-sample 200]
    .venv/bin/python bench/bench_target_mailchimp.py --contacts 0 --orders 2000   # e-commerce only,
        # results in bench/results/target_mailchimp_ecommerce.json
    .venv/bin/python bench/bench_target_mailchimp.py --memory 5000,20000   # the target's memory slope
        # (sandbox latency none), results in bench/results/target_mailchimp_memory.json

Phases (same sandbox, same run):
  1. initial load of N new contacts (merge fields + 2-3 owned tags each),
  2. no-op re-run of the same input,
  3. re-run with 10 % of the contacts changed (name + customer group, i.e. one tag swapped),
  4. naive baseline: one sequential ``PUT /members/{hash}`` per contact (the classic loop) on a sample,
     extrapolated linearly to N (stated in the output).
With ``--orders N`` (default 0: skipped), the e-commerce backfill of N orders (N/2 customers, 20
products, each order naming its customer and two product lines) into two fresh stores: once through
``/batches`` (``ecommerce_batch_threshold`` default), once with single calls (threshold above the window).
For each: wall time, API calls (sandbox request counter), calls per 1,000 contacts, peak simultaneous
connections (sandbox), and the target process's peak RSS. Prints a JSON report (also written to
``bench/results/target_mailchimp.json``).
With ``--memory N,M,...`` (instead of the above): for each N, a fresh store gets the backfill of N orders
through ``/batches`` and then a re-run of the same input (every order compared with the store's, none
written), sandbox latency ``none`` (memory, not waiting, is measured): the target's peak RSS of each, and
its slope per 1,000 orders between the smallest and the largest N.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import peakrss
from oromc_common.mailchimp import MailchimpClient, subscriber_hash
from oromc_sandbox.testing import RunningSandbox, running_sandbox

ROOT = Path(__file__).resolve().parent.parent
GROUPS = ["Retail", "Wholesale", "Partner", "Staff", "VIP"]


def contacts(n: int, changed_every: int = 0) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        changed = bool(changed_every) and i % changed_every == 0
        out.append(
            {
                "email": f"bench.person{i}@shop-example.com",
                "first_name": f"First{i}{'x' if changed else ''}",
                "last_name": f"Last{i}",
                "phone": f"+1 555 {i % 1000:03d} {i % 10000:04d}",
                "customer_user_id": i,
                "customer_id": 100000 + i // 10,
                "customer_name": f"Account {i // 10}",
                "customer_group": GROUPS[(i + (1 if changed else 0)) % len(GROUPS)],
                "tags": ["newsletter"] if i % 4 == 0 else [],
                "enabled": True,
                "confirmed": True,
                "is_guest": False,
                "updated_at": "2024-01-01T00:00:00+00:00",
            }
        )
    return out


def write_input(path: Path, records: list[dict[str, Any]]) -> None:
    from target_mailchimp.contract import CONTACTS_KEY_PROPERTIES, CONTACTS_SCHEMA

    with path.open("w") as fh:
        fh.write(
            json.dumps(
                {
                    "type": "SCHEMA",
                    "stream": "contacts",
                    "schema": CONTACTS_SCHEMA,
                    "key_properties": CONTACTS_KEY_PROPERTIES,
                }
            )
            + "\n"
        )
        for n, rec in enumerate(records, start=1):
            fh.write(json.dumps({"type": "RECORD", "stream": "contacts", "record": rec}) + "\n")
            if n % 1000 == 0:
                fh.write(json.dumps({"type": "STATE", "value": {"n": n}}) + "\n")
        fh.write(json.dumps({"type": "STATE", "value": {"n": len(records)}}) + "\n")


def orders(n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        c = i // 2
        out.append(
            {
                "id": f"bench-o{i}",
                "customer": {
                    "id": f"bench-c{c}",
                    "email_address": f"bench.buyer{c}@shop-example.com",
                    "first_name": f"First{c}",
                    "last_name": f"Last{c}",
                },
                "order_total": "59.90",
                "financial_status": "paid",
                "processed_at_foreign": "2024-01-01T00:00:00+00:00",
                "lines": [
                    {
                        "id": f"bench-o{i}-{k}",
                        "product_id": f"bench-p{(i + k) % 20}",
                        "quantity": 1 + k,
                        "price": "19.90" if k else "20.10",
                        "product_title": f"Product {(i + k) % 20}",
                    }
                    for k in range(2)
                ],
            }
        )
    return out


def write_orders(path: Path, records: list[dict[str, Any]]) -> None:
    from target_mailchimp.contract import ECOMMERCE_SCHEMAS

    stream = "ecommerce_orders"
    with path.open("w") as fh:
        schema = {"type": "SCHEMA", "stream": stream, "schema": ECOMMERCE_SCHEMAS[stream], "key_properties": ["id"]}
        fh.write(json.dumps(schema) + "\n")
        for n, rec in enumerate(records, start=1):
            fh.write(json.dumps({"type": "RECORD", "stream": stream, "record": rec}) + "\n")
            if n % 1000 == 0:
                fh.write(json.dumps({"type": "STATE", "value": {"n": n}}) + "\n")
        fh.write(json.dumps({"type": "STATE", "value": {"n": len(records)}}) + "\n")


def run_target(
    sb: RunningSandbox, config: Path, input_path: Path, n: int, label: str, stream: str = "contacts"
) -> dict[str, Any]:
    sb.reset_stats()
    started = time.perf_counter()
    with input_path.open() as stdin:
        proc = subprocess.Popen(
            [sys.executable, peakrss.RUNNER, "target_mailchimp.target:TargetMailchimp", "--config", str(config)],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _, stderr = proc.communicate()
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.stderr.write(stderr[-5000:])
        msg = f"target failed in phase {label}"
        raise RuntimeError(msg)
    summary: dict[str, Any] = next(
        (
            json.loads(line.split("RUN SUMMARY ", 1)[1])
            for line in stderr.splitlines()
            if "RUN SUMMARY " in line
        ),
        {},
    )
    return _phase(sb, label, n, wall, summary, stream, peak_rss_mb=peakrss.peak_mb(stderr))


def _phase(
    sb: RunningSandbox,
    label: str,
    n: int,
    wall: float,
    summary: dict[str, Any],
    stream: str = "contacts",
    **extra: Any,
) -> dict[str, Any]:
    stats = sb.stats("mailchimp")
    calls = int(stats["total_requests"])
    return {
        "phase": label,
        ("contacts" if stream == "contacts" else "records"): n,
        "wall_s": round(wall, 2),
        "api_calls": calls,
        "api_calls_per_1000": round(calls * 1000 / n, 2),
        "write_calls": stats["writes"],
        "peak_connections": max(stats["connections"]["peak"].values() or [0]),
        "over_limit_429": sum(stats["connections"]["over_limit"].values()),
        "calls_by_route": {k: sum(v.values()) for k, v in stats["requests"].items()},
        "target_counts": summary.get("streams", {}).get(stream, {}),
        **extra,
    }


def naive_baseline(
    sb: RunningSandbox, sample: list[dict[str, Any]], n_total: int
) -> dict[str, Any]:
    """The classic loop: one PUT per contact, sequential (tags not even synced)."""
    mc = sb.info["mailchimp"]
    client = MailchimpClient(api_key=mc["api_key"], api_url=sb.mailchimp_api_url, max_connections=1)
    sb.reset_stats()
    started = time.perf_counter()
    for rec in sample:
        client.put(
            f"/lists/{mc['list_id']}/members/{subscriber_hash(rec['email'])}",
            {
                "email_address": rec["email"],
                "status_if_new": "subscribed",
                "merge_fields": {
                    "FNAME": rec["first_name"],
                    "LNAME": rec["last_name"],
                    "PHONE": rec["phone"],
                },
            },
        )
    wall = time.perf_counter() - started
    result = _phase(sb, "naive_baseline_sample", len(sample), wall, {})
    result["extrapolated_to"] = n_total
    result["extrapolated_wall_s"] = round(wall * n_total / len(sample), 1)
    result["extrapolated_api_calls"] = n_total
    result["note"] = (
        "measured on the sample, extrapolated linearly to the full size (sequential loop)"
    )
    return result


def ecommerce_backfill(sb: RunningSandbox, tmpdir: Path, base: dict[str, Any], n: int) -> dict[str, Any]:
    """The same N orders into two fresh stores: through /batches, then with single calls."""
    from target_mailchimp.ecommerce import DEFAULT_BATCH_THRESHOLD

    path = tmpdir / "orders.jsonl"
    write_orders(path, orders(n))
    phases = []
    for label, threshold in (("orders_batches", DEFAULT_BATCH_THRESHOLD), ("orders_single_calls", 100_000)):
        config = tmpdir / f"{label}.json"
        config.write_text(
            json.dumps({**base, "store_id": f"bench-{label}", "ecommerce_batch_threshold": threshold})
        )
        phases.append(run_target(sb, config, path, n, label, "ecommerce_orders"))
    batches, single = phases
    return {
        "orders": n,
        "phases": phases,
        "speedup_batches_vs_single_calls": round(single["wall_s"] / max(batches["wall_s"], 0.01), 2),
        "call_ratio_single_calls_vs_batches": round(single["api_calls"] / max(batches["api_calls"], 1), 1),
    }


def memory_slope(sizes: list[int]) -> dict[str, Any]:
    """Peak RSS of an orders backfill and of its re-run (nothing to write) at each size, latency none."""
    runs = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_sandbox(latency="none", customers=50, seed=5) as sb,
    ):
        tmpdir = Path(tmp)
        mc = sb.info["mailchimp"]
        for n in sizes:
            path = tmpdir / f"orders-{n}.jsonl"
            write_orders(path, orders(n))
            config = tmpdir / f"memory-{n}.json"
            base = {"api_key": mc["api_key"], "api_url": sb.mailchimp_api_url, "list_id": mc["list_id"]}
            config.write_text(json.dumps({**base, "store_id": f"bench-memory-{n}"}))
            for label in ("backfill", "rerun"):
                phase = run_target(sb, config, path, n, label, "ecommerce_orders")
                runs.append({k: phase[k] for k in ("phase", "records", "wall_s", "api_calls", "peak_rss_mb")})
                print(json.dumps(runs[-1]), flush=True)
    low, high = min(sizes), max(sizes)
    slopes = {}
    if high > low:
        for label in ("backfill", "rerun"):
            rss = {r["records"]: r["peak_rss_mb"] for r in runs if r["phase"] == label}
            slopes[label] = round((rss[high] - rss[low]) * 1000 / (high - low), 2)
    return {"latency": "none", "runs": runs, "mb_per_1000_orders": slopes}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--baseline-sample", type=int, default=200)
    parser.add_argument("--max-connections", type=int, default=8)
    parser.add_argument("--orders", type=int, default=0)
    parser.add_argument("--memory", help="comma-separated order counts: the target's memory slope only")
    args = parser.parse_args()
    if args.memory:
        out = ROOT / "bench" / "results"
        out.mkdir(parents=True, exist_ok=True)
        memory = memory_slope(sorted(int(x) for x in args.memory.split(",")))
        (out / "target_mailchimp_memory.json").write_text(json.dumps(memory, indent=2))
        print(json.dumps(memory, indent=2))
        return
    n = args.contacts
    results: dict[str, Any] = {
        "contacts": n,
        "latency": "realistic",
        "max_connections": args.max_connections,
    }
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_sandbox(latency="realistic", customers=50, seed=5) as sb,
    ):
        tmpdir = Path(tmp)
        mc = sb.info["mailchimp"]
        config = tmpdir / "config.json"
        config.write_text(
            json.dumps(
                {
                    "api_key": mc["api_key"],
                    "api_url": sb.mailchimp_api_url,
                    "list_id": mc["list_id"],
                    "rejects_path": str(tmpdir / "rejects.jsonl"),
                    "max_connections": args.max_connections,
                }
            )
        )
        if args.orders:
            results["ecommerce"] = ecommerce_backfill(sb, tmpdir, json.loads(config.read_text()), args.orders)
        if not n:
            out = ROOT / "bench" / "results"
            out.mkdir(parents=True, exist_ok=True)
            (out / "target_mailchimp_ecommerce.json").write_text(json.dumps(results, indent=2))
            print(json.dumps(results, indent=2))
            return
        first = tmpdir / "first.jsonl"
        write_input(first, contacts(n))
        changed = tmpdir / "changed.jsonl"
        write_input(changed, contacts(n, changed_every=10))
        phases = [
            run_target(sb, config, first, n, "initial_load"),
            run_target(sb, config, first, n, "noop_rerun"),
            run_target(sb, config, changed, n, "ten_percent_changed"),
        ]
        sample = [
            dict(r, email=r["email"].replace("bench.", "naive."))
            for r in contacts(args.baseline_sample)
        ]
        baseline = naive_baseline(sb, sample, n)
        phases.append(baseline)
        load = phases[0]
        results["phases"] = phases
        results["speedup_initial_load_vs_naive"] = round(
            baseline["extrapolated_wall_s"] / load["wall_s"], 1
        )
        results["call_ratio_initial_load_vs_naive"] = round(n / max(load["api_calls"], 1), 1)
        results["python"] = sys.version.split()[0]
        results["cpu_count"] = os.cpu_count()
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "target_mailchimp.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
