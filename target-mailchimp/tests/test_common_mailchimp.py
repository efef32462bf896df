"""Unit tests of the shared Mailchimp helpers: key parsing, error classification, the governor."""

from __future__ import annotations

import threading
import time

import pytest
from oromc_common.governor import (
    ConnectionGovernor,
    forget_governors,
    get_governor,
    run_concurrently,
)
from oromc_common.mailchimp import (
    ErrorKind,
    FatalMailchimpError,
    MailchimpClient,
    MailchimpConfigError,
    PermanentMailchimpError,
    RetryableMailchimpError,
    api_url_for_dc,
    classify,
    classify_member_error,
    make_error,
    parse_api_key,
    subscriber_hash,
)


def test_api_key_and_base_url() -> None:
    assert parse_api_key(" 0123abcd-us14 ") == ("0123abcd-us14", "us14")
    assert api_url_for_dc("us14") == "https://us14.api.mailchimp.com/3.0"
    with pytest.raises(MailchimpConfigError, match="api_key"):
        parse_api_key("no-dc-here-")
    with pytest.raises(MailchimpConfigError, match="exactly one"):
        MailchimpClient()
    with pytest.raises(MailchimpConfigError, match="api_url"):
        MailchimpClient(api_key="abc-us1", api_url="http://mailchimp.example.com/3.0")
    client = MailchimpClient(api_key="abc-us1")
    assert client.api_url == "https://us1.api.mailchimp.com/3.0"


def test_subscriber_hash_trims_and_lowercases() -> None:
    assert subscriber_hash("  Foo@Example.COM ") == subscriber_hash("foo@example.com")


@pytest.mark.parametrize(
    ("status", "body", "kind", "reason"),
    [
        (None, None, ErrorKind.RETRYABLE, "connection_error"),
        (429, {"title": "Too Many Requests"}, ErrorKind.RETRYABLE, "rate_limited"),
        (429, None, ErrorKind.RETRYABLE, "rate_limited"),
        (403, None, ErrorKind.RETRYABLE, "rate_limited"),
        (502, None, ErrorKind.RETRYABLE, "server_error"),
        (503, None, ErrorKind.RETRYABLE, "server_error"),
        (401, {"title": "API Key Invalid"}, ErrorKind.FATAL, "auth_invalid"),
        (403, {"title": "Wrong Datacenter"}, ErrorKind.FATAL, "forbidden"),
        (
            400,
            {"title": "Member In Compliance State", "detail": "x is in a compliance state"},
            ErrorKind.PERMANENT,
            "compliance_state",
        ),
        (
            400,
            {"title": "Forgotten Email Not Subscribed", "detail": "was permanently deleted"},
            ErrorKind.PERMANENT,
            "forgotten_email",
        ),
        (
            400,
            {"title": "Member Exists", "detail": "is already a list member"},
            ErrorKind.PERMANENT,
            "member_exists",
        ),
        (
            400,
            {
                "title": "Invalid Resource",
                "detail": "a@b.com looks fake or invalid, please enter a real email address.",
            },
            ErrorKind.PERMANENT,
            "fake_email",
        ),
        (
            400,
            {"title": "Invalid Resource", "detail": "Please provide a valid email address."},
            ErrorKind.PERMANENT,
            "invalid_email",
        ),
        (
            400,
            {
                "title": "Invalid Resource",
                "detail": "Your merge fields were invalid.",
                "errors": [{"field": "LTV", "message": "Please enter a number"}],
            },
            ErrorKind.PERMANENT,
            "invalid_merge_fields",
        ),
        (404, {"title": "Resource Not Found"}, ErrorKind.PERMANENT, "not_found"),
        (405, {"title": "Method Not Allowed"}, ErrorKind.PERMANENT, "method_not_allowed"),
    ],
)
def test_classification(status: int | None, body: object, kind: ErrorKind, reason: str) -> None:
    assert classify(status, body) == (kind, reason)


def test_errors_are_redacted_and_typed() -> None:
    exc = make_error(
        400,
        {
            "title": "Invalid Resource",
            "detail": "Ann.Lee@example.com looks fake or invalid",
            "errors": [{"field": "email_address", "message": "Ann.Lee@example.com is bad"}],
        },
        "POST",
        "/lists/l1",
        ("secretkey-us1",),
    )
    assert isinstance(exc, PermanentMailchimpError)
    assert "example.com" not in str(exc)
    assert exc.reason == "fake_email"
    assert isinstance(make_error(401, {}, "GET", "/", ()), FatalMailchimpError)
    assert isinstance(make_error(500, None, "GET", "/", ()), RetryableMailchimpError)
    assert (
        classify_member_error("x is already a list member", "ERROR_CONTACT_EXISTS")
        == "member_exists"
    )
    assert (
        classify_member_error(
            "x looks fake or invalid, please enter a real email address.", "ERROR_GENERIC"
        )
        == "fake_email"
    )


def test_governor_limits_simultaneous_slots_and_is_shared_per_key() -> None:
    gov = get_governor("test-key-governor", 3)
    assert get_governor("test-key-governor", 8) is gov
    assert gov.limit == 3
    get_governor("test-key-governor", 2)
    assert gov.limit == 2
    assert get_governor("other-key", 50).limit == 10
    forget_governors()  # a later configuration of the same account starts at its own limit
    assert get_governor("test-key-governor", 8).limit == 8
    assert get_governor("test-key-governor", 8) is not gov

    active = 0
    seen = 0
    lock = threading.Lock()

    def call() -> int:
        nonlocal active, seen
        with gov.slot():
            with lock:
                active += 1
                seen = max(seen, active)
            time.sleep(0.01)
            with lock:
                active -= 1
        return 1

    assert run_concurrently([call] * 30, max_workers=10) == [1] * 30
    assert seen == 2
    assert gov.peak == 2


def test_run_concurrently_keeps_order_and_raises() -> None:
    assert run_concurrently([lambda i=i: i * 2 for i in range(20)], 8) == [i * 2 for i in range(20)]

    def boom() -> int:
        raise ValueError("x")

    with pytest.raises(ValueError, match="x"):
        run_concurrently([lambda: 1, boom, lambda: 3], 4)
    gov = ConnectionGovernor(1)
    with pytest.raises(RuntimeError):
        gov.release()
