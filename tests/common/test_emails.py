"""normalize_email (the address to send) and email_key (the key to match on) differ on purpose."""

from __future__ import annotations

from oromc_common import mailchimp
from oromc_common.emails import email_key, normalize_email
from oromc_common.mailchimp import subscriber_hash


def test_the_address_sent_keeps_its_case_the_match_key_does_not() -> None:
    written = "  Ada.Lovelace@Example.com "
    # Mailchimp shows the address as written: lower-casing it on the way out would change it.
    assert normalize_email(written) == "Ada.Lovelace@Example.com"
    # ... but matches it ignoring case, like its subscriber hash, and so must an Oro lookup.
    assert email_key(written) == "ada.lovelace@example.com"
    assert subscriber_hash(normalize_email(written)) == subscriber_hash(str(email_key(written)))


def test_the_match_key_refuses_what_is_not_an_address() -> None:
    assert email_key(None) is None
    assert email_key(42) is None
    assert email_key("no-at-sign") is None
    assert email_key("two words@example.com") is None
    assert email_key("a@" + "b" * 260 + ".com") is None
    assert email_key(" Bob@Example.NET ") == "bob@example.net"


def test_the_mailchimp_module_uses_the_same_function() -> None:
    assert mailchimp.normalize_email is normalize_email
