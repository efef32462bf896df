"""The bad-input corpus (``tests/data/bad_input_corpus.json``): every hostile record gets its answer.

Each case is fed as Singer messages straight into target-mailchimp or target-orocommerce (in-process)
against one small sandbox; the answer seen in the rejects report (and in Mailchimp / Oro) must be the
case's expected per-record answer: written, field_reject (the field left out, the record written),
reject (the record not written; the run goes on), ignored, or the SDK's error for a broken protocol.
The figure "answered / total" is printed and is the README's bad-input row.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from oromc_common.mailchimp import MailchimpClient, PermanentMailchimpError, subscriber_hash
from oromc_common.oro import clear_token_cache
from oromc_sandbox.testing import OroTestClient, RunningSandbox, running_sandbox
from tap_mailchimp_engagement import schemas as mc_schemas
from target_mailchimp.client import email_hash
from target_mailchimp.contract import CONTACTS_KEY_PROPERTIES, CONTACTS_SCHEMA
from target_mailchimp.tags import TagWrites
from target_mailchimp.target import TargetMailchimp
from target_orocommerce.target import TargetOroCommerce

CORPUS = json.loads((Path(__file__).parents[1] / "data" / "bad_input_corpus.json").read_text())
DOMAIN = "shop-example.com"
LIST_ID = "a1b2c3d4e5"
LAST_CHANGED = "2030-01-01T10:00:00+00:00"  # later than any seeded Oro updatedAt
MEMBER_KEYS = ["list_id", "id"]
ABSENT = "$absent"


def expand(value: Any) -> Any:
    """The corpus' shorthands: ``{"$repeat": c, "times": n}`` and ``{"$concat": [...]}``."""
    if isinstance(value, dict):
        if "$repeat" in value:
            return str(value["$repeat"]) * int(value["times"])
        if "$concat" in value:
            return "".join(expand(v) for v in value["$concat"])
        return {k: expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v) for v in value]
    return value


def overlay(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    record = copy.deepcopy(base)
    for key, value in expand(overrides).items():
        if value == ABSENT:
            record.pop(key, None)
        else:
            record[key] = value
    return record


def contact(n: int, overrides: dict[str, Any]) -> dict[str, Any]:
    base = {
        "email": f"case{n}@{DOMAIN}",
        "customer_user_id": 7000 + n,
        "first_name": "First",
        "last_name": "Last",
        "enabled": True,
        "is_guest": False,
        "tags": [],
        "updated_at": "2024-01-01T00:00:00+00:00",
    }
    return overlay(base, overrides)


def line(stream: str, record: dict[str, Any]) -> str:
    return json.dumps({"type": "RECORD", "stream": stream, "record": record}, ensure_ascii=False)


def schema_line(stream: str, schema: dict[str, Any], keys: list[str]) -> str:
    return json.dumps({"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": keys})


CONTACTS_SCHEMA_LINE = schema_line("contacts", CONTACTS_SCHEMA, CONTACTS_KEY_PROPERTIES)


def run(target: Any, lines: list[str]) -> list[dict[str, Any]]:
    """Run a target in-process on ``lines``; the state values it emitted (a target writes each as one line)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        target.listen(file_input=io.StringIO("\n".join(lines) + "\n"))
    return [json.loads(x) for x in out.getvalue().splitlines() if x.strip()]


def rejects(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def observed(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """The answer a record got, from its lines in the rejects report."""
    for item in lines:
        if item["kind"] == "reject":
            return {"answer": "reject", "reason": item["reason"], "field": item["field"]}
    fields = [item for item in lines if item["kind"] == "field_reject"]
    if fields:
        return {"answer": "field_reject", "reason": fields[0]["reason"], "field": fields[0]["field"]}
    return {"answer": "written"}


def wanted(expect: dict[str, Any]) -> dict[str, Any]:
    return {k: expect[k] for k in ("answer", "reason", "field") if k in expect}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox(customers=32, seed=14, tagging=True) as sb:
        yield sb


class Tally:
    """Answered cases per part of the corpus, printed at the end (the README's figure)."""

    answered: int = 0
    total: int = 0
    misses: list[str]

    def __init__(self) -> None:
        self.misses = []

    def check(self, case_id: str, got: dict[str, Any], expect: dict[str, Any], extra: list[str]) -> None:
        self.total += 1
        if got == wanted(expect) and not extra:
            self.answered += 1
        else:
            self.misses.append(f"{case_id}: expected {wanted(expect)}, got {got} {extra}")


TALLY = Tally()


def member_of(api: MailchimpClient, list_id: str, email: str) -> dict[str, Any] | None:
    try:
        return api.get(f"/lists/{list_id}/members/{subscriber_hash(email)}")
    except PermanentMailchimpError as exc:
        if exc.status == 404:
            return None
        raise


def test_target_mailchimp_answers_every_bad_contact(sandbox: RunningSandbox, tmp_path: Path) -> None:
    sandbox.reset()
    mc = sandbox.info["mailchimp"]
    list_id = mc["list_id"]
    api = MailchimpClient(api_key=mc["api_key"], api_url=sandbox.mailchimp_api_url, max_tries=1)
    api.post(f"/lists/{list_id}/merge-fields", {"tag": "LTV", "name": "Lifetime value", "type": "number"})
    config = {
        "api_key": mc["api_key"],
        "api_url": sandbox.mailchimp_api_url,
        "list_id": list_id,
        "rejects_path": str(tmp_path / "rejects.jsonl"),
        "backoff_factor_seconds": 0.05,
        "merge_fields": {"FNAME": "first_name", "LNAME": "last_name", "PHONE": "phone", "LTV": "lifetime_value"},
    }
    cases = CORPUS["target-mailchimp"]["cases"]
    records = [contact(n, case["record"]) for n, case in enumerate(cases)]
    for case, record in zip(cases, records, strict=True):
        setup = case.get("setup")
        if setup:
            api.post(f"/lists/{list_id}/members", {"email_address": record["email"], "status": "unsubscribed"})
        if setup == "forgotten":
            api.post(f"/lists/{list_id}/members/{subscriber_hash(record['email'])}/actions/delete-permanent", {})
    states = run(TargetMailchimp(config=config), [CONTACTS_SCHEMA_LINE, *(line("contacts", r) for r in records),
                                                   json.dumps({"type": "STATE", "value": {"done": 1}})])
    assert states[-1] == {"done": 1}  # the run went on to the end
    report = rejects(Path(config["rejects_path"]))
    assert all(str(r.get("value") or "")[:12] != "someone@mail" for r in report)  # values are redacted
    for case, record in zip(cases, records, strict=True):
        email = record.get("email")
        hash_ = email_hash(email.strip()) if isinstance(email, str) and email.strip() else "none"
        key = TagWrites.key_of(record, hash_)
        got = observed([r for r in report if r["key"] == key])
        expect = case["expect"]
        extra: list[str] = []
        member = member_of(api, list_id, email.strip()) if isinstance(email, str) and "@" in email else None
        if expect["answer"] == "not_re_added" and got == {"answer": "written"} and member is None:
            got = {"answer": "not_re_added"}  # no reject line and no member: counted, not re-added
        if expect["answer"] in {"written", "field_reject"} and member is None:
            extra.append("member missing")
        if member is not None:
            merge = member.get("merge_fields") or {}
            expected_merge = expect.get("merge", {}).items()
            extra += [f"{tag}={merge.get(tag)!r}" for tag, value in expected_merge if merge.get(tag) != value]
            extra += [f"{tag} set" for tag in expect.get("merge_absent", []) if merge.get(tag)]
            if "status" in expect and member["status"] != expect["status"]:
                extra.append(f"status {member['status']}")
            tags = {t["name"] for t in member.get("tags") or []}
            extra += [f"tag {t}" for t in expect.get("tags_absent", []) if t in tags]
        if expect.get("absent") and member is not None:
            extra.append("member exists")
        TALLY.check(case["id"], got, expect, extra)
    assert not TALLY.misses, "\n".join(TALLY.misses)


class Oro(OroTestClient):
    def users(self, n: int) -> list[dict[str, Any]]:
        primary = {
            a["relationships"]["customerUser"]["data"]["id"]
            for a in self.all("customeruseraddresses")
            if a["attributes"].get("primary")
        }
        users = [u for u in self.all("customerusers") if u["id"] in primary and not u["attributes"].get("isGuest")]
        assert len(users) >= n, "the seed has too few customer users with a primary address"
        return users[:n]

    def user(self, user_id: str) -> dict[str, Any]:
        return dict(self.get(f"customerusers/{user_id}")["data"]["attributes"])


def test_target_orocommerce_answers_every_bad_member(sandbox: RunningSandbox, tmp_path: Path) -> None:
    sandbox.reset()
    clear_token_cache()
    oro_info = sandbox.info["oro"]
    config = {
        "base_url": sandbox.oro_base_url,
        "client_id": oro_info["client_id"],
        "client_secret": oro_info["client_secret"],
        "rejects_path": str(tmp_path / "rejects.jsonl"),
        "backoff_max_seconds": 2,
    }
    oro = Oro(sandbox)
    cases = CORPUS["target-orocommerce"]["cases"]
    users = oro.users(len(cases))
    records = []
    for user, case in zip(users, cases, strict=True):
        email = user["attributes"]["email"]
        base = {
            "list_id": LIST_ID,
            "id": hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest(),
            "email_address": email,
            "status": "subscribed",
            "merge_fields": {},
            "last_changed": LAST_CHANGED,
            "tags_count": 0,
            "tags": [],
        }
        records.append(overlay(base, case["record"]))
    lines = [schema_line("members", mc_schemas.MEMBERS, MEMBER_KEYS), *(line("members", r) for r in records),
             json.dumps({"type": "STATE", "value": {"done": 1}})]
    states = run(TargetOroCommerce(config=config, validate_config=True), lines)
    assert states[-1] == {"done": 1}  # the run went on to the end
    report = rejects(Path(config["rejects_path"]))
    for user, case, record in zip(users, cases, records, strict=True):
        key = f"{record.get('list_id')}/{record.get('id')}"
        got = observed([r for r in report if r["key"] == key])
        expect = case["expect"]
        now = oro.user(user["id"])
        extra = [f"{k}={now.get(k)!r}" for k, v in expect.get("oro", {}).items() if now.get(k) != v]
        extra += [f"{k} changed" for k in expect.get("oro_kept", []) if now.get(k) != user["attributes"].get(k)]
        TALLY.check(case["id"], got, expect, extra)
    assert not TALLY.misses, "\n".join(TALLY.misses)


def _protocol_lines(case: dict[str, Any]) -> list[str]:
    lines = []
    for item in case["lines"]:
        if item == "SCHEMA":
            lines.append(CONTACTS_SCHEMA_LINE)
        elif "$raw" in item:
            lines.append(item["$raw"])
        elif "$contact" in item:
            lines.append(line("contacts", contact(900, item["$contact"])))
        else:
            lines.append(json.dumps(item))
    return lines


@pytest.mark.parametrize("case", CORPUS["protocol"]["cases"], ids=lambda c: c["id"])
def test_protocol_errors_are_answered(
    sandbox: RunningSandbox, tmp_path: Path, case: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    sandbox.reset()
    clear_token_cache()
    rejects_path = tmp_path / "rejects.jsonl"
    if case["target"] == "target-mailchimp":
        mc = sandbox.info["mailchimp"]
        target: Any = TargetMailchimp(config={
            "api_key": mc["api_key"], "api_url": sandbox.mailchimp_api_url, "list_id": mc["list_id"],
            "rejects_path": str(rejects_path),
        })  # fmt: skip
        report = target.report
    else:
        oro = sandbox.info["oro"]
        target = TargetOroCommerce(config={
            "base_url": sandbox.oro_base_url, "client_id": oro["client_id"],
            "client_secret": oro["client_secret"], "rejects_path": str(rejects_path),
        }, validate_config=True)  # fmt: skip
        report = None
    expect = case["expect"]
    lines = _protocol_lines(case)
    got: dict[str, Any]
    extra: list[str] = []
    try:
        run(target, lines)
    except Exception as exc:  # the answer to a broken protocol is the SDK's error
        got = {"answer": "error"}
        if type(exc).__name__ != expect.get("error") or expect.get("message", "") not in str(exc):
            extra.append(f"{type(exc).__name__}: {str(exc)[:200]}")
        private = expect.get("not_in_output")
        if private and (private in str(exc) or private in caplog.text):
            extra.append("the input line was logged or quoted")
    else:
        got = observed(rejects(rejects_path))
        if expect["answer"] == "ignored":
            stream, counter, n = expect["counter"]
            summary = (report or target.services.report).summary()["streams"]
            got = {"answer": "ignored"} if summary.get(stream, {}).get(counter) == n else {"answer": str(summary)}
    TALLY.check(case["id"], got, expect, extra)
    assert got == wanted(expect), extra
    assert not extra, extra


def test_zz_print_the_figure() -> None:
    """The README's figure: bad inputs answered / total (over the tests above in this module)."""
    total = sum(len(CORPUS[part]["cases"]) for part in ("target-mailchimp", "target-orocommerce", "protocol"))
    assert total >= 60
    print(f"\nBAD INPUTS ANSWERED {TALLY.answered}/{total}")
    if TALLY.total == total:
        assert TALLY.answered == total, "\n".join(TALLY.misses)
