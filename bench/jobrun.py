"""Run one `meltano run <job>` against a running sandbox and measure it from outside.

While the job runs, a sampler thread (every ``interval`` seconds) reads:
  * the tap's and the target's processes (children of `meltano`, told apart by their command line):
    resident memory and CPU seconds (psutil);
  * the sandbox's own process (its CPU share of the run);
  * the sandbox's request counters of both APIs.
The run is split in two phases at the first Mailchimp e-commerce request (the tap emits the
`contacts` stream first, then the e-commerce streams): calls, CPU, peak memory and wall time are
reported for each phase, so contacts and e-commerce are measured apart in one run.

Sampling misses what happens in the last interval of a process: CPU seconds are a slight
under-estimate (at most ``interval`` per process).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import peakrss
import profiling
from oromc_sandbox.testing import RunningSandbox
from pipelines import RunResult, meltano

ECOMMERCE_ROUTE = "/3.0/ecommerce/"
BATCHES_ROUTE = "/3.0/batches"
ROLES = ("tap", "target")


def role_of(cmdline: list[str]) -> str | None:
    """``tap`` or ``target`` for a plugin process of a Meltano run, from its command line."""
    for part in cmdline[:3]:
        name = Path(part).name
        if name.startswith("tap-"):
            return "tap"
        if name.startswith("target-"):
            return "target"
    return None


def ecommerce_calls(stats: dict[str, Any]) -> int:
    """Mailchimp requests of a stats document that belong to the e-commerce store (batches included)."""
    return sum(
        sum(statuses.values())
        for route, statuses in stats["requests"].items()
        if ECOMMERCE_ROUTE in route or BATCHES_ROUTE in route
    )


def count_status(stats: dict[str, Any], status: str) -> int:
    """Responses with one HTTP status over every route of a stats document."""
    return sum(int(statuses.get(status, 0)) for statuses in stats["requests"].values())


@dataclass
class Snapshot:
    """Counters at one instant of the run."""

    at: float
    cpu: dict[str, float]
    peak_rss_mb: dict[str, float]
    sandbox_cpu: float
    mailchimp: dict[str, Any]
    oro: dict[str, Any]


@dataclass
class Sampler:
    """Samples the plugin processes and the sandbox while a job runs (see the module docstring)."""

    sandbox: RunningSandbox
    interval: float = 0.25
    started: float = field(default_factory=time.monotonic)
    split: Snapshot | None = None
    _cpu_by_pid: dict[int, tuple[str, float]] = field(default_factory=dict)
    _peak: dict[str, float] = field(default_factory=lambda: dict.fromkeys(ROLES, 0.0))
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    plugin_pids: dict[str, list[int]] = field(default_factory=lambda: {r: [] for r in ROLES})
    profile_dir: Path | None = None
    py_spy: str | None = None
    profiles: dict[str, Path] = field(default_factory=dict)
    timeline: dict[int, dict[str, Any]] = field(default_factory=dict)
    _spies: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._sandbox_proc = psutil.Process(self.sandbox.process.pid)
        self._sandbox_cpu0 = self._cpu_seconds(self._sandbox_proc)

    @staticmethod
    def _cpu_seconds(proc: psutil.Process) -> float:
        times = proc.cpu_times()
        return float(times.user + times.system)

    def start(self) -> None:
        """Start sampling in a thread (the Meltano process is found by its children's names)."""
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> Snapshot:
        """Stop sampling; the final snapshot."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample_processes()
        return self.snapshot()

    def _sample_processes(self) -> None:
        for proc in psutil.Process().children(recursive=True):
            try:
                cmdline = proc.cmdline()
                role = role_of(cmdline)
                if role is None:
                    continue
                with proc.oneshot():
                    # the high-water mark since its exec: a peak between two samples counts
                    hwm = peakrss.vm_hwm_kb(proc.pid)
                    rss = hwm / 1024 if hwm is not None else proc.memory_info().rss / 2**20
                    cpu = self._cpu_seconds(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            now = round(time.monotonic() - self.started, 2)
            if proc.pid not in self._cpu_by_pid:
                self.plugin_pids[role].append(proc.pid)
                discover = "--discover" in cmdline
                self.timeline[proc.pid] = {"role": role, "discover": discover, "from_s": now}
                if not discover:
                    self._profile(role, proc.pid)
            self.timeline[proc.pid]["to_s"] = now
            self._cpu_by_pid[proc.pid] = (role, cpu)
            self._peak[role] = max(self._peak[role], rss)

    def _profile(self, role: str, pid: int) -> None:
        if self.profile_dir is None or self.py_spy is None:
            return
        path = self.profile_dir / f"{role}-{pid}.txt"
        self._spies.append(profiling.start(self.py_spy, pid, path))
        self.profiles[role] = path

    def profile_summaries(self) -> dict[str, Any]:
        """What dominates each plugin's samples (once its py-spy has written them)."""
        for spy in self._spies:
            try:
                spy.wait(timeout=60)
            except subprocess.TimeoutExpired:
                spy.kill()
        return {
            role: profiling.summarize(path.read_text())
            for role, path in self.profiles.items()
            if path.exists()
        }

    def snapshot(self) -> Snapshot:
        """The counters now."""
        cpu = dict.fromkeys(ROLES, 0.0)
        for role, seconds in self._cpu_by_pid.values():
            cpu[role] += seconds
        return Snapshot(
            at=time.monotonic() - self.started,
            cpu=cpu,
            peak_rss_mb=dict(self._peak),
            sandbox_cpu=self._cpu_seconds(self._sandbox_proc) - self._sandbox_cpu0,
            mailchimp=self.sandbox.stats("mailchimp"),
            oro=self.sandbox.stats("oro"),
        )

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample_processes()
            if self.split is None:
                try:
                    stats = self.sandbox.stats("mailchimp")
                except OSError:
                    continue
                if ecommerce_calls(stats):
                    self.split = self.snapshot()
                    self._peak = dict.fromkeys(ROLES, 0.0)  # the e-commerce phase's own peaks


def _phase(first: Snapshot | None, last: Snapshot, peak: dict[str, float]) -> dict[str, Any]:
    """What happened between two snapshots (``first`` None: since the start)."""
    mc_calls = last.mailchimp["total_requests"] - (
        first.mailchimp["total_requests"] if first else 0
    )
    oro_calls = last.oro["total_requests"] - (first.oro["total_requests"] if first else 0)
    return {
        "wall_s": round(last.at - (first.at if first else 0.0), 2),
        "mailchimp_calls": mc_calls,
        "oro_calls": oro_calls,
        "cpu_s": {r: round(last.cpu[r] - (first.cpu[r] if first else 0.0), 2) for r in ROLES},
        "peak_rss_mb": {r: round(peak[r], 1) for r in ROLES},
    }


def calls_by_route(stats: dict[str, Any]) -> dict[str, int]:
    """Requests per route of a stats document."""
    return {route: sum(statuses.values()) for route, statuses in stats["requests"].items()}


def timed_log(path: Path) -> Callable[[str], None]:
    """A writer of output lines to ``path``, each after the seconds since this call (the run's
    start, as the ``/batches`` timeline), so a run's log can be laid against its jobs."""
    started = time.monotonic()
    handle = path.open("w", encoding="utf-8")  # closed when the writer is collected; flushed per line

    def write(line: str) -> None:
        handle.write(f"{time.monotonic() - started:9.2f} {line}\n")
        handle.flush()

    return write


def run_job(
    sandbox: RunningSandbox,
    job: str,
    env: dict[str, str],
    *extra: str,
    timeout: float = 3600,
    profile_dir: Path | None = None,
    py_spy: str | None = None,
    log: Path | None = None,
) -> dict[str, Any]:
    """`meltano run <job> <extra>`: wall time, calls, connections, 429s, memory and CPU, by phase.

    With ``profile_dir`` and ``py_spy``: a py-spy profile of the tap and the target (``profiling``).
    With ``log``: Meltano's output (every plugin's log) written there, timed (``timed_log``).
    """
    sandbox.reset_stats()
    sampler = Sampler(sandbox, profile_dir=profile_dir, py_spy=py_spy)
    sampler.start()
    on_raw = timed_log(log) if log is not None else None
    result: RunResult = meltano("run", *extra, job, env=env, timeout=timeout, on_raw=on_raw)
    end = sampler.stop()
    result.check()
    split = sampler.split
    mc = end.mailchimp
    whole_peak = {r: max(end.peak_rss_mb[r], split.peak_rss_mb[r] if split else 0.0) for r in ROLES}
    phases = {
        "contacts": _phase(None, split or end, split.peak_rss_mb if split else end.peak_rss_mb)
    }
    if split is not None:
        phases["ecommerce"] = _phase(split, end, end.peak_rss_mb)
    total = _phase(None, end, whole_peak)
    latency = {
        route: round(ms / 1000, 1)
        for route, ms in sorted(mc.get("latency_ms_by_route", {}).items(), key=lambda kv: -kv[1])
    }
    return {
        "job": job,
        "args": list(extra),
        "wall_s": round(result.seconds, 2),
        "mailchimp_calls": mc["total_requests"],
        "oro_calls": end.oro["total_requests"],
        "mailchimp_calls_by_route": calls_by_route(mc),
        "oro_calls_by_route": calls_by_route(end.oro),
        "peak_connections": max(mc["connections"]["peak"].values() or [0]),
        "over_limit_429": sum(mc["connections"]["over_limit"].values()),
        "responses_429": count_status(mc, "429"),
        "cpu_s": total["cpu_s"],
        "peak_rss_mb": total["peak_rss_mb"],
        "sandbox_cpu_s": round(end.sandbox_cpu, 2),
        "sandbox_cpu_share": round(end.sandbox_cpu / max(result.seconds, 0.01), 3),
        "phases": phases,
        "mailchimp_latency_s_by_route": latency,
        "process_timeline": sorted(sampler.timeline.values(), key=lambda t: t["from_s"]),
        "profiles": sampler.profile_summaries(),
        "summaries": result.summaries,
    }
