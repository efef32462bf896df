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
    oro = sb.oro_client(); oro.all("customerusers"); oro.write("PATCH", "customerusers/1", doc)
    mc = sb.mailchimp_client(); mc.get_json(f"lists/{mc.list_id}/members/{mc.hash(email)}")

The two test clients (:class:`OroTestClient`, :class:`MailchimpTestClient`) are the one way tests
and benchmarks talk to the sandbox's APIs directly (to prepare data and check results): no retries,
so a test sees every answer; the connectors use their own clients.
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
from dataclasses import fields
from pathlib import Path
from typing import Any

import requests

from oromc_sandbox.core.state import SandboxOptions

#: The `sandbox serve` options given as ``--name``/``--no-name`` and as comma-separated lists.
_BOOL_FLAGS = {f.name for f in fields(SandboxOptions) if f.type == "bool"}
_LIST_FLAGS = {f.name for f in fields(SandboxOptions) if str(f.type).startswith("list[")}


def _flags(options: dict[str, Any]) -> list[str]:
    flags: list[str] = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if name in _BOOL_FLAGS:
            flags.append(flag if value else "--no-" + name.replace("_", "-"))
        elif name in _LIST_FLAGS:
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

    @contextlib.contextmanager
    def full_batch_timeline(self) -> Iterator[None]:
        """``/batches`` jobs submitted meanwhile take Mailchimp's full timeline (2 s + 5 ms per
        operation: the realistic profile, which adds latency to every call meanwhile too); without
        latency a job is done in a tenth of that, maybe before a test's kill or clock step lands."""
        self.set_switches(latency="realistic")
        try:
            yield
        finally:
            self.set_switches(latency="none")

    def oro_token(self) -> str:
        """A fresh Oro access token for the default OAuth client (client credentials)."""
        return OroTestClient(self).refresh()

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

    def oro_client(self, **kwargs: Any) -> OroTestClient:
        """A test client of this sandbox's Oro API (see :class:`OroTestClient`)."""
        return OroTestClient(self, **kwargs)

    def mailchimp_client(self, **kwargs: Any) -> MailchimpTestClient:
        """A test client of this sandbox's Mailchimp API (see :class:`MailchimpTestClient`)."""
        return MailchimpTestClient(self, **kwargs)

    def stop(self) -> None:
        """Stop the subprocess (SIGTERM, then kill)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


JSONAPI_MEDIA_TYPE = "application/vnd.api+json"


class OroTestClient:
    """The sandbox's Oro back-office API for tests: a client-credentials token (fetched again once
    when a request answers 401, e.g. after the sandbox clock moved past its expiry) and JSON:API
    headers. Paths are relative to the API root (``customerusers/7``) or absolute URLs.

    ``auth`` replaces the client's own token (e.g. the connectors' ``OroOAuth2Authenticator``, whose
    token the process shares with the connector under test)."""

    def __init__(
        self,
        sandbox: RunningSandbox,
        client_id: str | None = None,
        client_secret: str | None = None,
        timeout: float = 60.0,
        auth: requests.auth.AuthBase | None = None,
    ) -> None:
        info = sandbox.info["oro"]
        self.sandbox = sandbox
        self.api_url: str = sandbox.oro_api_url
        self.token_url: str = info["token_url"]
        self.client_id: str = client_id or info["client_id"]
        self.client_secret: str = client_secret or info["client_secret"]
        self.timeout = timeout
        self.session = requests.Session()
        self.session.verify = sandbox.verify
        self.session.headers["Accept"] = JSONAPI_MEDIA_TYPE
        self.session.auth = auth
        self.token = ""

    def refresh(self) -> str:
        """Fetch a new access token (raises for an error answer) and use it from now on."""
        response = self.session.post(
            self.token_url,
            json={
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
            },
            headers={"Accept": "application/json"},
            timeout=self.timeout,
        )
        response.raise_for_status()
        self.token = str(response.json()["access_token"])
        return self.token

    def url(self, path: str) -> str:
        """The absolute URL of an API path."""
        return path if path.startswith(("http://", "https://")) else f"{self.api_url}/{path.lstrip('/')}"

    def request(
        self, method: str, path: str, *, body: Any = None, **kwargs: Any
    ) -> requests.Response:
        """Send one request (``body`` as a JSON:API document); the answer is returned as it came."""
        headers = dict(kwargs.pop("headers", None) or {})
        data = None
        if body is not None:
            headers.setdefault("Content-Type", JSONAPI_MEDIA_TYPE)
            data = json.dumps(body)
        kwargs.setdefault("timeout", self.timeout)
        if self.session.auth is not None:
            return self.session.request(method, self.url(path), data=data, headers=headers, **kwargs)
        for attempt in (1, 2):
            if not self.token or attempt == 2:
                self.refresh()
            headers["Authorization"] = f"Bearer {self.token}"
            response = self.session.request(
                method, self.url(path), data=data, headers=headers, **kwargs
            )
            if response.status_code != 401:
                break
        return response

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        """GET a document; anything but 200 fails the test."""
        response = self.request("GET", path, params=params)
        assert response.status_code == 200, response.text
        doc: dict[str, Any] = response.json()
        return doc

    def all(self, resource: str, **params: Any) -> list[dict[str, Any]]:
        """Every resource of a list (``page[size]`` 500 unless given), following ``links.next``."""
        params.setdefault("page[size]", "500")
        doc = self.get(resource, **params)
        out: list[dict[str, Any]] = list(doc["data"])
        while (doc.get("links") or {}).get("next"):
            doc = self.get(str(doc["links"]["next"]))
            out.extend(doc["data"])
        return out

    def write(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        """POST/PATCH/DELETE a JSON:API document; an error answer fails the test."""
        response = self.request(method, path, body=body)
        assert response.status_code < 300, response.text
        return response.json() if response.content else {}


class MailchimpTestClient:
    """The sandbox's Mailchimp Marketing API for tests: the sandbox's API key (HTTP Basic). Paths
    are relative to ``/3.0`` (``lists/{id}/members``, a leading ``/`` is fine)."""

    def __init__(self, sandbox: RunningSandbox, timeout: float = 60.0) -> None:
        info = sandbox.info["mailchimp"]
        self.sandbox = sandbox
        self.api_url: str = sandbox.mailchimp_api_url
        self.api_key: str = info["api_key"]
        self.list_id: str = info["list_id"]
        self.dc: str = info["dc"]
        self.timeout = timeout
        self.session = requests.Session()
        self.session.verify = sandbox.verify
        self.session.auth = ("test", self.api_key)

    @staticmethod
    def hash(email: str) -> str:
        """Mailchimp's member id: md5 of the trimmed, lower-cased address."""
        return hashlib.md5(email.strip().lower().encode(), usedforsecurity=False).hexdigest()

    @property
    def members(self) -> str:
        """The path of the default audience's members."""
        return f"/lists/{self.list_id}/members"

    def url(self, path: str) -> str:
        """The absolute URL of an API path."""
        return path if path.startswith(("http://", "https://")) else f"{self.api_url}/{path.lstrip('/')}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send one request; the answer is returned as it came."""
        kwargs.setdefault("timeout", self.timeout)
        return self.session.request(method, self.url(path), **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        """GET ``path``."""
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        """POST to ``path``."""
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        """PUT to ``path``."""
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        """PATCH ``path``."""
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        """DELETE ``path``."""
        return self.request("DELETE", path, **kwargs)

    def get_json(self, path: str, **params: Any) -> Any:
        """GET a document; anything but 200 fails the test."""
        response = self.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def member(self, email: str) -> dict[str, Any]:
        """The default audience's member with this address (it must exist)."""
        doc: dict[str, Any] = self.get_json(f"{self.members}/{self.hash(email)}")
        return doc


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
