"""A new Meltano project adds the four connectors from their plugin definitions and runs both jobs.

Runs the README's "Using the connectors in your own project" block as it stands, against a sandbox,
with the connectors installed from a git URL (a snapshot of this working tree committed to a temporary
repository, reached as `git+file://...@<commit>#subdirectory=<connector>`: no network beyond the
package index) at the versions of requirements/lock.txt.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from installs import not_locked, snapshot_repository
from oromc_sandbox.testing import RunningSandbox, running_sandbox
from pipelines import write_counts
from readme_snippets import snippet

CONNECTORS = {
    "extractors": ["tap-orocommerce", "tap-mailchimp-engagement"],
    "loaders": ["target-mailchimp", "target-orocommerce"],
}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox(customers=12, seed=5, shoppinglists=True) as running:
        yield running


def test_a_new_project_adds_the_four_definitions_and_runs_both_jobs(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    source = tmp_path / "oromc-connectors"
    commit = snapshot_repository(source)
    work = tmp_path / "work"
    work.mkdir()
    oro, mc = sandbox.info["oro"], sandbox.info["mailchimp"]
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("MELTANO_", "TAP_", "TARGET_", "OROCOMMERCE_", "MAILCHIMP_", "VIRTUAL_ENV")
        )
    }
    env.update(
        {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            "OROMC_CONNECTORS": str(source),
            "OROMC_CONNECTORS_GIT": f"file://{source}@{commit}",
            "OROMC_CONNECTORS_LOCK": str(source / "requirements" / "lock.txt"),
            "OROCOMMERCE_BASE_URL": oro["base_url"],
            "OROCOMMERCE_CLIENT_ID": oro["client_id"],
            "OROCOMMERCE_CLIENT_SECRET": oro["client_secret"],
            "MAILCHIMP_API_URL": mc["api_url"],
            "MAILCHIMP_API_KEY": mc["api_key"],
            "MAILCHIMP_LIST_ID": mc["list_id"],
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
        }
    )
    block = snippet("README.md", "Using the connectors in your own project", 1)
    assert block.run_by == "tests/e2e/test_own_project.py"
    out = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.text],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=1500,
    )
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-6000:]

    # both jobs moved data: the audience and store in Mailchimp, engagement into OroCommerce
    assert write_counts(sandbox.stats("mailchimp")) > 0, log[-3000:]
    assert write_counts(sandbox.stats("oro")) > 0, log[-3000:]

    # each plugin came from the git URL, and every third-party package is at the locked version
    project = work / "my-shop-pipelines"
    for kind, names in CONNECTORS.items():
        for name in names:
            python = project / ".meltano" / kind / name / "venv" / "bin" / "python"
            direct, unlocked = not_locked(python)
            assert any(
                line.startswith(f"{name} @ git+file://{source}@{commit}") for line in direct
            ), direct
            assert any(line.startswith("oromc-common @ git+file://") for line in direct), direct
            assert not unlocked, f"{name}: not at the locked version: {unlocked}"
