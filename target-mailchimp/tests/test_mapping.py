"""Unit tests of the pure mapping rules (merge values, tags, consent)."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

import pytest
from target_mailchimp.mapping import (
    MergeFieldSpec,
    MergeValueError,
    coerce_merge_value,
    consent_change,
    desired_tags,
    excluded_tag_value,
    is_valid_email,
    merge_values_equal,
    new_member_status,
    tag_key,
)


@pytest.mark.parametrize(
    ("kind", "options", "value", "expected"),
    [
        ("number", {}, "42", 42),
        ("number", {}, 3.5, 3.5),
        ("text", {}, True, "true"),
        ("text", {}, None, None),
        ("text", {}, "  ", ""),
        ("number", {}, "", ""),
        ("phone", {"phone_format": "US"}, "+1 (555) 123-4567", "555-123-4567"),
        ("phone", {}, "+49 30 1234567", "+49 30 1234567"),
        ("date", {"date_format": "MM/DD/YYYY"}, "2024-03-05T10:00:00+00:00", "03/05/2024"),
        ("date", {}, "2024-03-05", "2024-03-05"),
        ("birthday", {}, "1990-07-14", "07/14"),
        (
            "address",
            {},
            {"addr1": "1 Main", "city": "X", "state": "CA", "zip": "90001"},
            {"addr1": "1 Main", "city": "X", "state": "CA", "zip": "90001"},
        ),
    ],
)
def test_coerce_merge_values(kind: str, options: dict, value: object, expected: object) -> None:
    assert coerce_merge_value(MergeFieldSpec("F", kind, options), "f", value) == expected


@pytest.mark.parametrize(
    ("kind", "options", "value", "message"),
    [
        ("number", {}, "abc", "expected a number"),
        ("number", {}, True, "boolean"),
        ("phone", {}, "call me", "not a phone"),
        ("phone", {"phone_format": "US"}, "+49 30 1234567", "10 digits"),
        ("date", {}, "yesterday", "not a date"),
        ("address", {}, {"addr1": "1 Main", "city": "X"}, "missing state, zip"),
        ("url", {}, "example.com", "URL"),
        ("dropdown", {"choices": ["a", "b"]}, "c", "choices"),
    ],
)
def test_bad_merge_values_raise_with_field(
    kind: str, options: dict, value: object, message: str
) -> None:
    with pytest.raises(MergeValueError, match=message) as info:
        coerce_merge_value(MergeFieldSpec("TAG", kind, options), "source_field", value)
    assert info.value.tag == "TAG"
    assert info.value.source_field == "source_field"


def test_values_equal_normalises_numbers_and_addresses() -> None:
    assert merge_values_equal(MergeFieldSpec("N", "number"), 5, "5.0")
    assert not merge_values_equal(MergeFieldSpec("N", "number"), 5, "")
    addr = {"addr1": "1", "city": "c", "state": "s", "zip": "z"}
    assert merge_values_equal(
        MergeFieldSpec("A", "address"), addr, {**addr, "addr2": "", "country": ""}
    )
    assert merge_values_equal(MergeFieldSpec("A", "address"), "", {"addr1": "", "city": ""})
    assert not merge_values_equal(MergeFieldSpec("T", "text"), "Ann", "Anne")


def test_emails() -> None:
    assert is_valid_email("a.b+c@example.co.uk")
    for bad in ("", "plain", "a@b", "a b@example.com", "a@-x.com", "a@@example.com"):
        assert not is_valid_email(bad)


def test_desired_tags_prefix_lists_and_rules() -> None:
    record = {
        "customer_group": "Wholesale",
        "customer_name": "Acme",
        "tags": ["VIP", " vip ", ""],
        "is_guest": True,
    }
    tags = desired_tags(
        record,
        "oro:",
        {"customer_group": "group", "customer_name": "account", "tags": "tag"},
        [{"tag": "guest", "field": "is_guest", "equals": True}],
    )
    assert sorted(tags.values()) == [
        "oro:account:Acme",
        "oro:group:Wholesale",
        "oro:guest",
        "oro:tag:VIP",
    ]


T0 = "2024-01-01T00:00:00+00:00"
LATER = datetime(2024, 2, 1, tzinfo=UTC)
EARLIER = datetime(2023, 12, 1, tzinfo=UTC)


def test_new_member_status() -> None:
    assert new_member_status({}, "transactional") == "transactional"
    assert new_member_status({"marketing_consent": True}, "subscribed") == "subscribed"
    assert new_member_status({"marketing_consent": False}, "subscribed") == "unsubscribed"


@pytest.mark.parametrize(
    ("record", "status", "pending", "expected", "blocked"),
    [
        (
            {"marketing_consent": True},
            "unsubscribed",
            False,
            None,
            False,
        ),  # no timestamp: not explicit
        (
            {"marketing_consent": True, "consent_changed_at": EARLIER},
            "transactional",
            False,
            None,
            False,
        ),
        (
            {"marketing_consent": True, "consent_changed_at": LATER},
            "transactional",
            False,
            "subscribed",
            False,
        ),
        (
            {"marketing_consent": True, "consent_changed_at": LATER},
            "unsubscribed",
            False,
            None,
            True,
        ),
        ({"marketing_consent": True, "consent_changed_at": LATER}, "cleaned", True, None, True),
        (
            {"marketing_consent": True, "consent_changed_at": LATER},
            "unsubscribed",
            True,
            "pending",
            False,
        ),
        (
            {"marketing_consent": False, "consent_changed_at": LATER},
            "subscribed",
            False,
            "unsubscribed",
            False,
        ),
        (
            {"marketing_consent": False, "consent_changed_at": EARLIER},
            "subscribed",
            False,
            None,
            False,
        ),
        (
            {"marketing_consent": True, "consent_changed_at": LATER},
            "subscribed",
            False,
            None,
            False,
        ),
    ],
)
def test_consent_changes_only_when_explicit_and_newer(
    record: dict, status: str, pending: bool, expected: str | None, blocked: bool
) -> None:
    decision = consent_change(record, status, T0, resubscribe_with_pending=pending)
    assert decision.status == expected
    assert decision.blocked is blocked


def test_long_tag_names_are_cut_and_trimmed_like_mailchimp() -> None:
    name = "A" * 87 + " Benson"  # the cut at 100 characters (with "oro:account:") falls on a space
    tags = desired_tags({"customer_name": name}, "oro:", {"customer_name": "account"}, [])
    (tag,) = tags.values()
    assert len(tag) <= 100
    assert tag == tag.strip()


def test_values_equal_ignores_form_not_content() -> None:
    text = MergeFieldSpec("FNAME", "text")
    nfd = unicodedata.normalize("NFD", "Zoë")
    assert nfd != "Zoë"
    assert merge_values_equal(text, nfd, "Zoë")
    assert merge_values_equal(text, "Anne  Marie ", " Anne Marie")
    assert not merge_values_equal(text, "anne", "Anne")  # case is content
    phone = MergeFieldSpec("PHONE", "phone", {"phone_format": "International"})
    assert merge_values_equal(phone, "+1 (555) 010 0001", "+1 555-010-0001")
    assert not merge_values_equal(phone, "+1 555-010-0002", "+1 555-010-0001")
    assert not merge_values_equal(phone, "+1 555-010-0001", "")
    assert merge_values_equal(phone, "", "")
    address = MergeFieldSpec("A", "address")
    addr = {"addr1": "1 Rue Blé", "city": "Paris", "state": "IDF", "zip": "75001"}
    assert merge_values_equal(
        address, {**addr, "addr1": unicodedata.normalize("NFD", "1 Rue Blé")}, addr
    )


def test_tag_keys_match_case_composition_and_spacing() -> None:
    assert tag_key("oro:tag:Über  Kunde") == tag_key(
        unicodedata.normalize("NFD", "ORO:TAG:über Kunde ")
    )
    assert tag_key("oro:tag:A") != tag_key("oro:tag:B")


def test_source_tags_with_another_owners_prefix_give_no_tag() -> None:
    record = {
        "tags": ["mc:VIP", "MC:Lead", " mc:x", "Reseller", "mcdonalds"],
        "customer_name": "mc:Acme",
    }
    fields = {"tags": "tag", "customer_name": "account"}
    assert sorted(desired_tags(record, "oro:", fields, [], ["mc:"]).values()) == [
        "oro:account:mc:Acme",  # a name, not a tag list: kept
        "oro:tag:Reseller",
        "oro:tag:mcdonalds",
    ]
    assert "oro:tag:mc:VIP" in desired_tags(record, "oro:", fields, [], []).values()
    assert excluded_tag_value("Mc:VIP", ["x:", "mc:"])
    assert not excluded_tag_value("VIP", ["mc:", ""])
