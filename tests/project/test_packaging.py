"""Each package builds as a wheel with complete metadata and installs on its own in a fresh environment."""

from __future__ import annotations

import email.parser
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from installs import PIN, ROOT, UV, fresh_venv, locked_versions, not_locked
from readme_snippets import snippet

PACKAGES = {
    "common": ("oromc-common", "oromc_common", None),
    "sandbox": ("oromc-sandbox", "oromc_sandbox", "sandbox"),
    "tap-orocommerce": ("tap-orocommerce", "tap_orocommerce", "tap-orocommerce"),
    "target-mailchimp": ("target-mailchimp", "target_mailchimp", "target-mailchimp"),
    "tap-mailchimp-engagement": (
        "tap-mailchimp-engagement",
        "tap_mailchimp_engagement",
        "tap-mailchimp-engagement",
    ),
    "target-orocommerce": ("target-orocommerce", "target_orocommerce", "target-orocommerce"),
}
CONNECTORS = [d for d in PACKAGES if d.startswith(("tap-", "target-"))]
LOCK = ROOT / "requirements" / "lock.txt"


def _run(*cmd: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> str:
    out = subprocess.run(
        list(cmd), cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=900
    )
    assert out.returncode == 0, f"{' '.join(cmd)}:\n{(out.stdout + out.stderr)[-4000:]}"
    return out.stdout


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`uv build --wheel` of the six packages (build backend from the lock)."""
    dist = tmp_path_factory.mktemp("dist")
    built = {}
    for folder in PACKAGES:
        _run(UV, "build", "--wheel", "--quiet", "--build-constraint", str(LOCK), "--out-dir",
             str(dist / folder), str(ROOT / folder))  # fmt: skip
        (wheel,) = (dist / folder).glob("*.whl")
        built[folder] = wheel
    return built


@pytest.mark.parametrize("folder", list(PACKAGES))
def test_wheel_metadata_is_complete(folder: str, wheels: dict[str, Path]) -> None:
    name, module, script = PACKAGES[folder]
    with zipfile.ZipFile(wheels[folder]) as wheel:
        names = wheel.namelist()
        info = next(n.rsplit("/", 1)[0] for n in names if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(wheel.read(f"{info}/METADATA").decode())
        entry_points = wheel.read(f"{info}/entry_points.txt").decode() if script else ""
    project = tomllib.loads((ROOT / folder / "pyproject.toml").read_text())["project"]
    assert meta["Name"] == name
    assert meta["Version"] == project["version"]
    assert len(meta["Summary"] or "") > 40
    assert meta["License-Expression"] == "Apache-2.0"
    assert f"{info}/licenses/LICENSE" in names
    assert "Apache License" in (ROOT / folder / "LICENSE").read_text()
    assert meta["Description-Content-Type"] == "text/markdown"
    assert meta.get_payload().strip() == (ROOT / folder / "README.md").read_text().strip()
    assert meta["Requires-Python"] == ">=3.11"
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert set(urls) >= {"Homepage", "Documentation", "Repository", "Issues"}
    classifiers = meta.get_all("Classifier")
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert any(c.startswith("Development Status ::") for c in classifiers)
    for dependency in meta.get_all("Requires-Dist"):
        requirement = Requirement(dependency)
        assert requirement.url is None, f"{name}: {dependency} is a direct reference"
        operators = {spec.operator for spec in requirement.specifier}
        assert {">=", "<"} <= operators, f"{name}: {dependency} needs both bounds"
    assert any(n.startswith(f"{module}/") for n in names)
    assert not any("/tests/" in n or n.startswith("tests/") for n in names)
    if script:
        assert re.search(rf"^{re.escape(script)} = ", entry_points, re.M), entry_points


def test_every_declared_dependency_is_satisfied_by_the_lock() -> None:
    """The lock is current: every bound in a pyproject.toml or requirements/dev.in admits its pin."""
    pins = locked_versions()
    declared = [
        (folder, dep)
        for folder in PACKAGES
        for dep in tomllib.loads((ROOT / folder / "pyproject.toml").read_text())["project"][
            "dependencies"
        ]
    ]
    declared += [
        ("requirements/dev.in", line.strip())
        for line in (ROOT / "requirements" / "dev.in").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    own = {PACKAGES[f][0] for f in PACKAGES}
    for where, dep in declared:
        requirement = Requirement(dep)
        if requirement.name in own:
            continue
        versions = pins.get(re.sub(r"[-_.]+", "-", requirement.name).lower())
        assert versions, (
            f"{where}: {requirement.name} is not in requirements/lock.txt: run make lock"
        )
        assert any(Version(v) in SpecifierSet(str(requirement.specifier)) for v in versions), (
            f"{where}: {dep} excludes the locked {versions}: run make lock"
        )
    assert PIN.search((ROOT / "requirements" / "uv.txt").read_text())


def test_the_wheels_install_together_at_the_locked_versions(
    wheels: dict[str, Path], tmp_path: Path
) -> None:
    python = fresh_venv(tmp_path / "venv")
    _run(UV, "pip", "install", "--quiet", "--python", str(python), "--constraint", str(LOCK),
         *map(str, wheels.values()))  # fmt: skip
    _run(UV, "pip", "check", "--python", str(python))
    for _, _, script in PACKAGES.values():
        if script:
            _run(str(python.parent / script), "--help")
    _, unlocked = not_locked(python)
    assert not unlocked, unlocked


@pytest.mark.parametrize("folder", CONNECTORS)
def test_local_plugin_definition_installs_alone(folder: str, tmp_path: Path) -> None:
    """The `.local.yml` definition's pip_url, expanded as Meltano does, installs the connector alone."""
    kind = "extractors" if folder.startswith("tap-") else "loaders"
    definition = yaml.safe_load((ROOT / "plugins" / kind / f"{folder}.local.yml").read_text())
    args = definition["pip_url"].replace("${OROMC_CONNECTORS}", str(ROOT)).split()
    python = fresh_venv(tmp_path / "venv")
    _run(UV, "pip", "install", "--quiet", "--python", str(python), *args)
    about = _run(str(python.parent / definition["executable"]), "--about", "--format", "json")
    assert definition["name"] in about
    direct, unlocked = not_locked(python)
    assert not unlocked, unlocked
    assert {d.split(" @ ")[0] for d in direct} == {"oromc-common", folder}


@pytest.mark.parametrize("line", [0, 1])
def test_readme_install_without_meltano(line: int, tmp_path: Path) -> None:
    """Each command of the README's "without Meltano" block works alone in a fresh environment."""
    block = snippet("README.md", "Using the connectors in your own project", 2)
    assert block.run_by == "tests/project/test_packaging.py"
    commands = [c for c in block.text.splitlines() if c.strip() and not c.startswith("#")]
    assert len(commands) == 2
    python = fresh_venv(tmp_path / "venv", pip=commands[line].startswith("pip "))
    env = {
        **os.environ,
        "OROMC_CONNECTORS": str(ROOT),
        "VIRTUAL_ENV": str(python.parent.parent),
        "PATH": f"{python.parent}{os.pathsep}{Path(UV).parent}{os.pathsep}{os.environ['PATH']}",
    }
    _run("bash", "-euo", "pipefail", "-c", commands[line], env=env, cwd=tmp_path)
    _run(str(python.parent / "tap-orocommerce"), "--about")
