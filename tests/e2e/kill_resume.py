"""Kill points for the crash/resume suite: where to SIGKILL a `meltano run`, how, and what it cost.

A kill point freezes the run at an exact call with a sandbox breakpoint (the n-th call to an API, or
its n-th write, held before or after it is applied), or waits a time, then SIGKILLs the tap, the
target or the whole `meltano run` (its process group). The job is then resumed with
`meltano run --force` and the end state of both systems is compared with an uninterrupted run's.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from e2e_harness import Project
from oromc_sandbox.testing import RunningSandbox
from pipelines import RunResult, meltano, start_meltano, write_counts

VICTIMS = ("tap", "target", "run")


@dataclass(frozen=True)
class KillPoint:
    """Where and whom to kill: ``by`` calls / writes (a breakpoint on ``api``) or time."""

    by: str  # "calls", "writes" or "time"
    victim: str  # "tap", "target" or "run"
    at: float  # the n-th call or write (a breakpoint), or seconds after the start
    api: str = ""
    phase: str = "before"  # a write held before or after it is applied

    @property
    def name(self) -> str:
        if self.by == "time":
            return f"kill {self.victim} {self.at:.1f} s after it started"
        what = "call" if self.by == "calls" else f"write ({self.phase} applied)"
        return f"kill {self.victim} at {self.api} {what} #{int(self.at)}"


@dataclass
class Baseline:
    """An uninterrupted run: its calls and writes per API and its duration, and the writes of the run
    right after it (what any second run writes, killed before or not: orders re-sent inside the
    tap's overlap window, ...)."""

    calls: dict[str, int]
    writes: dict[str, int]
    seconds: float
    rerun_writes: int = 0
    #: how long the tap and the target ran (their syncs, not discovery), seconds
    lifetimes: dict[str, float] = field(default_factory=dict)


class LifetimeWatch:
    """How long each plugin of one project's runs lives (a thread polling the processes).

    A plugin is recognised by its executable and an argument under ``workdir`` (its config file in
    the project's own Meltano system directory); discovery (``--discover``) does not count.
    """

    def __init__(self, workdir: Path, executables: dict[str, str]) -> None:
        self.workdir, self.executables = str(workdir), executables
        self.seen: dict[str, tuple[float, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> LifetimeWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            for proc in psutil.process_iter(["cmdline"]):
                args = proc.info["cmdline"] or []
                if "--discover" in args or not any(self.workdir in a for a in args):
                    continue
                for victim, executable in self.executables.items():
                    if any(Path(a).name == executable for a in args[:2]):
                        first, _ = self.seen.get(victim, (now, now))
                        self.seen[victim] = (first, now)
            self._stop.wait(0.02)

    def lifetimes(self) -> dict[str, float]:
        return {victim: last - first for victim, (first, last) in self.seen.items()}


def measure(sandbox: RunningSandbox) -> tuple[dict[str, int], dict[str, int]]:
    """Calls (not counting the OAuth token endpoint) and writes per API since the counters were zeroed."""
    calls, writes = {}, {}
    for api in ("oro", "mailchimp"):
        stats = sandbox.stats(api)
        calls[api] = sum(
            sum(statuses.values())
            for route, statuses in stats["requests"].items()
            if not route.endswith("/oauth2-token")
        )
        writes[api] = write_counts(stats)
    return calls, writes


def plan(baseline: Baseline, source: str, destination: str) -> list[KillPoint]:
    """22 kill points spread over the run: calls to the source and destination APIs, writes to the
    destination (held before and after being applied), and times.

    The victims take turns among those alive at that point: at a call to the source API the tap,
    the target or the whole run; at the destination's calls and writes the target or the run (the
    tap may have finished reading); by time the tap 1 s after it started, the target after 2 s, the
    whole run after 30 % and the target after 20 % of the uninterrupted run's duration.
    """

    def spread(total: float, count: int) -> list[int]:
        return [max(1, round(total * (k + 1) / (count + 1))) for k in range(count)]

    points = [
        KillPoint("calls", VICTIMS[i % 3], n, source)
        for i, n in enumerate(spread(baseline.calls[source], 4))
    ]
    points += [
        KillPoint("calls", ("target", "run")[i % 2], n, destination)
        for i, n in enumerate(spread(baseline.calls[destination], 4))
    ]
    for phase in ("before", "after"):
        points += [
            KillPoint("writes", ("target", "run")[i % 2], n, destination, phase)
            for i, n in enumerate(spread(baseline.writes[destination], 5))
        ]
    # seconds after the victim started, as a share of how long it lived in the uninterrupted run
    # (fixed times missed a fast tap; the same shares hold when the machine is faster or slower)
    life = {"run": baseline.seconds, **baseline.lifetimes}
    times = (("tap", 0.2), ("target", 0.2), ("run", 0.3), ("target", 0.4))
    points += [
        KillPoint("time", victim, max(0.1, round(share * life.get(victim, 0.0), 1)))
        for victim, share in times
    ]
    return points


@dataclass
class Outcome:
    """What one kill point did."""

    point: KillPoint
    killed_mid_run: bool
    killed_run_exit: int
    resumed: RunResult
    writes: int  # killed run + resumed run, both APIs
    repeated_writes: int  # writes beyond the uninterrupted run's and its re-run's


def _plugin(proc: psutil.Process, executable: str) -> bool:
    try:
        return any(Path(arg).name == executable for arg in proc.cmdline()[:2])
    except psutil.Error:
        return False


def _kill(
    proc: subprocess.Popen[str], victim: str, executables: dict[str, str], wait: float = 60.0
) -> bool:
    """SIGKILL the victim; False when it was no longer running.

    A plugin not started yet is waited for (up to ``wait`` seconds): Meltano starts the tap before
    the target, and on a loaded machine a fast tap can reach a breakpoint, which then holds it,
    before the target's process exists."""
    if proc.poll() is not None:
        return False
    if victim == "run":
        os.killpg(proc.pid, signal.SIGKILL)
        return True
    deadline = time.monotonic() + wait
    while True:
        try:
            children = psutil.Process(proc.pid).children(recursive=True)
        except psutil.Error:
            return False
        targets = [c for c in children if _plugin(c, executables[victim])]
        for child in targets:
            child.kill()
        if targets or proc.poll() is not None or time.monotonic() > deadline:
            return bool(targets)
        time.sleep(0.02)


def _victim_alive(proc: subprocess.Popen[str], victim: str, executables: dict[str, str]) -> bool:
    if victim == "run":
        return proc.poll() is None
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        return False
    return any(_plugin(c, executables[victim]) for c in children)


def _wait_for(
    point: KillPoint,
    sandbox: RunningSandbox,
    proc: subprocess.Popen[str],
    executables: dict[str, str],
) -> bool:
    """Until the kill point is reached (True) or the run ended first (False).

    A time point counts from the moment its victim runs (a plugin starts after Meltano's own
    start-up, whose length varies with the machine's load)."""
    deadline = time.monotonic() + 600
    while point.by == "time" and not _victim_alive(proc, point.victim, executables):
        if proc.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    if point.by == "time":
        deadline = time.monotonic() + point.at
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if point.by != "time" and sandbox.breakpoint(point.api)["hit"]:
            return True
        time.sleep(0.05)
    assert point.by == "time", f"{point.name}: not reached within 600 s"
    return proc.poll() is None


def killed_run(
    project: Project, job: str, point: KillPoint, executables: dict[str, str]
) -> tuple[bool, int]:
    """Run ``job`` and kill it at ``point``; returns (killed mid-run, the run's exit code)."""
    sandbox = project.sandbox
    if point.by != "time":
        sandbox.set_breakpoint(
            point.api, int(point.at), writes=point.by == "writes", phase=point.phase
        )
    # no project lock: the project has its own Meltano system directory (run files)
    proc = start_meltano(
        "run",
        job,
        env=project.env,
        cwd=project.root,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        reached = _wait_for(point, sandbox, proc, executables)
        killed = reached and _kill(proc, point.victim, executables)
    finally:
        if point.by != "time":
            sandbox.release_breakpoint(point.api)
        try:
            code = proc.wait(timeout=300)
        finally:
            _kill_group(proc)
    return killed, code


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """Whatever of the run is still alive (a stuck plugin) goes too."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def run_point(
    project: Project, job: str, point: KillPoint, baseline: Baseline, executables: dict[str, str]
) -> Outcome:
    """Kill at ``point``, resume with `meltano run --force`, count the writes of both runs."""
    killed, code = killed_run(project, job, point, executables)
    resumed = meltano("run", "--force", job, env=project.env, cwd=project.root, lock=False)
    _, writes = measure(project.sandbox)
    total = sum(writes.values())
    return Outcome(
        point=point,
        killed_mid_run=killed,
        killed_run_exit=code,
        resumed=resumed,
        writes=total,
        repeated_writes=total - sum(baseline.writes.values()) - baseline.rerun_writes,
    )


def report_row(outcome: Outcome, converged: bool) -> dict[str, Any]:
    """One kill point's line in the suite's report."""
    return {
        "point": outcome.point.name,
        "killed_mid_run": outcome.killed_mid_run,
        "killed_run_exit": outcome.killed_run_exit,
        "resumed_exit": outcome.resumed.returncode,
        "converged": converged,
        "writes": outcome.writes,
        "repeated_writes": outcome.repeated_writes,
    }
