"""scripts/pipelines.py serialises Meltano commands that share the project's system directory, and
only those: a command with a system directory of its own (every e2e test's Project) runs at once."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from pipelines import (  # noqa: E402
    RunResult,
    has_private_sys_dir,
    install_env,
    meltano,
    private_sys_dir,
    project_lock,
)


def test_only_another_system_directory_is_private(tmp_path: Path) -> None:
    assert not has_private_sys_dir({})
    assert not has_private_sys_dir({"MELTANO_SYS_DIR_ROOT": ""})
    assert not has_private_sys_dir({"MELTANO_SYS_DIR_ROOT": str(ROOT / ".meltano")})
    assert has_private_sys_dir({"MELTANO_SYS_DIR_ROOT": str(private_sys_dir(tmp_path))})


def test_a_command_with_its_own_system_directory_does_not_wait_for_the_project_lock(
    tmp_path: Path,
) -> None:
    env = {**install_env(tmp_path), "MELTANO_SYS_DIR_ROOT": str(private_sys_dir(tmp_path))}
    results: list[RunResult] = []
    with project_lock():  # held here: a command waiting for it would not end before the release
        worker = threading.Thread(
            target=lambda: results.append(meltano("--version", env=env, timeout=120))
        )
        worker.start()
        worker.join(timeout=150)
        finished = not worker.is_alive()
    worker.join()
    assert finished, "the command waited for the project lock"
    assert results[0].returncode == 0, results[0].log_tail
