"""A flattening loader gets a column for each known merge tag; the audience's other tags come as JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest
from oromc_common.mailchimp import subscriber_hash
from singer_sdk.testing.legacy import tap_sync_test
from tap_mailchimp_engagement.tap import TapMailchimpEngagement

EMAIL = "flat.person@example.org"


def _messages(config: dict[str, Any], streams: set[str]) -> list[dict[str, Any]]:
    tap = TapMailchimpEngagement(config=config, parse_env_config=False)
    for name, stream in tap.streams.items():
        stream.selected = name in streams
    stdout, _ = tap_sync_test(tap)
    return [json.loads(line) for line in stdout.read().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def flat_member(sandbox: Any, tools: Any) -> None:
    """Two custom merge tags (SHOE, PET) in the audience, and a member with a value in each."""
    session = tools.mc_session(sandbox)
    api = sandbox.mailchimp_api_url
    list_id = session.get(f"{api}/lists").json()["lists"][0]["id"]
    for tag in ("SHOE", "PET"):
        created = session.post(f"{api}/lists/{list_id}/merge-fields", json={"tag": tag, "name": tag, "type": "text"})
        assert created.status_code == 200, created.text
    merge = {"FNAME": "Flat", "LNAME": "Person", "PHONE": "+1 555 0100", "SHOE": "44", "PET": "cat"}
    put = session.put(
        f"{api}/lists/{list_id}/members/{subscriber_hash(EMAIL)}",
        json={"email_address": EMAIL, "status_if_new": "subscribed", "merge_fields": merge},
    )
    assert put.status_code == 200, put.text
    sandbox.advance_clock(2)  # a run reads members changed before its cut-off (server time - 1 s)


@pytest.mark.usefixtures("flat_member")
def test_flattened_members_have_name_phone_and_configured_tag_columns(sandbox: Any, tools: Any) -> None:
    config = tools.tap_config(
        sandbox, merge_tags=["SHOE"], flattening_enabled=True, flattening_max_depth=3
    )
    messages = _messages(config, {"members"})
    schema = next(m["schema"] for m in messages if m["type"] == "SCHEMA" and m["stream"] == "members")
    props = schema["properties"]
    for column in ("merge_fields__FNAME", "merge_fields__LNAME", "merge_fields__PHONE", "merge_fields__SHOE"):
        assert column in props, column
    assert "merge_fields__ADDRESS__city" in props
    # data-keyed objects are one JSON column each (not dropped)
    assert "string" in props["merge_fields_other"]["type"]
    assert "string" in props["interests"]["type"]
    records = [m["record"] for m in messages if m["type"] == "RECORD" and m["stream"] == "members"]
    assert records
    for record in records:
        # nothing a loader would drop: a null object (an empty ADDRESS) flattens to one null key
        extra = {k: v for k, v in record.items() if k not in props}
        assert all(v is None for v in extra.values()), extra
    row = next(r for r in records if r["email_address"] == EMAIL)
    assert (row["merge_fields__FNAME"], row["merge_fields__PHONE"], row["merge_fields__SHOE"]) == (
        "Flat",
        "+1 555 0100",
        "44",
    )
    assert json.loads(row["merge_fields_other"]) == {"PET": "cat"}


@pytest.mark.usefixtures("flat_member")
def test_unflattened_members_keep_known_tags_nested_and_the_rest_apart(sandbox: Any, tools: Any) -> None:
    messages = _messages(tools.tap_config(sandbox), {"members"})
    records = [m["record"] for m in messages if m["type"] == "RECORD" and m["stream"] == "members"]
    row = next(r for r in records if r["email_address"] == EMAIL)
    assert row["merge_fields"]["FNAME"] == "Flat"
    assert row["merge_fields_other"] == {"SHOE": "44", "PET": "cat"}  # SHOE not configured this time
    with_address = [r for r in records if isinstance(r["merge_fields"].get("ADDRESS"), dict)]
    assert with_address
    assert all(r["merge_fields"].get("ADDRESS") != "" for r in records)
