"""Settings validation, row shaping (empty timestamps, activity flattening) and secret-free errors."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from oromc_common.mailchimp import FatalMailchimpError
from singer_sdk.exceptions import ConfigValidationError
from tap_mailchimp_engagement import schemas
from tap_mailchimp_engagement.client import blank_timestamps_to_null
from tap_mailchimp_engagement.engagement import activity_event_id, flatten_activity
from tap_mailchimp_engagement.tap import TapMailchimpEngagement


def _mailchimp(config: dict[str, Any]) -> Any:
    return TapMailchimpEngagement(config=config, parse_env_config=False).mailchimp


def test_plain_http_to_a_remote_host_is_refused_naming_the_setting() -> None:
    with pytest.raises(ConfigValidationError, match="api_url"):
        _mailchimp({"api_key": "0123456789abcdef-us21", "api_url": "http://mailchimp.example.com/3.0"})


def test_more_than_ten_connections_is_refused() -> None:
    with pytest.raises(ConfigValidationError) as refused:  # the schema's bound; errors= is printed
        _mailchimp({"api_key": "0123456789abcdef-us21", "max_connections": 11})
    assert any("max_connections" in error for error in refused.value.errors)


def test_key_without_data_center_is_refused() -> None:
    with pytest.raises(ConfigValidationError, match="api_key"):
        _mailchimp({"api_key": "0123456789abcdef"})


def test_empty_timestamps_become_null_and_unknown_enums_pass() -> None:
    row = {
        "id": "x",
        "list_id": "l",
        "status": "some-future-status",
        "timestamp_signup": "",
        "last_changed": "2026-01-01T00:00:00+00:00",
        "last_note": {"created_at": "", "note": ""},
        "merge_fields": {"BIRTHDAY": ""},
    }
    out = blank_timestamps_to_null(row, schemas.MEMBERS)
    assert out["timestamp_signup"] is None
    assert out["last_note"] == {"created_at": None, "note": ""}
    assert out["merge_fields"] == {"BIRTHDAY": ""}, "data values are not timestamps"
    assert out["status"] == "some-future-status"


def test_activity_is_one_row_per_action_with_a_non_null_key() -> None:
    email = {
        "campaign_id": "c1",
        "list_id": "l1",
        "list_is_active": True,
        "email_id": "e1",
        "email_address": "a@example.com",
        "activity": [
            {"action": "open", "timestamp": "2026-01-01T00:00:00+00:00", "ip": "1.2.3.4"},
            {"action": "click", "timestamp": "2026-01-01T00:01:00+00:00", "url": "https://shop/x"},
            {"action": "bounce", "type": "hard", "timestamp": "2026-01-01T00:02:00+00:00"},
        ],
    }
    rows = list(flatten_activity(email, "c1"))
    assert [(r["action"], r["url"], r["bounce_type"]) for r in rows] == [
        ("open", None, None),
        ("click", "https://shop/x", None),
        ("bounce", None, "hard"),
    ]
    ids = [r["event_id"] for r in rows]
    assert all(len(i) == 64 for i in ids)
    assert len(set(ids)) == 3
    # Stable: the same event read again (another page, a batch result) has the same id.
    assert [r["event_id"] for r in flatten_activity(email, "c1")] == ids
    # Every part of the natural key is in the id: the same open one second later is another event.
    later = {**email, "activity": [{**email["activity"][0], "timestamp": "2026-01-01T00:00:01+00:00"}]}
    assert next(flatten_activity(later, "c1"))["event_id"] != ids[0]
    assert list(flatten_activity({"email_id": "e2"}, "c1")) == []


@pytest.mark.parametrize(
    "parts",
    [
        ("c1", "e1", "click", "2026-01-01T00:01:00+00:00", 'https://shop/caf\u00e9?q="x"&r=\\n'),
        ("c1", "e1", "open", "2026-01-01T00:00:00+00:00", None),
        (None, "e1", None, None, ""),
        ("c1", 7, "open", "2026-01-01T00:00:00+00:00", None),  # not a string: json.dumps as well
    ],
)
def test_event_id_is_the_sha256_of_the_natural_key_as_json(parts: tuple[Any, ...]) -> None:
    """The id the schema documents (and earlier releases wrote): sha256 of the compact JSON array."""
    natural = json.dumps([*parts[:4], parts[4] or ""], separators=(",", ":"))
    assert activity_event_id(*parts) == hashlib.sha256(natural.encode("utf-8")).hexdigest()


def test_wrong_key_fails_fast_without_printing_it(sandbox: Any, tools: Any) -> None:
    wrong = "0123456789abcdef0123456789abcdef-us21"
    with pytest.raises(FatalMailchimpError) as info:
        tools.run_tap({"api_key": wrong, "api_url": sandbox.mailchimp_api_url}, streams={"lists"})
    assert info.value.status == 401
    assert wrong not in str(info.value)


def test_activate_version_is_never_emitted_because_streams_only_send_changes() -> None:
    tap = TapMailchimpEngagement(
        config={"api_key": "0123456789abcdef-us21", "emit_activate_version_messages": True},
        parse_env_config=False,
    )
    assert not any(stream.emit_activate_version_messages for stream in tap.streams.values())
