"""Breakpoints (freeze a client at its n-th call) and save/load (go back to a starting point)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from oromc_sandbox.testing import RunningSandbox, running_sandbox


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    with running_sandbox(customers=5, data_dir=str(tmp_path_factory.mktemp("data"))) as sandbox:
        yield sandbox


def _members_url(sb: RunningSandbox) -> str:
    return f"{sb.mailchimp_api_url}/lists/{sb.info['mailchimp']['list_id']}/members"


def _auth(sb: RunningSandbox) -> tuple[str, str]:
    return ("any", sb.info["mailchimp"]["api_key"])


def _add(sb: RunningSandbox, email: str) -> requests.Response:
    return requests.post(
        _members_url(sb), auth=_auth(sb), json={"email_address": email, "status": "subscribed"}, timeout=30
    )


def _exists(sb: RunningSandbox, email: str) -> bool:
    found = requests.get(
        f"{sb.mailchimp_api_url}/search-members", params={"query": email}, auth=_auth(sb), timeout=30
    ).json()
    return any(m["email_address"] == email for m in found["exact_matches"]["members"])


def _in_thread(request: Callable[[], requests.Response], out: list[BaseException | int]) -> threading.Thread:
    def call() -> None:
        try:
            out.append(request().status_code)
        except requests.RequestException as exc:
            out.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    return thread


def _wait_held(sb: RunningSandbox, held: int) -> None:
    deadline = time.monotonic() + 30
    while sb.breakpoint("mailchimp")["held"] < held:
        assert time.monotonic() < deadline, "the breakpoint held nothing"
        time.sleep(0.02)


@pytest.mark.parametrize(("phase", "applied"), [("before", False), ("after", True)])
def test_the_nth_write_is_held_then_dropped(sb: RunningSandbox, phase: str, applied: bool) -> None:
    """POSTs 1 and 2 pass; the 3rd is held (applied only in phase `after`), and so is a GET after it;
    releasing answers both with a closed connection; other routes and earlier calls are untouched."""
    sb.set_breakpoint("mailchimp", at=3, methods=["POST"], phase=phase)
    assert _add(sb, f"one.{phase}@example.org").status_code == 200
    assert requests.get(f"{sb.mailchimp_api_url}/ping", auth=_auth(sb), timeout=30).status_code == 200
    assert _add(sb, f"two.{phase}@example.org").status_code == 200
    out: list[BaseException | int] = []
    third = _in_thread(lambda: _add(sb, f"three.{phase}@example.org"), out)
    _wait_held(sb, 1)
    later: list[BaseException | int] = []
    ping = _in_thread(
        lambda: requests.get(f"{sb.mailchimp_api_url}/ping", auth=_auth(sb), timeout=30), later
    )
    _wait_held(sb, 2)
    state = sb.breakpoint("mailchimp")
    assert (state["hit"], state["seen"], state["held"]) == (True, 3, 2)
    released = sb.release_breakpoint("mailchimp")
    third.join(30)
    ping.join(30)
    assert (released["hit"], released["armed"]) == (True, False)
    assert isinstance(out[0], requests.ConnectionError)  # no answer at all
    assert isinstance(later[0], requests.ConnectionError)
    assert not sb.breakpoint("mailchimp")["armed"]
    assert _exists(sb, f"three.{phase}@example.org") is applied
    assert _add(sb, f"four.{phase}@example.org").status_code == 200  # disarmed


def test_writes_only_skip_reads_and_the_token_endpoint(sb: RunningSandbox) -> None:
    """With ``writes``, Oro's token request and GETs do not count; the 2nd write is held."""
    sb.set_breakpoint("oro", at=2, writes=True)
    token = sb.oro_token()
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/vnd.api+json"}
    assert requests.get(f"{sb.oro_api_url}/customerusers", headers=headers, timeout=30).status_code == 200
    state = sb.breakpoint("oro")
    assert (state["seen"], state["hit"]) == (0, False)
    sb.release_breakpoint("oro")


def test_a_bad_breakpoint_is_refused(sb: RunningSandbox) -> None:
    bad = [
        {"at": 0},
        {"at": 1, "phase": "during"},
        {"at": 1, "routes": ["POST /3.0/nowhere"]},
        {"at": 1, "writes": "yes"},
    ]
    for body in bad:
        response = requests.post(f"{sb.mailchimp_base_url}/_sandbox/breakpoint", json=body, timeout=30)
        assert response.status_code == 400, body


def test_load_goes_back_to_what_was_saved(sb: RunningSandbox) -> None:
    assert _add(sb, "before.save@example.org").status_code == 200
    assert Path(sb.save()).exists()
    saved_clock = sb.now()
    assert _add(sb, "after.save@example.org").status_code == 200
    sb.advance_clock(86400)
    sb.load()
    assert sb.stats("mailchimp")["total_requests"] == 0
    assert _exists(sb, "before.save@example.org")
    assert not _exists(sb, "after.save@example.org")
    assert sb.now()[:13] == saved_clock[:13]  # back in time (to the hour: the clock keeps running)
