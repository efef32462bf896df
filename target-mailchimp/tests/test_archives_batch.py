"""Members archived because their Oro user is disabled: one ``DELETE`` each, or one ``/batches`` job
when there are many; every operation's result is read (archived, rejected or sent again)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from oromc_common.batches import OperationResult
from oromc_common.mailchimp import MailchimpClient
from oromc_common.report import RunReport
from oromc_sandbox.testing import RunningSandbox
from target_mailchimp import sync as sync_module
from target_mailchimp.client import MemberState
from target_mailchimp.models import Contact, SyncSettings
from target_mailchimp.sync import ContactSync
from target_mailchimp.tags import BATCHES_WHEN_DIRECT_CALLS_OVER

from .conftest import DOMAIN, contact, member, run_target, singer_lines

DELETE_MEMBER = "DELETE /3.0/lists/{list_id}/members/{subscriber_hash}"
BATCHES = "POST /3.0/batches"
CONSENTED = {"marketing_consent": True, "consent_changed_at": "2999-01-01T00:00:00+00:00"}


def _routes(sb: RunningSandbox) -> dict[str, int]:
    return {
        route: sum(statuses.values())
        for route, statuses in sb.stats("mailchimp")["requests"].items()
    }


def test_many_archives_go_as_one_batch(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    n = BATCHES_WHEN_DIRECT_CALLS_OVER + 2
    cfg = {
        **config,
        "disabled_user_policy": "archive",
        "status_if_new": "subscribed",
        "batch_poll_seconds": 0.2,
    }
    people = range(1, n + 2)
    run_target(cfg, singer_lines([contact(i, **CONSENTED) for i in people]))
    sb.reset_stats()
    # all but the last one disabled in Oro
    target, _ = run_target(cfg, singer_lines([contact(i, enabled=i > n, **CONSENTED) for i in people]))
    routes = _routes(sb)
    assert routes.get(BATCHES) == 1
    assert DELETE_MEMBER not in routes
    statuses = [member(api, config["list_id"], f"person{i}@{DOMAIN}")["status"] for i in people]
    assert statuses == ["archived"] * n + ["subscribed"]
    summary = target.report.summary()["streams"]["contacts"]
    assert summary["disabled_archived"] == n
    assert not summary.get("rejected_by_reason")

    # a few: one call each
    sb.reset_stats()
    run_target(cfg, singer_lines([contact(n + 1, enabled=False, **CONSENTED)]))
    routes = _routes(sb)
    assert routes.get(DELETE_MEMBER) == 1
    assert BATCHES not in routes


def test_a_windows_archives_and_tag_writes_go_as_one_batch(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    """Archives and tag writes of one window (different members) share one ``/batches`` job (Mailchimp
    runs an account's jobs one at a time, each with its own queueing): each result is applied as in a
    job of its own."""
    n = BATCHES_WHEN_DIRECT_CALLS_OVER + 2
    cfg = {
        **config,
        "disabled_user_policy": "archive",
        "status_if_new": "subscribed",
        "batch_poll_seconds": 0.2,
        "tag_write_mode": "batches",
    }
    people = range(1, n + 4)
    run_target(cfg, singer_lines([contact(i, **CONSENTED) for i in people]))
    sb.reset_stats()
    # n disabled in Oro, the other three get a tag
    records = [
        contact(i, enabled=i > n, tags=["Late"] if i > n else [], **CONSENTED) for i in people
    ]
    target, _ = run_target(cfg, singer_lines(records))
    routes = _routes(sb)
    assert routes.get(BATCHES) == 1
    assert DELETE_MEMBER not in routes
    got = [member(api, config["list_id"], f"person{i}@{DOMAIN}") for i in people]
    assert [m["status"] for m in got] == ["archived"] * n + ["subscribed"] * 3
    assert all("oro:tag:Late" in m["all_tags"] for m in got[n:])
    summary = target.report.summary()["streams"]["contacts"]
    assert summary["disabled_archived"] == n
    assert summary["tagged"] == 3
    assert not summary.get("rejected_by_reason")
    assert not target.contact_sync().batches_pending


class _Audience:
    base = "/lists/L1"
    client: Any = None

    def __init__(self) -> None:
        self.archived: list[str] = []
        self.members: dict[str, MemberState] = {}

    def archive(self, hash_: str) -> None:
        self.archived.append(hash_)

    def remember(self, hash_: str, state: MemberState) -> None:
        self.members[hash_] = state


def test_each_batched_archive_result_is_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A success is archived, a refusal is a reject with Mailchimp's reason, a retryable or missing
    result is archived again with a single call."""
    n = BATCHES_WHEN_DIRECT_CALLS_OVER + 1
    archives = [
        (Contact(key=f"customer_user_id={i}", email=f"p{i}@x.test", hash=f"h{i}", record={}),
         MemberState(status="subscribed"))
        for i in range(n)
    ]
    problem = {"status": 404, "title": "Resource Not Found", "detail": "The requested resource could not be found."}
    sent: list[list[dict[str, Any]]] = []

    def fake_run_batch(client: Any, ops: list[dict[str, Any]], **kwargs: Any) -> Any:
        sent.append(ops)
        yield OperationResult("h0", 204, None)
        yield OperationResult("h1", 404, problem)
        yield OperationResult("h2", 503, None)
        for i in range(4, n):  # h3: no result at all
            yield OperationResult(f"h{i}", 204, None)

    monkeypatch.setattr(sync_module, "run_batch", fake_run_batch)
    audience = _Audience()
    report = RunReport("target-mailchimp", rejects_path=str(tmp_path / "rejects.jsonl"))
    sync = ContactSync(audience, {}, SyncSettings(), report)
    sync._run_archives(archives)

    assert len(sent) == 1
    assert [(op["method"], op["path"]) for op in sent[0][:2]] == [
        ("DELETE", "/lists/L1/members/h0"), ("DELETE", "/lists/L1/members/h1")
    ]
    assert sorted(audience.archived) == ["h2", "h3"]  # single calls
    assert sorted(audience.members) == sorted(f"h{i}" for i in range(n) if i != 1)
    assert all(s.status == "archived" for s in audience.members.values())
    report.close()
    rejects = [json.loads(x) for x in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert [(r["key"], r["reason"]) for r in rejects] == [("customer_user_id=1", "not_found")]
