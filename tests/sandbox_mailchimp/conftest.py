"""Fixtures for the Mailchimp conformance suite: one real sandbox over HTTP per session.

Tests use plain `requests` against `running_sandbox(...)`. Each test isolates itself with fresh
email addresses (`fresh_email`) instead of resetting the shared sandbox.
"""

from __future__ import annotations

import itertools
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from oromc_sandbox.testing import MailchimpTestClient, running_sandbox
from typing_extensions import override

sys.path.insert(0, str(Path(__file__).resolve().parent))
from openapi_check import check_response

_counter = itertools.count()


class MailchimpClient(MailchimpTestClient):
    """The sandbox's test client; every answer must conform (no retries, no magic)."""

    def __init__(self, sb: Any) -> None:
        super().__init__(sb, timeout=30)
        self.sb = sb
        self.base = self.api_url
        self.session.auth = ("anystring", self.api_key)

    @override
    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send one request; its answer must conform (`openapi_check.check_response`)."""
        resp = super().request(method, path, **kwargs)
        check_response(method, path, resp)
        return resp

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


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Any]:
    """One sandbox for the whole Mailchimp suite (customers=300, no latency, no faults)."""
    with running_sandbox(customers=300) as sb:
        yield sb


@pytest.fixture(scope="session")
def mc(sandbox: Any) -> MailchimpClient:
    return MailchimpClient(sandbox)


@pytest.fixture
def fresh() -> Any:
    """Factory for unique valid addresses: `fresh("prefix")`."""
    return fresh_email
