"""Create, seed, save and load the two API stores."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from oromc_sandbox import mailchimp, oro
from oromc_sandbox.core.apis import APIS, known_routes
from oromc_sandbox.core.routes import route_known
from oromc_sandbox.core.state import (
    API_FAULTS,
    FAULT_KINDS,
    Clock,
    FaultSettings,
    SandboxOptions,
    SandboxState,
)

log = logging.getLogger("sandbox")

DB_NAME = "sandbox.sqlite"


def seed_stores(state: SandboxState) -> float:
    """(Re)seed both stores from the options; returns the seconds it took.

    The clock is paused meanwhile: every seeded date depends on the seed and the clock's start only.
    """
    started = time.perf_counter()
    with state.clock.paused():
        state.oro = oro.create_store(state.options, state.clock)
        state.mailchimp = mailchimp.create_store(state.options, state.clock, state.oro)
    return time.perf_counter() - started


def new_state(options: SandboxOptions) -> SandboxState:
    """Build a state: load it from ``data_dir`` when saved data exists, else seed it."""
    state = SandboxState(options=options, clock=Clock(options.epoch))
    for api in state.faults:
        state.faults[api] = fault_settings_from_options(options, api)
    if options.data_dir and load_state(state):
        return state
    seconds = seed_stores(state)
    log.info("seeded %s customers in %.2f s", options.customers, seconds)
    return state


def fault_settings_from_options(options: SandboxOptions, api: str) -> FaultSettings:
    """One API's share of the `--fault-*` options (they name kinds and routes of both APIs).

    Kinds of the other API only (``revoke_tokens`` is Oro's) and routes of the other API are left
    out; an API left with no kind, or with none of the named routes, gets no faults. Raises
    ValueError on a kind, method or route that exists on neither API.
    """
    unknown = [k for k in options.fault_kinds if k not in FAULT_KINDS]
    if unknown or not options.fault_kinds:
        msg = f"unknown fault kinds {unknown}; known: {', '.join(FAULT_KINDS)}"
        raise ValueError(msg)
    for route in options.fault_routes or []:
        if not any(route_known(route, known_routes(other)) for other in APIS):
            msg = f"--fault-routes: {route!r} is not a route of either API"
            raise ValueError(msg)
    kinds = [k for k in options.fault_kinds if API_FAULTS.get(k, api) == api]
    routes = options.fault_routes
    if routes is not None:
        routes = [r for r in routes if route_known(r, known_routes(api))]
    settings = FaultSettings(
        rate=options.fault_rate if kinds and routes != [] else 0.0,
        kinds=kinds or ["500"],
        seed=options.fault_seed,
        slow_seconds=options.slow_seconds,
        routes=routes,
        methods=[m.upper() for m in options.fault_methods] if options.fault_methods else None,
    )
    settings.validate(api, known_routes(api))
    return settings


def _db_path(options: SandboxOptions) -> Path:
    assert options.data_dir is not None
    path = Path(options.data_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path / DB_NAME


def save_state(state: SandboxState) -> Path | None:
    """Write both stores and the clock to SQLite in ``data_dir``; no-op without one."""
    if not state.options.data_dir:
        return None
    path = _db_path(state.options)
    rows: list[tuple[str, str]] = [
        ("clock", json.dumps({"now": state.clock.now().isoformat()})),
        ("oro", json.dumps(state.oro.dump(), default=str)),
        ("mailchimp", json.dumps(state.mailchimp.dump(), default=str)),
    ]
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS kv (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.executemany("INSERT OR REPLACE INTO kv (name, value) VALUES (?, ?)", rows)
    return path


def load_state(state: SandboxState) -> bool:
    """Load stores and clock saved by ``save_state``; False when nothing is saved yet."""
    path = _db_path(state.options)
    if not path.exists():
        return False
    with sqlite3.connect(path) as db:
        try:
            data: dict[str, Any] = {
                name: json.loads(value) for name, value in db.execute("SELECT name, value FROM kv")
            }
        except sqlite3.OperationalError:
            return False
    if not {"clock", "oro", "mailchimp"} <= data.keys():
        return False
    state.clock.set(datetime.fromisoformat(data["clock"]["now"]))
    state.oro = oro.create_store_from_dump(data["oro"], state.options, state.clock)
    state.mailchimp = mailchimp.create_store_from_dump(
        data["mailchimp"], state.options, state.clock, state.oro
    )
    state.data_loaded_from = str(path)
    log.info("loaded sandbox data from %s", path)
    return True
