"""JSON:API plumbing as Oro implements it: media types, error documents, value formats."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote

import orjson
from starlette.requests import Request
from starlette.responses import Response

JSONAPI = "application/vnd.api+json"


class ApiError(Exception):
    """One or more JSON:API error objects with an HTTP status."""

    def __init__(self, status: int, errors: list[dict[str, Any]], headers: dict[str, str] | None = None) -> None:
        super().__init__(errors[0].get("detail", "") if errors else "")
        self.status = status
        self.errors = errors
        self.headers = headers or {}


def err(status: int, title: str, detail: str | None = None, pointer: str | None = None,
        parameter: str | None = None) -> dict[str, Any]:
    """One Oro error object (``status`` is a string in the body)."""
    obj: dict[str, Any] = {"status": str(status), "title": title}
    if detail is not None:
        obj["detail"] = detail
    if pointer is not None:
        obj["source"] = {"pointer": pointer}
    elif parameter is not None:
        obj["source"] = {"parameter": parameter}
    return obj


def fail(status: int, title: str, detail: str | None = None, pointer: str | None = None,
         parameter: str | None = None) -> ApiError:
    """An ApiError with a single error object."""
    return ApiError(status, [err(status, title, detail, pointer, parameter)])


class EmptyError(Exception):
    """A response with an empty body (401, 405)."""

    def __init__(self, status: int, headers: dict[str, str]) -> None:
        super().__init__(status)
        self.status = status
        self.headers = headers


async def json_body(request: Request) -> Any:
    """The JSON:API request document (an object with `data`), else Oro's 400."""
    raw = await request.body()
    if not raw.strip():
        raise fail(400, "request data constraint", "The request data should not be empty.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise fail(400, "bad request http exception", "Invalid json message received") from None
    if not isinstance(body, dict) or "data" not in body:
        raise fail(400, "request data constraint", "The primary data object should exist", pointer="/data")
    return body


def json_response(doc: Any, status: int = 200, headers: dict[str, str] | None = None,
                  media_type: str = JSONAPI) -> Response:
    """Serialise with orjson."""
    return Response(orjson.dumps(doc), status_code=status, media_type=media_type, headers=headers)


def error_response(exc: ApiError) -> Response:
    """The JSON:API error document."""
    return json_response({"errors": exc.errors}, exc.status, exc.headers)


def empty_response(status: int, headers: dict[str, str] | None = None) -> Response:
    """A body-less response (Oro's 401/405/204)."""
    return Response(b"", status_code=status, headers=headers)


# ---- value formats (§3.6) ----------------------------------------------------------------
def fmt_datetime(ts: int | None) -> str | None:
    """Epoch seconds -> ``2024-05-01T10:20:30Z``."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_DT_INPUT = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:\d{2})$"
)
_DATE_INPUT = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


def parse_datetime_input(value: Any) -> int | None:
    """A request attribute datetime -> epoch seconds; None if invalid (timezone mandatory with a time)."""
    if not isinstance(value, str):
        return None
    m = _DT_INPUT.match(value)
    if m:
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return int(dt.timestamp())
    m = _DATE_INPUT.match(value)
    if m:
        try:
            dt = datetime(int(m.group(1)), int(m.group(2) or 1), int(m.group(3) or 1), tzinfo=UTC)
        except ValueError:
            return None
        return int(dt.timestamp())
    return None


def parse_date_input(value: Any) -> str | None:
    """A request date ``YYYY-MM-DD`` -> the same string; None if invalid."""
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value).isoformat() if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) else None
    except ValueError:
        return None


_DT_FILTER = re.compile(
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.\d+)?)?)?)?)?)?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)


def parse_datetime_filter(value: str) -> tuple[int, int] | None:
    """A filter datetime -> (start, end_exclusive) in epoch seconds, or None when invalid.

    Less-than-second precision values cover a period (``2024-05-01`` = the whole day); a space
    is read as ``+`` (clients that do not encode ``+``).
    """
    value = value.replace(" ", "+")
    m = _DT_FILTER.match(value)
    if not m:
        return None
    year, month, day, hour, minute, second, tz = m.groups()
    if hour is not None and tz is None and minute is not None:
        tz = "Z"
    try:
        tzinfo = UTC
        if tz and tz != "Z":
            sign = 1 if tz[0] == "+" else -1
            digits = tz[1:].replace(":", "")
            tzinfo = UTC if digits == "0000" else _offset(sign, int(digits[:2]), int(digits[2:]))
        start = datetime(int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0),
                         int(second or 0), tzinfo=tzinfo)
    except ValueError:
        return None
    if second is not None:
        end = start + timedelta(seconds=1)
    elif minute is not None:
        end = start + timedelta(minutes=1)
    elif hour is not None:
        end = start + timedelta(hours=1)
    elif day is not None:
        end = start + timedelta(days=1)
    elif month is not None:
        end = start.replace(year=start.year + (start.month == 12), month=start.month % 12 + 1)
    else:
        end = start.replace(year=start.year + 1)
    return int(start.timestamp()), int(end.timestamp())


def _offset(sign: int, hours: int, minutes: int) -> Any:
    from datetime import timezone

    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def money(value: float | str | None) -> str | None:
    """Money/decimal as Oro prints it: a string with 4 decimals."""
    if value is None:
        return None
    return f"{float(value):.4f}"


def rfc3986_query(pairs: list[tuple[str, str]]) -> str:
    """``http_build_query(..., PHP_QUERY_RFC3986)``: brackets as %5B/%5D, spaces as %20."""
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)
