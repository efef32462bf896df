"""What the Mailchimp sandbox's own CPU costs for a big e-commerce backfill through `/batches` (issue 16).

The audience-sync benchmark at 100,000 contacts found the sandbox CPU-bound: its `/batches` runner
and the store's page reads took most of a core. This reproduces that load quickly, in this process:

  * seeds the sandbox (``--oro-customers`` Oro customers, latency none), then grows the Mailchimp
    seed store to ``--shop-customers`` customers and ``--shop-orders`` orders (the customers are
    audience members, as after the contacts of a full run), as if a backfill had written them;
  * serves the Mailchimp API with uvicorn on a thread of its own (loopback HTTP, like
    `sandbox serve`), and times from this thread, with the server thread's CPU seconds:
      - each `/batches` job of ``--ops`` e-commerce operations shaped like target-mailchimp's
        (PUT customers; POST orders naming their customer; PATCH products; POST carts; DELETE
        customers), from its submission (the sandbox clock moved past `started`) to its results;
      - `GET /batches`, `GET /batches/{id}`, the results archive download;
      - store pages (`count=1000`) of orders and customers at a deep offset;
  * ``--profile FILE`` writes the server thread's cProfile statistics (read with `pstats`).

Usage: .venv/bin/python bench/bench_sandbox_batches.py [--shop-customers 100000] [--shop-orders 50000]
       [--jobs 4] [--ops 5000] [--out /tmp/sandbox-batches] [--profile /tmp/sandbox.prof]
Prints one JSON document and writes ``<out>/sandbox_batches.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import random
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import requests
import uvicorn
from oromc_sandbox import mailchimp
from oromc_sandbox.core.app import build_apps
from oromc_sandbox.core.state import SandboxOptions, SandboxState
from oromc_sandbox.core.stores import new_state
from oromc_sandbox.mailchimp.ecommerce_seed import SEED_STORE_ID
from oromc_sandbox.mailchimp.models.ecommerce import ADDRESS_KEYS, new_order

RESULTS = Path(__file__).resolve().parent / "results"
STORE = f"/ecommerce/stores/{SEED_STORE_ID}"


def grow_shop(state: SandboxState, customers: int, orders: int, seed: int = 7) -> dict[str, Any]:
    """Fill the seed store with ``customers`` customers (audience members) and ``orders`` orders."""
    store = state.mailchimp
    shop = store.engagement.ecommerce.shops[SEED_STORE_ID]  # type: ignore[union-attr]
    list_id = store.default_list_id()
    rng = random.Random(seed)
    emails = [m["email_address"] for m in store.iter_members(list_id)]
    at = float(int(store.now().timestamp()) - 86400)
    for i in range(customers - len(shop.customers)):
        cid = f"bench-c{i}"
        email = emails[i] if i < len(emails) else f"bench-{i}@shop.example.com"
        shop.customers[cid] = {
            "id": cid,
            "email_address": email,
            "opt_in_status": False,
            "company": "",
            "first_name": f"First{i}",
            "last_name": f"Last{i}",
            "address": dict.fromkeys(ADDRESS_KEYS, ""),
            "created_at": at,
            "updated_at": at,
        }
    ids = list(shop.customers)
    variants = [
        (p["id"], v["id"], v.get("price") or 10)
        for p in shop.products.values()
        for v in p["variants"]
    ]
    for i in range(orders - len(shop.orders)):
        pid, vid, price = variants[rng.randrange(len(variants))]
        qty = rng.randint(1, 5)
        line = {
            "id": "1",
            "product_id": pid,
            "product_variant_id": vid,
            "quantity": qty,
            "price": price,
            "discount": 0,
        }
        oid = f"bench-o{i}"
        shop.orders[oid] = new_order(
            oid, ids[rng.randrange(len(ids))], "USD", qty * float(price), [line], at
        )
    return {
        "shop_customers": len(shop.customers),
        "shop_orders": len(shop.orders),
        "shop_products": len(shop.products),
        "variants": variants,
        "customer_ids": ids,
        "emails": {c["id"]: c["email_address"] for c in shop.customers.values()},
    }


def operations(
    kind: str, n: int, job: int, shop: dict[str, Any], rng: random.Random
) -> list[dict[str, Any]]:
    """``n`` operations of one job, shaped like target-mailchimp's (`ecommerce.py` `_request`)."""
    ids, emails, variants = shop["customer_ids"], shop["emails"], shop["variants"]
    ops: list[dict[str, Any]] = []
    for i in range(n):
        cid = ids[rng.randrange(len(ids))]
        op_id = f"{kind}-{job}-{i}"
        if kind == "customers":
            body = {
                "id": cid,
                "email_address": emails[cid],
                "opt_in_status": False,
                "first_name": f"F{job}-{i}",
            }
            ops.append(
                {
                    "method": "PUT",
                    "path": f"{STORE}/customers/{cid}",
                    "body": json.dumps(body),
                    "operation_id": op_id,
                }
            )
            continue
        if kind == "mixed" and i % 5 == 1:
            pid, vid, _ = variants[rng.randrange(len(variants))]
            body = {
                "title": f"Product {pid} {job}",
                "variants": [{"id": vid, "title": f"Variant {vid}"}],
            }
            ops.append(
                {
                    "method": "PATCH",
                    "path": f"{STORE}/products/{pid}",
                    "body": json.dumps(body),
                    "operation_id": op_id,
                }
            )
            continue
        if kind == "mixed" and i % 5 == 2:
            ops.append(
                {"method": "DELETE", "path": f"{STORE}/customers/{cid}", "operation_id": op_id}
            )
            continue
        pid, vid, price = variants[rng.randrange(len(variants))]
        qty = rng.randint(1, 5)
        body = {
            "id": f"{kind}-{job}-{i}",
            "customer": {
                "id": cid,
                "email_address": emails[cid],
                "opt_in_status": False,
                "first_name": "F",
            },
            "currency_code": "USD",
            "order_total": qty * float(price),
            "financial_status": "paid",
            "processed_at_foreign": "2026-01-01T00:00:00+00:00",
            "lines": [
                {
                    "id": "1",
                    "product_id": pid,
                    "product_variant_id": vid,
                    "quantity": qty,
                    "price": price,
                }
            ],
        }
        collection = "carts" if kind == "mixed" else "orders"
        ops.append(
            {
                "method": "POST",
                "path": f"{STORE}/{collection}",
                "body": json.dumps(body),
                "operation_id": op_id,
            }
        )
    return ops


class Server:
    """The Mailchimp app of ``state`` served by uvicorn on a thread (its CPU time readable)."""

    def __init__(self, state: SandboxState, profile: cProfile.Profile | None) -> None:
        app = build_apps(state)["mailchimp"]
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            access_log=False,
            lifespan="off",
            server_header=False,
            date_header=False,
        )
        self.server = uvicorn.Server(config)
        self.profile = profile
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]

    def _run(self) -> None:
        if self.profile is not None:
            self.profile.runcall(asyncio.run, self.server.serve())
        else:
            asyncio.run(self.server.serve())

    def cpu(self) -> float:
        """CPU seconds of the server thread so far."""
        tid = self.thread.native_id
        for t in psutil.Process().threads():
            if t.id == tid:
                return float(t.user_time + t.system_time)
        return 0.0

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


class Timer:
    """Wall and server-CPU seconds of steps."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def __call__(self, fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, dict[str, float]]:
        cpu0, t0 = self.server.cpu(), time.perf_counter()
        result = fn(*args, **kwargs)
        return result, {
            "wall_s": round(time.perf_counter() - t0, 3),
            "server_cpu_s": round(self.server.cpu() - cpu0, 3),
        }


def _ping_during_job(
    session: requests.Session, api: str, base: str, ops: list[dict[str, Any]]
) -> dict[str, Any]:
    """`GET /ping` latencies (ms) from another connection while a job's operations run."""
    batch_id = session.post(f"{api}/batches", json={"operations": ops}, timeout=600).json()["id"]
    session.post(
        f"{base}/_sandbox/clock", json={"advance_seconds": 3 + 0.005 * len(ops)}, timeout=60
    )
    runner = threading.Thread(
        target=session.get, args=(f"{api}/batches/{batch_id}",), kwargs={"timeout": 600}
    )
    pinger = requests.Session()
    pinger.auth = session.auth
    runner.start()
    latencies = []
    while runner.is_alive():
        t0 = time.perf_counter()
        pinger.get(f"{api}/ping", timeout=600).raise_for_status()
        latencies.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.01)
    runner.join()
    latencies.sort()
    return {
        "pings": len(latencies),
        "median_ms": round(latencies[len(latencies) // 2], 1),
        "max_ms": round(latencies[-1], 1),
    }


def main() -> None:
    """Run the measurements and print JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--oro-customers", type=int, default=2000)
    parser.add_argument("--shop-customers", type=int, default=100_000)
    parser.add_argument("--shop-orders", type=int, default=50_000)
    parser.add_argument(
        "--jobs", type=int, default=4, help="jobs: customers, orders, mixed, orders, ..."
    )
    parser.add_argument("--ops", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--profile", type=Path, default=None)
    args = parser.parse_args()

    t0 = time.perf_counter()
    state = new_state(
        SandboxOptions(customers=args.oro_customers, latency="none", oro_port=0, mailchimp_port=0)
    )
    shop = grow_shop(state, args.shop_customers, args.shop_orders)
    result: dict[str, Any] = {
        "shop_customers": shop["shop_customers"],
        "shop_orders": shop["shop_orders"],
        "shop_products": shop["shop_products"],
        "ops_per_job": args.ops,
        "setup_s": round(time.perf_counter() - t0, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    info = mailchimp.sandbox_info(state.mailchimp)
    profile = cProfile.Profile() if args.profile else None
    server = Server(state, profile)
    base = f"http://127.0.0.1:{server.port}"
    api = base + "/3.0"
    session = requests.Session()
    session.auth = ("bench", info["api_key"])
    timer = Timer(server)
    rng = random.Random(11)
    kinds = ("customers", "orders", "mixed")
    jobs: list[dict[str, Any]] = []
    for j in range(args.jobs):
        kind = kinds[j % len(kinds)]
        ops = operations(kind, args.ops, j, shop, rng)
        created, submit = timer(
            session.post, f"{api}/batches", json={"operations": ops}, timeout=600
        )
        created.raise_for_status()
        batch_id = created.json()["id"]
        # Jump the sandbox clock past the job's end; the next read of the batch runs its operations.
        session.post(
            f"{base}/_sandbox/clock", json={"advance_seconds": 3 + 0.005 * args.ops}, timeout=60
        )
        done, run = timer(session.get, f"{api}/batches/{batch_id}", timeout=600)
        doc = done.json()
        _, again = timer(session.get, f"{api}/batches/{batch_id}", timeout=600)
        archive, download = timer(session.get, doc["response_body_url"], timeout=600)
        jobs.append(
            {
                "kind": kind,
                "status": doc["status"],
                "errored": doc["errored_operations"],
                "submit": submit,
                "run": run,
                "get_batch_after": again,
                "archive": {**download, "bytes": len(archive.content)},
            }
        )
    result["jobs"] = jobs
    result["ping_while_a_job_runs"] = _ping_during_job(
        session, api, base, operations("orders", args.ops, 99, shop, rng)
    )
    _, result["get_batches"] = timer(
        session.get, f"{api}/batches", params={"count": 1000}, timeout=600
    )
    pages: dict[str, Any] = {}
    for collection in ("orders", "customers"):
        total = session.get(f"{api}{STORE}/{collection}", params={"count": 1}, timeout=600).json()[
            "total_items"
        ]
        offset = max(total - 1500, 0)
        response, pages[collection] = timer(
            session.get,
            f"{api}{STORE}/{collection}",
            params={"count": 1000, "offset": offset},
            timeout=600,
        )
        response.raise_for_status()
        pages[collection]["offset"] = offset
    result["pages_1000"] = pages
    result["server_cpu_total_s"] = round(server.cpu(), 1)
    server.stop()
    if profile is not None and args.profile is not None:
        profile.dump_stats(str(args.profile))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sandbox_batches.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
