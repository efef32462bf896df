"""Fixtures for the Mailchimp conformance suite: one real sandbox over HTTP per session.

Tests use plain `requests` against `running_sandbox(...)`. Each test isolates itself with fresh
email addresses (`fresh_email`) instead of resetting the shared sandbox.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import requests

_counter = itertools.count()


class MailchimpClient:
    """A requests.Session bound to `/3.0` with the sandbox API key (no retries, no magic)."""

    def __init__(self, sb: Any) -> None:
        self.sb = sb
        self.base = sb.mailchimp_api_url
        self.api_key: str = sb.info["mailchimp"]["api_key"]
        self.list_id: str = sb.info["mailchimp"]["list_id"]
        self.dc: str = sb.info["mailchimp"]["dc"]
        self.session = requests.Session()
        self.session.auth = ("anystring", self.api_key)

    def url(self, path: str) -> str:
        return self.base + path

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, self.url(path), **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    @property
    def members(self) -> str:
        return f"/lists/{self.list_id}/members"

    def add(
        self, email: str | None = None, status: str = "subscribed", **fields: Any
    ) -> dict[str, Any]:
        """POST a fresh member and return its document (asserts success)."""
        body = {"email_address": email or fresh_email(), "status": status, **fields}
        resp = self.post(self.members, json=body)
        assert resp.status_code == 200, resp.text
        doc: dict[str, Any] = resp.json()
        return doc


def fresh_email(prefix: str = "member") -> str:
    """A unique, valid, non-fake address."""
    return f"{prefix}.{next(_counter)}.{uuid.uuid4().hex[:8]}@gmail.com"


class _InProcessSandbox:
    """Mailchimp app only, served by uvicorn in a thread (only when MC_SANDBOX_INPROC=1)."""

    def __init__(self, **options: Any) -> None:
        import uvicorn
        from oromc_sandbox import mailchimp
        from oromc_sandbox.core.app import build_app
        from oromc_sandbox.core.state import Clock, SandboxOptions, SandboxState

        opts = SandboxOptions(**options)
        self.state = SandboxState(options=opts, clock=Clock())
        self.state.mailchimp = mailchimp.create_store(opts, self.state.clock, None)
        app = build_app(self.state, "mailchimp")
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=0,
                log_level="warning",
                lifespan="off",
                server_header=False,
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.mailchimp_base_url = f"http://127.0.0.1:{port}"
        self.mailchimp_api_url = self.mailchimp_base_url + "/3.0"
        self.info = {"mailchimp": mailchimp.sandbox_info(self.state.mailchimp)}

    def advance_clock(self, seconds: float) -> str:
        return self.state.clock.advance(seconds).isoformat()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Any]:
    """One sandbox for the whole Mailchimp suite (customers=300, no latency, no faults)."""
    if os.environ.get("MC_SANDBOX_INPROC") == "1":
        sb = _InProcessSandbox(customers=300)
        try:
            yield sb
        finally:
            sb.stop()
        return
    from oromc_sandbox.testing import running_sandbox

    with running_sandbox(customers=300) as sb:
        yield sb


@pytest.fixture(scope="session")
def mc(sandbox: Any) -> MailchimpClient:
    return MailchimpClient(sandbox)


@pytest.fixture
def email() -> str:
    return fresh_email()


__all__ = ["MailchimpClient", "SimpleNamespace", "fresh_email"]


@pytest.fixture
def fresh() -> Any:
    """Factory for unique valid addresses: `fresh("prefix")`."""
    return fresh_email
