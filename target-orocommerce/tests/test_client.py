"""OroWriter retry rules the sandbox cannot show: its faults strike before a write is applied,
so "the create landed but its response was lost" is simulated here with ``responses``."""

from __future__ import annotations

import pytest
import responses
from oromc_common.oro import OroOAuth2Authenticator, clear_token_cache
from oromc_common.report import RunReport
from target_orocommerce.client import ALREADY_APPLIED, OroPermissionError, OroWriter

BASE = "https://shop.example.com"
API = BASE + "/admin/api"


@pytest.fixture
def writer() -> OroWriter:
    clear_token_cache()
    auth = OroOAuth2Authenticator(base_url=BASE, client_id="id", client_secret="secret")
    return OroWriter(base_url=BASE, api_prefix="/admin/api", auth=auth, report=RunReport("t"),
                     backoff_base=0.01, max_retry_wait=0.05)


def _token() -> None:
    responses.add(responses.POST, BASE + "/oauth2-token",
                  json={"token_type": "Bearer", "expires_in": 3600, "access_token": "tok"})


@responses.activate
def test_create_that_landed_before_a_5xx_is_not_sent_again(writer: OroWriter) -> None:
    _token()
    responses.add(responses.POST, API + "/marketingactivities", status=502, body="bad gateway")
    checks = []

    def landed() -> bool:
        checks.append(1)
        return True

    result = writer.call("POST", "marketingactivities", body={"data": {}}, verify=landed)
    assert result is ALREADY_APPLIED
    assert len(checks) == 1
    assert len([c for c in responses.calls if c.request.url.endswith("/marketingactivities")]) == 1


@responses.activate
def test_create_that_did_not_land_is_retried(writer: OroWriter) -> None:
    _token()
    responses.add(responses.POST, API + "/marketingactivities", status=503)
    responses.add(responses.POST, API + "/marketingactivities", status=201, json={"data": {"id": "9"}})
    result = writer.call("POST", "marketingactivities", body={"data": {}}, verify=lambda: False)
    assert getattr(result, "status_code", None) == 201


@responses.activate
def test_401_refreshes_the_token_once_and_403_names_the_permission(writer: OroWriter) -> None:
    _token()
    responses.add(responses.PATCH, API + "/customerusers/7", status=401)
    responses.add(responses.PATCH, API + "/customerusers/7", status=403,
                  json={"errors": [{"status": "403", "title": "access denied exception",
                                    "detail": "No access to the entity."}]})
    with pytest.raises(OroPermissionError) as err:
        writer.call("PATCH", "customerusers/7", body={"data": {}})
    assert "EDIT + VIEW on Customer User" in str(err.value)
    assert len([c for c in responses.calls if c.request.url.endswith("/oauth2-token")]) == 2
