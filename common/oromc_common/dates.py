"""The one date and time parser of every connector.

* :func:`parse_iso_datetime` - an ISO-8601 / Oro / Mailchimp date-time string (``Z``, ``z`` or an
  offset; no offset means UTC) as an aware datetime in the offset it was written with; strict.
* :func:`parse_utc` - the same for any value (a string, a datetime, nothing) as an aware UTC
  datetime, or None when there is no readable time (what record fields need).
* :func:`parse_date` - the calendar day of a date or date-time value, as written (not moved to UTC).
* :func:`parse_http_date` - an HTTP ``Date`` / ``Retry-After`` header (RFC 9110 IMF-fixdate).
"""

from __future__ import annotations

import email.utils
from datetime import UTC, date, datetime
from typing import Any

__all__ = ["parse_date", "parse_http_date", "parse_iso_datetime", "parse_utc"]


def parse_iso_datetime(text: str) -> datetime:
    """An aware datetime from ISO-8601 text (``Z`` or offset; naive = UTC). Raises ValueError."""
    text = text.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def parse_utc(value: Any) -> datetime | None:
    """An aware UTC datetime from a datetime (naive = UTC) or ISO-8601 text; None when ``value``
    is empty or not a readable time."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    if not value:
        return None
    try:
        return parse_iso_datetime(str(value)).astimezone(UTC)
    except ValueError:
        return None


def parse_date(value: Any) -> date:
    """The day of a date, a datetime or ISO-8601 text (``2024-05-01``, ``2024-05-01T23:30-05:00``
    is May 1st: the day where it was written). Raises ValueError for text that is neither."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        return parse_iso_datetime(text).date()
    except ValueError:
        return date.fromisoformat(text[:10])


def parse_http_date(value: str | None) -> datetime | None:
    """An aware datetime from an HTTP date header (``Sun, 06 Nov 1994 08:49:37 GMT``), or None."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
