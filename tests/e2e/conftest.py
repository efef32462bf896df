"""Fixtures for end-to-end tests: real `meltano run` commands against a real sandbox."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from e2e_harness import QUICK_BATCHES, Project, project_copy
from oromc_sandbox.testing import running_sandbox
from pipelines import DEV_SANDBOX_OPTIONS, install_env, meltano_install


@pytest.fixture(scope="session")
def meltano_ready(tmp_path_factory: pytest.TempPathFactory) -> None:
    """`meltano install` once per test session (plugins come from this repository's folders)."""
    meltano_install(install_env(tmp_path_factory.mktemp("meltano-install")))


@pytest.fixture(scope="module")
def project(meltano_ready: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """A fresh sandbox (small, deterministic) and a Meltano project pointed at it (a copy of
    meltano.yml polling the sandbox's quick /batches jobs every 0.1 s, ``QUICK_BATCHES``).

    The sandbox clock starts 31 days in the past, so a test can move it 30 days forward (letting all
    seeded engagement arrive) and still have the servers' clocks behind this machine's, as a real
    server's would be within a second or so; connectors may rely on that.
    """
    epoch = (datetime.now(UTC) - timedelta(days=31)).isoformat()
    with running_sandbox(customers=40, seed=11, epoch=epoch, **DEV_SANDBOX_OPTIONS) as sandbox:
        # the copy outside the project's folder, which test_no_echo.py scans for secrets (meltano.yml
        # holds the sandbox's well-known client secret)
        root = project_copy(tmp_path_factory.mktemp("e2e-project"), QUICK_BATCHES)
        yield Project(sandbox, tmp_path_factory.mktemp("e2e"), root=root)
