"""`make demo`: both pipelines against the sandbox, then both again to show they are incremental.

1. installs the Meltano plugins (from this repository's folders, locked versions) unless nothing changed
   since the last install,
2. starts the sandbox on the `dev` environment's ports (OroCommerce :8801, Mailchimp :8802),
3. runs `meltano run audience-sync` (OroCommerce -> Mailchimp) and `meltano run engagement-sync`
   (Mailchimp -> OroCommerce), printing progress and a short summary of what moved and what was rejected,
4. runs both jobs a second time: they find (almost) nothing to do,
5. stops the sandbox.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from oromc_sandbox.testing import RunningSandbox, running_sandbox
from pipelines import (
    DEV_SANDBOX_OPTIONS,
    ROOT,
    InstallError,
    RunResult,
    install_env,
    meltano,
    meltano_install,
    remove_leftover_configs,
    sandbox_env,
    write_counts,
)

JOBS = (
    ("audience-sync", "OroCommerce -> Mailchimp"),
    ("engagement-sync", "Mailchimp -> OroCommerce"),
)


def _say(text: str = "") -> None:
    print(text, flush=True)


class Progress:
    """Prints a heartbeat with the sandbox's request counts while a job runs."""

    def __init__(self, sandbox: RunningSandbox, job: str) -> None:
        self.sandbox, self.job = sandbox, job
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.started = time.monotonic()

    def __enter__(self) -> Progress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(5.0):
            try:
                oro = self.sandbox.stats("oro")
                mc = self.sandbox.stats("mailchimp")
            except OSError:
                continue
            _say(
                f"    ... {self.job}: {time.monotonic() - self.started:5.0f} s, "
                f"OroCommerce API calls {oro['total_requests']}, Mailchimp API calls {mc['total_requests']}"
            )


def _records(summary: dict[str, Any], *names: str) -> int:
    return sum(int(s.get(n, 0)) for s in summary.get("streams", {}).values() for n in names)


def _rejects(summary: dict[str, Any]) -> Counter[str]:
    reasons: Counter[str] = Counter()
    for stream, counts in summary.get("streams", {}).items():
        for reason, n in counts.get("rejected_by_reason", {}).items():
            reasons[f"{stream}: {reason}"] += n
        for reason, n in counts.get("fields_rejected_by_reason", {}).items():
            reasons[f"{stream}: {reason} (field left out, record written)"] += n
    return reasons


def report(job: str, result: RunResult, oro: dict[str, Any], mc: dict[str, Any]) -> None:
    """Print what one job moved, from the connectors' RUN SUMMARY lines and the sandbox's counts."""
    _say(f"  {job} finished in {result.seconds:.0f} s (exit {result.returncode})")
    for plugin, summary in sorted(result.summaries.items()):
        streams = summary.get("streams", {})
        moved = {
            stream: {k: v for k, v in counts.items() if isinstance(v, int) and v}
            for stream, counts in streams.items()
        }
        moved = {s: c for s, c in moved.items() if c}
        _say(f"    {plugin}: {summary.get('api_calls', 0)} API calls")
        for stream, counts in sorted(moved.items()):
            _say(f"      {stream:<24} " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        rejects = _rejects(summary)
        if rejects:
            _say("      rejected (see " + str(summary.get("rejects_file")) + "):")
            for reason, n in rejects.most_common(8):
                _say(f"        {n:>5}  {reason}")
    _say(
        f"    sandbox: OroCommerce {oro['total_requests']} requests ({write_counts(oro)} writes), "
        f"Mailchimp {mc['total_requests']} requests ({write_counts(mc)} writes), "
        f"peak Mailchimp connections {max(mc['connections']['peak'].values(), default=0)}"
    )


def main() -> int:
    """Entry point of `make demo`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=300, help="sandbox size (Oro customers)")
    parser.add_argument("--workdir", default=str(ROOT / "output" / "demo"))
    parser.add_argument("--verbose", action="store_true", help="echo every log line of meltano")
    args = parser.parse_args()

    workdir = Path(args.workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    for leftover in remove_leftover_configs():  # an earlier run was killed: its secrets stay no more
        _say(f"   removed {leftover.relative_to(ROOT)} (left by a killed run)")

    _say("== Meltano plugins (from this repository, locked versions) ==")
    try:
        installed = meltano_install(install_env(workdir))
    except InstallError as err:
        _say(str(err))
        return 1
    _say("   installed" if installed else "   already installed, nothing changed: not reinstalled")

    _say(f"== Starting the sandbox ({args.customers} OroCommerce customers) on :8801 / :8802 ==")
    with running_sandbox(
        customers=args.customers,
        oro_port=8801,
        mailchimp_port=8802,
        **DEV_SANDBOX_OPTIONS,
    ) as sandbox:
        env = sandbox_env(sandbox.info, workdir)
        _say(f"   OroCommerce {sandbox.oro_api_url}   Mailchimp {sandbox.mailchimp_api_url}")
        totals: dict[int, dict[str, int]] = {}
        for round_no in (1, 2):
            _say()
            _say(
                f"== Round {round_no}: "
                + ("first sync ==" if round_no == 1 else "again, nothing changed ==")
            )
            totals[round_no] = {}
            for job, direction in JOBS:
                _say(f"  -> meltano run {job}   ({direction})")
                sandbox.reset_stats()
                with Progress(sandbox, job):
                    echo = (lambda line: _say("     | " + line)) if args.verbose else None
                    result = meltano("run", job, env=env, on_line=echo)
                oro, mc = sandbox.stats("oro"), sandbox.stats("mailchimp")
                report(job, result, oro, mc)
                if result.returncode != 0:
                    _say("\n".join(result.log_tail[-40:]))
                    return result.returncode
                totals[round_no][job] = write_counts(oro) + write_counts(mc)
        _say()
        _say("== Summary ==")
        for job, _ in JOBS:
            _say(
                f"  {job:<16} writes: first run {totals[1][job]:>6}, second run {totals[2][job]:>6}"
            )
        _say(f"  outputs, rejects and Meltano state: {workdir}")
        (workdir / "demo-summary.json").write_text(json.dumps(totals, indent=2))
    _say("== Sandbox stopped ==")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
