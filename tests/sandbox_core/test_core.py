"""The sandbox's shared machinery over real HTTP: limits, faults, latency, control, TLS, CLI, shutdown."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from oromc_sandbox.testing import RunningSandbox, running_sandbox


@pytest.fixture(scope="module")
def sb() -> Iterator[RunningSandbox]:
    with running_sandbox(customers=10, max_connections=3) as sandbox:
        yield sandbox


def _auth(sb: RunningSandbox) -> tuple[str, str]:
    return ("any", sb.info["mailchimp"]["api_key"])


def _ping(sb: RunningSandbox) -> requests.Response:
    return requests.get(f"{sb.mailchimp_api_url}/ping", auth=_auth(sb), timeout=30)


def test_connection_limit_per_api_key(sb: RunningSandbox) -> None:
    """With max 3 simultaneous connections, the 4th in flight gets Mailchimp's 429 problem document."""
    sb.control("mailchimp").post("/_sandbox/stats/reset")
    sb.set_faults("mailchimp", rate=1.0, kinds=["slow"], slow_seconds=1.5)
    results: list[requests.Response] = []
    lock = threading.Lock()

    def call() -> None:
        response = _ping(sb)
        with lock:
            results.append(response)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.5)  # the three slow requests are now in flight
    sb.set_faults("mailchimp", rate=0.0)
    fourth = _ping(sb)
    for t in threads:
        t.join()
    assert [r.status_code for r in results] == [200, 200, 200]
    assert fourth.status_code == 429
    body = fourth.json()
    assert fourth.headers["Content-Type"].startswith("application/problem+json")
    assert body["status"] == 429
    assert "3 simultaneous connections" in body["detail"]
    assert body["instance"] == fourth.headers["X-Request-Id"]
    stats = sb.stats("mailchimp")
    assert max(stats["connections"]["peak"].values()) == 4
    assert sum(stats["connections"]["over_limit"].values()) == 1
    assert _ping(sb).status_code == 200, "the limit counts connections in flight, not a quota"


@pytest.mark.parametrize(
    ("kind", "status", "content_type"),
    [
        ("429", 429, "application/problem+json"),
        ("500", 500, "application/problem+json"),
        ("502", 502, "text/html"),
        ("503", 503, "text/html"),
        ("403", 403, "text/html"),
    ],
)
def test_injected_http_faults_on_mailchimp(
    sb: RunningSandbox, kind: str, status: int, content_type: str
) -> None:
    sb.set_faults("mailchimp", rate=1.0, kinds=[kind])
    try:
        response = _ping(sb)
    finally:
        sb.set_faults("mailchimp", rate=0.0)
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith(content_type)
    if kind == "403":
        assert response.content == b"", "Mailchimp's edge answers body-less 403s under load"
    if kind in {"502", "503"}:
        assert b"openresty" in response.content


def test_injected_faults_on_oro_are_infrastructure_shaped(sb: RunningSandbox) -> None:
    """Oro has no rate limiter: a 429 comes from the hosting edge, with Retry-After."""
    sb.set_faults("oro", rate=1.0, kinds=["429"])
    try:
        response = requests.get(f"{sb.oro_api_url}/customers", timeout=30)
    finally:
        sb.set_faults("oro", rate=0.0)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"


def test_injected_connection_reset(sb: RunningSandbox) -> None:
    sb.set_faults("mailchimp", rate=1.0, kinds=["reset"])
    try:
        # the server sends part of a response, then drops the connection
        with pytest.raises(
            (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)
        ):
            _ping(sb)
    finally:
        sb.set_faults("mailchimp", rate=0.0)
    assert _ping(sb).status_code == 200


def test_fault_sequence_is_deterministic_from_its_seed(sb: RunningSandbox) -> None:
    def sequence() -> list[int]:
        sb.set_faults("mailchimp", rate=0.5, kinds=["500", "503"], seed=99)
        try:
            return [_ping(sb).status_code for _ in range(20)]
        finally:
            sb.set_faults("mailchimp", rate=0.0)

    first = sequence()
    assert first == sequence()
    assert 200 in first
    assert set(first) - {200} <= {500, 503}
    assert set(first) - {200}, "a 50 % fault rate over 20 calls injected nothing"


def test_unknown_fault_kind_is_refused(sb: RunningSandbox) -> None:
    response = sb.control("oro").post("/_sandbox/faults", json={"rate": 0.1, "kinds": ["teapot"]})
    assert response.status_code == 400
    assert "unknown fault kinds" in response.json()["error"]


def test_stats_count_requests_per_route_template_and_status(sb: RunningSandbox) -> None:
    sb.reset_stats()
    list_id = sb.info["mailchimp"]["list_id"]
    for _ in range(2):
        requests.get(f"{sb.mailchimp_api_url}/lists/{list_id}", auth=_auth(sb), timeout=30)
    requests.get(f"{sb.mailchimp_api_url}/lists/nope", auth=_auth(sb), timeout=30)
    requests.post(
        f"{sb.mailchimp_api_url}/lists/{list_id}/members", auth=_auth(sb), json={}, timeout=30
    )
    stats = sb.stats("mailchimp")
    route = stats["requests"]["GET /3.0/lists/{list_id}"]
    assert route == {"200": 2, "404": 1}
    assert stats["writes"] == 1
    assert stats["total_requests"] == 4


def test_clock_moves_and_servers_report_it_in_the_date_header(sb: RunningSandbox) -> None:
    before = sb.now()
    after = sb.advance_clock(3 * 86400)
    assert after[:10] > before[:10]
    date = _ping(sb).headers["Date"]
    assert abs((parsedate_to_datetime(date) - datetime.fromisoformat(sb.now())).total_seconds()) < 5
    bad = sb.control("oro").post("/_sandbox/clock", json={"advance_seconds": -5})
    assert bad.status_code == 400


def test_switches_change_at_run_time(sb: RunningSandbox) -> None:
    token = sb.oro_token()
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/vnd.api+json"}
    url = f"{sb.oro_api_url}/customerusers"
    params = {"filter[updatedAt][gte]": "2020-01-01T00:00:00Z"}
    assert requests.get(url, params=params, headers=headers, timeout=30).status_code == 400
    sb.set_switches(customeruser_updatedat_filter=True)
    try:
        assert requests.get(url, params=params, headers=headers, timeout=30).status_code == 200
    finally:
        sb.set_switches(customeruser_updatedat_filter=False)
    unknown = sb.control("oro").post("/_sandbox/config", json={"no_such_switch": 1})
    assert unknown.status_code == 400


def test_realistic_latency_applies_the_documented_profile() -> None:
    """Each response is delayed by the profile's base + per-item cost (counted, not timed)."""
    from oromc_sandbox.mailchimp import LATENCY_PROFILE

    with running_sandbox(customers=5, latency="realistic") as slow:
        list_id = slow.info["mailchimp"]["list_id"]
        _ping(slow)
        members = requests.get(
            f"{slow.mailchimp_api_url}/lists/{list_id}/members",
            params={"count": 7},
            auth=_auth(slow),
            timeout=30,
        )
        latency = slow.stats("mailchimp")["latency_ms_by_route"]
    base, per_item = LATENCY_PROFILE["GET /3.0/ping"]
    assert latency["GET /3.0/ping"] == round(base)
    base, per_item = LATENCY_PROFILE["GET /3.0/lists/{list_id}/members"]
    assert len(members.json()["members"]) == 7
    assert latency["GET /3.0/lists/{list_id}/members"] == round(base + 7 * per_item)


def test_info_json_names_urls_and_credentials_without_starting_anything() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "oromc_sandbox.cli", "info", "--json"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    info = json.loads(out)
    assert info["oro"]["base_url"] == "http://127.0.0.1:8801"
    assert info["oro"]["api_url"] == "http://127.0.0.1:8801/admin/api"
    assert info["mailchimp"]["api_url"] == "http://127.0.0.1:8802/3.0"
    assert info["mailchimp"]["api_key"].endswith("-" + info["mailchimp"]["dc"])
    for key in ("client_id", "client_secret"):
        assert info["oro"][key]
    assert len(info["mailchimp"]["list_id"]) == 10


def test_https_with_a_certificate(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    with running_sandbox(customers=5, tls_cert=str(cert), tls_key=str(key)) as secure:
        assert secure.mailchimp_api_url.startswith("https://")
        response = requests.get(
            f"{secure.mailchimp_api_url}/ping", auth=_auth(secure), verify=str(cert), timeout=30
        )
        assert response.status_code == 200
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{secure.mailchimp_api_url}/ping", timeout=30)


def test_sigterm_stops_cleanly_and_data_dir_keeps_the_data(tmp_path: Path) -> None:
    def serve() -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
        ready = tmp_path / "ready.json"
        ready.unlink(missing_ok=True)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "oromc_sandbox.cli",
                "serve",
                "--customers",
                "5",
                "--oro-port",
                "0",
                "--mailchimp-port",
                "0",
                "--data-dir",
                str(tmp_path / "data"),
                "--ready-file",
                str(ready),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert proc.poll() is None, "sandbox exited during start-up"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        return proc, json.loads(ready.read_text())

    proc, info = serve()
    api, auth = info["mailchimp"]["api_url"], ("x", info["mailchimp"]["api_key"])
    list_id = info["mailchimp"]["list_id"]
    created = requests.post(
        f"{api}/lists/{list_id}/members",
        auth=auth,
        json={"email_address": "kept.after.restart@example.org", "status": "subscribed"},
        timeout=30,
    )
    assert created.status_code == 200
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    assert (tmp_path / "data" / "sandbox.sqlite").exists()

    proc, info = serve()
    try:
        member = requests.get(
            f"{info['mailchimp']['api_url']}/lists/{list_id}/members/"
            "kept.after.restart@example.org",
            auth=auth,
            timeout=30,
        )
        assert member.status_code == 200
        assert member.json()["status"] == "subscribed"
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
