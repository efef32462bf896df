"""Helpers for tap-orocommerce tests: sandbox config and running the tap CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TAP = [sys.executable, "-m", "tap_orocommerce.tap"]


def tap_config(sandbox: Any, **overrides: Any) -> dict[str, Any]:
    """Config pointing at a running sandbox."""
    info = sandbox.info["oro"]
    config = {
        "base_url": sandbox.oro_base_url,
        "client_id": info["client_id"],
        "client_secret": info["client_secret"],
        "page_size": 7,
        "backoff_factor_seconds": 0.01,
        "backoff_max_seconds": 0.2,
        "state_every_records": 5,
    }
    config.update(overrides)
    return config


@dataclass
class TapRun:
    """Outcome of one tap process."""

    returncode: int
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    states: list[dict[str, Any]] = field(default_factory=list)
    stderr: str = ""

    @property
    def state(self) -> dict[str, Any]:
        """The last STATE value ({} if none)."""
        return self.states[-1] if self.states else {}

    def ids(self, stream: str, key: str = "id") -> list[Any]:
        """Primary keys emitted for ``stream``."""
        return [r[key] for r in self.records.get(stream, [])]


def parse_messages(lines: list[str], run: TapRun) -> None:
    """Collect RECORD and STATE messages from tap stdout lines."""
    for line in lines:
        if not line.strip():
            continue
        msg = json.loads(line)
        if msg["type"] == "RECORD":
            run.records.setdefault(msg["stream"], []).append(msg["record"])
        elif msg["type"] == "STATE":
            run.states.append(msg["value"])


def run_tap(
    tmp_path: Path,
    config: dict[str, Any],
    state: dict[str, Any] | None = None,
    name: str = "run",
    timeout: float = 120,
) -> TapRun:
    """Run the tap CLI once and parse its output."""
    cfg = tmp_path / f"{name}-config.json"
    cfg.write_text(json.dumps(config))
    cmd = [*TAP, "--config", str(cfg)]
    if state is not None:
        st = tmp_path / f"{name}-state.json"
        st.write_text(json.dumps(state))
        cmd += ["--state", str(st)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ})
    run = TapRun(proc.returncode, stderr=proc.stderr)
    parse_messages(proc.stdout.splitlines(), run)
    return run


def start_tap(tmp_path: Path, config: dict[str, Any], name: str = "bg") -> subprocess.Popen[str]:
    """Start the tap CLI in the background (stdout piped, line-buffered text; stderr to a file).

    stderr goes to a file so that a test reading stdout line by line can never block the tap on a
    full stderr pipe. Finish such a process with :func:`finish_tap`, not ``communicate()``.
    """
    cfg = tmp_path / f"{name}-config.json"
    cfg.write_text(json.dumps(config))
    with (tmp_path / f"{name}-stderr.log").open("w") as err:
        return subprocess.Popen(
            [*TAP, "--config", str(cfg)],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            bufsize=1,
            env={**os.environ},
        )


def finish_tap(
    proc: subprocess.Popen[str], tmp_path: Path, name: str = "bg", timeout: float = 120
) -> tuple[str, str]:
    """Read the rest of a :func:`start_tap` process's stdout and its stderr; wait for its exit.

    ``communicate()`` reads the pipe's file descriptor directly and so loses whatever the text
    wrapper had already buffered after the caller's last ``readline()``: records went missing.
    """
    assert proc.stdout is not None
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        out = proc.stdout.read()
        proc.wait()
    finally:
        timer.cancel()
    return out, (tmp_path / f"{name}-stderr.log").read_text()
