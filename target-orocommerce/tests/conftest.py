"""Fixtures: one sandbox per session (re-seeded per test), a direct Oro client, a target runner.

Input messages are built here in the shape of tap-mailchimp-engagement's streams, using the tap's own
schemas (its README is this target's input contract).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import subprocess
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from oromc_common.oro import OroOAuth2Authenticator, clear_token_cache
from oromc_sandbox.testing import OroTestClient, RunningSandbox, running_sandbox
from tap_mailchimp_engagement import schemas
from tap_mailchimp_engagement.engagement import activity_event_id
from target_orocommerce.target import TargetOroCommerce

SCHEMAS: dict[str, tuple[dict[str, Any], list[str]]] = {
    "members": (schemas.MEMBERS, ["list_id", "id"]),
    "campaigns": (schemas.CAMPAIGNS, ["id"]),
    "email_activity": (schemas.EMAIL_ACTIVITY, ["event_id"]),
    "unsubscribes": (schemas.UNSUBSCRIBES, ["campaign_id", "email_id"]),
    "sent_to": (schemas.SENT_TO, ["campaign_id", "email_id"]),
    "attributed_orders": (schemas.ATTRIBUTED_ORDERS, ["store_id", "id"]),
    "lists": (schemas.LISTS, ["id"]),
    "forgotten_members": (schemas.FORGOTTEN_MEMBERS, ["list_id", "oro_id", "detected_at"]),
}
LIST_ID = "a1b2c3d4e5"
BASE_TIME = datetime(2030, 1, 1, 10, 0, tzinfo=UTC)  # later than any seeded Oro updatedAt


def iso(dt: datetime) -> str:
    return dt.isoformat()


def email_id(email: str) -> str:
    return hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest()


@pytest.fixture(scope="session")
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox(customers=40, seed=5, tagging=True) as sb:
        yield sb


@pytest.fixture
def sb(sandbox: RunningSandbox) -> RunningSandbox:
    sandbox.reset()
    sandbox.set_faults("oro", rate=0)
    sandbox.set_switches(latency="none", tagging=True)
    clear_token_cache()
    return sandbox


@pytest.fixture
def config(sb: RunningSandbox, tmp_path: Path) -> dict[str, Any]:
    oro = sb.info["oro"]
    return {
        "base_url": sb.oro_base_url,
        "client_id": oro["client_id"],
        "client_secret": oro["client_secret"],
        "rejects_path": str(tmp_path / "rejects.jsonl"),
        "backoff_max_seconds": 2,
        "max_tries": 10,
        "state_after_each_state_message": True,
    }


class OroProbe(OroTestClient):
    """The sandbox's Oro API, to prepare and inspect Oro (its token shared with the target)."""

    def __init__(self, sb: RunningSandbox) -> None:
        oro = sb.info["oro"]
        auth = OroOAuth2Authenticator(
            base_url=sb.oro_base_url, client_id=oro["client_id"], client_secret=oro["client_secret"]
        )
        super().__init__(sb, timeout=30, auth=auth)
        self.api = self.api_url

    def users_with_primary_phone_address(self, n: int) -> list[dict[str, Any]]:
        """``n`` registered customer users that have a primary address."""
        primary = {}
        for address in self.all("customeruseraddresses"):
            if address["attributes"].get("primary"):
                primary[address["relationships"]["customerUser"]["data"]["id"]] = address
        users = []
        for user in self.all("customerusers"):
            if user["id"] in primary and not user["attributes"].get("isGuest"):
                user["primary_address"] = primary[user["id"]]
                users.append(user)
            if len(users) == n:
                break
        assert len(users) == n, "the seed has too few customer users with a primary address"
        return users

    def user(self, user_id: str) -> dict[str, Any]:
        return self.get(f"customerusers/{user_id}")["data"]

    def tag_names(self, user: dict[str, Any]) -> set[str]:
        ids = {t["id"] for t in user["relationships"]["tags"]["data"]}
        return {t["attributes"]["name"] for t in self.all("tags") if t["id"] in ids}

    def mailchimp_activities(self) -> list[dict[str, Any]]:
        out = []
        for activity in self.all("marketingactivities"):
            details = activity["attributes"].get("details") or ""
            if '"source":"mailchimp"' in details:
                activity["details"] = json.loads(details)
                out.append(activity)
        return out


@pytest.fixture
def oro(sb: RunningSandbox) -> OroProbe:
    return OroProbe(sb)


def messages(streams: dict[str, list[dict[str, Any]]], state_every: int = 0) -> list[str]:
    """SCHEMA + RECORD lines per stream (+ STATE {"n": k} every ``state_every`` records and at the end)."""
    lines: list[str] = []
    n = 0
    for stream, records in streams.items():
        schema, keys = SCHEMAS[stream]
        lines.append(json.dumps({"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": keys}))
        for record in records:
            n += 1
            lines.append(json.dumps({"type": "RECORD", "stream": stream, "record": record}))
            if state_every and n % state_every == 0:
                lines.append(json.dumps({"type": "STATE", "value": {"n": n}}))
    lines.append(json.dumps({"type": "STATE", "value": {"n": n, "done": True}}))
    return lines


def run_target(config: dict[str, Any], lines: Iterable[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run the target in-process; return (run summary, emitted state values)."""
    target = TargetOroCommerce(config=config, validate_config=True)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        target.listen(io.StringIO("\n".join(lines) + "\n"))
    states = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    return target.services.report.summary(), states


TAP = [sys.executable, "-c", "from tap_mailchimp_engagement.tap import TapMailchimpEngagement; "
                             "TapMailchimpEngagement.cli()"]


def run_tap(
    sb: RunningSandbox, tmp_path: Path, streams: set[str], state: dict[str, Any] | None = None
) -> list[str]:
    """The real tap-mailchimp-engagement's messages for ``streams`` (a run over HTTP), from ``state``."""
    config = tmp_path / "tap.json"
    config.write_text(json.dumps({
        "api_url": sb.mailchimp_api_url,
        "api_key": sb.info["mailchimp"]["api_key"],
        "rejects_path": str(tmp_path / "tap-rejects.jsonl"),
    }))
    catalog_path = tmp_path / "catalog.json"
    if not catalog_path.exists():
        discovered = subprocess.run([*TAP, "--config", str(config), "--discover"], check=True,
                                    capture_output=True, text=True, timeout=120)
        catalog = json.loads(discovered.stdout)
        for stream in catalog["streams"]:
            for entry in stream["metadata"]:
                if entry["breadcrumb"] == []:
                    entry["metadata"]["selected"] = stream["tap_stream_id"] in streams
        catalog_path.write_text(json.dumps(catalog))
    args = [*TAP, "--config", str(config), "--catalog", str(catalog_path)]
    if state is not None:
        (tmp_path / "tap-state.json").write_text(json.dumps(state))
        args += ["--state", str(tmp_path / "tap-state.json")]
    run = subprocess.run(args, check=True, capture_output=True, text=True, timeout=300)
    return [line for line in run.stdout.splitlines() if line.strip()]


def last_state(lines: Iterable[str]) -> dict[str, Any]:
    """The value of the last STATE message among a tap's ``lines``."""
    states = [json.loads(line) for line in lines if '"STATE"' in line]
    value: dict[str, Any] = states[-1]["value"] if states else {}
    return value


def rejects(config: dict[str, Any]) -> list[dict[str, Any]]:
    path = Path(config["rejects_path"])
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def member(email: str, **overrides: Any) -> dict[str, Any]:
    """A ``members`` record."""
    record: dict[str, Any] = {
        "list_id": LIST_ID,
        "id": email_id(email),
        "email_address": email,
        "status": "subscribed",
        "merge_fields": {},
        "last_changed": iso(BASE_TIME),
        "tags_count": 0,
        "tags": [],
    }
    record.update(overrides)
    return record


def campaign(cid: str, title: str, send_time: datetime = BASE_TIME) -> dict[str, Any]:
    return {
        "id": cid,
        "type": "regular",
        "status": "sent",
        "send_time": iso(send_time),
        "settings": {"title": title, "subject_line": f"Subject of {title}"},
        "recipients": {"list_id": LIST_ID},
    }


def activity(
    cid: str, email: str, action: str, at: datetime, url: str | None = None, bounce_type: str | None = None
) -> dict[str, Any]:
    return {
        "event_id": activity_event_id(cid, email_id(email), action, iso(at), url),
        "campaign_id": cid,
        "list_id": LIST_ID,
        "email_id": email_id(email),
        "email_address": email,
        "action": action,
        "timestamp": iso(at),
        "url": url,
        "bounce_type": bounce_type,
        "ip": "",
    }


def engagement(
    emails: list[str], cid: str = "c0ffee0001", opens_per_member: int = 3
) -> dict[str, list[dict[str, Any]]]:
    """A campaign, its sends and opens/clicks/bounces for ``emails``."""
    rows = []
    for i, email in enumerate(emails):
        rows.extend(
            activity(cid, email, "open", BASE_TIME + timedelta(minutes=5 + i + k * 60))
            for k in range(opens_per_member)
        )
        rows.append(activity(cid, email, "click", BASE_TIME + timedelta(minutes=7 + i), url=f"https://shop.example.com/p/{i}"))
        if i % 5 == 4:
            bounce_type = "hard" if i % 2 else "soft"
            rows.append(activity(cid, email, "bounce", BASE_TIME + timedelta(minutes=1), bounce_type=bounce_type))
    return {
        "campaigns": [campaign(cid, "Spring sale")],
        "sent_to": [
            {"campaign_id": cid, "list_id": LIST_ID, "email_id": email_id(e), "email_address": e, "status": "sent"}
            for e in emails
        ],
        "email_activity": rows,
    }
