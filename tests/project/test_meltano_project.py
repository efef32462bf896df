"""meltano.yml stays true to the connectors: every setting declared, with a kind, secrets sensitive."""

from __future__ import annotations

import json
import os
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
# Settings the SDK adds to every plugin (declared in meltano.yml like the connectors' own: Meltano passes
# only declared settings from meltano.yml and <PLUGIN>_<SETTING> variables to a plugin).
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
    assert set(about) <= set(declared), (
        f"settings of --about missing from meltano.yml: {set(about) - set(declared)}"
    )
    assert set(declared) <= set(about), (
        f"meltano.yml declares unknown settings: {set(declared) - set(about)}"
    )
    for key, schema in about.items():
        if key in own:
            assert schema.get("description"), (
                f"{name}.{key} has no description in config_jsonschema"
            )
        assert "kind" in declared[key], f"{name}.{key} has no kind in meltano.yml"
        assert declared[key].get("description"), f"{name}.{key} has no description in meltano.yml"
        if schema.get("secret"):
            assert declared[key].get("sensitive") is True, (
                f"{name}.{key} is secret but not sensitive"
            )


@pytest.mark.parametrize("name", CONNECTORS)
def test_plugins_install_from_the_repository_with_accurate_capabilities(name: str) -> None:
    plugin = _plugin(name)
    assert plugin["pip_url"] == (
        "--constraint requirements/lock.txt --build-constraint requirements/lock.txt "
        f"--no-sources -e ./common -e ./{name}"
    )
    capabilities = set(plugin["capabilities"])
    assert {"about", "stream-maps"} <= capabilities
    if name.startswith("tap-"):
        assert {"state", "catalog", "discover"} <= capabilities
    declared_by_plugin = set(_about(name)["capabilities"])
    assert capabilities - {"schema-flattening", "structured-logging"} <= declared_by_plugin
    assert declared_by_plugin <= capabilities, "every capability of --about is declared"


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


ENV_VALUES = {"object": '{"probe": 1}', "boolean": "true", "integer": "3", "string": "probe"}


@pytest.mark.parametrize("name", CONNECTORS)
def test_sdk_settings_given_through_meltano_reach_the_plugin(name: str) -> None:
    """Meltano passes a setting only if it is declared: every SDK built-in of --about arrives."""
    builtins = {s["name"]: s for s in _plugin(name)["settings"] if s["name"] in SDK_BUILTIN}
    assert builtins, name
    prefix = name.upper().replace("-", "_")
    env = {**os.environ, "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false"}
    expected: dict[str, Any] = {}
    for key, setting in builtins.items():
        if setting["kind"] == "options":
            raw = setting["options"][-1]["value"]
            expected[key] = raw
        else:
            raw = ENV_VALUES[setting["kind"]]
            expected[key] = json.loads(raw) if setting["kind"] != "string" else raw
        env[f"{prefix}_{key.upper()}"] = raw
    out = subprocess.run(
        [
            str(Path(sys.executable).with_name("meltano")),
            "--log-level=warning",
            "config",
            "print",
            name,
            "--format=json",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    config = json.loads(out.stdout)
    assert {k: config.get(k) for k in expected} == expected


def test_generated_files_are_up_to_date() -> None:
    """meltano.yml and plugins/*/*.yml are what scripts/gen_meltano_yml.py writes today."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import gen_meltano_yml

    files = gen_meltano_yml.render()
    stale = [str(p.relative_to(ROOT)) for p, text in files.items() if p.read_text() != text]
    assert not stale, f"run .venv/bin/python scripts/gen_meltano_yml.py: {stale} differ"
    on_disk = set((ROOT / "plugins").rglob("*.yml"))
    assert on_disk == {p for p in files if p.parent.parent.name == "plugins"}


@pytest.mark.parametrize("name", CONNECTORS)
def test_plugin_definitions_match_the_project_entry(name: str) -> None:
    """The definitions for other projects carry the same settings and capabilities as meltano.yml."""
    kind = "extractors" if name.startswith("tap-") else "loaders"
    entry = _plugin(name)
    for path, pip_url in (
        (
            ROOT / "plugins" / kind / f"{name}.yml",
            "--constraint ${OROMC_CONNECTORS_LOCK} --build-constraint ${OROMC_CONNECTORS_LOCK} "
            f"git+${{OROMC_CONNECTORS_GIT}}#subdirectory={name}",
        ),
        (
            ROOT / "plugins" / kind / f"{name}.local.yml",
            "--constraint ${OROMC_CONNECTORS}/requirements/lock.txt --build-constraint "
            f"${{OROMC_CONNECTORS}}/requirements/lock.txt ${{OROMC_CONNECTORS}}/{name}",
        ),
    ):
        definition = yaml.safe_load(path.read_text())
        assert definition["pip_url"] == pip_url
        for key in ("name", "namespace", "executable", "capabilities", "settings", "label"):
            assert definition[key] == entry[key], (path.name, key)
        assert definition["variant"]
        assert definition["docs"].startswith("https://")
        assert definition["repo"].startswith("https://")
