"""A 403 without the API's own error document (empty or HTML: a proxy or WAF in front of the API) is
retried as transient a bounded number of times and, when it persists, reported as what it is."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from oromc_common.governor import ConnectionBudget
from oromc_common.mailchimp import MailchimpClient, RetryableMailchimpError
from oromc_common.oro import OroOAuth2Authenticator, OroRetriableError, clear_token_cache
from oromc_common.report import RunReport
from oromc_sandbox.testing import RunningSandbox, running_sandbox
from target_orocommerce.client import OroPermissionError, OroWriter

TAP_ORO = str(Path(sys.executable).with_name("tap-orocommerce"))


@pytest.fixture(scope="module")
def sb() -> Iterator[RunningSandbox]:
    with running_sandbox(customers=8, seed=4) as sandbox:
        yield sandbox


@pytest.fixture(autouse=True)
def _no_faults(sb: RunningSandbox) -> Iterator[None]:
    sb.reset_stats()
    yield
    sb.set_faults("oro", rate=0.0)
    sb.set_faults("mailchimp", rate=0.0)


def _tap(sb: RunningSandbox, tmp_path: Path, **extra: object) -> subprocess.CompletedProcess[str]:
    oro = sb.info["oro"]
    config = {"base_url": sb.oro_base_url, "client_id": oro["client_id"],
              "client_secret": oro["client_secret"], "streams": ["customer_groups", "customers"],
              "backoff_factor_seconds": 0.01, "backoff_max_seconds": 0.05, **extra}  # fmt: skip
    path = tmp_path / "tap.json"
    path.write_text(json.dumps(config))
    return subprocess.run(
        [TAP_ORO, "--config", str(path)], capture_output=True, text=True, timeout=300, check=False
    )


def _records(out: str) -> list[str]:
    messages = [json.loads(line) for line in out.splitlines() if line.strip()]
    return sorted(json.dumps([m["stream"], m["record"]]) for m in messages if m["type"] == "RECORD")


def test_tap_orocommerce_rides_out_proxy_403s_and_names_a_persistent_one(
    sb: RunningSandbox, tmp_path: Path
) -> None:
    clean = _tap(sb, tmp_path)
    assert clean.returncode == 0, clean.stderr[-3000:]
    sb.set_faults("oro", rate=0.3, kinds=["403", "403_html"], seed=5,
                  routes=["GET /admin/api/{resource}"])  # fmt: skip
    stormy = _tap(sb, tmp_path, max_tries=13)
    assert stormy.returncode == 0, stormy.stderr[-3000:]
    assert _records(stormy.stdout) == _records(clean.stdout)
    assert sb.stats("oro")["requests"]["GET /admin/api/{resource}"].get("403", 0) > 0

    sb.reset_stats()
    sb.set_faults("oro", rate=1.0, kinds=["403_html"], routes=["GET /admin/api/{resource}"])
    blocked = _tap(sb, tmp_path, max_tries=3)
    assert blocked.returncode != 0
    host = sb.oro_base_url.split("://", 1)[1]
    assert f"403 without a JSON:API body from {host} (text/html" in blocked.stderr
    assert "proxy/WAF" in blocked.stderr
    assert "role" not in blocked.stderr.lower()
    assert sb.stats("oro")["requests"]["GET /admin/api/{resource}"] == {"403": 3}  # 1 + 2 retries


def _writer(sb: RunningSandbox, max_tries: int) -> OroWriter:
    clear_token_cache()
    oro = sb.info["oro"]
    auth = OroOAuth2Authenticator(base_url=sb.oro_base_url, client_id=oro["client_id"],
                                  client_secret=oro["client_secret"])  # fmt: skip
    return OroWriter(base_url=sb.oro_base_url, api_prefix="/admin/api", auth=auth,
                     report=RunReport("t"), max_tries=max_tries, backoff_base=0.01,
                     max_retry_wait=0.05)  # fmt: skip


def test_target_orocommerce_retries_a_body_less_403_and_never_blames_the_role(
    sb: RunningSandbox,
) -> None:
    body = {"data": {"type": "customerusers", "id": "3", "attributes": {"firstName": "Waf"}}}
    sb.set_faults("oro", rate=1.0, kinds=["403"], methods=["PATCH"])
    with pytest.raises(OroRetriableError) as blocked:
        _writer(sb, max_tries=4).call("PATCH", "customerusers/3", body=body)
    assert not isinstance(blocked.value, OroPermissionError)
    assert "PATCH customerusers/3 -> 403 without a JSON:API body" in str(blocked.value)
    assert "(empty body)" in str(blocked.value)
    assert "role" not in str(blocked.value).lower()
    assert sb.stats("oro")["requests"]["PATCH /admin/api/{resource}/{id}"] == {"403": 4}

    sb.set_faults("oro", rate=0.5, kinds=["403", "403_html"], methods=["PATCH"], seed=2)
    response = _writer(sb, max_tries=12).call("PATCH", "customerusers/3", body=body)
    assert getattr(response, "status_code", None) == 200


def test_mailchimp_client_names_a_persistent_html_403(sb: RunningSandbox, tmp_path: Path) -> None:
    client = MailchimpClient(api_key=sb.info["mailchimp"]["api_key"], api_url=sb.mailchimp_api_url,
                             max_tries=3, backoff_factor=0.01, backoff_max=0.05,
                             connection_budget=ConnectionBudget(directory=str(tmp_path)))  # fmt: skip
    sb.set_faults("mailchimp", rate=1.0, kinds=["403_html"])
    with pytest.raises(RetryableMailchimpError) as blocked:
        client.ping()
    host = sb.mailchimp_base_url.split("://", 1)[1]
    assert f"403 without a JSON body from {host} (text/html" in str(blocked.value)
    assert "proxy or WAF" in str(blocked.value)
    assert sb.stats("mailchimp")["requests"]["GET /3.0/ping"] == {"403": 3}
    patient = MailchimpClient(api_key=sb.info["mailchimp"]["api_key"], api_url=sb.mailchimp_api_url,
                              max_tries=12, backoff_factor=0.01, backoff_max=0.05,
                              connection_budget=ConnectionBudget(directory=str(tmp_path)))  # fmt: skip
    sb.reset_stats()
    sb.set_faults("mailchimp", rate=0.5, kinds=["403", "403_html", "429_empty", "429_html"], seed=3)
    for _ in range(5):
        patient.ping()
    statuses = sb.stats("mailchimp")["requests"]["GET /3.0/ping"]
    assert statuses["200"] == 5
    assert sum(statuses.values()) > 5, "the faults struck and were retried"
