"""`make demo` installs the Meltano plugins only when something changed, and says clearly when it cannot."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from installs import snapshot_repository
from pipelines import INSTALL_STAMP, install_digest, install_env, meltano_install


def test_nothing_changed_nothing_reinstalled(meltano_ready: None, tmp_path: Path) -> None:
    """After an install, the next call finds the same inputs and does not run `meltano install`."""
    assert INSTALL_STAMP.read_text() == install_digest()
    started = time.monotonic()
    assert meltano_install(install_env(tmp_path)) is False
    assert time.monotonic() - started < 30  # a digest and a few stat calls, not an install


def test_offline_without_cache_fails_with_one_clear_message(tmp_path: Path) -> None:
    """No network and an empty uv cache: the demo stops at once with one message saying why."""
    source = tmp_path / "repo"
    snapshot_repository(source)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MELTANO_", "UV_"))}
    env.update(
        {
            "UV_CACHE_DIR": str(tmp_path / "empty-uv-cache"),
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
        }
    )
    out = subprocess.run(
        ["unshare", "-n", sys.executable, str(source / "scripts" / "demo.py"),
         "--workdir", str(tmp_path / "demo")],
        cwd=source, env=env, capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-3000:]
    assert "Cannot install the Meltano plugins: the package index is not reachable" in out.stdout
    assert "Installation failed" not in out.stdout
    assert "Traceback" not in out.stdout + out.stderr
    assert not (source / ".meltano" / "oromc-install.sha256").exists()
