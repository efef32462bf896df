"""Token expiry, 429/5xx storms, a 403, a malformed page."""

from __future__ import annotations

import io
import json
import signal
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import responses
from oromc_common.oro import clear_token_cache
from oromc_sandbox.testing import running_sandbox
from tap_orocommerce.tap import TapOroCommerce

from tests.helpers import TapRun, finish_tap, parse_messages, run_tap, start_tap, tap_config


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    with running_sandbox(customers=5) as sb:
        yield sb


@pytest.fixture(scope="module")
def baseline(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> TapRun:
    run = run_tap(tmp_path_factory.mktemp("base"), tap_config(sandbox), name="baseline")
    assert run.returncode == 0, run.stderr[-3000:]
    return run


def _same_rows(run: TapRun, baseline: TapRun) -> None:
    for stream, rows in baseline.records.items():
        key = "customer_user_id" if stream == "contacts" else "id"
        assert sorted(run.ids(stream, key)) == sorted(r[key] for r in rows), stream


def _status_count(stats: dict[str, Any], status: str) -> int:
    return int(stats["by_status"].get(status, 0))


def test_token_expiring_mid_run_is_refreshed_once(
    sandbox: Any, tmp_path: Path, baseline: TapRun
) -> None:
    sandbox.reset_stats()
    # one row per page: the run makes hundreds of requests, most of them after the expiry
    config = tap_config(
        sandbox, token_refresh_margin_seconds=0, state_every_records=1000, page_size=1
    )
    proc = start_tap(tmp_path, config, name="expiry")
    assert proc.stdout is not None
    lines = [proc.stdout.readline()]
    while '"RECORD"' not in lines[-1]:
        lines.append(proc.stdout.readline())
    proc.send_signal(signal.SIGSTOP)  # hold the tap while its token expires
    try:
        sandbox.advance_clock(7200)  # every token issued so far is now expired
    finally:
        proc.send_signal(signal.SIGCONT)
    out, err = finish_tap(proc, tmp_path, "expiry")
    lines += out.splitlines()
    run = TapRun(proc.returncode, stderr=err)
    parse_messages(lines, run)
    assert run.returncode == 0, err[-3000:]
    _same_rows(run, baseline)
    stats = sandbox.stats("oro")
    assert _status_count(stats, "401") >= 1
    token_calls = sum(c for route, statuses in stats["requests"].items() if "oauth2-token" in route
                      for c in statuses.values())  # fmt: skip
    assert token_calls >= 2


@pytest.mark.parametrize(
    ("kinds", "status"),
    [(["429"], "429"), (["500", "502", "503", "reset"], None)],
    ids=["429-storm", "5xx-and-resets"],
)
def test_fault_storms_are_retried_to_a_complete_run(
    sandbox: Any, tmp_path: Path, baseline: TapRun, kinds: list[str], status: str | None
) -> None:
    sandbox.reset_stats()
    sandbox.set_faults("oro", rate=0.3, kinds=kinds, seed=11)
    try:
        run = run_tap(tmp_path, tap_config(sandbox, max_tries=13), name="storm")
    finally:
        sandbox.set_faults("oro", rate=0.0)
    assert run.returncode == 0, run.stderr[-3000:]
    _same_rows(run, baseline)
    stats = sandbox.stats("oro")
    assert sum(stats["faults_injected"].values()) > 0
    if status:
        assert _status_count(stats, status) > 0


def test_403_on_one_resource_fails_fast_naming_it_and_oros_detail(
    sandbox: Any, tmp_path: Path
) -> None:
    # An OAuth application whose role may not view orders (everything else allowed).
    created = sandbox.control("oro").post(
        "/_sandbox/oro/clients",
        json={
            "client_id": "no-orders",
            "client_secret": "no-orders-secret-1",
            "denied": {"orders": ["view"]},
        },
    )
    assert created.status_code == 201, created.text
    sandbox.reset_stats()
    config = tap_config(sandbox, client_id="no-orders", client_secret="no-orders-secret-1")
    run = run_tap(tmp_path, config, name="forbidden")
    assert run.returncode != 0
    line = next((ln for ln in run.stderr.splitlines() if "-> 403" in ln), "")
    assert "GET orders -> 403" in line, run.stderr[-3000:]
    assert "access denied" in line.lower() or "no access" in line.lower(), line
    assert "no-orders-secret-1" not in run.stderr
    assert "Bearer " not in run.stderr
    assert _status_count(sandbox.stats("oro"), "403") == 1  # failed fast, not retried


API = "http://127.0.0.1:9/admin/api"


def _page(ids: list[int], next_url: str | None) -> dict[str, Any]:
    return {
        "data": [
            {"type": "customers", "id": str(i),
             "attributes": {"name": f"C{i}", "createdAt": "2024-01-01T00:00:00Z",
                            "updatedAt": f"2024-01-0{i}T00:00:00Z"},
             "relationships": {"group": {"data": None}, "parent": {"data": None},
                               "internal_rating": {"data": None}}}
            for i in ids
        ],
        "links": {"next": next_url} if next_url else {},
    }  # fmt: skip


@responses.activate
def test_malformed_page_is_retried() -> None:
    # The sandbox has no "invalid JSON" fault, so this one case uses a mocked server.
    clear_token_cache()
    responses.post(
        "http://127.0.0.1:9/oauth2-token",
        json={"token_type": "Bearer", "expires_in": 3600, "access_token": "t0k3n-value"},
    )
    users = {"data": [{"type": "customerusers", "id": "1", "attributes": {}, "relationships": {}}]}
    responses.get(f"{API}/customerusers", json=users)
    responses.get(f"{API}/customers", json={"data": []})  # filter probe
    responses.get(f"{API}/customers", body=b'{"data": [{"type": "custo', status=200)  # truncated
    responses.get(f"{API}/customers", json=_page([1, 2], f"{API}/customers?page%5Bnumber%5D=2"))
    responses.get(f"{API}/customers", json=_page([3], None))
    tap = TapOroCommerce(
        config={"base_url": "http://127.0.0.1:9", "client_id": "c", "client_secret": "s",
                "streams": ["customers"], "backoff_factor_seconds": 0.01},
    )  # fmt: skip
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="utf-8")
    with redirect_stdout(out):
        tap.sync_all()
        out.flush()
    run = TapRun(0)
    parse_messages(raw.getvalue().decode().splitlines(), run)
    assert sorted(run.ids("customers")) == [1, 2, 3]
    assert tap.report.summary()["api_calls"] >= 5
    assert json.dumps(run.state).count("2024-01-03T00:00:00Z") == 1
