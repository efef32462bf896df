"""Whole jobs as a user runs them: `meltano run audience-sync` against the sandbox (realistic latency).

    .venv/bin/python bench/bench_jobs.py --quick     # `make bench-quick`: 2,000 contacts, 1 % re-run
    .venv/bin/python bench/bench_jobs.py             # `make bench`: 1M-member sandbox, 10,000 contacts
    .venv/bin/python bench/bench_jobs.py --sizes 100000 --changes ""   # 100,000 contacts (over an hour)

The full run first seeds the sandbox at 1,000,000 members and customer users in a process of its
own (`bench_sandbox_scale.py`: seeding time, memory). Then for each size, a fresh sandbox (`sandbox
serve --latency realistic` with the `dev` environment's Oro customizations, enough customers for
about that many contacts) and fresh Meltano state:
  1. the full run of `audience-sync` (contacts and the e-commerce backfill), measured by `jobrun.py`;
  2. on the first size only, re-runs after 0 %, 1 % and 10 % (quick: 1 %) of the customer users
     changed in Oro (first name edited through Oro's API): calls and wall time as a fraction of the
     full run.
Next to each run, the lower bound the Mailchimp API allows for the same work (`bounds.py`) and the
ratio. Writes bench/results/<date>.json, bench/results/latest.md, PNG charts, and prints the table
with each goal's status (`report.py`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "scripts"))

import profiling  # noqa: E402
import report  # noqa: E402
from jobrun import run_job  # noqa: E402
from oromc_sandbox.testing import RunningSandbox, running_sandbox  # noqa: E402
from pipelines import (  # noqa: E402
    DEV_SANDBOX_OPTIONS,
    install_env,
    meltano_install,
    remove_leftover_configs,
    sandbox_env,
)

JSONAPI = "application/vnd.api+json"
CONTACTS_PER_CUSTOMER = 1.94
"""Contacts the tap emits per seeded Oro customer (measured: 3,873 contacts from 2,000 customers)."""
QUICK_SIZES = (2_000,)
FULL_SIZES = (10_000,)
"""100,000 (`--sizes 100000`) does not fit the 40 minutes of `make bench` (README, "Benchmarks")."""
CHANGES = (0.0, 1.0, 10.0)
QUICK_CHANGES = (1.0,)  # the goal's figure; the 0 % re-run would not fit in 3 minutes
RESULTS = HERE / "results"


def customers_for(contacts: int) -> int:
    """Oro customers to seed for about ``contacts`` contacts."""
    return max(10, math.ceil(contacts / CONTACTS_PER_CUSTOMER))


def _oro_session(sandbox: RunningSandbox) -> requests.Session:
    session = requests.Session()
    session.headers.update(
        {
            "Accept": JSONAPI,
            "Content-Type": JSONAPI,
            "Authorization": f"Bearer {sandbox.oro_token()}",
        }
    )
    return session


def _mailchimp_get(sandbox: RunningSandbox, path: str, params: dict[str, str]) -> Any:
    """GET ``path`` (after ``/3.0``) from the sandbox's Mailchimp API; the parsed JSON body."""
    mc = sandbox.info["mailchimp"]
    response = requests.get(
        f"{mc['api_url']}{path}",
        params=params,
        auth=("bench", mc["api_key"]),
        timeout=60,
    )
    response.raise_for_status()
    return response.json()


def audience_members(sandbox: RunningSandbox) -> int:
    """Members of the sandbox's audience (every status), read before the run."""
    list_id = sandbox.info["mailchimp"]["list_id"]
    stats = _mailchimp_get(sandbox, f"/lists/{list_id}", {"fields": "stats"})["stats"]
    return sum(
        int(stats.get(k) or 0) for k in ("member_count", "unsubscribe_count", "cleaned_count")
    )


def batch_jobs(sandbox: RunningSandbox, since: dt.datetime) -> dict[str, Any]:
    """The account's ``/batches`` jobs (Mailchimp runs them one at a time), read after the full run:
    how many, their operations, and each job's submission and completion in seconds from ``since``
    (the run's start)."""
    batches = _mailchimp_get(sandbox, "/batches", {"count": "1000"}).get("batches") or []

    def offset(stamp: Any) -> float | None:
        if not stamp:
            return None
        return round((dt.datetime.fromisoformat(str(stamp)) - since).total_seconds(), 1)

    return {
        "jobs": len(batches),
        "operations": sum(int(b.get("total_operations") or 0) for b in batches),
        "timeline": [
            [offset(b.get("submitted_at")), offset(b.get("completed_at")), b.get("total_operations")]
            for b in batches
        ],
    }


def change_customer_users(sandbox: RunningSandbox, percent: float, round_no: int) -> int:
    """Edit the first name of ``percent`` % of the customer users in Oro (latency off meanwhile)."""
    if percent <= 0:
        return 0
    api = sandbox.oro_api_url
    session = _oro_session(sandbox)
    sandbox.set_switches(latency="none")
    try:
        ids: list[str] = []
        page = 1
        while True:
            rows = session.get(
                f"{api}/customerusers",
                params={
                    "page[size]": "1000",
                    "page[number]": str(page),
                    "fields[customerusers]": "id",
                },
                timeout=120,
            ).json()["data"]
            ids += [row["id"] for row in rows]
            if len(rows) < 1000:
                break
            page += 1
        step = max(1, round(100 / percent))
        chosen = ids[round_no % step :: step]

        def patch(rid: str) -> None:
            doc = {
                "data": {
                    "type": "customerusers",
                    "id": rid,
                    "attributes": {"firstName": f"Changed{round_no}x{rid}"},
                }
            }
            response = session.patch(f"{api}/customerusers/{rid}", json=doc, timeout=60)
            response.raise_for_status()

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(patch, chosen))
        return len(chosen)
    finally:
        sandbox.set_switches(latency="realistic")


def run_size(
    contacts: int,
    changes: tuple[float, ...],
    timeout: float,
    py_spy: str | None = None,
    logs: Path | None = None,
) -> dict[str, Any]:
    """A fresh sandbox and state: the full run, then the incremental re-runs (``logs``: a folder
    for each run's timed Meltano output, ``<contacts>-full.log``, ``<contacts>-rerun-<percent>.log``)."""
    customers = customers_for(contacts)
    out: dict[str, Any] = {"target_contacts": contacts, "customers": customers}
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as tmp:
        started = time.monotonic()
        with running_sandbox(
            customers=customers,
            latency="realistic",
            startup_timeout=900,
            **DEV_SANDBOX_OPTIONS,
        ) as sandbox:
            out["sandbox_start_s"] = round(time.monotonic() - started, 1)
            out["sandbox_rss_mb"] = round(
                psutil.Process(sandbox.process.pid).memory_info().rss / 2**20, 1
            )
            env = sandbox_env(sandbox.info, Path(tmp))
            out["audience_members"] = audience_members(sandbox)
            print(f"  {contacts:,} contacts ({customers:,} customers): full run ...", flush=True)
            # the sandbox's clock, which stamps the jobs (it is not the machine's: it stood still
            # while the sandbox seeded, ~12 s at 100k, which made every job look that much earlier)
            full_started = dt.datetime.fromisoformat(sandbox.now())
            full = run_job(
                sandbox,
                "audience-sync",
                env,
                timeout=timeout,
                profile_dir=Path(tmp) if py_spy else None,
                py_spy=py_spy,
                log=logs / f"{contacts}-full.log" if logs else None,
            )
            out["full"] = full
            full["batch_jobs"] = batch_jobs(sandbox, full_started)
            print(
                f"    {full['wall_s']:.0f} s, {full['mailchimp_calls']:,} Mailchimp calls, "
                f"{full['batch_jobs']['jobs']} /batches jobs of "
                f"{full['batch_jobs']['operations']:,} operations",
                flush=True,
            )
            reruns = []
            for i, percent in enumerate(changes):
                changed = change_customer_users(sandbox, percent, i)
                print(
                    f"  re-run after {percent:g} % changed ({changed:,} customer users) ...",
                    flush=True,
                )
                rerun = run_job(
                    sandbox,
                    "audience-sync",
                    env,
                    timeout=timeout,
                    profile_dir=Path(tmp) if py_spy else None,
                    py_spy=py_spy,
                    log=logs / f"{contacts}-rerun-{percent:g}.log" if logs else None,
                )
                rerun.update(changed_percent=percent, changed_customer_users=changed)
                reruns.append(rerun)
                print(
                    f"    {rerun['wall_s']:.0f} s, {rerun['mailchimp_calls']:,} Mailchimp calls",
                    flush=True,
                )
            out["reruns"] = reruns
    return out


def sandbox_scale(out: Path) -> dict[str, Any]:
    """`bench_sandbox_scale.py` in its own process (its peak memory is the sandbox's alone)."""
    print("  sandbox scale: 1,000,000 members and customer users ...", flush=True)
    subprocess.run(
        [sys.executable, str(HERE / "bench_sandbox_scale.py"), "--out", str(out)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    result: dict[str, Any] = json.loads((out / "sandbox_scale.json").read_text())
    print(
        f"    {result['members']:,} members, {result['customer_users']:,} customer users: "
        f"{result['peak_rss_mb']:,.0f} MB, seeded in {result['seed_s']} s",
        flush=True,
    )
    return result


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "cpu_count": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="2,000 contacts only (`make bench-quick`)"
    )
    parser.add_argument("--sizes", help="comma-separated contact counts (default 10000)")
    parser.add_argument(
        "--changes", help="comma-separated %% changed for the re-runs (default 0,1,10)"
    )
    parser.add_argument("--timeout", type=float, default=3000, help="seconds per meltano run")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--scale",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="seed the sandbox at 1M members first (default: in the full run only)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy profiles of the tap and the target of each run (see profiling.py)",
    )
    parser.add_argument("--py-spy", help="the py-spy executable (default: from PATH)")
    parser.add_argument(
        "--logs", type=Path, help="a folder for each run's Meltano output, timed from its start"
    )
    args = parser.parse_args(argv)
    if args.logs:
        args.logs.mkdir(parents=True, exist_ok=True)
    sizes = (
        tuple(int(x) for x in args.sizes.split(","))
        if args.sizes
        else QUICK_SIZES
        if args.quick
        else FULL_SIZES
    )
    changes = (
        tuple(float(x) for x in args.changes.split(",") if x)
        if args.changes is not None
        else QUICK_CHANGES
        if args.quick
        else CHANGES
    )
    py_spy = profiling.py_spy_path(args.py_spy) if args.profile else None
    if args.profile and py_spy is None:
        parser.error("--profile needs py-spy (--py-spy PATH, or on PATH)")
    meltano_install(install_env(Path(tempfile.mkdtemp(prefix="bench-install-"))))
    remove_leftover_configs()
    started = dt.datetime.now(dt.UTC)
    doc: dict[str, Any] = {
        "date": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "mode": "quick" if args.quick else "full",
        "latency": "realistic",
        "machine": machine(),
        "sizes": [],
    }
    if args.scale or (args.scale is None and not args.quick and not args.sizes):
        doc["sandbox_scale"] = sandbox_scale(args.out)
    failed = 0
    table = ""
    for n, contacts in enumerate(sizes):
        try:
            doc["sizes"].append(
                run_size(contacts, changes if n == 0 else (), args.timeout, py_spy, args.logs)
            )
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:  # keep what was measured
            failed += 1
            note = f"{contacts:,} contacts: the run failed ({str(exc).splitlines()[0][:300]})"
            doc.setdefault("notes", []).append(note)
            print(f"  {note}", flush=True)
        doc["wall_s"] = round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1)
        table = report.write(doc, args.out)  # after each size: a later failure keeps the earlier
    print(table)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
