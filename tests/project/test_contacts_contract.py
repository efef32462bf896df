"""tap-orocommerce's ``contacts`` stream and target-mailchimp's input contract (contract.py) agree:
every field the tap emits that the target reads has a type the target accepts, the merge fields of
the project's dev environment name contract fields, and each typed merge field gets a value its
Mailchimp type takes (numbers for number, dates for date and birthday, objects for address)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft7Validator
from tap_orocommerce.contacts import ContactsStream
from target_mailchimp.contract import CONTACTS_SCHEMA
from target_mailchimp.mapping import MergeFieldSpec, coerce_merge_value

ROOT = Path(__file__).resolve().parents[2]
TAP = ContactsStream.build_schema()["properties"]
TARGET = CONTACTS_SCHEMA["properties"]
#: Carried by the tap for other loaders; target-mailchimp has no use for them.
TAP_ONLY = {"created_at", "customer_group_id", "primary_address_id"}
#: Accepted by the target from other taps (tap-orocommerce spells it customer_group_name).
TARGET_ONLY = {"customer_group"}
#: Which JSON types (and formats) each Mailchimp merge type takes.
MERGE_TYPE_SOURCES: dict[str, set[tuple[str, str | None]]] = {
    "number": {("integer", None), ("number", None)},
    "date": {("string", "date-time"), ("string", "date")},
    "birthday": {("string", "date"), ("string", "date-time")},
    "address": {("object", None)},
    "text": {("string", None), ("integer", None), ("number", None), ("boolean", None)},
    "phone": {("string", None)},
}


def _types(schema: dict[str, Any]) -> set[str]:
    kind = schema.get("type")
    return {kind} if isinstance(kind, str) else set(kind or ())


def _dev_target_config() -> dict[str, Any]:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    dev = next(e for e in project["environments"] if e["name"] == "dev")
    loaders = dev["config"]["plugins"]["loaders"]
    config: dict[str, Any] = next(p for p in loaders if p["name"] == "target-mailchimp")["config"]
    return config


def test_every_shared_field_has_a_type_the_target_accepts() -> None:
    assert set(TAP) - set(TARGET) == TAP_ONLY
    assert set(TARGET) - set(TAP) == TARGET_ONLY
    for name in set(TAP) & set(TARGET):
        tap, target = TAP[name], TARGET[name]
        assert _types(tap) - {"null"} <= _types(target), name
        assert tap.get("format") == target.get("format"), name
        if "object" in _types(tap):  # nested keys agree too (the address)
            assert set(tap["properties"]) == set(target["properties"]), name


def test_a_full_tap_row_is_valid_input() -> None:
    row = {
        "customer_user_id": 7, "email": "a@example.com", "first_name": "A", "last_name": "B",
        "phone": "+1 555 0100", "primary_address_id": 3, "country": "US", "city": "Springfield",
        "region": "US-IL", "birthday": "1980-04-12",
        "address": {"addr1": "1 Main St", "addr2": "", "city": "Springfield", "state": "IL",
                    "zip": "62701", "country": "US"},
        "orders_count": 2, "total_spent": 30.5, "average_order_value": 15.25,
        "first_order_date": "2026-01-02T03:04:05Z", "last_order_date": "2026-02-03T04:05:06Z",
        "last_product": "Lamp", "customer_id": 1, "customer_name": "Acme", "customer_group_id": 2,
        "customer_group_name": "Wholesale", "tags": ["vip"], "enabled": True, "confirmed": True,
        "is_guest": False, "created_at": "2025-01-01T00:00:00Z", "marketing_consent": True,
        "consent_changed_at": "2025-01-01T00:00:00Z", "erase": False, "updated_at": "2026-02-03T04:05:06Z",
    }  # fmt: skip
    assert set(row) == set(TAP)  # the example names every field the tap emits
    assert list(Draft7Validator(ContactsStream.build_schema()).iter_errors(row)) == []
    assert list(Draft7Validator(CONTACTS_SCHEMA).iter_errors(row)) == []
    for tag, source, kind, expected in (
        ("ADDRESS", "address", "address", {"addr1": "1 Main St", "city": "Springfield",
                                           "state": "IL", "zip": "62701", "country": "US"}),
        ("BIRTHDAY", "birthday", "birthday", "04/12"),
        ("AOV", "average_order_value", "number", 15.25),
        ("LASTORDER", "last_order_date", "date", "2026-02-03"),
    ):  # fmt: skip
        assert coerce_merge_value(MergeFieldSpec(tag, kind), source, row[source]) == expected


def test_the_dev_environment_maps_contract_fields_to_fitting_merge_types() -> None:
    config = _dev_target_config()
    types = config.get("merge_field_types") or {}
    for tag, source in config["merge_fields"].items():
        assert source in TAP, (tag, source)
        assert source in TARGET, (tag, source)
        kind = types.get(tag, "text")
        fits = {(t, TAP[source].get("format")) for t in _types(TAP[source]) - {"null"}}
        assert fits & MERGE_TYPE_SOURCES[kind], (tag, source, kind)
    wanted = {"ADDRESS": "address", "BIRTHDAY": "birthday", "AOV": "number", "CUSTGROUP": "text",
              "ACCOUNT": "text", "REGION": "text", "LASTPROD": "text"}  # fmt: skip
    assert {tag: types.get(tag, "text") for tag in wanted} == wanted
