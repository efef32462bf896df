"""The fault model over real HTTP: lost responses, per-route/method faults, edge 403/429 pages,
Oro token revocation, Oro capacity (worker slots, queue, 503)."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from oromc_common.http import exception_chain
from oromc_sandbox.testing import RunningSandbox, running_sandbox

JSONAPI = "application/vnd.api+json"


@pytest.fixture(scope="module")
def sb() -> Iterator[RunningSandbox]:
    with running_sandbox(customers=10) as sandbox:
        yield sandbox


@pytest.fixture(autouse=True)
def _faults_off(sb: RunningSandbox) -> Iterator[None]:
    yield
    for api in ("oro", "mailchimp"):
        sb.set_faults(api, rate=0.0)
    sb.set_switches(oro_workers=0, oro_backlog=128)


def _mc_auth(sb: RunningSandbox) -> tuple[str, str]:
    return ("any", sb.info["mailchimp"]["api_key"])


def _mc(sb: RunningSandbox, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(
        method, sb.mailchimp_api_url + path, auth=_mc_auth(sb), timeout=30, **kwargs
    )


def _oro(
    sb: RunningSandbox, method: str, path: str, token: str, **kwargs: Any
) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}", "Accept": JSONAPI, "Content-Type": JSONAPI}
    return requests.request(method, sb.oro_api_url + path, headers=headers, timeout=30, **kwargs)


def _no_answer(exc: BaseException) -> bool:
    """True when the server closed the connection before sending any byte of a response."""
    return any(isinstance(e, http.client.RemoteDisconnected) for e in exception_chain(exc))


# -- lost responses -----------------------------------------------------------------------------


def test_lost_response_applies_a_mailchimp_write_then_drops_the_connection(
    sb: RunningSandbox,
) -> None:
    list_id = sb.info["mailchimp"]["list_id"]
    email = f"lost.{uuid.uuid4().hex[:8]}@example.org"
    route = "POST /3.0/lists/{list_id}/members"
    sb.reset_stats()
    sb.set_faults("mailchimp", rate=1.0, kinds=["lost_response"], routes=[route])
    with pytest.raises(requests.exceptions.ConnectionError) as lost:
        _mc(sb, "POST", f"/lists/{list_id}/members",
            json={"email_address": email, "status": "subscribed"})  # fmt: skip
    assert _no_answer(lost.value), f"expected a connection closed without an answer: {lost.value!r}"
    sb.set_faults("mailchimp", rate=0.0)
    member = _mc(sb, "GET", f"/lists/{list_id}/members/{email}")
    assert member.status_code == 200, "the write was applied before the answer was lost"
    assert member.json()["status"] == "subscribed"
    again = _mc(sb, "POST", f"/lists/{list_id}/members",
                json={"email_address": email, "status": "subscribed"})  # fmt: skip
    assert again.status_code == 400
    assert again.json()["title"] == "Member Exists"
    stats = sb.stats("mailchimp")
    assert stats["lost_responses"] == {route: {"200": 1}}
    assert stats["requests"][route] == {"lost": 1, "400": 1}
    assert stats["faults_injected"] == {"lost_response": 1}


def test_lost_response_applies_an_oro_patch(sb: RunningSandbox) -> None:
    token = sb.oro_token()
    user = _oro(sb, "GET", "/customerusers/3", token).json()["data"]
    body = {"data": {"type": "customerusers", "id": user["id"],
                     "attributes": {"firstName": "Applied" + uuid.uuid4().hex[:6]}}}  # fmt: skip
    sb.set_faults("oro", rate=1.0, kinds=["lost_response"], methods=["PATCH"])
    with pytest.raises(requests.exceptions.ConnectionError) as lost:
        _oro(sb, "PATCH", "/customerusers/3", token, data=json.dumps(body))
    assert _no_answer(lost.value)
    assert _oro(sb, "GET", "/customerusers/3", token).status_code == 200, "GETs are not struck"
    sb.set_faults("oro", rate=0.0)
    after = _oro(sb, "GET", "/customerusers/3", token).json()["data"]["attributes"]
    assert after["firstName"] == body["data"]["attributes"]["firstName"]
    lost_stats = sb.stats("oro")["lost_responses"]
    assert lost_stats["PATCH /admin/api/{resource}/{id}"] == {"200": 1}


# -- routes and methods ---------------------------------------------------------------------------


def test_faults_strike_only_the_named_routes_and_methods(sb: RunningSandbox) -> None:
    list_id = sb.info["mailchimp"]["list_id"]
    sb.set_faults("mailchimp", rate=1.0, kinds=["500"],
                  routes=["POST /3.0/lists/{list_id}"], methods=["POST"])  # fmt: skip
    assert _mc(sb, "GET", "/ping").status_code == 200
    assert _mc(sb, "GET", f"/lists/{list_id}").status_code == 200
    assert _mc(sb, "POST", f"/lists/{list_id}", json={"members": []}).status_code == 500
    # a bare template means every method of that route; methods alone restrict by method
    sb.set_faults("mailchimp", rate=1.0, kinds=["503"], routes=["/3.0/lists/{list_id}"])
    assert _mc(sb, "GET", f"/lists/{list_id}").status_code == 503
    assert _mc(sb, "GET", "/ping").status_code == 200
    sb.set_faults("mailchimp", rate=1.0, kinds=["503"], methods=["delete"])
    assert _mc(sb, "GET", "/ping").status_code == 200
    missing = _mc(sb, "DELETE", f"/lists/{list_id}/members/{uuid.uuid4().hex}")
    assert missing.status_code == 503
    shown = sb.control("mailchimp").get("/_sandbox/faults").json()
    assert shown["methods"] == ["DELETE"]
    assert shown["routes"] is None


@pytest.mark.parametrize(
    ("api", "body", "detail"),
    [
        (
            "mailchimp",
            {"rate": 0.5, "kinds": ["500"], "routes": ["POST /3.0/nope"]},
            "unknown mailchimp route",
        ),
        (
            "mailchimp",
            {"rate": 0.5, "kinds": ["500"], "routes": ["PATCH /3.0/ping"]},
            "unknown mailchimp route",
        ),
        ("oro", {"rate": 0.5, "kinds": ["500"], "routes": ["GET /3.0/ping"]}, "unknown oro route"),
        (
            "mailchimp",
            {"rate": 0.5, "kinds": ["revoke_tokens"]},
            "do not exist on the mailchimp API",
        ),
        ("oro", {"rate": 0.5, "kinds": ["500"], "methods": ["FETCH"]}, "unknown methods"),
    ],
)
def test_bad_fault_settings_are_refused_with_the_reason(
    sb: RunningSandbox, api: str, body: dict[str, Any], detail: str
) -> None:
    response = sb.control(api).post("/_sandbox/faults", json=body)
    assert response.status_code == 400
    assert detail in response.json()["error"]


def test_each_routes_fault_sequence_ignores_other_routes(sb: RunningSandbox) -> None:
    """The n-th request of a route gets the same fault whatever other routes were called."""
    list_id = sb.info["mailchimp"]["list_id"]

    def pings(interleave: bool) -> list[int]:
        sb.set_faults("mailchimp", rate=0.5, kinds=["500", "503"], seed=21)
        statuses = []
        for _ in range(16):
            if interleave:
                _mc(sb, "GET", f"/lists/{list_id}")
            statuses.append(_mc(sb, "GET", "/ping").status_code)
        return statuses

    alone = pings(interleave=False)
    assert alone == pings(interleave=True)
    assert {200, 500} <= set(alone) or {200, 503} <= set(alone)


# -- edge pages -----------------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["oro", "mailchimp"])
@pytest.mark.parametrize(
    ("kind", "status", "marker"),
    [("403", 403, b""), ("403_html", 403, b"403 Forbidden"),
     ("429_empty", 429, b""), ("429_html", 429, b"429 Too Many Requests")],
)  # fmt: skip
def test_body_less_and_html_403_and_429_on_both_apis(
    sb: RunningSandbox, api: str, kind: str, status: int, marker: bytes
) -> None:
    sb.set_faults(api, rate=1.0, kinds=[kind])
    if api == "mailchimp":
        response = _mc(sb, "GET", "/ping")
    else:
        response = requests.get(sb.oro_api_url + "/customergroups", timeout=30)
    assert response.status_code == status
    if marker:
        assert response.headers["Content-Type"].startswith("text/html")
        assert marker in response.content
        assert b"openresty" in response.content
    else:
        assert response.content == b""
    assert response.headers["X-Request-Id"]


# -- token revocation -----------------------------------------------------------------------------


def test_revoked_oro_tokens_get_oros_401_and_a_new_token_works(sb: RunningSandbox) -> None:
    token = sb.oro_token()
    assert _oro(sb, "GET", "/customergroups", token).status_code == 200
    revoked = sb.revoke_oro_tokens()
    assert revoked["revoked_access_tokens"] >= 1
    refused = _oro(sb, "GET", "/customergroups", token)
    assert refused.status_code == 401
    assert refused.content == b""
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    assert _oro(sb, "GET", "/customergroups", sb.oro_token()).status_code == 200
    assert sb.control("mailchimp").post("/_sandbox/oro/tokens/revoke").status_code == 404


def test_revoke_tokens_fault_revokes_mid_run(sb: RunningSandbox) -> None:
    token = sb.oro_token()
    sb.reset_stats()
    sb.set_faults("oro", rate=1.0, kinds=["revoke_tokens"], routes=["GET /admin/api/{resource}"])
    assert _oro(sb, "GET", "/customergroups", token).status_code == 401
    assert _oro(sb, "GET", "/customergroups/1", token).status_code == 401, "the token stays revoked"
    sb.set_faults("oro", rate=0.0)
    assert _oro(sb, "GET", "/customergroups/1", sb.oro_token()).status_code == 200
    assert sb.stats("oro")["faults_injected"] == {"revoke_tokens": 1}


# -- Oro capacity ---------------------------------------------------------------------------------


def test_oro_capacity_queues_beyond_the_workers_and_refuses_beyond_the_backlog(
    sb: RunningSandbox,
) -> None:
    sb.reset_stats()
    sb.set_switches(oro_workers=2, oro_backlog=2)
    # every list read takes 1.5 s inside a worker, so six at once: 2 run, 2 wait, 2 are refused
    sb.set_faults("oro", rate=1.0, kinds=["slow"], slow_seconds=1.5,
                  routes=["GET /admin/api/{resource}"])  # fmt: skip
    statuses: list[int] = []
    lock = threading.Lock()

    def call() -> None:
        response = requests.get(sb.oro_api_url + "/customergroups", timeout=60)
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [401, 401, 401, 401, 503, 503]  # no token: Oro's 401, once served
    capacity = sb.stats("oro")["capacity"]
    assert capacity["workers"] == 2
    assert capacity["backlog"] == 2
    assert capacity["peak_busy"] == 2
    assert capacity["peak_queued"] == 2
    assert capacity["queued_requests"] == 2
    assert capacity["rejected"] == 2
    assert capacity["busy"] == 0
    assert capacity["queued"] == 0
    assert capacity["queue_wait_ms_max"] > 0
    assert 4 * 1500 <= capacity["busy_ms_total"] < 4 * 1500 + 4000  # four served, 1.5 s each in a worker
    assert sb.stats("oro")["requests"]["GET /admin/api/{resource}"] == {"401": 4, "503": 2}


def test_config_refuses_bad_capacity_values(sb: RunningSandbox) -> None:
    control = sb.control("oro")
    assert control.post("/_sandbox/config", json={"oro_workers": -1}).status_code == 400
    assert control.post("/_sandbox/config", json={"oro_backlog": "ten"}).status_code == 400
    assert control.post("/_sandbox/config", json={"tagging": "false"}).status_code == 400
    assert control.post("/_sandbox/config", json={"latency": "slow"}).status_code == 400
    shown = control.post("/_sandbox/config", json={"oro_workers": 3}).json()
    assert shown["oro_workers"] == 3


# -- CLI ------------------------------------------------------------------------------------------


def test_cli_fault_routes_split_between_the_apis() -> None:
    with running_sandbox(customers=5, fault_rate=1.0, fault_kinds=["503"],
                         fault_routes=["GET /3.0/ping"]) as cli_sb:  # fmt: skip
        assert _mc(cli_sb, "GET", "/ping").status_code == 503
        list_id = cli_sb.info["mailchimp"]["list_id"]
        assert _mc(cli_sb, "GET", f"/lists/{list_id}").status_code == 200
        assert requests.get(cli_sb.oro_api_url + "/customergroups", timeout=30).status_code == 401
        assert cli_sb.control("oro").get("/_sandbox/faults").json()["rate"] == 0.0


def test_cli_refuses_an_unknown_fault_route() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "oromc_sandbox.cli", "serve", "--customers", "5",
         "--oro-port", "0", "--mailchimp-port", "0", "--fault-rate", "0.1",
         "--fault-routes", "GET /3.0/nowhere"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "GET /3.0/nowhere" in result.stderr


def test_the_readme_fault_payload_is_taken_as_written(sb: RunningSandbox) -> None:
    payload = {"rate": 0.2, "kinds": ["lost_response"], "routes": ["POST /3.0/lists/{list_id}"],
               "methods": ["POST"], "seed": 7}  # fmt: skip
    response = sb.control("mailchimp").post("/_sandbox/faults", json=payload)
    assert response.status_code == 200
    assert response.json() == {**payload, "slow_seconds": 30.0}
