"""Clients and the Meltano project handle used by the end-to-end tests."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from oromc_sandbox.testing import RunningSandbox  # noqa: E402
from pipelines import RunResult, meltano, private_sys_dir, sandbox_env  # noqa: E402

JSONAPI = "application/vnd.api+json"


class Oro:
    """A tiny JSON:API client for the sandbox's OroCommerce (test set-up and assertions only)."""

    def __init__(self, sandbox: RunningSandbox) -> None:
        self.info = sandbox.info["oro"]
        self.api = self.info["api_url"]
        self.session = requests.Session()
        self.session.headers.update({"Accept": JSONAPI, "Content-Type": JSONAPI})
        self._authorize()

    def _authorize(self) -> None:
        token = requests.post(
            self.info["token_url"],
            json={
                "grant_type": "client_credentials",
                "client_id": self.info["client_id"],
                "client_secret": self.info["client_secret"],
            },
            timeout=30,
        ).json()["access_token"]
        self.session.headers["Authorization"] = f"Bearer {token}"

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One request; a 401 (the sandbox clock may have moved past the token's expiry) re-authorizes once."""
        response = self.session.request(method, f"{self.api}/{path}", timeout=60, **kwargs)
        if response.status_code == 401:
            self._authorize()
            response = self.session.request(method, f"{self.api}/{path}", timeout=60, **kwargs)
        return response

    def get(self, path: str, **params: Any) -> Any:
        response = self._send("GET", path, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, document: dict[str, Any]) -> Any:
        response = self._send("POST", path, json=document)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def patch(self, path: str, document: dict[str, Any]) -> Any:
        response = self._send("PATCH", path, json=document)
        assert response.status_code == 200, response.text
        return response.json()

    def all(self, resource: str, **params: Any) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self.get(resource, **{"page[size]": -1, **params})["data"]
        return data

    def customer_user_by_email(self, email: str) -> dict[str, Any]:
        rows = self.get("customerusers", **{"filter[email]": email})["data"]
        assert len(rows) == 1, f"expected one customer user for the address, got {len(rows)}"
        row: dict[str, Any] = rows[0]
        return row

    def activities_of(self, customer_user_id: str) -> list[tuple[str, str | None]]:
        """(type, campaign id) of every marketing activity on one customer user."""
        out = []
        for row in self.all("marketingactivities"):
            rel = row["relationships"]
            entity = rel["entity"]["data"]
            if entity and entity["type"] == "customerusers" and entity["id"] == customer_user_id:
                campaign = (rel.get("campaign") or {}).get("data")
                out.append(
                    (rel["marketingActivityType"]["data"]["id"], campaign and campaign["id"])
                )
        return out


class Mailchimp:
    """A tiny Mailchimp client for the sandbox (test set-up and assertions only)."""

    def __init__(self, sandbox: RunningSandbox) -> None:
        info = sandbox.info["mailchimp"]
        self.api = info["api_url"]
        self.list_id = info["list_id"]
        self.session = requests.Session()
        self.session.auth = ("test", info["api_key"])

    @staticmethod
    def hash(email: str) -> str:
        return hashlib.md5(email.strip().lower().encode()).hexdigest()  # noqa: S324 - Mailchimp's id

    def get(self, path: str, **params: Any) -> Any:
        response = self.session.get(f"{self.api}/{path}", params=params, timeout=60)
        assert response.status_code == 200, response.text
        return response.json()

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> requests.Response:
        response = self.session.request(method, f"{self.api}/{path}", json=body, timeout=60)
        assert response.status_code in (200, 204), response.text
        return response

    def member(self, email: str) -> dict[str, Any]:
        data: dict[str, Any] = self.get(f"lists/{self.list_id}/members/{self.hash(email)}")
        return data

    def snapshot(self) -> dict[str, tuple[str, tuple[tuple[str, Any], ...], tuple[str, ...]]]:
        """Every member's status, merge fields and tags (what a sync decides), keyed by email."""
        out = {}
        offset = 0
        while True:
            page = self.get(
                f"lists/{self.list_id}/members",
                count=1000,
                offset=offset,
                fields="members.email_address,members.status,members.merge_fields,members.tags,total_items",
            )
            for m in page["members"]:
                tags = tuple(sorted(t["name"] for t in m.get("tags", [])))
                merge = tuple(sorted((k, str(v)) for k, v in m["merge_fields"].items()))
                out[m["email_address"].lower()] = (m["status"], merge, tags)
            offset += 1000
            if offset >= page["total_items"]:
                return out

    def send_campaign_to(self, emails: list[str], tag: str) -> str:
        """Create a campaign for ``emails`` only (through a static tag segment) and send it."""
        for email in emails:
            self.call(
                "POST",
                f"lists/{self.list_id}/members/{self.hash(email)}/tags",
                {"tags": [{"name": tag, "status": "active"}]},
            )
        segments = self.get(f"lists/{self.list_id}/segments", count=1000)["segments"]
        segment_id = next(s["id"] for s in segments if s["name"] == tag)
        campaign = self.call(
            "POST",
            "campaigns",
            {
                "type": "regular",
                "recipients": {
                    "list_id": self.list_id,
                    "segment_opts": {"saved_segment_id": segment_id},
                },
                "settings": {
                    "subject_line": "Autumn offers",
                    "title": f"e2e {tag}",
                    "from_name": "Shop",
                    "reply_to": "shop@example.com",
                },
            },
        ).json()
        self.call("POST", f"campaigns/{campaign['id']}/actions/send")
        return str(campaign["id"])


class Project:
    """The Meltano project pointed at one sandbox, with state and outputs in a temporary folder."""

    def __init__(self, sandbox: RunningSandbox, workdir: Path) -> None:
        self.sandbox = sandbox
        self.workdir = workdir
        self.env = sandbox_env(sandbox.info, workdir)
        # its own `.meltano/run`: tests on the other worker run the same plugins at the same time
        self.env["MELTANO_SYS_DIR_ROOT"] = str(private_sys_dir(workdir))
        self.oro = Oro(sandbox)
        self.mailchimp = Mailchimp(sandbox)

    def run(self, *args: str) -> RunResult:
        return meltano("run", *args, env=self.env).check()
