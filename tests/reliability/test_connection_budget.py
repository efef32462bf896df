"""One Mailchimp connection budget per account across processes: lock files on one machine,
PostgreSQL advisory locks across machines; a killed process leaves no slot behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from oromc_common.governor import (
    HARD_MAX_CONNECTIONS,
    ConnectionBudget,
    FileSlots,
    PostgresSlots,
    account_fingerprint,
)
from oromc_common.mailchimp import account_key
from oromc_sandbox.testing import RunningSandbox, running_postgres, running_sandbox

WORKER = str(Path(__file__).with_name("budget_worker.py"))
TAP_MC = str(Path(sys.executable).with_name("tap-mailchimp-engagement"))
TARGET_MC = str(Path(sys.executable).with_name("target-mailchimp"))
TAP_ORO = str(Path(sys.executable).with_name("tap-orocommerce"))


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    with running_postgres() as uri:
        yield uri


@pytest.fixture(scope="module")
def sb() -> Iterator[RunningSandbox]:
    with running_sandbox(customers=20, seed=3) as sandbox:
        yield sandbox


def _free_slots(budget: ConnectionBudget, key: str) -> list[bool]:
    """Which shared slots of ``key`` another process could take right now (each released again)."""
    fingerprint = account_fingerprint(key)
    uri = budget.postgres_uri
    slots: Any = PostgresSlots(uri, fingerprint) if uri else FileSlots(Path(str(budget.directory)), fingerprint)
    free = []
    for slot in range(HARD_MAX_CONNECTIONS):
        taken = slots.try_acquire(slot)
        if taken:
            slots.release(slot)
        free.append(taken)
    return free


@pytest.mark.parametrize("backend", ["files", "postgres"])
def test_a_killed_process_leaves_no_slot_behind(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    uri = request.getfixturevalue("postgres") if backend == "postgres" else "-"
    budget = ConnectionBudget(directory=str(tmp_path), database_uri=None if uri == "-" else uri)
    api_url, api_key = f"https://{uuid.uuid4().hex}.example.com/3.0", "0123abcd-us21"
    key = account_key(api_url, api_key)
    holder = subprocess.Popen(
        [sys.executable, WORKER, "hold", api_url, api_key, "8", str(tmp_path), uri],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        assert _free_slots(budget, key) == [False] * 8 + [True, True]
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    deadline = time.monotonic() + 20  # PostgreSQL ends the dead client's session when it notices
    while _free_slots(budget, key) != [True] * HARD_MAX_CONNECTIONS:
        assert time.monotonic() < deadline, "the killed process's slots were never released"
        time.sleep(0.2)


def _run_two_at_once(sb: RunningSandbox, tmp_path: Path, budgets: list[tuple[str, str]]) -> list[int]:
    """Two processes, 8 connections each, 32 slow pings each, started together; their peaks."""
    mc = sb.info["mailchimp"]
    go = tmp_path / f"go-{uuid.uuid4().hex}"
    workers = [
        subprocess.Popen(
            [sys.executable, WORKER, "ping", sb.mailchimp_api_url, mc["api_key"], "32", d, u, str(go)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for d, u in budgets
    ]
    for worker in workers:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "ready"
    go.touch()
    peaks = []
    for worker in workers:
        out, _ = worker.communicate(timeout=300)
        assert worker.returncode == 0
        peaks.append(json.loads(out.strip().splitlines()[-1])["peak"])
    return peaks


@pytest.mark.parametrize("backend", ["files", "postgres"])
def test_two_processes_on_one_account_never_exceed_the_budget(
    backend: str, sb: RunningSandbox, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    uri = request.getfixturevalue("postgres").replace("+psycopg", "") if backend == "postgres" else "-"
    # every ping takes 0.4 s on the server, so each process keeps its 8 connections busy
    sb.set_faults("mailchimp", rate=1.0, kinds=["slow"], slow_seconds=0.4, routes=["GET /3.0/ping"])
    try:
        sb.reset_stats()
        shared = str(tmp_path / "shared")
        _run_two_at_once(sb, tmp_path, [(shared, uri), (shared, uri)])
        stats = sb.stats("mailchimp")
        assert max(stats["connections"]["peak"].values()) == 8
        assert stats["connections"]["over_limit"] == {}
        assert stats["requests"]["GET /3.0/ping"] == {"200": 64}

        # control: the same two processes with a budget each go past Mailchimp's limit together
        # (each one's own peak is 8 or, when the server's instant 429s free its threads before the
        # last one starts on a loaded machine, 7: [8, 7] was seen)
        sb.reset_stats()
        separate = [(str(tmp_path / "a"), "-"), (str(tmp_path / "b"), "-")]
        assert sum(_run_two_at_once(sb, tmp_path, separate)) > 10
        stats = sb.stats("mailchimp")
        assert max(stats["connections"]["peak"].values()) > 10
        assert sum(stats["connections"]["over_limit"].values()) > 0
    finally:
        sb.set_faults("mailchimp", rate=0.0)


def test_both_mailchimp_connectors_take_their_connections_from_the_shared_budget(
    sb: RunningSandbox, tmp_path: Path
) -> None:
    """target-mailchimp and tap-mailchimp-engagement started together while another process holds
    the whole budget: neither sends a request until that process is killed, then both finish."""
    mc, oro = sb.info["mailchimp"], sb.info["oro"]
    budget_dir = str(tmp_path / "budget")
    contacts = subprocess.run(
        [TAP_ORO, "--config", _write(tmp_path / "oro.json", {
            "base_url": sb.oro_base_url, "client_id": oro["client_id"],
            "client_secret": oro["client_secret"], "streams": ["contacts"]})],
        capture_output=True, check=True, timeout=300,
    ).stdout  # fmt: skip
    common = {"api_key": mc["api_key"], "api_url": sb.mailchimp_api_url, "max_connections": 8,
              "connection_budget_dir": budget_dir}  # fmt: skip
    target_cfg = _write(tmp_path / "target.json", {**common, "list_id": mc["list_id"],
                        "rejects_path": str(tmp_path / "rejects.jsonl")})  # fmt: skip
    tap_cfg = _write(tmp_path / "tap.json", {**common, "start_date": "2000-01-01T00:00:00Z",
                     "page_size": 10})  # fmt: skip
    holder = subprocess.Popen(
        [sys.executable, WORKER, "hold", sb.mailchimp_api_url, mc["api_key"], "8", budget_dir, "-"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    sb.reset_stats()
    target = subprocess.Popen([TARGET_MC, "--config", target_cfg], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    tap = subprocess.Popen([TAP_MC, "--config", tap_cfg], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)  # fmt: skip
    logs: dict[str, list[str]] = {"target": [], "tap": []}
    readers = [threading.Thread(target=_collect, args=(proc, logs[name]), daemon=True)
               for name, proc in (("target", target), ("tap", tap))]  # fmt: skip
    for reader in readers:
        reader.start()
    try:
        assert target.stdin is not None
        target.stdin.write(contacts.decode())
        target.stdin.close()
        deadline = time.monotonic() + 120
        while not all(any(WAITING in line for line in lines) for lines in logs.values()):
            assert target.poll() is None, "\n".join(logs["target"][-30:])
            assert tap.poll() is None, "\n".join(logs["tap"][-30:])
            assert time.monotonic() < deadline, "a connector never waited for the budget"
            time.sleep(0.1)
        assert sb.stats("mailchimp")["total_requests"] == 0, "a connector ignored the budget"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert target.wait(timeout=300) == 0, "\n".join(logs["target"][-30:])
    assert tap.wait(timeout=300) == 0, "\n".join(logs["tap"][-30:])
    stats = sb.stats("mailchimp")
    assert stats["writes"] > 0, "the target wrote to the audience"
    assert max(stats["connections"]["peak"].values()) <= 8
    assert stats["connections"]["over_limit"] == {}


WAITING = "Waiting for a Mailchimp connection: other processes hold all 8 connections"


def _collect(proc: subprocess.Popen[str], lines: list[str]) -> None:
    assert proc.stderr is not None
    lines.extend(line.rstrip() for line in proc.stderr)


def _write(path: Path, config: dict[str, Any]) -> str:
    path.write_text(json.dumps(config))
    os.chmod(path, 0o600)
    return str(path)
