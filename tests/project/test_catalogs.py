"""The taps' catalogs load into one schema of any loader: no shared stream name, no key that can be empty."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

TAPS = ["tap-orocommerce", "tap-mailchimp-engagement"]


@cache
def _catalog(tap: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [str(Path(sys.executable).with_name(tap)), "--discover"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    streams: list[dict[str, Any]] = json.loads(out.stdout)["streams"]
    return streams


def test_no_two_taps_share_a_stream_name() -> None:
    """Loaded into one schema, two taps' streams of one name would mix rows keyed differently."""
    owners: dict[str, list[tuple[str, list[str]]]] = {}
    for tap in TAPS:
        for stream in _catalog(tap):
            owners.setdefault(stream["tap_stream_id"], []).append((tap, stream.get("key_properties") or []))
    shared = {name: taps for name, taps in owners.items() if len(taps) > 1}
    assert not shared, f"stream names used by more than one tap (tap, key): {shared}"


@pytest.mark.parametrize("tap", TAPS)
def test_no_key_field_can_be_empty_or_null(tap: str) -> None:
    """Every key column is required, never null, and a string key is never "" (COPY reads '' as NULL)."""
    problems = []
    for stream in _catalog(tap):
        schema = stream["schema"]
        keys = stream.get("key_properties") or []
        if not keys:
            problems.append(f"{stream['tap_stream_id']}: no key")
        for key in keys:
            prop = schema["properties"].get(key)
            where = f"{stream['tap_stream_id']}.{key}"
            if prop is None:
                problems.append(f"{where}: not in the schema")
                continue
            types = prop.get("type")
            types = [types] if isinstance(types, str) else list(types or [])
            if not types or "null" in types:
                problems.append(f"{where}: nullable ({types})")
            if key not in schema.get("required", []):
                problems.append(f"{where}: not required")
            if "string" in types and prop.get("minLength", 0) < 1 and prop.get("format") != "date-time":
                problems.append(f"{where}: a string that may be empty (no minLength, not a date-time)")
    assert not problems, problems


@pytest.mark.parametrize("tap", TAPS)
def test_no_required_field_is_an_object(tap: str) -> None:
    """A flattening loader (singer-sdk 0.54) replaces an object by its `a__b` columns but keeps the
    schema's `required` list, then refuses every record for the missing object: required fields stay
    scalar (or arrays, which flatten to one JSON column of the same name)."""
    problems = []
    for stream in _catalog(tap):
        props = stream["schema"]["properties"]
        for name in stream["schema"].get("required", []):
            types = props[name].get("type")
            types = [types] if isinstance(types, str) else list(types or [])
            if "object" in types and "properties" in props[name]:
                problems.append(f"{stream['tap_stream_id']}.{name}")
    assert not problems, problems
