"""meltano.yml stays true to the connectors: every setting declared, with a kind, secrets sensitive."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONNECTORS = [
    "tap-orocommerce",
    "target-mailchimp",
    "tap-mailchimp-engagement",
    "target-orocommerce",
]
# Settings the SDK adds to every plugin; Meltano knows them through the capabilities.
SDK_BUILTIN = {
    "stream_maps",
    "stream_map_config",
    "faker_config",
    "flattening_enabled",
    "flattening_max_depth",
    "flattening_max_key_length",
    "flattening_separator",
    "batch_config",
    "load_method",
    "validate_records",
    "add_record_metadata",
    "process_activate_version_messages",
    "batch_size_rows",
}


def _project() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "meltano.yml").read_text())
    return data


def _plugin(name: str) -> dict[str, Any]:
    plugins = _project()["plugins"]
    return next(p for kind in ("extractors", "loaders") for p in plugins[kind] if p["name"] == name)


def _about(name: str) -> dict[str, Any]:
    exe = Path(sys.executable).with_name(name)
    out = subprocess.run(
        [str(exe), "--about", "--format", "json"], check=True, capture_output=True, text=True
    )
    data: dict[str, Any] = json.loads(out.stdout)
    return data


@pytest.mark.parametrize("name", CONNECTORS)
def test_every_setting_is_declared_with_kind_description_and_sensitivity(name: str) -> None:
    about = _about(name)["settings"]["properties"]
    declared = {s["name"]: s for s in _plugin(name)["settings"]}
    own = {k: v for k, v in about.items() if k not in SDK_BUILTIN}
    assert set(own) <= set(declared), (
        f"settings missing from meltano.yml: {set(own) - set(declared)}"
    )
    assert set(declared) <= set(about), (
        f"meltano.yml declares unknown settings: {set(declared) - set(about)}"
    )
    for key, schema in own.items():
        assert schema.get("description"), f"{name}.{key} has no description in config_jsonschema"
        assert "kind" in declared[key], f"{name}.{key} has no kind in meltano.yml"
        assert declared[key].get("description"), f"{name}.{key} has no description in meltano.yml"
        if schema.get("secret"):
            assert declared[key].get("sensitive") is True, (
                f"{name}.{key} is secret but not sensitive"
            )


@pytest.mark.parametrize("name", CONNECTORS)
def test_plugins_install_from_the_repository_with_accurate_capabilities(name: str) -> None:
    plugin = _plugin(name)
    assert plugin["pip_url"] == f"-e ./common -e ./{name}"
    capabilities = set(plugin["capabilities"])
    assert {"about", "stream-maps"} <= capabilities
    if name.startswith("tap-"):
        assert {"state", "catalog", "discover"} <= capabilities
    declared_by_plugin = set(_about(name)["capabilities"])
    assert capabilities - {"schema-flattening", "structured-logging"} <= declared_by_plugin


def test_jobs_and_schedules() -> None:
    project = _project()
    jobs = {j["name"]: j["tasks"] for j in project["jobs"]}
    assert jobs["audience-sync"] == ["tap-orocommerce--audience target-mailchimp"]
    assert jobs["engagement-sync"] == ["tap-mailchimp-engagement target-orocommerce"]
    assert {s["job"] for s in project["schedules"]} == {"audience-sync", "engagement-sync"}
    assert {e["name"] for e in project["environments"]} == {"dev", "prod"}


def test_prod_environment_holds_no_secret() -> None:
    prod = next(e for e in _project()["environments"] if e["name"] == "prod")
    secret_names = {
        s["name"] for name in CONNECTORS for s in _plugin(name)["settings"] if s.get("sensitive")
    }
    for kind in ("extractors", "loaders"):
        for plugin in prod["config"]["plugins"][kind]:
            assert not set(plugin["config"]) & secret_names, plugin["name"]
            for value in plugin["config"].values():
                assert not isinstance(value, str) or value.startswith("$"), (
                    "prod values come from the environment"
                )
