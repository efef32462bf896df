"""Both taps load exactly into registry loaders: MeltanoLabs target-postgres and target-duckdb.

Each tap runs once per round, its output goes to every loader (the taps' run time is paid once, not per
loader): target-postgres with `flattening_enabled` (a column per nested property: member names and
phones as `merge_fields__FNAME` ...), target-duckdb without (nested objects as JSON; it loads with COPY,
which reads an empty string as NULL, so any `""` in a key would stop it). Round one loads everything;
then one Oro customer user and one Mailchimp member change, and round two (an incremental run from the
first run's state, which re-reads trailing windows) must update those rows in place and add no duplicate.
The loaders are installed alone from their hashed locks, `requirements/target-{postgres,duckdb}.txt`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from e2e_harness import Mailchimp, Oro
from oromc_sandbox.testing import RunningSandbox, running_postgres, running_sandbox
from pipelines import DEV_SANDBOX_OPTIONS, ROOT

sys.path.insert(0, str(ROOT / "tests"))
from installs import locked_plugin

TAPS = ("tap-orocommerce", "tap-mailchimp-engagement")
SCHEMA = "raw"
NEW_LAST_NAME = "Loaded-Again"
NEW_FIRST_NAME = "Reloaded"
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _sql(template: str, **identifiers: str) -> str:
    """``template`` with table/column names filled in (checked to be plain identifiers; values are
    always query parameters, ``%s``)."""
    for name in identifiers.values():
        assert IDENTIFIER.match(name), name
    return template.format(schema=SCHEMA, **identifiers)


class Output:
    """What the taps emitted: every message line, keys per stream, distinct key values per stream."""

    def __init__(self, round_: int) -> None:
        self.round = round_
        self.lines: list[str] = []
        self.keys: dict[str, list[str]] = {}
        self.rows: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = defaultdict(dict)
        self.state: dict[str, dict[str, Any]] = {}

    def add(self, tap: str, text: str) -> None:
        for line in text.splitlines():
            if not line.strip():
                continue
            msg = json.loads(line)
            self.lines.append(line)
            if msg["type"] == "SCHEMA":
                self.keys[msg["stream"]] = msg["key_properties"]
            elif msg["type"] == "RECORD":
                record = msg["record"]
                key = tuple(record[k] for k in self.keys[msg["stream"]])
                self.rows[msg["stream"]][key] = record  # the last version of a key is what a loader keeps
            elif msg["type"] == "STATE":
                self.state[tap] = msg["value"]


def _dev_config(tap: str, sandbox: RunningSandbox) -> dict[str, Any]:
    """The tap's `dev` environment settings from meltano.yml, pointed at this sandbox."""
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    dev = next(e for e in project["environments"] if e["name"] == "dev")
    config = dict(next(p for p in dev["config"]["plugins"]["extractors"] if p["name"] == tap)["config"])
    oro, mc = sandbox.info["oro"], sandbox.info["mailchimp"]
    if tap == "tap-orocommerce":
        config.update(base_url=oro["base_url"], client_id=oro["client_id"], client_secret=oro["client_secret"])
    else:
        config.update(api_url=mc["api_url"], api_key=mc["api_key"])
    return config


def _run_taps(sandbox: RunningSandbox, workdir: Path, previous: Output | None) -> Output:
    out = Output(1 if previous is None else previous.round + 1)
    for tap in TAPS:
        config = workdir / f"{tap}.json"
        config.write_text(json.dumps(_dev_config(tap, sandbox)))
        command = [str(Path(sys.executable).with_name(tap)), "--config", str(config)]
        if previous is not None:
            state = workdir / f"{tap}.state.json"
            state.write_text(json.dumps(previous.state[tap]))
            command += ["--state", str(state)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        out.add(tap, done.stdout)
    return out


def _load(loader: str, config: dict[str, Any], output: Output, workdir: Path) -> None:
    path = workdir / f"{loader}.json"
    path.write_text(json.dumps(config))
    messages = workdir / f"round-{output.round}.jsonl"  # kept for a look after a failure
    messages.write_text("\n".join(output.lines) + "\n")
    with messages.open() as stdin:
        done = subprocess.run(
            [str(locked_plugin(loader)), "--config", str(path)],
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert done.returncode == 0, f"{loader} failed:\n{done.stderr[-3000:]}"


class Warehouse:
    """Row counts and single values from one loader's database."""

    def __init__(self, loader: str, where: str) -> None:
        self.loader = loader
        self.where = where

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        if self.loader == "target-postgres":
            with psycopg.connect(self.where) as conn:
                return list(conn.execute(sql.encode(), params).fetchall())
        # DuckDB in the loader's own environment (its version is the one the loader wrote with)
        script = (
            "import duckdb, json, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
            "print(json.dumps(c.execute(sys.argv[2], json.loads(sys.argv[3])).fetchall(), default=str))"
        )
        python = locked_plugin("target-duckdb").with_name("python")
        done = subprocess.run(
            [str(python), "-c", script, self.where, sql.replace("%s", "?"), json.dumps(params)],
            capture_output=True,
            text=True,
            check=True,
        )
        return [tuple(row) for row in json.loads(done.stdout)]

    def tables(self) -> set[str]:
        rows = self.query("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", SCHEMA)
        return {r[0] for r in rows}

    def columns(self, table: str) -> set[str]:
        rows = self.query(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
            SCHEMA,
            table,
        )
        return {r[0] for r in rows}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox(customers=12, seed=5, **DEV_SANDBOX_OPTIONS) as sb:
        yield sb


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    with running_postgres() as uri:
        yield uri


@pytest.fixture(scope="module")
def loaded(sandbox: RunningSandbox, postgres: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two rounds of both taps into both loaders; what was emitted and where it landed."""
    workdir = tmp_path_factory.mktemp("loaders")
    plain_uri = postgres.replace("postgresql+psycopg", "postgresql")
    loaders = {
        "target-postgres": (
            {
                "sqlalchemy_url": postgres,
                "default_target_schema": SCHEMA,
                "flattening_enabled": True,
                "flattening_max_depth": 3,
            },
            plain_uri,
        ),
        "target-duckdb": (
            {"filepath": str(workdir / "warehouse.duckdb"), "default_target_schema": SCHEMA},
            str(workdir / "warehouse.duckdb"),
        ),
    }
    first = _run_taps(sandbox, workdir, None)
    for loader, (config, _) in loaders.items():
        _load(loader, config, first, workdir)

    oro, mailchimp = Oro(sandbox), Mailchimp(sandbox)
    user = oro.all("customerusers")[0]
    oro.patch(
        f"customerusers/{user['id']}",
        {"data": {"type": "customerusers", "id": user["id"], "attributes": {"lastName": NEW_LAST_NAME}}},
    )
    member_id = next(iter(first.rows["members"]))[1]
    changed = mailchimp.call(
        "PATCH", f"lists/{mailchimp.list_id}/members/{member_id}", {"merge_fields": {"FNAME": NEW_FIRST_NAME}}
    )
    assert changed.status_code == 200, changed.text
    sandbox.advance_clock(2)  # past the taps' cut-off (server time - 1 s)

    second = _run_taps(sandbox, workdir, first)
    for loader, (config, _) in loaders.items():
        _load(loader, config, second, workdir)
    emitted: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = defaultdict(dict)
    for run in (first, second):
        for stream, rows in run.rows.items():
            emitted[stream].update(rows)
    return {
        "first": first,
        "second": second,
        "emitted": emitted,
        "user_id": int(user["id"]),
        "member_id": member_id,
        "warehouses": {name: Warehouse(name, where) for name, (_, where) in loaders.items()},
    }


@pytest.mark.parametrize("loader", ["target-postgres", "target-duckdb"])
def test_every_stream_lands_once_per_key(loaded: dict[str, Any], loader: str) -> None:
    """Row count = distinct keys emitted over both runs: nothing lost, no duplicate from the re-reads."""
    warehouse: Warehouse = loaded["warehouses"][loader]
    emitted = loaded["emitted"]
    assert {"contacts", "customer_users", "ecommerce_orders", "members", "email_activity", "sent_to"} <= set(emitted)
    tables = warehouse.tables()
    assert set(emitted) <= tables, f"not loaded by {loader}: {set(emitted) - tables}"
    sql = " UNION ALL ".join(_sql("SELECT '{t}', count(*) FROM {schema}.{t}", t=s) for s in sorted(emitted))
    counts = dict(warehouse.query(sql))
    assert counts == {stream: len(rows) for stream, rows in emitted.items()}
    # the second run delivered some rows again (trailing re-read windows), and still nothing doubled
    first, second = loaded["first"].rows, loaded["second"].rows
    assert any(set(rows) & set(first[stream]) for stream, rows in second.items() if stream != "customer_users")


@pytest.mark.parametrize("loader", ["target-postgres", "target-duckdb"])
def test_a_changed_record_is_updated_in_place(loaded: dict[str, Any], loader: str) -> None:
    warehouse: Warehouse = loaded["warehouses"][loader]
    user_id, member_id = loaded["user_id"], loaded["member_id"]
    assert (user_id,) in loaded["second"].rows["customer_users"], "the change was emitted"
    rows = warehouse.query(_sql("SELECT last_name FROM {schema}.customer_users WHERE id = %s"), user_id)
    assert rows == [(NEW_LAST_NAME,)]
    if loader == "target-postgres":  # flattened: a column per merge tag
        columns = {c.lower(): c for c in warehouse.columns("members")}
        assert {"merge_fields__fname", "merge_fields__phone", "merge_fields_other"} <= set(columns)
        sql = _sql('SELECT "{c}" FROM {schema}.members WHERE id = %s', c=columns["merge_fields__fname"])
        assert warehouse.query(sql, member_id) == [(NEW_FIRST_NAME,)]
    else:  # nested objects as JSON
        (value,) = warehouse.query(_sql("SELECT merge_fields FROM {schema}.members WHERE id = %s"), member_id)[0]
        assert json.loads(value)["FNAME"] == NEW_FIRST_NAME
