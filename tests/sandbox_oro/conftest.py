"""Shared fixtures: one real sandbox (subprocess, real HTTP) for the Oro conformance suite."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from oromc_sandbox.testing import RunningSandbox, running_sandbox

JSONAPI = "application/vnd.api+json"


@pytest.fixture(scope="session")
def sb() -> Iterator[RunningSandbox]:
    """A small sandbox shared by the whole suite (tests restore any switch they change)."""
    with running_sandbox(customers=60, seed=11) as sandbox:
        yield sandbox


class Api:
    """A tiny JSON:API client over plain ``requests`` with a fresh token."""

    def __init__(self, sb: RunningSandbox, client_id: str | None = None, secret: str | None = None) -> None:
        self.sb = sb
        self.base = sb.oro_api_url
        self.client_id = client_id or sb.info["oro"]["client_id"]
        self.secret = secret or sb.info["oro"]["client_secret"]
        self.session = requests.Session()
        self.refresh()

    def refresh(self) -> None:
        """Fetch a new access token."""
        response = requests.post(
            self.sb.oro_base_url + "/oauth2-token",
            json={"grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self.secret},
            timeout=30,
        )
        response.raise_for_status()
        self.token = response.json()["access_token"]

    def headers(self, extra: dict[str, str] | None = None, body: bool = False) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": JSONAPI}
        if body:
            headers["Content-Type"] = JSONAPI
        headers.update(extra or {})
        return headers

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.base + path

    def get(self, path: str, params: Any = None, headers: dict[str, str] | None = None) -> requests.Response:
        return self.session.get(self.url(path), params=params, headers=self.headers(headers), timeout=30)

    def send(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
             params: Any = None) -> requests.Response:
        data = None if body is None else json.dumps(body)
        return self.session.request(method, self.url(path), data=data, params=params,
                                    headers=self.headers(headers, body=True), timeout=30)

    def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> requests.Response:
        return self.send("POST", path, body, headers)

    def patch(self, path: str, body: Any, headers: dict[str, str] | None = None) -> requests.Response:
        return self.send("PATCH", path, body, headers)

    def delete(self, path: str, body: Any = None, params: Any = None) -> requests.Response:
        return self.send("DELETE", path, body, params=params)


@pytest.fixture
def api(sb: RunningSandbox) -> Api:
    """A client with a fresh token (tests may move the clock and expire older tokens)."""
    return Api(sb)


@pytest.fixture
def make_client() -> Any:
    """Factory: a client of another sandbox (tests that need data of their own)."""
    return lambda sandbox: Api(sandbox)


@pytest.fixture
def make_api(sb: RunningSandbox) -> Any:
    """Factory: a client for other OAuth credentials."""
    return lambda client_id, secret: Api(sb, client_id, secret)


def _fresh_email(prefix: str = "t") -> str:
    return f"{prefix}.{uuid.uuid4().hex[:10]}@example.com"


@pytest.fixture
def fresh_email() -> Any:
    """Factory: a never-used e-mail address."""
    return _fresh_email


@pytest.fixture
def new_user(api: Api) -> Any:
    """Factory: create a customer user of customer 1 and return its resource object."""

    def create(**attrs: Any) -> dict[str, Any]:
        body = {"data": {"type": "customerusers", "attributes": {
            "email": _fresh_email(), "firstName": "Test", "lastName": "User", **attrs},
            "relationships": {"customer": {"data": {"type": "customers", "id": "1"}},
                              "userRoles": {"data": [{"type": "customeruserroles", "id": "2"}]}}}}
        response = api.post("/customerusers", body)
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    return create
