"""Shared fixtures: one sandbox per test session, re-seeded per test, and a target runner."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from oromc_common.mailchimp import MailchimpClient, PermanentMailchimpError, subscriber_hash
from oromc_sandbox.testing import RunningSandbox, running_sandbox
from target_mailchimp.contract import CONTACTS_KEY_PROPERTIES, CONTACTS_SCHEMA
from target_mailchimp.target import TargetMailchimp

DOMAIN = "shop-example.com"


@pytest.fixture(scope="session")
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox(customers=5, seed=11) as sb:
        yield sb


@pytest.fixture
def sb(sandbox: RunningSandbox) -> RunningSandbox:
    sandbox.reset()
    sandbox.set_faults("mailchimp", rate=0)
    return sandbox


@pytest.fixture
def config(sb: RunningSandbox, tmp_path: Path) -> dict[str, Any]:
    mc = sb.info["mailchimp"]
    return {
        "api_key": mc["api_key"],
        "api_url": sb.mailchimp_api_url,
        "list_id": mc["list_id"],
        "rejects_path": str(tmp_path / "rejects.jsonl"),
        "backoff_factor_seconds": 0.05,
        "max_tries": 8,
    }


@pytest.fixture
def api(sb: RunningSandbox) -> MailchimpClient:
    """A direct client to inspect and prepare the audience (not counted by the target)."""
    mc = sb.info["mailchimp"]
    return MailchimpClient(api_key=mc["api_key"], api_url=sb.mailchimp_api_url, max_tries=1)


def contact(i: int, **overrides: Any) -> dict[str, Any]:
    """A valid contact record."""
    record: dict[str, Any] = {
        "email": f"person{i}@{DOMAIN}",
        "first_name": f"First{i}",
        "last_name": f"Last{i}",
        "phone": f"+1 555 010 {i:04d}",
        "customer_user_id": i,
        "customer_id": 1000 + i % 3,
        "customer_name": f"Account {i % 3}",
        "customer_group": "Retail" if i % 2 else "Wholesale",
        "tags": [],
        "enabled": True,
        "confirmed": True,
        "is_guest": False,
        "updated_at": "2024-01-01T00:00:00+00:00",
    }
    record.update(overrides)
    return record


def singer_lines(
    records: Iterable[dict[str, Any]], state_every: int = 0, stream: str = "contacts"
) -> list[str]:
    """SCHEMA + RECORD lines (+ a STATE {"n": k} after every ``state_every`` records and at the end)."""
    lines = [
        json.dumps(
            {
                "type": "SCHEMA",
                "stream": stream,
                "schema": CONTACTS_SCHEMA,
                "key_properties": CONTACTS_KEY_PROPERTIES,
            }
        )
    ]
    n = 0
    for n, record in enumerate(records, start=1):
        lines.append(json.dumps({"type": "RECORD", "stream": stream, "record": record}))
        if state_every and n % state_every == 0:
            lines.append(json.dumps({"type": "STATE", "value": {"n": n}}))
    lines.append(json.dumps({"type": "STATE", "value": {"n": n}}))
    return lines


class _Input(io.StringIO):
    """Input whose lines can trigger a callback (e.g. turn faults on mid-run)."""

    def __init__(self, lines: list[str], hooks: dict[int, Callable[[], None]]) -> None:
        super().__init__()
        self._lines = lines
        self._hooks = hooks

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]
        for i, line in enumerate(self._lines):
            if i in self._hooks:
                self._hooks[i]()
            yield line + "\n"

    def readline(self, size: int | None = -1) -> str:  # pragma: no cover - SDK iterates
        raise NotImplementedError


def run_target(
    config: dict[str, Any],
    lines: list[str],
    hooks: dict[int, Callable[[], None]] | None = None,
) -> tuple[TargetMailchimp, list[dict[str, Any]]]:
    """Run the target in-process; returns it and the state values it emitted (in order)."""
    target = TargetMailchimp(config=config)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            target.listen(file_input=_Input(lines, hooks or {}))
    finally:
        run_target.last_states = [json.loads(x) for x in out.getvalue().splitlines() if x.strip()]  # type: ignore[attr-defined]
    return target, run_target.last_states  # type: ignore[attr-defined]


def member(api: MailchimpClient, list_id: str, email: str) -> dict[str, Any] | None:
    """The member as Mailchimp holds it (with all tags), or None."""
    try:
        item = api.get(f"/lists/{list_id}/members/{subscriber_hash(email)}")
    except PermanentMailchimpError as exc:
        if exc.status == 404:
            return None
        raise
    tags = list(api.paginate(f"/lists/{list_id}/members/{subscriber_hash(email)}/tags", "tags"))
    item["all_tags"] = sorted(t["name"] for t in tags)
    return item


def writes(sb: RunningSandbox) -> int:
    """Write calls (POST/PUT/PATCH/DELETE) the Mailchimp sandbox served since the last reset."""
    return int(sb.stats("mailchimp")["writes"])


def routes(sb: RunningSandbox) -> dict[str, int]:
    """Requests per route the Mailchimp sandbox served since the last reset (any status)."""
    return {
        route: sum(statuses.values())
        for route, statuses in sb.stats("mailchimp")["requests"].items()
    }
