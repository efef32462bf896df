"""Mailchimp's value formats and request-body checks, no HTTP: what rules and handlers share.

Timestamps (`format_ts`, `format_epoch`, `parse_ts`), ids (`subscriber_hash`, `short_id`), JSON
type names (`json_type`) and the field checks that answer 400 Invalid Resource (`require_object`,
`check_type`, `check_enum`, `require_keys`). The HTTP plumbing (responses, authentication,
paging, `mc_endpoint`) is `common.py`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from .exceptions import FieldError

# --------------------------------------------------------------------------- time & identity


def format_ts(dt: datetime | None) -> str:
    """Mailchimp timestamp: `2021-11-23T22:51:56+00:00`; unset is `""`."""
    if dt is None:
        return ""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def format_epoch(ts: float | None) -> str:
    """Format a POSIX timestamp like `format_ts` (fast path for stored floats)."""
    if ts is None:
        return ""
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def parse_ts(value: str | None) -> datetime | None:
    """Parse an ISO 8601 timestamp (`Z`, offsets, fractions, date-only); `""`/None -> None.

    Raises ValueError for anything else. Naive values are taken as UTC.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text.replace(" ", "T", 1) if len(text) > 10 else text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def subscriber_hash(email: str) -> str:
    """md5 hex of the trimmed, lower-cased email (Mailchimp's member id)."""
    return hashlib.md5(email.strip().lower().encode("utf-8"), usedforsecurity=False).hexdigest()


def short_id(*parts: object, length: int = 10) -> str:
    """Deterministic hex id (list/batch/unique_email_id style) from the given parts."""
    text = "|".join(str(p) for p in parts)
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()[:length]


# --------------------------------------------------------------------------- body checks


def json_type(value: Any) -> str:
    """The JSON type name of a decoded JSON value (`null`, `boolean`, `integer`, ... `object`)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def require_object(payload: Any) -> dict[str, Any]:
    """The JSON body as an object, else 400 Invalid Resource (as Mailchimp's schema check does)."""
    if payload is None:
        raise FieldError("", "Required fields were not provided: body")
    if not isinstance(payload, dict):
        raise FieldError("", f"Schema describes object, {json_type(payload)} found instead")
    return payload


def check_type(body: dict[str, Any], key: str, expected: str, prefix: str = "") -> None:
    """400 `Schema describes <expected>, <actual> found instead` for a present, mistyped key."""
    if key not in body:
        return
    actual = json_type(body[key])
    ok = actual == expected or (expected == "number" and actual == "integer")
    if not ok:
        raise FieldError(prefix + key, f"Schema describes {expected}, {actual} found instead")


def check_enum(body: dict[str, Any], key: str, allowed: Sequence[str], prefix: str = "") -> None:
    if key in body and body[key] not in allowed:
        raise FieldError(
            prefix + key,
            "Model presented is not one of the accepted values: " + ", ".join(allowed) + ".",
        )


def require_keys(body: dict[str, Any], keys: Sequence[str]) -> None:
    missing = [k for k in keys if k not in body]
    if missing:
        raise FieldError("", "Required fields were not provided: " + ", ".join(missing))
