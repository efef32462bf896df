"""Venvs of the peer connectors: third-party Mailchimp sources run against the sandbox, each in its own venv.

The sandbox's conformance suite (tests/sandbox_mailchimp/test_singer_tap_mailchimp.py) and the benchmark
bench/bench_tap_mailchimp_engagement.py run them unmodified. Their dependencies conflict with ours (old
pins), so each gets `.venv-<peer>/` at the repository root (git-ignored: a `.gitignore` with `*` inside),
installed with `uv pip install --require-hashes --no-deps` (from uv's cache when it holds every package,
else from the index) from its hashed lock `requirements/<peer>.txt`
(`make lock` writes it from `requirements/<peer>.in`). A venv is made once and made again only when its lock
changed (the lock's sha256 is kept in `.venv-<peer>/.lock-sha256`).

    .venv/bin/python scripts/peer_venvs.py                       # every peer
    .venv/bin/python scripts/peer_venvs.py airbyte-source-mailchimp
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# peer (= requirements/<peer>.txt) -> its command in the venv's bin/
PEERS = {
    "tap-mailchimp-singer": "tap-mailchimp",  # singer-io tap-mailchimp 1.3.3
    "airbyte-source-mailchimp": "source-mailchimp",  # Airbyte's source, with airbyte-cdk
}


def venv_dir(peer: str, root: Path = ROOT) -> Path:
    """Where the venv of ``peer`` lives."""
    return root / f".venv-{peer}"


def lock_file(peer: str, root: Path = ROOT) -> Path:
    """The hashed lock ``peer`` is installed from."""
    return root / "requirements" / f"{peer}.txt"


def is_current(peer: str, root: Path = ROOT) -> bool:
    """True when the venv holds the peer's command and was installed from the lock as it is now."""
    home = venv_dir(peer, root)
    stamp = home / ".lock-sha256"
    digest = hashlib.sha256(lock_file(peer, root).read_bytes()).hexdigest()
    return (home / "bin" / PEERS[peer]).exists() and stamp.exists() and stamp.read_text() == digest


def ensure(peer: str, root: Path = ROOT) -> Path:
    """The peer's command, after (re)creating its venv from the lock if needed."""
    home = venv_dir(peer, root)
    command = home / "bin" / PEERS[peer]
    if is_current(peer, root):
        return command
    lock = lock_file(peer, root)
    uv = Path(sys.executable).with_name("uv")
    shutil.rmtree(home, ignore_errors=True)
    subprocess.run([str(uv), "venv", "-q", "--python", sys.executable, str(home)], check=True, cwd=root)
    install = [str(uv), "pip", "install", "-q", "--python", str(home / "bin" / "python"),
               "--require-hashes", "--no-deps", "-r", str(lock)]  # fmt: skip
    # from uv's cache when it has every package (no network needed), else from the index
    offline = subprocess.run(install, env={**os.environ, "UV_OFFLINE": "1"}, capture_output=True, check=False, cwd=root)
    if offline.returncode != 0:
        subprocess.run(install, check=True, cwd=root)
    (home / ".gitignore").write_text("*\n")
    (home / ".lock-sha256").write_text(hashlib.sha256(lock.read_bytes()).hexdigest())
    return command


def main(argv: list[str] | None = None) -> int:
    """Make the venvs named (default: all) and print each command's path."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("peers", nargs="*", help=f"any of {', '.join(PEERS)} (default: every peer)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.peers) - set(PEERS))
    if unknown:
        parser.error(f"unknown peer(s): {', '.join(unknown)}")
    for peer in args.peers or list(PEERS):
        print(ensure(peer))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
