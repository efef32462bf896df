"""PostgreSQL as Meltano's system database (the documented production state store), for real.

The fixture starts a throw-away PostgreSQL server from the system packages (installed on a fresh
machine by `make test`, see scripts/ensure_system_packages.sh) on a free loopback port.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from e2e_harness import Project
from pipelines import meltano


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not candidates:
        msg = f"{name} not found: PostgreSQL server packages are missing (run `make test`)"
        raise FileNotFoundError(msg)
    return str(candidates[-1])


def _as_server_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: use the `postgres` system user when we are root."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def postgres_uri() -> Iterator[str]:
    """A running PostgreSQL server; yields a SQLAlchemy URI for Meltano's system database."""
    # Not under pytest's tmp folder: that one is private to root, and the server runs as `postgres`.
    top = Path(tempfile.mkdtemp(prefix="oromc-pg-"))
    data = top / "data"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(top, "postgres", "postgres")
        shutil.chown(data, "postgres", "postgres")
    port = _free_port()
    subprocess.run(
        _as_server_user([_pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1"
    pg_ctl = _pg_bin("pg_ctl")
    subprocess.run(
        _as_server_user(
            [pg_ctl, "-D", str(data), "-o", options, "-w", "-l", str(data / "log"), "start"]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_server_user([pg_ctl, "-D", str(data), "-m", "fast", "stop"]), check=False
        )


def test_pipeline_state_lives_in_postgresql(project: Project, postgres_uri: str) -> None:
    """A pipeline run with MELTANO_DATABASE_URI on PostgreSQL keeps its bookmarks there."""
    env = {**project.env, "MELTANO_DATABASE_URI": postgres_uri}
    meltano("run", "tap-orocommerce", "target-jsonl", env=env).check()

    got = meltano("state", "get", "dev:tap-orocommerce-to-target-jsonl", env=env).check()
    state = json.loads(next(line for line in got.log_tail if line.startswith('{"singer_state"')))
    bookmarks = state["singer_state"]["bookmarks"]
    assert {"customers", "contacts", "orders"} <= set(bookmarks)
    assert bookmarks["customers"]["replication_key"] == "updated_at"

    with psycopg.connect(postgres_uri.replace("postgresql+psycopg", "postgresql")) as conn:
        row = conn.execute(
            "SELECT state_id FROM state WHERE state_id = %s",
            ("dev:tap-orocommerce-to-target-jsonl",),
        ).fetchone()
    assert row is not None, "the state row is in PostgreSQL, not in the default SQLite file"
