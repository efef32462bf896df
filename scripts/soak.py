"""`make soak`: both jobs every minute for N minutes against a sandbox that keeps changing.

Each cycle (default every 60 s, as a scheduler would start them) the soak first changes both systems
the way shop and subscribers do: two Oro customer users change their names, every third cycle one
withdraws marketing consent in Oro and one member unsubscribes in Mailchimp, every fourth cycle a
campaign goes out to a few members (its sends, opens, clicks, bounces and unsubscribes arrive over the
following sandbox days: the sandbox clock moves 3 hours per cycle). Then `meltano run audience-sync`
and `meltano run engagement-sync` start together. A cycle that is still running at the next tick
delays the next one (counted as `late`).

Measured per cycle: the peak RSS of every process (each job's `meltano`, tap and target, and the
sandbox; sampled every 0.5 s with psutil), the size of each job's Meltano state, each job's duration
and exit code, and the backlog: changes made by the soak that have not reached the other system after
the cycle's jobs (a name or an opt-out made in Oro not yet on the Mailchimp member, an unsubscribe made
in Mailchimp not yet Oro's consent). Writes `soak.json` (every cycle and a summary: is memory flat?)
and `soak.png` to bench/results/ (or ``--out``).

    .venv/bin/python scripts/soak.py --minutes 30          # make soak
    .venv/bin/python scripts/soak.py --cycles 2 --interval 0 --customers 10 --out /tmp/soak
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.append(str(Path(__file__).resolve().parent.parent / "bench"))  # peakrss

from demo import CONSENT_FIELD, Apis
from oromc_sandbox.testing import RunningSandbox, running_sandbox
from peakrss import vm_hwm_kb
from pipelines import (
    DEV_SANDBOX_OPTIONS,
    ROOT,
    install_env,
    meltano,
    meltano_install,
    private_sys_dir,
    sandbox_env,
    start_meltano,
)

JOBS = ("audience-sync", "engagement-sync")
SANDBOX_HOURS_PER_CYCLE = 3
FLAT_TOLERANCE = 0.15
"""Memory is called flat when no process's mean peak RSS over the last third of the cycles exceeds
that of the first third (the first cycle, a full sync, left out) by more than this fraction."""


@dataclass
class Change:
    """One change the soak made, and how to tell that it reached the other system."""

    kind: str  # oro_name, oro_opt_out, mailchimp_unsubscribe
    customer_user_id: str
    subscriber_hash: str
    value: str = ""
    cycle: int = 0


@dataclass
class Cycle:
    """What one cycle measured."""

    number: int
    started_s: float
    late_s: float
    seconds: dict[str, float] = field(default_factory=dict)
    exit_codes: dict[str, int] = field(default_factory=dict)
    rss_mb: dict[str, float] = field(default_factory=dict)  # peak per process role
    state_bytes: dict[str, int] = field(default_factory=dict)
    backlog: int = 0
    changes_made: int = 0


#: Seconds between two samples: a plugin that finishes in about a second (a cycle with little to
#: do) is still sampled several times after its start-up (at 0.5 s one was seen only at 1.9 MB, just
#: after its exec).
SAMPLE_SECONDS = 0.1


class RssSampler:
    """Peak RSS per process role while jobs run (role = job:meltano, tap-..., target-..., sandbox)."""

    def __init__(self, sandbox_pid: int) -> None:
        self.sandbox = psutil.Process(sandbox_pid)
        self.jobs: dict[str, psutil.Process] = {}
        self.peak: dict[str, float] = defaultdict(float)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self, role: str, proc: psutil.Process) -> None:
        with contextlib.suppress(psutil.Error):
            self.peak[role] = max(self.peak[role], _peak_rss_mb(proc))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample("sandbox", self.sandbox)
            for job, proc in list(self.jobs.items()):
                self._sample(f"{job}:meltano", proc)
                try:
                    children = proc.children(recursive=True)
                except psutil.Error:
                    continue
                for child in children:
                    role = _plugin_role(child)
                    if role:
                        self._sample(role, child)
            self._stop.wait(SAMPLE_SECONDS)


def _peak_rss_mb(proc: psutil.Process) -> float:
    """The process's peak RSS so far: the kernel's high-water mark (``VmHWM``, :mod:`peakrss`)
    where there is one, so a sample taken late in a short life still sees its peak; else the
    current RSS."""
    hwm = vm_hwm_kb(proc.pid)
    return hwm / 1024 if hwm is not None else float(proc.memory_info().rss) / 2**20


def _plugin_role(proc: psutil.Process) -> str | None:
    """``tap-orocommerce`` etc. for a plugin process (its executable is the 1st or 2nd argument)."""
    try:
        cmdline = proc.cmdline()
    except psutil.Error:
        return None
    for arg in cmdline[:2]:
        name = Path(arg).name
        if name.startswith(("tap-", "target-")):
            return name
    return None


def state_sizes(db: Path) -> dict[str, int]:
    """Bytes of each Meltano state (partial + completed JSON) in the project's SQLite database."""
    if not db.exists():
        return {}
    with sqlite3.connect(db) as conn:
        try:
            rows = conn.execute(
                "SELECT state_id, length(coalesce(partial_state, '')) + "
                "length(coalesce(completed_state, '')) FROM state"
            ).fetchall()
        except sqlite3.OperationalError:
            return {}
    return {str(state_id): int(size) for state_id, size in rows}


class World:
    """The soak's view of both systems: linked people and the changes it makes."""

    def __init__(self, sandbox: RunningSandbox) -> None:
        self.sandbox = sandbox
        self.apis = Apis(sandbox)
        self.linked: dict[str, str] = {}  # Oro customer user id -> subscriber hash
        self.pending: list[Change] = []
        self.used: set[str] = set()

    def _users(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.apis.oro(
            "GET", "customerusers", params={"page[size]": -1}
        )["data"]
        return rows

    def _candidates(self) -> list[dict[str, Any]]:
        """Enabled registered users linked to a member, lowest id first, not yet opted out here."""
        if not self.linked:
            self.linked = self.apis.linked_subscribers()
        return sorted(
            (
                u
                for u in self._users()
                if u["id"] in self.linked
                and u["attributes"].get("enabled")
                and not u["attributes"].get("isGuest")
                and u["attributes"].get(CONSENT_FIELD) is True
                and u["id"] not in self.used
            ),
            key=lambda u: int(u["id"]),
        )

    def change(self, cycle: int) -> int:
        """Make this cycle's changes (see the module docstring); returns how many."""
        self.sandbox.advance_clock(SANDBOX_HOURS_PER_CYCLE * 3600)
        time.sleep(1.1)  # the connectors' cut-offs are whole seconds
        people = self._candidates()
        made: list[Change] = []
        for user in people[:2]:
            name = f"Soak{cycle}"
            self._patch_user(user["id"], {"firstName": name})
            made.append(Change("oro_name", user["id"], self.linked[user["id"]], name, cycle))
        if cycle % 3 == 0 and len(people) >= 4:
            out_oro, out_mc = people[2], people[3]
            self._patch_user(out_oro["id"], {CONSENT_FIELD: False})
            self.apis.mc.patch(
                f"{self.apis.members}/{self.linked[out_mc['id']]}",
                json={"status": "unsubscribed"},
                timeout=60,
            ).raise_for_status()
            made.append(
                Change("oro_opt_out", out_oro["id"], self.linked[out_oro["id"]], cycle=cycle)
            )
            made.append(
                Change(
                    "mailchimp_unsubscribe", out_mc["id"], self.linked[out_mc["id"]], cycle=cycle
                )
            )
            self.used |= {out_oro["id"], out_mc["id"]}
        if cycle % 4 == 0 and len(people) >= 8:
            self._send_campaign([self.linked[u["id"]] for u in people[4:8]], f"soak-{cycle}")
        time.sleep(1.1)
        self.pending += made
        return len(made)

    def _patch_user(self, user_id: str, attributes: dict[str, Any]) -> None:
        body = {"data": {"type": "customerusers", "id": user_id, "attributes": attributes}}
        self.apis.oro("PATCH", f"customerusers/{user_id}", json=body)

    def _send_campaign(self, hashes: list[str], tag: str) -> None:
        mc, members = self.apis.mc, self.apis.members
        api, list_id = self.sandbox.mailchimp_api_url, self.sandbox.info["mailchimp"]["list_id"]
        for subscriber_hash in hashes:
            mc.post(
                f"{members}/{subscriber_hash}/tags",
                json={"tags": [{"name": tag, "status": "active"}]},
                timeout=60,
            ).raise_for_status()
        segments = mc.get(f"{api}/lists/{list_id}/segments", params={"count": 1000}, timeout=60)
        segment = next(s["id"] for s in segments.json()["segments"] if s["name"] == tag)
        campaign = mc.post(
            f"{api}/campaigns",
            json={
                "type": "regular",
                "recipients": {"list_id": list_id, "segment_opts": {"saved_segment_id": segment}},
                "settings": {
                    "subject_line": f"Soak {tag}",
                    "title": tag,
                    "from_name": "Shop",
                    "reply_to": "shop@example.com",
                },
            },
            timeout=60,
        )
        campaign.raise_for_status()
        mc.post(
            f"{api}/campaigns/{campaign.json()['id']}/actions/send", timeout=60
        ).raise_for_status()

    def backlog(self) -> int:
        """Changes made so far that the other system does not show yet (the rest are dropped)."""
        users = {u["id"]: u for u in self._users()}
        self.pending = [c for c in self.pending if not self._arrived(c, users)]
        return len(self.pending)

    def _arrived(self, change: Change, users: dict[str, dict[str, Any]]) -> bool:
        if change.kind == "mailchimp_unsubscribe":
            attrs = users.get(change.customer_user_id, {}).get("attributes", {})
            return attrs.get(CONSENT_FIELD) is False
        member = self.apis.mc.get(
            f"{self.apis.members}/{change.subscriber_hash}",
            params={"fields": "status,merge_fields"},
            timeout=60,
        ).json()
        if change.kind == "oro_opt_out":
            return member.get("status") == "unsubscribed"
        return (member.get("merge_fields") or {}).get("FNAME") == change.value


def run_cycle(
    number: int,
    late: float,
    started: float,
    world: World | None,
    env: dict[str, str],
    sandbox: RunningSandbox,
) -> tuple[Cycle, World]:
    """One cycle: changes (from the second cycle on), both jobs together, measurements."""
    cycle = Cycle(number=number, started_s=round(started, 1), late_s=round(late, 1))
    world = world or World(sandbox)
    if number > 1:
        cycle.changes_made = world.change(number)
    with RssSampler(sandbox.process.pid) as sampler:
        procs, begun, logs = {}, {}, {}
        for job in JOBS:
            logs[job] = (_workdir(env) / f"{job}.log").open("a")
            procs[job] = start_meltano("run", job, env=env, stdout=logs[job])
            begun[job] = time.monotonic()
            sampler.jobs[job] = psutil.Process(procs[job].pid)
        while len(cycle.exit_codes) < len(procs):  # each job's own duration, whichever ends first
            for job, proc in procs.items():
                if job not in cycle.exit_codes and proc.poll() is not None:
                    cycle.exit_codes[job] = proc.returncode
                    cycle.seconds[job] = round(time.monotonic() - begun[job], 1)
                    logs[job].close()
                    if proc.returncode:
                        tail = (_workdir(env) / f"{job}.log").read_text().splitlines()[-40:]
                        print(f"{job} failed ({proc.returncode}):", *tail, sep="\n  ", flush=True)
            time.sleep(0.1)
    cycle.rss_mb = {role: round(mb, 1) for role, mb in sorted(sampler.peak.items())}
    cycle.state_bytes = state_sizes(_workdir(env) / "meltano.db")
    cycle.backlog = world.backlog()
    return cycle, world


def _workdir(env: dict[str, str]) -> Path:
    """The soak's work folder (Meltano database, each job's log: `<job>.log`)."""
    return Path(env["MELTANO_DATABASE_URI"].removeprefix("sqlite:///")).parent


def summarize(cycles: list[Cycle]) -> dict[str, Any]:
    """Per process: first, last and max peak RSS, and whether memory stayed flat."""
    steady = cycles[1:] if len(cycles) > 1 else cycles
    third = max(1, len(steady) // 3)
    roles = sorted({r for c in cycles for r in c.rss_mb})
    memory: dict[str, Any] = {}
    flat = True
    for role in roles:
        values = [c.rss_mb[role] for c in steady if role in c.rss_mb]
        if not values:
            continue
        head = sum(values[:third]) / len(values[:third])
        tail = sum(values[-third:]) / len(values[-third:])
        growth = (tail - head) / head if head else 0.0
        flat = flat and growth <= FLAT_TOLERANCE
        memory[role] = {
            "first_mb": values[0],
            "last_mb": values[-1],
            "max_mb": max(values),
            "growth_last_vs_first_third": round(growth, 3),
        }
    states = sorted({s for c in cycles for s in c.state_bytes})
    return {
        "cycles": len(cycles),
        "failed_runs": sum(1 for c in cycles for code in c.exit_codes.values() if code),
        "late_cycles": sum(1 for c in cycles if c.late_s > 0),
        "memory_flat": flat,
        "flat_tolerance": FLAT_TOLERANCE,
        "memory": memory,
        "state_bytes": {
            s: {"first": cycles[0].state_bytes.get(s), "last": cycles[-1].state_bytes.get(s)}
            for s in states
        },
        "backlog_max_after_first": max((c.backlog for c in cycles[1:]), default=0),
        "backlog_last": cycles[-1].backlog,
        "seconds_max": {job: max(c.seconds.get(job, 0.0) for c in cycles) for job in JOBS},
    }


def chart(cycles: list[Cycle], path: Path, title: str) -> None:
    """RSS per process, state size, backlog and job durations over the cycles, as a PNG."""
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(10, 11), sharex=True)
    x = [c.number for c in cycles]
    for role in sorted({r for c in cycles for r in c.rss_mb}):
        axes[0].plot(x, [c.rss_mb.get(role) for c in cycles], marker=".", label=role)
    axes[0].set_ylabel("peak RSS (MiB)")
    axes[0].legend(fontsize=7, loc="upper left", ncol=2)
    for state_id in sorted({s for c in cycles for s in c.state_bytes}):
        axes[1].plot(x, [c.state_bytes.get(state_id) for c in cycles], marker=".", label=state_id)
    axes[1].set_ylabel("Meltano state (bytes)")
    axes[1].legend(fontsize=7, loc="upper left")
    axes[2].bar(
        x, [c.backlog for c in cycles], color="tab:red", alpha=0.5, label="backlog (changes)"
    )
    axes[2].set_ylabel("backlog after the cycle")
    axes[2].set_ylim(0, max(2, *(c.backlog + 1 for c in cycles)))
    seconds = axes[2].twinx()
    for job in JOBS:
        seconds.plot(x, [c.seconds.get(job) for c in cycles], marker=".", label=f"{job} (s)")
    seconds.set_ylabel("job duration (s)")
    seconds.legend(fontsize=7, loc="upper right")
    axes[2].legend(fontsize=7, loc="upper left")
    axes[2].set_xlabel("cycle")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `make soak`."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=30.0, help="how long (default 30)")
    parser.add_argument(
        "--cycles", type=int, default=0, help="this many cycles instead (minutes ignored)"
    )
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between cycle starts")
    parser.add_argument("--customers", type=int, default=60, help="sandbox size (Oro customers)")
    parser.add_argument(
        "--out", default=str(ROOT / "bench" / "results"), help="soak.json, soak.png"
    )
    parser.add_argument("--workdir", default=str(ROOT / "output" / "soak"))
    args = parser.parse_args(argv)
    out, workdir = Path(args.out), Path(args.workdir)
    out.mkdir(parents=True, exist_ok=True)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "meltano.db").unlink(missing_ok=True)
    meltano_install(install_env(workdir))
    epoch = (datetime.now(UTC) - timedelta(days=10)).isoformat()
    cycles: list[Cycle] = []
    with running_sandbox(customers=args.customers, epoch=epoch, **DEV_SANDBOX_OPTIONS) as sandbox:
        env = sandbox_env(sandbox.info, workdir)
        env["MELTANO_SYS_DIR_ROOT"] = str(private_sys_dir(workdir))
        # Create the system database before the jobs start together: two `meltano run` migrating
        # a new SQLite database at once collide ("table alembic_version already exists").
        meltano("state", "list", env=env, lock=False)
        t0 = time.monotonic()
        world: World | None = None
        number = 0
        # --cycles: that many; else cycles start until the minutes are over (a late cycle delays
        # the next tick: none is skipped, none runs twice at once)
        while (
            (number < args.cycles) if args.cycles else (time.monotonic() - t0 < args.minutes * 60)
        ):
            number += 1
            tick = t0 + (number - 1) * args.interval
            if time.monotonic() < tick:
                time.sleep(max(0.0, tick - time.monotonic()))
            late = max(0.0, time.monotonic() - tick) if args.interval > 0 else 0.0
            cycle, world = run_cycle(number, late, time.monotonic() - t0, world, env, sandbox)
            cycles.append(cycle)
            print(json.dumps(cycle.__dict__), flush=True)
    summary = summarize(cycles)
    report = {
        "command": " ".join(["scripts/soak.py", *(argv if argv is not None else sys.argv[1:])]),
        "customers": args.customers,
        "interval_s": args.interval,
        "summary": summary,
        "cycles": [c.__dict__ for c in cycles],
    }
    (out / "soak.json").write_text(json.dumps(report, indent=2) + "\n")
    title = (
        f"make soak: {len(cycles)} cycles every {args.interval:.0f} s, {args.customers} customers"
        f" - memory {'flat' if summary['memory_flat'] else 'NOT flat'}"
    )
    chart(cycles, out / "soak.png", title)
    print(json.dumps(summary, indent=2))
    return 1 if summary["failed_runs"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
