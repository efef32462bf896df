"""Unit tests of the pure mapping rules (merge values, tags, consent)."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest
from target_mailchimp.mapping import (
    ConsentPolicy,
    MemberFacts,
    MergeFieldSpec,
    MergeValueError,
    coerce_merge_value,
    consent_change,
    desired_tags,
    excluded_tag_value,
    is_valid_email,
    merge_values_equal,
    new_member_status,
    opt_in_times,
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
        ("text", {}, "Ann\x00", "control characters"),
        ("text", {}, "A\x1bnn", "control characters"),
        ("text", {}, "x" * 256, "longer than 255"),
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


def test_date_values_equal_as_calendar_days_whatever_the_format() -> None:
    us = MergeFieldSpec("D", "date", options={"date_format": "MM/DD/YYYY"})
    assert merge_values_equal(us, "12/05/2026", "2026-12-05")  # Mailchimp returns ISO
    assert not merge_values_equal(us, "12/06/2026", "2026-12-05")
    assert not merge_values_equal(us, "12/05/2026", "")
    eu = MergeFieldSpec("D", "date", options={"date_format": "DD/MM/YYYY"})
    assert merge_values_equal(eu, "05/12/2026", "2026-12-05")


def test_emails() -> None:
    assert is_valid_email("a.b+c@example.co.uk")
    for bad in ("", "plain", "a@b", "a b@example.com", "a@-x.com", "a@@example.com"):
        assert not is_valid_email(bad)


def test_emails_as_mailchimp_accepts_them() -> None:
    """UTF-8 in the domain is accepted, in the local part refused (Mailchimp's "International
    characters in Mailchimp"); dot-atom local parts of at most 64 characters (RFC 5322/5321)."""
    for good in ("ana@ñoñó1234.com", "info@xn--nan-bma6a1234.com", "o'brien@example.ie", "a" * 64 + "@x.com",
                 "user@münchen.de", "ivan@пример.рф"):  # fmt: skip
        assert is_valid_email(good), good
    for bad in ("trailing.@gmail.com", ".lead@gmail.com", "a..b@gmail.com", "a" * 65 + "@x.com",
                "direcciónelectrónica@domain.com", "a@b.c", "a\x00@b.com", "a@b.com\u200b",
                "a@exa_mple.com", "x" * 250 + "@ab.com"):  # fmt: skip
        assert not is_valid_email(bad), bad


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
LATER = "2024-02-01T00:00:00Z"
EARLIER = "2023-12-01T00:00:00Z"
DEFAULT = ConsentPolicy()


def _user(consent: bool | None = None, **extra: Any) -> dict[str, Any]:
    at = extra.pop("at", LATER if consent is not None else None)
    return {"marketing_consent": consent, "consent_changed_at": at, "enabled": True, "is_guest": False, **extra}


@pytest.mark.parametrize(
    ("record", "policy", "expected"),
    [
        (_user(None), DEFAULT, "transactional"),  # nobody subscribed without consent
        (_user(True), DEFAULT, "subscribed"),
        (_user(True), ConsentPolicy(double_opt_in=True), "pending"),
        (_user(False), DEFAULT, "unsubscribed"),  # the opt-out is recorded
        (_user(False), ConsentPolicy(status_if_new="subscribed"), "unsubscribed"),
        (_user(None), ConsentPolicy(status_if_new="subscribed"), "subscribed"),
        (_user(None), ConsentPolicy(status_if_new="subscribed", double_opt_in=True), "pending"),
        (_user(None), ConsentPolicy(status_if_new="pending"), "pending"),
        (_user(True, enabled=False), DEFAULT, "transactional"),  # disabled: never subscribed
        (_user(None, enabled=False), ConsentPolicy(status_if_new="subscribed"), "transactional"),
        (_user(False, enabled=False), DEFAULT, "unsubscribed"),
        (_user(True, enabled=False, is_guest=True), DEFAULT, "subscribed"),  # guests are created disabled
        (_user(None, enabled=False, is_guest=True), DEFAULT, "transactional"),
        ({}, DEFAULT, "transactional"),  # a source without consent or flags
    ],
)
def test_new_member_status(record: dict[str, Any], policy: ConsentPolicy, expected: str) -> None:
    assert new_member_status(record, policy) == expected


def _member(status: str, opt: str | None = None, *, linked: bool = True, last: str | None = T0) -> MemberFacts:
    return MemberFacts(status=status, timestamp_opt=opt, last_changed=last, linked=linked)


@pytest.mark.parametrize(
    ("record", "member", "policy", "status", "flags"),
    [
        # an opt-out recorded at the source
        (_user(False), _member("subscribed", T0), DEFAULT, "unsubscribed", {}),
        (_user(False), _member("pending"), DEFAULT, "unsubscribed", {}),
        (_user(False), _member("transactional"), DEFAULT, "unsubscribed", {}),
        (_user(False, at=None), _member("subscribed", T0), DEFAULT, "unsubscribed", {}),  # no time: latest
        # ... but a later opt-in made in Mailchimp wins (timestamp_opt, not last_changed)
        (_user(False, at=EARLIER), _member("subscribed", T0), DEFAULT, None, {}),
        (_user(False), _member("subscribed", T0, last="2030-01-01T00:00:00+00:00"), DEFAULT, "unsubscribed", {}),
        (_user(False), _member("unsubscribed"), DEFAULT, None, {}),
        (_user(False), _member("cleaned"), DEFAULT, None, {}),
        (_user(False), _member("archived"), DEFAULT, None, {}),
        # consent given at the source
        (_user(True), _member("transactional"), DEFAULT, "subscribed", {}),
        (_user(True, at=EARLIER), _member("transactional"), DEFAULT, "subscribed", {}),
        (_user(True), _member("transactional"), ConsentPolicy(double_opt_in=True), "pending", {}),
        (_user(True), _member("subscribed", T0), DEFAULT, None, {}),
        (_user(True), _member("unsubscribed"), DEFAULT, None, {"blocked": True}),  # never re-subscribed
        (_user(True), _member("cleaned"), DEFAULT, None, {"blocked": True}),
        (_user(True), _member("unsubscribed"), ConsentPolicy(resubscribe_with_pending=True), "pending", {}),
        (_user(True, at=EARLIER), _member("unsubscribed"), ConsentPolicy(resubscribe_with_pending=True), None,
         {"blocked": True}),
        (_user(True), _member("archived"), DEFAULT, None, {}),  # archived stays archived
        # nothing recorded: the status is left alone
        (_user(None), _member("subscribed", T0), DEFAULT, None, {}),
        (_user(None), _member("transactional"), ConsentPolicy(status_if_new="subscribed"), None, {}),
        # disabled users (not guests): the policy decides for marketing statuses
        (_user(True, enabled=False), _member("subscribed", T0), DEFAULT, None, {"archive": True}),
        (_user(None, enabled=False), _member("pending"), ConsentPolicy(disabled_user_policy="unsubscribe"),
         "unsubscribed", {}),
        (_user(None, enabled=False), _member("subscribed"), ConsentPolicy(disabled_user_policy="keep"), None, {}),
        (_user(None, enabled=False), _member("pending"), DEFAULT, "unsubscribed", {}),  # cannot archive pending
        (_user(True, enabled=False), _member("transactional"), DEFAULT, None, {}),
        (_user(True, enabled=False, is_guest=True), _member("transactional"), DEFAULT, "subscribed", {}),
        # a transactional member linked for the first time is treated as new
        (_user(None), _member("transactional", linked=False), ConsentPolicy(status_if_new="subscribed"),
         "subscribed", {}),
        (_user(None), _member("transactional", linked=False), DEFAULT, None, {}),
        (_user(None), _member("subscribed", T0, linked=False), DEFAULT, None, {}),
    ],
)
def test_consent_rules_for_existing_members(
    record: dict[str, Any], member: MemberFacts, policy: ConsentPolicy, status: str | None,
    flags: dict[str, bool],
) -> None:
    decision = consent_change(record, member, policy)
    assert decision.status == status
    assert decision.blocked is flags.get("blocked", False)
    assert decision.archive is flags.get("archive", False)


def test_opt_in_sends_the_source_consent_time() -> None:
    assert opt_in_times(_user(True, at="2024-02-01T10:00:00Z"), "subscribed") == {
        "timestamp_opt": "2024-02-01T10:00:00+00:00"}
    assert opt_in_times(_user(True, at="2024-02-01T10:00:00Z"), "pending") == {
        "timestamp_signup": "2024-02-01T10:00:00+00:00"}
    assert opt_in_times(_user(None), "subscribed") == {}  # status_if_new: Mailchimp's own time
    assert opt_in_times(_user(False), "unsubscribed") == {}


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
