"""scripts/peer_venvs.py (the peers' venvs from their hashed locks) and scripts/real_host.py (the namespace
in which they reach the sandbox on Mailchimp's real host name).

The peers' real installs and runs are in tests/sandbox_mailchimp/test_singer_tap_mailchimp.py and
bench/bench_tap_mailchimp_engagement.py; here the install decisions and the namespace's isolation.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import lock  # noqa: E402
import peer_venvs  # noqa: E402
import real_host  # noqa: E402


def test_every_peer_has_a_hashed_lock_that_make_lock_writes() -> None:
    for peer in peer_venvs.PEERS:
        assert peer in lock.THIRD_PARTY_PLUGINS
        text = peer_venvs.lock_file(peer).read_text()
        assert "--hash=sha256:" in text
        for line in (ROOT / "requirements" / f"{peer}.in").read_text().splitlines():
            if line and not line.startswith("#"):
                assert f"\n{line} \\\n" in text, line  # the .in's exact pins are the lock's


def _fake_root(tmp_path: Path, peer: str) -> Path:
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / f"{peer}.txt").write_text("pkg==1.0 --hash=sha256:00\n")
    return tmp_path


def test_a_venv_is_made_from_the_lock_once_and_again_when_the_lock_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    peer = "airbyte-source-mailchimp"
    root = _fake_root(tmp_path, peer)
    calls: list[list[str]] = []

    def fake_run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        calls.append(cmd)
        if cmd[1] == "venv":
            (Path(cmd[-1]) / "bin").mkdir(parents=True)
        elif kwargs.get("env", {}).get("UV_OFFLINE") == "1":  # uv's cache lacks a package
            return subprocess.CompletedProcess(cmd, 2)
        else:  # the install puts the peer's command into the venv
            (root / f".venv-{peer}" / "bin" / "source-mailchimp").write_text("")
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(peer_venvs.subprocess, "run", fake_run)
    assert not peer_venvs.is_current(peer, root)
    command = peer_venvs.ensure(peer, root)
    assert command == root / f".venv-{peer}" / "bin" / "source-mailchimp"
    install = calls[-1]
    assert install[1:3] == ["pip", "install"]
    assert {"--require-hashes", "--no-deps"} <= set(install)
    assert install[-1] == str(root / "requirements" / f"{peer}.txt")
    assert (root / f".venv-{peer}" / ".gitignore").read_text() == "*\n"
    assert peer_venvs.is_current(peer, root)

    calls.clear()
    peer_venvs.ensure(peer, root)
    assert calls == []  # reused
    (root / "requirements" / f"{peer}.txt").write_text("pkg==1.1 --hash=sha256:11\n")
    assert not peer_venvs.is_current(peer, root)
    peer_venvs.ensure(peer, root)
    assert [c[1] for c in calls] == ["venv", "pip", "pip"]  # made again (the cache first, then the index)


def test_an_unknown_peer_is_refused() -> None:
    with pytest.raises(SystemExit) as exc:
        peer_venvs.main(["tap-nonesuch"])
    assert exc.value.code == 2


CHILD = """
import sys
from pathlib import Path
sys.path.insert(0, {scripts!r})
import real_host
assert real_host.in_namespace()
real_host.loopback_up()
work = Path({work!r})
real_host.point_hosts_at_loopback(work, ["us21.api.mailchimp.com"])
real_host.trust_ca_in(work / "bundle.pem", work / "ca.pem", work)
import socket
lines = [socket.gethostbyname("us21.api.mailchimp.com"), (work / "bundle.pem").read_text().replace(chr(10), " ")]
(work / "out.txt").write_text(chr(10).join(lines))
"""


def test_the_namespace_maps_the_host_and_extends_a_bundle_only_inside(tmp_path: Path) -> None:
    (tmp_path / "bundle.pem").write_text("PUBLIC CAS\n")
    (tmp_path / "ca.pem").write_text("SANDBOX CA\n")
    hosts_before = Path("/etc/hosts").read_text()
    code = CHILD.format(scripts=str(ROOT / "scripts"), work=str(tmp_path))
    assert real_host.reexec_in_namespace(["-c", code]) == 0
    address, bundle = (tmp_path / "out.txt").read_text().splitlines()
    assert address == "127.0.0.1"
    assert bundle.split() == ["PUBLIC", "CAS", "SANDBOX", "CA"]
    # outside the namespace nothing changed
    assert (tmp_path / "bundle.pem").read_text() == "PUBLIC CAS\n"
    assert Path("/etc/hosts").read_text() == hosts_before
    assert not real_host.in_namespace()
