"""A SIGKILLed `meltano run` leaves the plugin's config file (with its secret) behind: with the
project's scripts it is private to its owner, and `remove_leftover_configs` clears it."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest
from e2e_harness import Project
from pipelines import meltano, private_sys_dir, remove_leftover_configs, start_meltano


@pytest.mark.usefixtures("meltano_ready")
def test_a_killed_run_leaves_a_private_config_file_that_cleanup_removes(
    project: Project, tmp_path: Path
) -> None:
    sys_dir = private_sys_dir(tmp_path)
    env = {**project.env, "MELTANO_SYS_DIR_ROOT": str(sys_dir)}
    run_dir = sys_dir / "run" / "tap-orocommerce"
    proc = start_meltano("run", "tap-orocommerce", "target-jsonl", env=env,
                         stdout=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        # one file per plugin invocation: tap.<uuid>.config.json
        # (and written: the file exists a moment before Meltano has written its content)
        while not (configs := [c for c in run_dir.glob("tap.*.config.json") if c.stat().st_size]):
            assert proc.poll() is None, "the run ended before its config file was seen"
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    (config,) = configs
    assert config.exists(), "Meltano's cleanup cannot run after SIGKILL"
    secret = project.sandbox.info["oro"]["client_secret"]
    assert json.loads(config.read_text())["client_secret"] == secret  # the risk is real...
    assert stat.S_IMODE(config.stat().st_mode) == 0o600  # ...but only the owner can read it
    assert stat.S_IMODE(config.parent.stat().st_mode) == 0o700

    assert remove_leftover_configs(sys_dir) == [config]
    assert not config.exists()
    meltano("run", "--force", "tap-orocommerce", "target-jsonl", env=env).check()  # after a kill
    assert list((sys_dir / "run").glob("*/*.config.json")) == [], "a finished run leaves nothing"



def test_the_readme_clean_up_commands(tmp_path: Path) -> None:
    """`chmod -R go-rwx .meltano` and `find .meltano/run -name '*.config.json' -delete`, as written
    in the README, on a project folder with a leftover from a killed run."""
    run = tmp_path / ".meltano" / "run" / "tap-orocommerce"
    run.mkdir(parents=True)
    leftover = run / "tap.0192aa00-0000-7000-8000-000000000000.config.json"
    leftover.write_text('{"client_secret": "s"}')
    catalog = run / "tap.properties.json"
    catalog.write_text("{}")
    for command in ("chmod -R go-rwx .meltano", "find .meltano/run -name '*.config.json' -delete"):
        subprocess.run(["bash", "-c", command], cwd=tmp_path, check=True)
    assert not leftover.exists()
    assert catalog.exists()
    assert stat.S_IMODE(catalog.stat().st_mode) & 0o077 == 0
    assert stat.S_IMODE(run.stat().st_mode) & 0o077 == 0
