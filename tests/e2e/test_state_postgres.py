"""PostgreSQL as Meltano's system database (the documented production state store), for real.

The fixture starts a throw-away PostgreSQL server from the system packages (installed on a fresh
machine by `make test`, see scripts/ensure_system_packages.sh) on a free loopback port.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from e2e_harness import Project
from oromc_sandbox.testing import running_postgres
from pipelines import meltano


@pytest.fixture(scope="module")
def postgres_uri() -> Iterator[str]:
    """A running PostgreSQL server; yields a SQLAlchemy URI for Meltano's system database."""
    with running_postgres() as uri:
        yield uri


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


@pytest.mark.parametrize("plugin", ["target-mailchimp", "tap-mailchimp-engagement"])
def test_mailchimp_connection_budget_follows_the_postgresql_system_database(
    project: Project, postgres_uri: str, plugin: str
) -> None:
    """With PostgreSQL as Meltano's database, the Mailchimp connectors share their connection budget
    through it (advisory locks) across machines, without any other setting."""
    env = {**project.env, "MELTANO_DATABASE_URI": postgres_uri}
    printed = meltano("config", "--unsafe", "print", plugin, env=env).check().log_tail
    start = printed.index("{")
    config = json.loads("\n".join(printed[start : printed.index("}", start) + 1]))
    assert config["connection_budget_database_uri"] == postgres_uri
