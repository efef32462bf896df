"""record_key: every reject names its input record, from any source, without an e-mail address."""

from __future__ import annotations

from oromc_common.keys import record_key
from oromc_common.mailchimp import subscriber_hash


def test_the_targets_own_fields_when_all_are_present() -> None:
    record = {"list_id": "L1", "id": "abc", "email": "x@example.com"}
    assert record_key(record, ("list_id", "id"), key_properties=["email"], position=3) == "L1/abc"


def test_the_streams_key_properties_when_the_fields_are_missing() -> None:
    record = {"customer_no": 42, "region": "EU", "list_id": None, "id": " "}
    assert record_key(record, ("list_id", "id"), key_properties=["customer_no", "region"]) == (
        "customer_no=42/region=EU"
    )


def test_an_email_in_a_key_is_replaced_by_its_subscriber_hash() -> None:
    record = {"email": " Ada@Example.net "}
    key = record_key(record, ("list_id", "id"), key_properties=["email"], position=1)
    assert key == f"email=md5:{subscriber_hash('ada@example.net')}"
    assert "@" not in record_key({"list_id": "L1", "id": "a@b.example"}, ("list_id", "id"))


def test_the_position_when_nothing_else_names_the_record() -> None:
    assert record_key({"name": "x"}, ("list_id", "id"), key_properties=["email"], position=7) == "#7"
    assert record_key({}, ("list_id", "id")) == "#?"
    assert "None" not in record_key({"list_id": None, "id": None}, ("list_id", "id"), position=1)
