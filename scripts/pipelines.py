"""Run the project's Meltano jobs against a sandbox and read what they did.

Used by `make demo` (scripts/demo.py) and by the end-to-end tests (tests/e2e/), so both exercise the
real `meltano run` commands of `meltano.yml` the same way a user would.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
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

import yaml

ROOT = Path(__file__).resolve().parent.parent
MELTANO = str(Path(sys.executable).with_name("meltano"))
SUMMARY_RE = re.compile(r"RUN SUMMARY (\{.*\})")
PRIVATE_UMASK = 0o077
"""Meltano writes each plugin's settings, secrets included, to `.meltano/run/<plugin>/*.config.json`
while the plugin runs: started with this umask, those files are readable by their owner only."""

#: The Oro customizations the `dev` environment of meltano.yml expects of its sandbox (shopping lists
#: and the order campaign relation in the API; marketing consent in a custom field on customer users;
#: the campaign results' custom fields on campaigns).
DEV_SANDBOX_OPTIONS: dict[str, Any] = {
    "shoppinglists": True,
    "order_campaign_relation": True,
    "campaign_statistics_fields": True,
    "consent_source": "customer_user_field",
}

#: `batch_poll_seconds` for connectors run against a sandbox without latency (the tests'): its
#: `/batches` jobs take a tenth of Mailchimp's time (sandbox/oromc_sandbox/mailchimp/models/batches.py,
#: NO_LATENCY_SCALE), and a poll interval a tenth of the default (1 s) makes the first poll come a tenth
#: as late too (common/oromc_common/batches.py, DEFAULT_POLL_SECONDS).
NO_LATENCY_BATCH_POLL_SECONDS = 0.1

# A line that warns: Python warnings, deprecations, the SDK's dropped-property notice, WARNING logs.
WARNING_RE = re.compile(
    r"\bWARNING\b|Warning\b|deprecated|not found in catalog schema", re.IGNORECASE
)


def install_env(workdir: Path) -> dict[str, str]:
    """Environment for Meltano commands that need no sandbox (state under ``workdir``)."""
    return {
        **os.environ,
        "MELTANO_ENVIRONMENT": "dev",
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MELTANO_DATABASE_URI": f"sqlite:///{workdir / 'meltano.db'}",
        "PYTHONUNBUFFERED": "1",
    }


#: The folders of a Meltano system directory that hold installed plugins (shared by private ones).
PLUGIN_KINDS = ("extractors", "loaders", "mappers", "utilities")


def private_sys_dir(workdir: Path) -> Path:
    """A Meltano system directory of one run's own under ``workdir``, using the project's installed plugins.

    Meltano writes each plugin's catalog, config and logging files to `<sys dir>/run/<plugin>/` under
    fixed names, so two `meltano run`s sharing a system directory (tests on parallel workers) can read
    each other's half-written catalog. Point ``MELTANO_SYS_DIR_ROOT`` here to keep `run/` private.
    """
    shared = Path(os.environ.get("MELTANO_SYS_DIR_ROOT") or ROOT / ".meltano")
    sys_dir = workdir / "meltano-sys"
    sys_dir.mkdir(parents=True, exist_ok=True)
    for kind in PLUGIN_KINDS:
        link = sys_dir / kind
        if not link.is_symlink():
            (shared / kind).mkdir(parents=True, exist_ok=True)
            link.symlink_to(shared / kind)
    return sys_dir


def has_private_sys_dir(env: dict[str, str]) -> bool:
    """True when ``env`` points Meltano at another system directory than the project's shared one
    (e.g. :func:`private_sys_dir`'s): its `run/` folder is not shared with other commands."""
    own = env.get("MELTANO_SYS_DIR_ROOT")
    shared = os.environ.get("MELTANO_SYS_DIR_ROOT") or ROOT / ".meltano"
    return own is not None and own != "" and Path(own).resolve() != Path(shared).resolve()


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
    warnings: list[str] = field(default_factory=list)
    install_errors: dict[str, str] = field(default_factory=dict)

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
    cwd: Path = ROOT,
    on_raw: Callable[[str], None] | None = None,
    lock: bool | None = None,
) -> RunResult:
    """Run a meltano command in the project root (or ``cwd``); collect each plugin's RUN SUMMARY line.

    ``on_line`` gets each log event as ``plugin: event``; ``on_raw`` each output line as Meltano
    wrote it (the whole JSON log record: what a log shipper would store).

    Commands are serialised across processes (a lock file under the project's `.meltano/`): Meltano
    keeps a plugin's run files in `.meltano/run/<plugin>/`, so two runs of the same plugin in one
    project at the same time (e.g. tests in parallel workers) would read each other's files.
    A command whose ``env`` has a system directory of its own (:func:`private_sys_dir`, see
    :func:`has_private_sys_dir`) takes no lock: nobody else reads its run files. ``lock`` forces
    either way.
    """
    if lock is None:
        lock = not has_private_sys_dir(env)
    if not lock:
        return _meltano(args, env, on_line, timeout, cwd, on_raw)
    with project_lock(cwd):
        return _meltano(args, env, on_line, timeout, cwd, on_raw)


@contextlib.contextmanager
def project_lock(cwd: Path = ROOT) -> Iterator[None]:
    """Hold the project's Meltano lock (see :func:`meltano`) for a block."""
    lock_path = cwd / ".meltano" / "pipelines.lock"
    lock_path.parent.mkdir(exist_ok=True)
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _meltano(
    args: tuple[str, ...],
    env: dict[str, str],
    on_line: Callable[[str], None] | None,
    timeout: float,
    cwd: Path,
    on_raw: Callable[[str], None] | None = None,
) -> RunResult:
    command = [MELTANO, "--log-format=json", *args]
    started = time.monotonic()
    result = RunResult(command=command, returncode=-1, seconds=0.0)
    proc = start_meltano(*command[1:], env=env, cwd=cwd)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            if on_raw is not None:
                on_raw(line)
            event, plugin = line, ""
            data: Any = None
            if line.startswith("{"):
                try:
                    data = json.loads(line)
                except json.JSONDecodeError:
                    data = None
                if isinstance(data, dict) and "event" in data:  # a Meltano log record
                    event, plugin = str(data["event"]), str(data.get("name", ""))
                    state = data.get("install_state") or {}
                    if state.get("status") == "error":
                        result.install_errors[str(state.get("plugin_name"))] = str(
                            state.get("details") or state.get("message")
                        )
            level = str(data.get("level", "")) if isinstance(data, dict) else ""
            if level in {"warning", "error"} or WARNING_RE.search(event):
                result.warnings.append(f"{plugin}: {event}" if plugin else event)
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


def start_meltano(
    *args: str, env: dict[str, str], cwd: Path = ROOT, **popen: Any
) -> subprocess.Popen[str]:
    """Start a meltano command in the project root (or ``cwd``) with a private umask (output piped)."""
    options: dict[str, Any] = {
        "stdout": subprocess.PIPE,
        "stderr": subprocess.STDOUT,
        "text": True,
        "bufsize": 1,
        **popen,
    }
    return subprocess.Popen([MELTANO, *args], cwd=cwd, env=env, umask=PRIVATE_UMASK, **options)


def remove_leftover_configs(sys_dir: Path | None = None) -> list[Path]:
    """Delete plugin config files a killed `meltano run` left behind (they hold secrets).

    Meltano deletes `.meltano/run/<plugin>/*.config.json` when a plugin ends, but not when it is
    killed. Call this only while no pipeline of the project runs (a running plugin may still be
    reading its file). Returns the files removed.
    """
    run_dir = (sys_dir or Path(os.environ.get("MELTANO_SYS_DIR_ROOT") or ROOT / ".meltano")) / "run"
    removed = []
    for path in sorted(run_dir.glob("*/*.config.json")):
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


# What the plugins' virtual environments are built from: when none of these changed since the last
# successful install (and every plugin's executable is there), `meltano install` is not run again.
INSTALL_INPUTS = (
    "meltano.yml",
    "requirements/*.txt",
    "*/pyproject.toml",
)
INSTALL_STAMP = ROOT / ".meltano" / "oromc-install.sha256"
NETWORK_ERRORS = re.compile(
    r"dns error|failed to lookup address|Failed to fetch|error sending request|Network is unreachable"
    r"|Connection refused|client error \(Connect\)|timed out",
    re.IGNORECASE,
)


class InstallError(RuntimeError):
    """The Meltano plugins could not be installed; the message says why and what to do."""


def install_digest() -> str:
    """SHA-256 over the files the plugins are installed from."""
    digest = hashlib.sha256()
    for pattern in INSTALL_INPUTS:
        for path in sorted(ROOT.glob(pattern)):
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def plugin_executables() -> list[Path]:
    """Where `meltano install` puts each installable plugin's executable (inherited plugins have none)."""
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    return [
        ROOT / ".meltano" / kind / plugin["name"] / "venv" / "bin" / plugin["executable"]
        for kind, plugins in project["plugins"].items()
        for plugin in plugins
        if plugin.get("pip_url")
    ]


def _install_failure(result: RunResult) -> str:
    details = "\n".join(
        f"  {plugin}: {detail.strip().splitlines()[-1]}"
        for plugin, detail in sorted(result.install_errors.items())
    )
    return details or "\n".join(result.log_tail[-20:])


def meltano_install(env: dict[str, str]) -> bool:
    """Install the Meltano plugins unless nothing changed since the last install; True if it installed.

    Plugins come from this repository's folders and the locked, hashed versions of requirements/*.txt
    (uv). Without network, uv's cache is used (`UV_OFFLINE`); if that lacks a package, the error
    says so instead of Meltano's bare "Installation failed" lines. Safe to call from parallel
    processes (one installs, the others wait and reuse it).
    """
    INSTALL_STAMP.parent.mkdir(parents=True, exist_ok=True)
    with (ROOT / ".meltano" / "oromc-install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        digest = install_digest()
        done = INSTALL_STAMP.exists() and INSTALL_STAMP.read_text() == digest
        if done and all(path.exists() for path in plugin_executables()):
            return False
        INSTALL_STAMP.unlink(missing_ok=True)
        result = meltano("install", "--clean", env=env, timeout=1800)
        if result.returncode != 0 and any(
            NETWORK_ERRORS.search(d) for d in result.install_errors.values()
        ):
            result = meltano("install", "--clean", env={**env, "UV_OFFLINE": "1"}, timeout=1800)
            if result.returncode != 0:
                msg = (
                    "Cannot install the Meltano plugins: the package index is not reachable "
                    "(offline?) and uv's cache lacks some of the locked packages. Connect once: "
                    "the locked versions are then cached and later installs work offline.\n"
                    + _install_failure(result)
                )
                raise InstallError(msg)
        if result.returncode != 0:
            msg = (
                "Cannot install the Meltano plugins (meltano install failed):\n"
                + _install_failure(result)
            )
            raise InstallError(msg)
        INSTALL_STAMP.write_text(digest)
        return True


def write_counts(stats: dict[str, Any]) -> int:
    """Write requests in a sandbox stats document, not counting the OAuth token endpoint."""
    total = 0
    for route, statuses in stats["requests"].items():
        method, _, path = route.partition(" ")
        if method in {"POST", "PUT", "PATCH", "DELETE"} and not path.endswith("/oauth2-token"):
            total += sum(statuses.values())
    return total
