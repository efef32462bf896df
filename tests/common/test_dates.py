"""The one date parser: ISO-8601 text from Oro and Mailchimp, HTTP dates, and what fields carry."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from oromc_common.dates import parse_date, parse_http_date, parse_iso_datetime, parse_utc
from oromc_common.oro import parse_oro_datetime


def test_iso_text_with_z_offset_or_no_zone() -> None:
    assert parse_iso_datetime("2024-05-01T10:00:00Z") == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert parse_iso_datetime(" 2024-05-01T10:00:00z ") == datetime(2024, 5, 1, 10, tzinfo=UTC)
    naive = parse_iso_datetime("2024-05-01 10:00:00")
    assert naive == datetime(2024, 5, 1, 10, tzinfo=UTC)
    offset = parse_iso_datetime("2024-05-01T10:00:00.250-05:00")
    assert offset.utcoffset() == timedelta(hours=-5)  # kept as written
    assert offset == datetime(2024, 5, 1, 15, 0, 0, 250000, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_iso_datetime("yesterday")


def test_parse_utc_takes_any_field_value() -> None:
    eastern = timezone(timedelta(hours=-5))
    assert parse_utc("2024-05-01T10:00:00-05:00") == datetime(2024, 5, 1, 15, tzinfo=UTC)
    assert parse_utc("2024-05-01T10:00:00-05:00").tzinfo is UTC  # type: ignore[union-attr]
    assert parse_utc(datetime(2024, 5, 1, 10)) == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert parse_utc(datetime(2024, 5, 1, 10, tzinfo=eastern)) == datetime(2024, 5, 1, 15, tzinfo=UTC)
    assert parse_utc("2024-05-01") == datetime(2024, 5, 1, tzinfo=UTC)
    for nothing in (None, "", "   ", "not a time", 17):
        assert parse_utc(nothing) is None
    assert parse_oro_datetime("2024-05-01T10:00:00+02:00") == datetime(2024, 5, 1, 8, tzinfo=UTC)


def test_parse_date_is_the_day_where_it_was_written() -> None:
    assert parse_date("2024-05-01T23:30:00-05:00") == date(2024, 5, 1)  # May 2nd in UTC
    assert parse_date("2024-05-01") == date(2024, 5, 1)
    assert parse_date("2024-05-01 garbage") == date(2024, 5, 1)
    assert parse_date(datetime(2024, 5, 1, 23)) == date(2024, 5, 1)
    assert parse_date(date(2024, 5, 1)) == date(2024, 5, 1)
    with pytest.raises(ValueError):
        parse_date("05/01/2024")


def test_http_dates() -> None:
    assert parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)
    assert parse_http_date("Sun, 06 Nov 1994 08:49:37 -0000") == datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)
    for bad in (None, "", "soon", "7"):
        assert parse_http_date(bad) is None
