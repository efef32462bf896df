"""A pipeline SIGKILLed anywhere and resumed with `meltano run` ends where an uninterrupted run ends.

For each job, one small sandbox (latency 0) is prepared and saved; an uninterrupted run from it gives
the expected end state of both systems and the calls and writes it takes. Then, from the same saved
state each time (`/_sandbox/load`) and a fresh Meltano state database (empty and migrated, as
`meltano install` leaves it), 22 kill points
(tests/e2e/kill_resume.py): the n-th call to the source or destination API, the n-th write to the
destination held before or after it is applied (a sandbox breakpoint freezes the run there), or a time;
the tap, the target or the whole `meltano run` is SIGKILLed; `meltano run --force` resumes. Each must
end in the expected state, and the writes repeated because of the kill are reported (printed and in
output/kill_resume/<job>.json). `KILL_RESUME_POINTS=n` runs only n of the points, spread evenly over
the plan, first and last included (`make test` runs all 22); every breakpoint must interrupt the run,
and the whole plan at least 20 times. `KILL_RESUME_PARALLEL` (default 3) points run at once, each in a
slot of its own: a sandbox started from the saved state and a Meltano project directory (the runs
mostly wait: Meltano's start-up, the APIs, the kills).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from queue import Queue
from typing import Any

import pytest
from e2e_harness import LOOPBACK, QUICK_BATCHES, ROOT, Project, project_copy
from kill_resume import Baseline, KillPoint, LifetimeWatch, measure, plan, report_row, run_point
from oromc_sandbox.testing import RunningSandbox, running_sandbox
from pipelines import DEV_SANDBOX_OPTIONS, meltano

CUSTOMERS, SEED = 30, 11
REPORTS = ROOT / "output" / "kill_resume"
#: kill points run at once, each in a slot of its own (a sandbox started from the saved state, a
#: Meltano project directory): the runs mostly wait (Meltano's start-up, the APIs, the kills)
PARALLEL = max(1, int(os.environ.get("KILL_RESUME_PARALLEL") or 3))
VOLATILE = (
    "_links",
    "createdAt",
    "updatedAt",
    "lastLogin",
    "last_changed",
    "stats",
    "member_rating",
)
#: sandbox-generated ids of records a connector creates: compared by a stable key instead
GENERATED = {"campaigns": "code", "tags": "name"}


def _stable(value: Any) -> Any:
    """``value`` without the fields that differ between two equivalent runs (times, links, counters)."""
    if isinstance(value, dict):
        return {
            k: _stable(v)
            for k, v in sorted(value.items())
            if k not in VOLATILE
            and not k.endswith(("_at", "_at_foreign", "_time"))
            and not k.startswith("timestamp")
        }
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return _unported(value)


def _unported(value: Any) -> Any:
    """``value`` with the sandbox's loopback URLs without their port (each slot's sandbox has its own
    ports; the expected state comes from another one)."""
    if isinstance(value, str):
        return LOOPBACK.sub("http://sandbox", value)
    if isinstance(value, dict):
        return {k: _unported(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unported(v) for v in value]
    return value


def mailchimp_state(project: Project) -> dict[str, Any]:
    """The audience (status, merge fields, tags of every member), merge fields and the e-commerce store."""
    mc = project.mailchimp
    state: dict[str, Any] = {"members": mc.snapshot()}
    fields = mc.get(f"lists/{mc.list_id}/merge-fields", count=1000)["merge_fields"]
    state["merge_fields"] = sorted((f["tag"], f["type"]) for f in fields)
    for store in mc.get("ecommerce/stores", count=1000)["stores"]:
        for kind in ("customers", "products", "orders", "carts"):
            rows = mc.get(f"ecommerce/stores/{store['id']}/{kind}", count=1000)[kind]
            state[f"{store['id']}/{kind}"] = sorted(
                json.dumps(_stable(r), sort_keys=True) for r in rows
            )
    return state


def oro_state(project: Project) -> dict[str, Any]:
    """Customer users, addresses, orders, campaigns, marketing activities (a multiset) and lists."""
    oro = project.oro
    keys: dict[tuple[str, str], str] = {}
    for type_, attr in GENERATED.items():
        for row in oro.all(type_):
            keys[(type_, row["id"])] = str(row["attributes"].get(attr))

    def rel_ids(row: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, rel in sorted((row.get("relationships") or {}).items()):
            data = rel.get("data")
            items = data if isinstance(data, list) else [data] if data else []
            out[name] = sorted(
                keys.get((d["type"], d["id"]), f"{d['type']}:{d['id']}") for d in items
            )
        return out

    def rows(type_: str, stable_id: Callable[[dict[str, Any]], str]) -> list[str]:
        return sorted(
            json.dumps(
                {"id": stable_id(r), "attributes": _stable(r["attributes"]), "rel": rel_ids(r)},
                sort_keys=True,
            )
            for r in oro.all(type_)
        )

    state: dict[str, Any] = {
        type_: rows(type_, lambda r: r["id"])
        for type_ in ("customerusers", "customeruseraddresses", "orders")
    }
    state["campaigns"] = rows("campaigns", lambda r: str(r["attributes"]["code"]))
    state["marketingactivities"] = Counter(rows("marketingactivities", lambda r: ""))
    state["marketinglists"] = _unported(
        oro.session.get(
            project.sandbox.oro_base_url + "/_sandbox/oro/marketinglists", timeout=60
        ).json()
    )
    return state


def both(project: Project) -> dict[str, Any]:
    return {"oro": oro_state(project), "mailchimp": mailchimp_state(project)}


def _diff(expected: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """Readable differences of two end states (first few per part)."""
    out = []
    for system in expected:
        for part, want in expected[system].items():
            have = got[system].get(part)
            if have == want:
                continue
            if isinstance(want, Counter | list | dict) and isinstance(have, Counter | list | dict):
                w, h = (
                    Counter(map(str, want.elements() if isinstance(want, Counter) else want)),
                    Counter(map(str, have.elements() if isinstance(have, Counter) else have)),
                )
                out += [f"{system}/{part} missing: {x[:400]}" for x in list((w - h).elements())[:3]]
                out += [f"{system}/{part} extra: {x[:400]}" for x in list((h - w).elements())[:3]]
            else:
                out.append(f"{system}/{part}: {str(want)[:200]} != {str(have)[:200]}")
    return out


def _bytecode_cached(env: dict[str, str]) -> None:
    """Let Meltano and the plugins keep their compiled bytecode, in a cache outside the source tree.

    With ``PYTHONDONTWRITEBYTECODE`` set (and no bytecode installed: uv does not compile it), every
    `meltano run` compiled Meltano's and both plugins' sources again: about 3 of its 7 CPU seconds.
    """
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("PYTHONPYCACHEPREFIX", str(ROOT / ".venv" / "pycache"))


class Pipeline:
    """One job's saved starting point, its baseline, and a fresh Meltano state per kill point."""

    def __init__(self, sandbox: RunningSandbox, workdir: Path, job: str) -> None:
        self.sandbox, self.workdir, self.job = sandbox, workdir, job
        # polls every 0.1 s: the sandbox's /batches jobs take a tenth of Mailchimp's time
        self.root = project_copy(workdir / "project", QUICK_BATCHES)
        self.base = Project(sandbox, workdir / "base", root=self.root)
        self.runs = 0
        self.empty_db = self._migrated_empty_db()

    def _migrated_empty_db(self) -> Path:
        """An empty system database with Meltano's migrations applied, as `meltano install` leaves
        it in a real project before its first run. Each run starts from a copy: a run that had to
        create it would spend its first seconds migrating, and a kill landing there leaves a
        half-made database (Meltano's migrations on SQLite are not transactional: ``table job
        already exists`` on every later run), Meltano's own failure and not the job's."""
        path = self.workdir / "empty-meltano.db"
        env = {**self.base.env, "MELTANO_DATABASE_URI": f"sqlite:///{path}"}
        meltano("state", "list", env=env, cwd=self.root, lock=False).check()
        return path

    def project(self) -> Project:
        """The project with a new, empty (migrated) state database and rejects files (plugins' catalogs kept)."""
        self.runs += 1
        project = Project(self.sandbox, self.workdir / "base", root=self.root)
        run_dir = self.workdir / f"run-{self.runs}"
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        shutil.copyfile(self.empty_db, run_dir / "meltano.db")
        project.env["MELTANO_DATABASE_URI"] = f"sqlite:///{run_dir / 'meltano.db'}"
        _bytecode_cached(project.env)
        for name in ("TARGET_MAILCHIMP_REJECTS_PATH", "TARGET_OROCOMMERCE_REJECTS_PATH"):
            project.env[name] = str(run_dir / Path(project.env[name]).name)
        return project

    def baseline(self) -> tuple[Baseline, dict[str, Any]]:
        """The uninterrupted run (its end state is the expected one), then a re-run's writes."""
        self.sandbox.load()
        project = self.project()
        with LifetimeWatch(project.workdir, JOBS[self.job][2]) as watch:
            result = project.run(self.job)
        calls, writes = measure(self.sandbox)
        expected = both(self.base)
        self.sandbox.reset_stats()
        project.run(self.job)
        _, again = measure(self.sandbox)
        baseline = Baseline(calls, writes, result.seconds, sum(again.values()), watch.lifetimes())
        return baseline, expected


JOBS = {
    # job: (source API, destination API, plugin executables)
    "audience-sync": ("oro", "mailchimp", {"tap": "tap-orocommerce", "target": "target-mailchimp"}),
    "engagement-sync": (
        "mailchimp",
        "oro",
        {"tap": "tap-mailchimp-engagement", "target": "target-orocommerce"},
    ),
}


@contextmanager
def _sandbox(data: Path) -> Iterator[RunningSandbox]:
    """A small sandbox of the test's own (the two jobs run on two workers), whose clock starts 31
    days ago (engagement of the seeded campaigns still to come), saving to ``data`` (a sandbox
    started on a folder holding a saved state starts from that state)."""
    epoch = (datetime.now(UTC) - timedelta(days=31)).isoformat()
    with running_sandbox(
        customers=CUSTOMERS, seed=SEED, epoch=epoch, data_dir=str(data), **DEV_SANDBOX_OPTIONS
    ) as sb:
        yield sb


def _prepare(sandbox: RunningSandbox, job: str, workdir: Path) -> None:
    """The starting point of ``job``, saved: the seed for audience-sync; for engagement-sync the
    audience synced once (members carry their Oro ids) and 30 days of engagement arrived."""
    if job == "engagement-sync":
        prep = Project(sandbox, workdir / "prep", root=project_copy(workdir / "prep-project", QUICK_BATCHES))
        prep.run("audience-sync")
        sandbox.advance_clock(30 * 86400)
    sandbox.save()


@pytest.mark.usefixtures("meltano_ready")
@pytest.mark.parametrize("job", list(JOBS))
def test_killed_anywhere_the_job_converges(tmp_path: Path, job: str) -> None:
    data = tmp_path / "sandbox-data"
    started = time.monotonic()
    with ExitStack() as stack:
        sandbox = stack.enter_context(_sandbox(data))
        _prepare(sandbox, job, tmp_path)
        # the other slots' sandboxes start from the saved state while the baseline runs
        with ThreadPoolExecutor(max(1, PARALLEL - 1)) as starter:
            others = [
                starter.submit(stack.enter_context, _sandbox(data)) for _ in range(PARALLEL - 1)
            ]
            pipeline = Pipeline(sandbox, tmp_path / "slot-0", job)
            baseline, expected = pipeline.baseline()
            slots = [pipeline] + [
                Pipeline(f.result(), tmp_path / f"slot-{i + 1}", job) for i, f in enumerate(others)
            ]
        _kill_everywhere(slots, baseline, expected, job, started)


def _check_point(
    slots: Queue[Pipeline], point: KillPoint, baseline: Baseline, expected: dict[str, Any], job: str
) -> tuple[dict[str, Any], str | None]:
    """One kill point in a free slot (its own sandbox and Meltano project): its report row and
    what went wrong, if anything."""
    _, _, executables = JOBS[job]
    pipeline = slots.get()
    try:
        pipeline.sandbox.load()
        project = pipeline.project()
        outcome = run_point(project, job, point, baseline, executables)
        differences = _diff(expected, both(project))
    finally:
        slots.put(pipeline)
    row = report_row(outcome, converged=not differences)
    print(json.dumps(row))
    if outcome.resumed.returncode != 0:
        tail = "\n".join(outcome.resumed.log_tail[-30:])
        return row, f"{point.name}: the resumed run failed:\n{tail}"
    if differences:
        return row, f"{point.name}: " + "\n  ".join(differences)
    return row, None


def _kill_everywhere(
    slots: list[Pipeline], baseline: Baseline, expected: dict[str, Any], job: str, started: float
) -> None:
    source, destination, _ = JOBS[job]
    assert sum(baseline.writes.values()) > 20, "the run writes too little to kill it mid-way"
    planned: list[KillPoint] = plan(baseline, source, destination)
    limit = min(len(planned), max(1, int(os.environ.get("KILL_RESUME_POINTS") or len(planned))))
    # spread evenly over the plan, first and last included: every kind of point and victim
    points = [planned[round(i * (len(planned) - 1) / max(1, limit - 1))] for i in range(limit)]
    free: Queue[Pipeline] = Queue()
    for slot in slots:
        free.put(slot)
    with ThreadPoolExecutor(len(slots)) as pool:
        done = list(pool.map(lambda p: _check_point(free, p, baseline, expected, job), points))
    rows = [row for row, _ in done]
    failures = [failure for _, failure in done if failure]
    REPORTS.mkdir(parents=True, exist_ok=True)
    killed = [r for r in rows if r["killed_mid_run"]]
    summary = {
        "job": job,
        "customers": CUSTOMERS,
        "parallel": len(slots),
        "suite_seconds": round(time.monotonic() - started),
        "baseline": {
            "calls": baseline.calls,
            "writes": baseline.writes,
            "seconds": round(baseline.seconds, 1),
            "lifetimes": {k: round(v, 1) for k, v in baseline.lifetimes.items()},
            "rerun_writes": baseline.rerun_writes,
        },
        "kill_points": len(rows),
        "killed_mid_run": len(killed),
        "converged": sum(1 for r in rows if r["converged"]),
        "repeated_writes_total": sum(r["repeated_writes"] for r in rows),
        "repeated_writes_max": max(r["repeated_writes"] for r in rows),
        "points": rows,
    }
    (REPORTS / f"{job}.json").write_text(json.dumps(summary, indent=2) + "\n")
    assert not failures, "\n".join(failures)
    # A breakpoint freezes the run at its call, so it always interrupts it; a time point may come
    # after a fast run has ended (it then checks only that a finished run is left alone).
    missed = [
        p.name
        for p, r in zip(points, rows, strict=True)
        if p.by != "time" and not r["killed_mid_run"]
    ]
    assert not missed, f"breakpoints that did not interrupt the run: {missed}"
    if len(points) == len(planned):
        assert len(killed) >= 20, (
            f"only {len(killed)} of {len(rows)} kill points interrupted the run"
        )
