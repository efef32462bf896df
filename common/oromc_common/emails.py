"""The one place that says how e-mail addresses are cleaned and compared.

Two different jobs, two functions (``tests/common/test_emails.py`` shows why one cannot do both):

* :func:`normalize_email` - the address to *send*: trimmed, case kept. Mailchimp stores the
  address as written (``Ada.Lovelace@Example.com`` is shown that way in the audience).
* :func:`email_key` - the key to *match* on: trimmed and lower-cased, or None when the value is not
  an address. Mailchimp matches addresses case-insensitively (its subscriber hash is the md5 of the
  lower-cased address) and so must a lookup of Oro customer users by e-mail.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MAX_EMAIL_LENGTH", "email_key", "normalize_email"]

MAX_EMAIL_LENGTH = 254
"""Longest address SMTP carries (RFC 5321 path limit)."""


def normalize_email(email: str) -> str:
    """The address to send: trimmed, case kept (Mailchimp keeps it, and matches ignoring case)."""
    return email.strip()


def email_key(value: Any) -> str | None:
    """The key two systems' addresses match on: trimmed, lower-cased; None when ``value`` is not
    a plausible address (no ``@``, a space inside, longer than :data:`MAX_EMAIL_LENGTH`)."""
    if not isinstance(value, str):
        return None
    key = value.strip().lower()
    if "@" not in key or " " in key or len(key) > MAX_EMAIL_LENGTH:
        return None
    return key
