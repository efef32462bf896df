"""Rejects of records from other sources (a CSV tap through a stream map) name the record, never None/None."""

from __future__ import annotations

import json
from typing import Any

from oromc_common.mailchimp import subscriber_hash
from oromc_sandbox.testing import RunningSandbox

from .conftest import SCHEMAS, rejects, run_target


def _stream(name: str, keys: list[str], records: list[dict[str, Any]]) -> list[str]:
    schema = {"type": "object", "properties": {**SCHEMAS[name][0]["properties"]}}
    for key in keys:
        schema["properties"].setdefault(key, {"type": ["string", "integer"]})
    head = {"type": "SCHEMA", "stream": name, "schema": schema, "key_properties": keys}
    return [json.dumps(head)] + [json.dumps({"type": "RECORD", "stream": name, "record": r}) for r in records]


def test_rejects_of_foreign_records_are_named_by_their_key_or_position(
    sb: RunningSandbox, config: dict[str, Any]
) -> None:
    lines = [
        # members keyed by e-mail in the source (no Mailchimp list_id / id)
        *_stream(
            "members",
            ["email"],
            [
                {"email": "Ada@Example.net", "email_address": "Ada@Example.net", "status": "sometimes"},
                {"email": "bob@example.net", "email_address": "not an address", "status": "subscribed"},
            ],
        ),
        # unsubscribes keyed by the source's own reference
        *_stream("unsubscribes", ["ref"], [{"ref": "U-7", "email_address": "c@example.net"}]),
        # attributed orders without a key at all: named by their position in the stream
        *_stream(
            "attributed_orders",
            [],
            [
                {"store_id": "s", "id": "1", "campaign_id": None},
                {"campaign_id": "c0ffee0001", "id": 17},
            ],
        ),
        json.dumps({"type": "STATE", "value": {"done": True}}),
    ]
    run_target(config, lines)
    got = sorted((r["stream"], r["key"], r["field"], r["kind"]) for r in rejects(config))
    assert got == [
        ("attributed_orders", "#2", "id", "field_reject"),  # the input check: 17 is not a string id
        ("attributed_orders", "#2", "id", "reject"),  # the sink: without it, no order to attribute
        ("members", f"email=md5:{subscriber_hash('ada@example.net')}", "status", "reject"),
        ("members", f"email=md5:{subscriber_hash('bob@example.net')}", "email_address", "reject"),
        ("unsubscribes", "ref=U-7", "campaign_id", "reject"),
    ]
    assert not any("None" in r["key"] or "@" in r["key"] for r in rejects(config))
