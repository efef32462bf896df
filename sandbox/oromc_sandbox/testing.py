"""Start a real sandbox (a subprocess on free ports) for tests and benchmarks.

from oromc_sandbox.testing import running_sandbox

with running_sandbox(customers=50, token_ttl=5) as sb:
    requests.post(sb.oro_base_url + "/oauth2-token", json={...})
    sb.advance_clock(3600)
    sb.set_faults("mailchimp", rate=0.2, kinds=["429", "503"])
    sb.set_faults("mailchimp", rate=0.2, kinds=["lost_response"], routes=["POST /3.0/lists/{list_id}"])
    seed = fault_seed_for({"POST /3.0/batches": [True, False]}, rate=0.5)  # first lost, retry not
    sb.revoke_oro_tokens()
    sb.set_switches(oro_workers=4, oro_backlog=10)   # Oro capacity; sb.stats("oro")["capacity"]
    sb.stats("mailchimp")["writes"]
    sb.set_breakpoint("mailchimp", at=3, methods=["POST"])  # hold the 3rd POST and all after it
    sb.release_breakpoint("mailchimp")                      # ... until released (no answer)
    sb.save(); sb.load()                                    # with data_dir=...: snapshot, restore
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

_BOOL_FLAGS = {
    "customeruser_updatedat_filter",
    "tagging",
    "shoppinglists",
    "order_campaign_relation",
    "campaign_statistics_fields",
    "order_external_status_management",
    "marketingactivities_batch",
}


def _flags(options: dict[str, Any]) -> list[str]:
    flags: list[str] = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if name in _BOOL_FLAGS:
            flags.append(flag if value else "--no-" + name.replace("_", "-"))
        elif name in {"fault_kinds", "fault_routes", "fault_methods"}:
            flags += [flag, ",".join(value)]
        elif value is not None:
            flags += [flag, str(value)]
    return flags


def fault_strikes(seed: int, label: str, n: int, rate: float) -> bool:
    """Whether the n-th eligible request of route ``label`` (``"METHOD /template"``) gets a fault
    under ``seed`` and ``rate`` (the sandbox's deterministic choice, see ``SandboxMiddleware``)."""
    digest = hashlib.blake2b(f"{seed}\0{label}\0{n}".encode(), digest_size=16).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64 < rate


def fault_seed_for(pattern: dict[str, list[bool]], rate: float, limit: int = 10_000_000) -> int:
    """The smallest fault seed under which each route's first requests get a fault exactly as
    ``pattern`` says (``{"POST /3.0/batches": [True, False]}``: the first one struck, the second not).
    """
    for seed in range(limit):
        if all(
            fault_strikes(seed, label, n, rate) == want
            for label, wants in pattern.items()
            for n, want in enumerate(wants)
        ):
            return seed
    msg = f"no fault seed below {limit} gives {pattern} at rate {rate}"
    raise ValueError(msg)


class RunningSandbox:
    """Handle on a sandbox subprocess: URLs, credentials and control helpers."""

    def __init__(
        self, info: dict[str, Any], process: subprocess.Popen[bytes], verify: str | bool = True
    ) -> None:
        self.info = info
        self.process = process
        self.verify = verify  # the certificate of a sandbox serving HTTPS (--tls-cert)
        self.oro_base_url: str = info["oro"]["base_url"]
        self.oro_api_url: str = info["oro"]["api_url"]
        self.mailchimp_base_url: str = info["mailchimp"]["base_url"]
        self.mailchimp_api_url: str = info["mailchimp"]["api_url"]
        self._sessions: dict[str, requests.Session] = {}

    def _base(self, api: str) -> str:
        return {"oro": self.oro_base_url, "mailchimp": self.mailchimp_base_url}[api]

    def control(self, api: str) -> _BoundSession:
        """A session whose relative URLs resolve against ``api``'s server (for `/_sandbox/...`)."""
        return _BoundSession(self._base(api), self.verify)

    def _post(self, api: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = requests.post(
            self._base(api) + path, json=body or {}, timeout=300, verify=self.verify
        )
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def _get(self, api: str, path: str) -> dict[str, Any]:
        response = requests.get(self._base(api) + path, timeout=60, verify=self.verify)
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
        routes: list[str] | None = None,
        methods: list[str] | None = None,
    ) -> dict[str, Any]:
        """Set fault injection for one API (rate 0 turns it off).

        ``routes`` (``"METHOD /template"`` or ``"/template"``) and ``methods`` restrict the faults;
        None (the default) means every route / method, also replacing an earlier restriction.
        """
        body: dict[str, Any] = {"rate": rate, "routes": routes, "methods": methods}
        if kinds is not None:
            body["kinds"] = kinds
        if seed is not None:
            body["seed"] = seed
        if slow_seconds is not None:
            body["slow_seconds"] = slow_seconds
        return self._post(api, "/_sandbox/faults", body)

    def set_switches(self, **switches: Any) -> dict[str, Any]:
        """Change live switches (see ``oromc_sandbox.core.state.SWITCHES``: customeruser_updatedat_filter,
        tagging, shoppinglists, consent_source, token_ttl, latency, oro_workers, ...)."""
        return self._post("oro", "/_sandbox/config", switches)

    def oro_token(self) -> str:
        """A fresh Oro access token for the default OAuth client (client credentials)."""
        response = requests.post(
            self.info["oro"]["token_url"],
            json={
                "grant_type": "client_credentials",
                "client_id": self.info["oro"]["client_id"],
                "client_secret": self.info["oro"]["client_secret"],
            },
            timeout=60,
            verify=self.verify,
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def revoke_oro_tokens(self) -> dict[str, Any]:
        """Revoke every Oro token issued so far: the next call with one of them gets Oro's 401."""
        return self._post("oro", "/_sandbox/oro/tokens/revoke")

    def save(self) -> str:
        """Write both stores and the clock to ``--data-dir``; returns the file."""
        return str(self._post("oro", "/_sandbox/save")["path"])

    def load(self) -> None:
        """Restore both stores and the clock from the last :meth:`save`; zero the counters."""
        self._post("oro", "/_sandbox/load")

    def set_breakpoint(
        self,
        api: str,
        at: int,
        routes: list[str] | None = None,
        methods: list[str] | None = None,
        phase: str = "before",
        writes: bool = False,
    ) -> dict[str, Any]:
        """Hold ``api``'s ``at``-th request matching ``routes``/``methods`` (None: any) and every later one.

        ``phase`` ``before``: the held request is not applied; ``after``: applied, its answer held.
        ``writes``: count only writes (POST/PUT/PATCH/DELETE except the OAuth token endpoint).
        """
        body = {"at": at, "routes": routes, "methods": methods, "phase": phase, "writes": writes}
        return self._post(api, "/_sandbox/breakpoint", body)

    def breakpoint(self, api: str) -> dict[str, Any]:
        """``api``'s breakpoint: ``hit``, ``seen`` (matching requests so far), ``held``."""
        return self._get(api, "/_sandbox/breakpoint")

    def release_breakpoint(self, api: str) -> dict[str, Any]:
        """Close the held requests' connections without an answer and disarm the breakpoint."""
        response = requests.delete(
            self._base(api) + "/_sandbox/breakpoint", timeout=60, verify=self.verify
        )
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

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
    def __init__(self, base: str, verify: str | bool = True) -> None:
        super().__init__()
        self.base = base
        self.verify = verify

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
            sandbox = RunningSandbox(
                json.loads(ready.read_text()), process, options.get("tls_cert") or True
            )
            try:
                yield sandbox
            finally:
                sandbox.stop()


# -- a throw-away PostgreSQL server (Meltano's production state store, the shared connection budget) --


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not candidates:
        msg = f"{name} not found: PostgreSQL server packages are missing (run `make test`)"
        raise FileNotFoundError(msg)
    return str(candidates[-1])


def _as_server_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: use the `postgres` system user when we are root."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def running_postgres() -> Iterator[str]:
    """Start a PostgreSQL server from the system packages on a free loopback port.

    Yields a SQLAlchemy URI (``postgresql+psycopg://postgres@127.0.0.1:PORT/postgres``, the form
    of ``MELTANO_DATABASE_URI``); the server and its data are removed on exit.
    """
    # Not under pytest's tmp folder: that one is private to root, and the server runs as `postgres`.
    top = Path(tempfile.mkdtemp(prefix="oromc-pg-"))
    data = top / "data"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(top, "postgres", "postgres")
        shutil.chown(data, "postgres", "postgres")
    port = _free_port()
    subprocess.run(
        _as_server_user([_pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1"
    pg_ctl = _pg_bin("pg_ctl")
    subprocess.run(
        _as_server_user(
            [pg_ctl, "-D", str(data), "-o", options, "-w", "-l", str(data / "log"), "start"]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_server_user([pg_ctl, "-D", str(data), "-m", "fast", "stop"]),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(top, ignore_errors=True)
