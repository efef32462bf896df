"""Helpers for the tests that install this repository's packages the way users do."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UV = str(Path(sys.executable).with_name("uv"))
# What a new environment may come with (`uv venv --seed`), not installed from a requirement.
SEED_PACKAGES = {"pip", "setuptools"}
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", re.M)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions() -> dict[str, set[str]]:
    """Every version requirements/lock.txt pins (a package may appear once per marker)."""
    pins: dict[str, set[str]] = {}
    for name, version in PIN.findall((ROOT / "requirements" / "lock.txt").read_text()):
        pins.setdefault(_canonical(name), set()).add(version)
    return pins


def snapshot_repository(dest: Path) -> str:
    """Copy this working tree's files (tracked and new, not ignored) into a fresh git repo; its commit."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for raw in files:
        if not raw:
            continue
        rel = raw.decode()
        source = ROOT / rel
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the working tree
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, target)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    subprocess.run(["git", "init", "-q", str(dest)], check=True)
    subprocess.run([*git, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-qm", "snapshot"], cwd=dest, check=True)
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=dest, capture_output=True, text=True, check=True
    ).stdout.strip()


def not_locked(python: Path) -> tuple[list[str], list[str]]:
    """The direct-URL packages of an environment, and its other packages not at a locked version."""
    frozen = subprocess.run(
        [UV, "pip", "freeze", "--python", str(python)], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    pins = locked_versions()
    frozen = [line for line in frozen if _canonical(line.split("==")[0]) not in SEED_PACKAGES]
    direct = [line for line in frozen if " @ " in line]
    unlocked = [
        line
        for line in frozen
        if " @ " not in line
        and (m := PIN.match(line))
        and m.group(2) not in pins.get(_canonical(m.group(1)), set())
    ]
    return direct, unlocked


def fresh_venv(path: Path, *, pip: bool = False) -> Path:
    """A new, empty virtual environment (with pip if asked); its python."""
    subprocess.run([UV, "venv", "--quiet", *(["--seed"] if pip else []), str(path)], check=True)
    return path / "bin" / "python"


def locked_plugin(name: str) -> Path:
    """The executable of third-party plugin ``name``, installed alone in its own environment from
    ``requirements/<name>.txt`` (exact versions, hashes checked), as meltano.yml's `pip_url`s do.

    The environment (`.venv/plugins/<name>`) is reused while the lock file is unchanged.
    """
    lock = ROOT / "requirements" / f"{name}.txt"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    venv = ROOT / ".venv" / "plugins" / name
    stamp = venv / ".lock-sha256"
    exe = venv / "bin" / name
    if not (exe.exists() and stamp.exists() and stamp.read_text() == digest):
        shutil.rmtree(venv, ignore_errors=True)
        python = fresh_venv(venv)
        install = [UV, "pip", "install", "--quiet", "--python", str(python), "--require-hashes", "-r", str(lock)]
        # from uv's cache when it has every package (tests may run without a network), else from the index
        offline = subprocess.run(install, env={**os.environ, "UV_OFFLINE": "1"}, capture_output=True, check=False)
        if offline.returncode != 0:
            subprocess.run(install, check=True)
        stamp.write_text(digest)
    return exe
