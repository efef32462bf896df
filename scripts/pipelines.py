"""Run the project's Meltano jobs against a sandbox and read what they did.

Used by `make demo` (scripts/demo.py) and by the end-to-end tests (tests/e2e/), so both exercise the
real `meltano run` commands of `meltano.yml` the same way a user would.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MELTANO = str(Path(sys.executable).with_name("meltano"))
SUMMARY_RE = re.compile(r"RUN SUMMARY (\{.*\})")
#: The Oro customizations the `dev` environment of meltano.yml expects of its sandbox (shopping lists
#: and the order campaign relation in the API; marketing consent in a custom field on customer users).
DEV_SANDBOX_OPTIONS: dict[str, Any] = {
    "shoppinglists": True,
    "order_campaign_relation": True,
    "consent_source": "customer_user_field",
}


def install_env(workdir: Path) -> dict[str, str]:
    """Environment for Meltano commands that need no sandbox (state under ``workdir``)."""
    return {
        **os.environ,
        "MELTANO_ENVIRONMENT": "dev",
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MELTANO_DATABASE_URI": f"sqlite:///{workdir / 'meltano.db'}",
        "PYTHONUNBUFFERED": "1",
    }


def sandbox_env(info: dict[str, Any], workdir: Path) -> dict[str, str]:
    """Environment that points every plugin of the `dev` environment at ``info``'s sandbox.

    Meltano reads `<PLUGIN>_<SETTING>` variables over `meltano.yml`, so the same project runs
    against a sandbox on any ports; state and outputs go under ``workdir``.
    """
    oro, mc = info["oro"], info["mailchimp"]
    env = install_env(workdir)
    for plugin in ("TAP_OROCOMMERCE", "TARGET_OROCOMMERCE"):
        env[f"{plugin}_BASE_URL"] = oro["base_url"]
        env[f"{plugin}_CLIENT_ID"] = oro["client_id"]
        env[f"{plugin}_CLIENT_SECRET"] = oro["client_secret"]
    for plugin in ("TARGET_MAILCHIMP", "TAP_MAILCHIMP_ENGAGEMENT"):
        env[f"{plugin}_API_URL"] = mc["api_url"]
        env[f"{plugin}_API_KEY"] = mc["api_key"]
    env["TARGET_MAILCHIMP_LIST_ID"] = mc["list_id"]
    env["TARGET_MAILCHIMP_REJECTS_PATH"] = str(workdir / "target-mailchimp-rejects.jsonl")
    env["TARGET_OROCOMMERCE_REJECTS_PATH"] = str(workdir / "target-orocommerce-rejects.jsonl")
    env["TARGET_JSONL_DESTINATION_PATH"] = str(workdir / "jsonl")
    (workdir / "jsonl").mkdir(parents=True, exist_ok=True)
    return env


@dataclass
class RunResult:
    """What one `meltano run` did."""

    command: list[str]
    returncode: int
    seconds: float
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)
    log_tail: list[str] = field(default_factory=list)

    def check(self) -> RunResult:
        """Raise with the log tail when the run failed."""
        if self.returncode != 0:
            tail = "\n".join(self.log_tail[-60:])
            msg = f"{' '.join(self.command)} failed ({self.returncode}):\n{tail}"
            raise RuntimeError(msg)
        return self


def meltano(
    *args: str,
    env: dict[str, str],
    on_line: Callable[[str], None] | None = None,
    timeout: float = 900,
) -> RunResult:
    """Run a meltano command in the project root; collect each plugin's RUN SUMMARY line.

    Commands are serialised across processes (a lock file under `.meltano/`): Meltano keeps a
    plugin's run files in `.meltano/run/<plugin>/`, so two runs of the same plugin in one project at
    the same time (e.g. tests in parallel workers) would read each other's files.
    """
    with project_lock():
        return _meltano(args, env, on_line, timeout)


@contextlib.contextmanager
def project_lock() -> Iterator[None]:
    """Hold the project's Meltano lock (see :func:`meltano`) for a block."""
    lock_path = ROOT / ".meltano" / "pipelines.lock"
    lock_path.parent.mkdir(exist_ok=True)
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _meltano(
    args: tuple[str, ...],
    env: dict[str, str],
    on_line: Callable[[str], None] | None,
    timeout: float,
) -> RunResult:
    command = [MELTANO, "--log-format=json", *args]
    started = time.monotonic()
    result = RunResult(command=command, returncode=-1, seconds=0.0)
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            event, plugin = line, ""
            if line.startswith("{"):
                try:
                    data = json.loads(line)
                except json.JSONDecodeError:
                    data = None
                if isinstance(data, dict) and "event" in data:  # a Meltano log record
                    event, plugin = str(data["event"]), str(data.get("name", ""))
            match = SUMMARY_RE.search(event)
            if match:
                summary = json.loads(match.group(1))
                result.summaries[plugin or summary.get("component", "?")] = summary
            result.log_tail.append(f"{plugin}: {event}" if plugin else event)
            del result.log_tail[:-400]
            if on_line is not None:
                on_line(f"{plugin}: {event}" if plugin else event)
        result.returncode = proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
    result.seconds = time.monotonic() - started
    return result


def meltano_install(env: dict[str, str]) -> None:
    """`meltano install` (idempotent; plugins are installed from the repository's folders)."""
    meltano("install", env=env, timeout=1800).check()


def write_counts(stats: dict[str, Any]) -> int:
    """Write requests in a sandbox stats document, not counting the OAuth token endpoint."""
    total = 0
    for route, statuses in stats["requests"].items():
        method, _, path = route.partition(" ")
        if method in {"POST", "PUT", "PATCH", "DELETE"} and not path.endswith("/oauth2-token"):
            total += sum(statuses.values())
    return total
