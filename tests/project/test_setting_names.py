"""One spelling per concept across the four connectors, and former names still working with a warning."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from oromc_common.settings import Renamed, apply_renamed_settings, retries_to_tries
from singer_sdk.exceptions import ConfigValidationError
from tap_mailchimp_engagement.tap import TapMailchimpEngagement
from tap_orocommerce.tap import TapOroCommerce
from target_mailchimp.target import TargetMailchimp
from target_orocommerce.target import TargetOroCommerce

ROOT = Path(__file__).resolve().parents[2]
CONNECTORS: dict[str, Any] = {
    "tap-orocommerce": TapOroCommerce,
    "target-orocommerce": TargetOroCommerce,
    "tap-mailchimp-engagement": TapMailchimpEngagement,
    "target-mailchimp": TargetMailchimp,
}
#: Concept -> the one setting name (the SDK's / Meltano Hub's usual spelling).
CANONICAL = {
    "timeout": "request_timeout",
    "attempts": "max_tries",
    "first wait": "backoff_factor_seconds",
    "longest wait": "backoff_max_seconds",
    "parallel requests": "max_connections",
    "page size": "page_size",
    "rejects report": "rejects_path",
    "tags of the other direction": "exclude_tag_prefixes",
}
#: Words that mark a setting as one of those concepts; other names with them are listed on purpose.
CONCEPT_WORDS = re.compile(r"timeout|retr|tries|backoff|wait|concurren|connections|page|reject|tag_prefixes")
OTHER_CONCEPTS = {
    "connection_budget_dir",  # where the connection budget is shared, not how many
    "connection_budget_database_uri",
    "batch_timeout_minutes",  # how long to wait for a Mailchimp batch operation, not one request
}
ORO = {"base_url": "https://shop.example.com", "client_id": "id", "client_secret": "secret"}
KEY = "0123456789abcdef0123456789abcdef-us21"
MINIMAL: dict[str, dict[str, Any]] = {
    "tap-orocommerce": ORO,
    "target-orocommerce": ORO,
    "tap-mailchimp-engagement": {"api_key": KEY},
    "target-mailchimp": {"api_key": KEY, "list_id": "abc"},
}


def _properties(name: str) -> dict[str, Any]:
    props: dict[str, Any] = CONNECTORS[name].config_jsonschema["properties"]
    return props


def _meltano_settings(name: str) -> dict[str, dict[str, Any]]:
    data = yaml.safe_load((ROOT / name / "meltano-plugin.yml").read_text())
    entry = data[0] if isinstance(data, list) else data
    return {s["name"]: s for s in entry["settings"]}


@pytest.mark.parametrize("name", CONNECTORS)
def test_one_spelling_per_concept(name: str) -> None:
    declared = set(_properties(name)) | set(_meltano_settings(name))
    odd = sorted(
        key
        for key in declared
        if CONCEPT_WORDS.search(key) and key not in CANONICAL.values() and key not in OTHER_CONCEPTS
    )
    assert odd == [], f"{name}: use the shared names {sorted(CANONICAL.values())}"
    former = {r.old for r in CONNECTORS[name].renamed_settings}
    assert not former & declared, "a former name is still declared"


def test_shared_settings_have_the_same_type_bounds_and_kind_everywhere() -> None:
    for key in CANONICAL.values():
        schemas = {n: _properties(n)[key] for n in CONNECTORS if key in _properties(n)}
        assert schemas, key
        types = {n: (str(s.get("type")), "minimum" in s or s.get("type") != ["integer", "null"])
                 for n, s in schemas.items()}  # fmt: skip
        assert len({t for t, _ in types.values()}) == 1, (key, types)
        if key not in {"rejects_path", "exclude_tag_prefixes"}:
            assert all("minimum" in s and "maximum" in s for s in schemas.values()), (key, schemas)
        kinds = {n: _meltano_settings(n)[key]["kind"] for n in schemas}
        assert len(set(kinds.values())) == 1, (key, kinds)


@pytest.mark.parametrize("key", ["batch_poll_seconds", "batch_timeout_minutes"])
def test_batch_waits_have_the_same_type_bounds_default_and_kind_in_both_mailchimp_connectors(
    key: str,
) -> None:
    names = ("tap-mailchimp-engagement", "target-mailchimp")
    schemas = {
        n: {k: v for k, v in _properties(n)[key].items() if k != "description"} for n in names
    }
    assert schemas["tap-mailchimp-engagement"] == schemas["target-mailchimp"], schemas
    assert {"minimum", "maximum"} <= set(schemas["target-mailchimp"])
    assert len({_meltano_settings(n)[key]["kind"] for n in names}) == 1
    with pytest.raises(ConfigValidationError) as info:
        TapMailchimpEngagement(config={**MINIMAL["tap-mailchimp-engagement"], key: 10_000})
    assert any(key in e and "maximum" in e for e in info.value.errors), info.value.errors


def test_bounds_are_checked_by_the_schema() -> None:
    with pytest.raises(ConfigValidationError) as info:
        TargetOroCommerce(config={**ORO, "max_connections": 33})
    assert any("max_connections" in e and "maximum of 32" in e for e in info.value.errors)


def test_renamed_settings_move_with_a_warning_naming_the_new_one(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test")
    renamed = [Renamed("old_a", "a"), Renamed("max_retries", "max_tries", retries_to_tries, "counts attempts")]
    config: dict[str, Any] = {"old_a": 1, "max_retries": 2}
    with caplog.at_level(logging.WARNING, logger="test"):
        warnings = apply_renamed_settings(config, renamed, logger)
    assert config == {"a": 1, "max_tries": 3}
    assert len(warnings) == 2
    assert "'old_a' is deprecated" in warnings[0]
    assert "use 'a'" in warnings[0]
    assert "use 'max_tries' (counts attempts)" in warnings[1]
    assert [r.getMessage() for r in caplog.records] == warnings

    both = {"old_a": 1, "a": 5}
    [message] = apply_renamed_settings(both, renamed, logger)
    assert both == {"a": 5}  # the current name wins
    assert "'old_a' is deprecated and ignored: 'a' is also set" in message
    assert retries_to_tries("x") == "x"  # left for the schema validation to name
    assert retries_to_tries(True) is True


FORMER: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("tap-orocommerce", {"max_retries": 3, "backoff_base_seconds": 0.1, "rejects_file": "r.jsonl"},
     {"max_tries": 4, "backoff_factor_seconds": 0.1, "rejects_path": "r.jsonl"}),
    ("target-orocommerce", {"max_retries": 3, "max_retry_wait": 7, "max_concurrency": 2,
                            "lookup_page_size": 50, "ignore_tag_prefixes": ["x:"]},
     {"max_tries": 3, "backoff_max_seconds": 7, "max_connections": 2, "page_size": 50,
      "exclude_tag_prefixes": ["x:"]}),
    ("tap-mailchimp-engagement", {"request_timeout_seconds": 30}, {"request_timeout": 30}),
    ("target-mailchimp", {"retry_backoff_seconds": 0.2}, {"backoff_factor_seconds": 0.2}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "old", "new"), FORMER)
def test_former_names_keep_working_in_every_connector(
    name: str, old: dict[str, Any], new: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    given = {**MINIMAL[name], **old}
    with caplog.at_level(logging.WARNING):
        plugin = CONNECTORS[name](config=given)
    for key, value in new.items():
        assert plugin.config[key] == value
    assert not set(old) & set(plugin.config)
    assert set(old) <= set(given)  # the caller's dict is left as it was
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for key in old:
        assert f"Setting '{key}' is deprecated" in logged
    assert {r.old for r in CONNECTORS[name].renamed_settings} == set(old)
