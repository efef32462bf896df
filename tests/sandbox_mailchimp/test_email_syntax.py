"""Address syntax Mailchimp refuses beyond a plain pattern: dots at the ends of the local part and
local parts longer than 64 characters (RFC 5321/5322; see the Mailchimp sandbox README)."""

from __future__ import annotations

from typing import Any

import pytest

LOCAL_64 = "a" * 30 + "." + "b" * 33


@pytest.mark.parametrize(
    "email",
    [
        "trailing.@gmail.com",
        ".leading@gmail.com",
        "x" * 65 + "@gmail.com",
        "a" + LOCAL_64 + "@gmail.com",
    ],
    ids=["trailing-dot", "leading-dot", "65-chars", "65-chars-with-dot"],
)
def test_refused_with_mailchimps_invalid_address_error(mc: Any, email: str) -> None:
    for method, path in (("post", mc.members), ("put", f"{mc.members}/{email}")):
        resp = getattr(mc, method)(path, json={"email_address": email, "status": "subscribed"})
        assert resp.status_code == 400, (method, resp.text)
        assert resp.json()["title"] == "Invalid Resource"
        assert resp.json()["detail"] == "Please provide a valid email address."


def test_batch_subscribe_reports_it_per_address(mc: Any, fresh: Any) -> None:
    good = fresh("syntax")
    resp = mc.post(
        f"/lists/{mc.list_id}",
        json={"members": [{"email_address": "trailing.dot.@gmail.com", "status": "subscribed"},
                          {"email_address": good, "status": "subscribed"}]},
    )  # fmt: skip
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert [m["email_address"] for m in body["new_members"]] == [good]
    (error,) = body["errors"]
    assert error["email_address"] == "trailing.dot.@gmail.com"


def test_64_characters_and_inner_dots_are_accepted(mc: Any) -> None:
    assert len(LOCAL_64) == 64
    mc.add(f"{LOCAL_64}@gmail.com")


def test_internationalized_domains_are_accepted_utf8_local_parts_refused(mc: Any) -> None:
    """Mailchimp's help page "International characters in Mailchimp": UTF-8 characters are allowed in
    the domain (test@ñoñó1234.com) and blocked in the prefix (direcciónelectrónica@domain.com)."""
    mc.add("ana@ñoñó1234.com")  # "test@" itself is on the sandbox's fake list
    mc.add("info@xn--nan-bma6a1234.com")
    resp = mc.post(mc.members, json={"email_address": "direcciónelectrónica@gmail.com", "status": "subscribed"})
    assert resp.status_code == 400, resp.text
    assert resp.json()["detail"] == "Please provide a valid email address."
