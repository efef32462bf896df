"""The record gate: schema violations answered per record (essential fields) or per field (the rest)."""

from __future__ import annotations

import json
from pathlib import Path

from oromc_common.records import RecordGate
from oromc_common.report import RunReport, describe_value

SCHEMA = {
    "type": "object",
    "required": ["email"],
    "properties": {
        "email": {"type": ["string", "null"]},
        "first_name": {"type": ["string", "null"]},
        "tags": {"type": ["array", "null"], "items": {"type": "string"}},
        "marketing_consent": {"type": ["boolean", "null"]},
        "updated_at": {"type": ["string", "null"], "format": "date-time"},
        "merge_fields": {"type": "object"},
    },
}


def gate() -> RecordGate:
    return RecordGate(SCHEMA, ["email"], ["marketing_consent"])


def test_a_bad_optional_field_is_dropped_and_the_record_kept() -> None:
    record = {"email": "a@b.com", "tags": "notalist", "first_name": "Ann", "marketing_consent": True}
    verdict = gate().check(record)
    assert verdict.rejected is None
    assert [p.field for p in verdict.dropped or []] == ["tags"]
    assert record == {"email": "a@b.com", "first_name": "Ann", "marketing_consent": True}


def test_an_essential_or_key_field_rejects_the_record() -> None:
    verdict = gate().check({"email": "a@b.com", "marketing_consent": "yes"})
    assert verdict.rejected is not None
    assert (verdict.reason, verdict.rejected.field) == ("schema_violation", "marketing_consent")
    verdict = gate().check({"first_name": "Ann"})
    assert verdict.rejected is not None
    assert (verdict.reason, verdict.rejected.field) == ("missing_key", "email")


def test_unparseable_date_time_and_control_characters_are_problems() -> None:
    record = {"email": "a@b.com", "updated_at": "not-a-date", "merge_fields": {"FNAME": "A\x00b", "LNAME": "ok"}}
    verdict = gate().check(record)
    assert sorted(p.field for p in verdict.dropped or []) == ["merge_fields.FNAME", "updated_at"]
    assert record == {"email": "a@b.com", "merge_fields": {"LNAME": "ok"}}
    assert gate().check({"email": "a@b.com", "updated_at": "2024-05-01T10:00:00Z"}).dropped == []


def test_messages_and_the_report_never_hold_the_value(tmp_path: Path) -> None:
    secret = "private-value-123"
    verdict = gate().check({"email": "a@b.com", "first_name": {"n": secret}})
    (problem,) = verdict.dropped or []
    assert secret not in problem.message
    report = RunReport("t", rejects_path=tmp_path / "r.jsonl")
    report.reject_field("contacts", "k", "invalid_field", problem.field, problem.value, problem.message)
    report.close()
    (line,) = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert secret not in json.dumps(line)
    assert (line["kind"], line["field"], line["value"]) == ("field_reject", "first_name", "object, 1 key")
    summary = report.summary()["streams"]["contacts"]
    assert summary["fields_rejected"] == 1
    assert "rejected" not in summary
    assert describe_value("a\x00b") == "string, 3 chars, control characters U+0000"
    assert describe_value("x" * 10_000) == "string, 10000 chars"


def test_the_fast_check_agrees_with_jsonschema() -> None:
    """The compiled yes/no check (a few microseconds) says what jsonschema says, on every value
    shape of the bad-input corpus and on the engagement tap's schemas."""
    from tap_mailchimp_engagement import schemas
    from target_mailchimp.contract import CONTACTS_SCHEMA

    values: list[object] = [None, True, 0, 1.0, 1.5, "", "x", "2024-01-01T00:00:00Z", "not-a-date",
                            "2024-01-01", [], ["a"], [1], {}, {"n": 1}]  # fmt: skip
    for schema in (CONTACTS_SCHEMA, schemas.MEMBERS, schemas.EMAIL_ACTIVITY, schemas.ATTRIBUTED_ORDERS):
        gate = RecordGate(schema)
        assert gate._fast is not None
        for name in schema["properties"]:
            for value in values:
                record = {"email": "a@b.com", "list_id": "l", "id": "i", "last_changed": "2024-01-01T00:00:00Z",
                          "campaign_id": "c", "email_id": "e", "action": "open", "timestamp": "2024-01-01T00:00:00Z",
                          "url": "", "store_id": "s", name: value}  # fmt: skip
                assert gate._fast(record) == gate.validator.is_valid(record), (name, value)


def test_a_record_level_violation_never_quotes_the_record() -> None:
    schema = {
        "type": "object",
        "anyOf": [{"properties": {"a": {"type": "integer"}}}, {"properties": {"a": {"type": "null"}}}],
        "properties": {"a": {}},
    }
    verdict = RecordGate(schema).check({"a": "private-value-77"})
    assert verdict.rejected is not None
    assert "private-value-77" not in verdict.rejected.message
