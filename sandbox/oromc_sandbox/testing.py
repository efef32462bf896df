"""Start a real sandbox (a subprocess on free ports) for tests and benchmarks.

from oromc_sandbox.testing import running_sandbox

with running_sandbox(customers=50, token_ttl=5) as sb:
    requests.post(sb.oro_base_url + "/oauth2-token", json={...})
    sb.advance_clock(3600)
    sb.set_faults("mailchimp", rate=0.2, kinds=["429", "503"])
    sb.stats("mailchimp")["writes"]
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

_BOOL_FLAGS = {"customeruser_updatedat_filter", "tagging", "shoppinglists", "order_campaign_relation"}


def _flags(options: dict[str, Any]) -> list[str]:
    flags: list[str] = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if name in _BOOL_FLAGS:
            flags.append(flag if value else "--no-" + name.replace("_", "-"))
        elif name == "fault_kinds":
            flags += [flag, ",".join(value)]
        elif value is not None:
            flags += [flag, str(value)]
    return flags


class RunningSandbox:
    """Handle on a sandbox subprocess: URLs, credentials and control helpers."""

    def __init__(self, info: dict[str, Any], process: subprocess.Popen[bytes]) -> None:
        self.info = info
        self.process = process
        self.oro_base_url: str = info["oro"]["base_url"]
        self.oro_api_url: str = info["oro"]["api_url"]
        self.mailchimp_base_url: str = info["mailchimp"]["base_url"]
        self.mailchimp_api_url: str = info["mailchimp"]["api_url"]
        self._sessions: dict[str, requests.Session] = {}

    def _base(self, api: str) -> str:
        return {"oro": self.oro_base_url, "mailchimp": self.mailchimp_base_url}[api]

    def control(self, api: str) -> _BoundSession:
        """A session whose relative URLs resolve against ``api``'s server (for `/_sandbox/...`)."""
        return _BoundSession(self._base(api))

    def _post(self, api: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = requests.post(self._base(api) + path, json=body or {}, timeout=300)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def _get(self, api: str, path: str) -> dict[str, Any]:
        response = requests.get(self._base(api) + path, timeout=60)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def stats(self, api: str) -> dict[str, Any]:
        """Request counts per route/status, writes, peak connections per key."""
        return self._get(api, "/_sandbox/stats")

    def reset_stats(self) -> None:
        """Zero the counters of both APIs."""
        self._post("oro", "/_sandbox/stats/reset")

    def now(self) -> str:
        """Current sandbox time (ISO)."""
        return str(self._get("oro", "/_sandbox/clock")["now"])

    def advance_clock(self, seconds: float) -> str:
        """Move the sandbox clock forward; returns the new time."""
        return str(self._post("oro", "/_sandbox/clock", {"advance_seconds": seconds})["now"])

    def set_faults(
        self,
        api: str,
        rate: float,
        kinds: list[str] | None = None,
        seed: int | None = None,
        slow_seconds: float | None = None,
    ) -> dict[str, Any]:
        """Set fault injection for one API (rate 0 turns it off)."""
        body: dict[str, Any] = {"rate": rate}
        if kinds is not None:
            body["kinds"] = kinds
        if seed is not None:
            body["seed"] = seed
        if slow_seconds is not None:
            body["slow_seconds"] = slow_seconds
        return self._post(api, "/_sandbox/faults", body)

    def set_switches(self, **switches: Any) -> dict[str, Any]:
        """Change live switches (customeruser_updatedat_filter, tagging, shoppinglists, consent_source,
        token_ttl, ...)."""
        return self._post("oro", "/_sandbox/config", switches)

    def reset(self, **overrides: Any) -> None:
        """Re-seed both stores (optionally a different seed/customers) and zero the counters."""
        self._post("oro", "/_sandbox/reset", overrides)

    def stop(self) -> None:
        """Stop the subprocess (SIGTERM, then kill)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class _BoundSession(requests.Session):
    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        url = url.decode() if isinstance(url, bytes) else url
        if url.startswith("/"):
            url = self.base + url
        kwargs.setdefault("timeout", 60)
        return super().request(method, url, *args, **kwargs)


@contextlib.contextmanager
def running_sandbox(startup_timeout: float = 180.0, **options: Any) -> Iterator[RunningSandbox]:
    """Start `sandbox serve` on free loopback ports with ``options``; stop it on exit."""
    options.setdefault("oro_port", 0)
    options.setdefault("mailchimp_port", 0)
    with tempfile.TemporaryDirectory(prefix="sandbox-") as tmp:
        ready = Path(tmp) / "ready.json"
        log_path = Path(tmp) / "sandbox.log"
        cmd = [
            sys.executable,
            "-m",
            "oromc_sandbox.cli",
            "serve",
            *_flags(options),
            "--ready-file",
            str(ready),
        ]
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ}
            )
            deadline = time.monotonic() + startup_timeout
            while not ready.exists():
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    output = log_path.read_text(errors="replace")[-4000:]
                    msg = f"sandbox did not start (exit={process.returncode}):\n{output}"
                    raise RuntimeError(msg)
                time.sleep(0.05)
            sandbox = RunningSandbox(json.loads(ready.read_text()), process)
            try:
                yield sandbox
            finally:
                sandbox.stop()
