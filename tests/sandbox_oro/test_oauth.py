"""`POST /oauth2-token` and bearer authentication (reference §1.1, checklist 1)."""

from __future__ import annotations

from typing import Any

import requests

JSONAPI = "application/vnd.api+json"


def _token(sb: Any, **kwargs: Any) -> requests.Response:
    return requests.post(sb.oro_base_url + "/oauth2-token", timeout=30, **kwargs)


def _creds(sb: Any) -> dict[str, str]:
    return {"client_id": sb.info["oro"]["client_id"], "client_secret": sb.info["oro"]["client_secret"]}


def test_client_credentials_json_body(sb: Any) -> None:
    r = _token(sb, json={"grant_type": "client_credentials", **_creds(sb)})
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert isinstance(body["access_token"], str)
    assert body["access_token"]
    assert "refresh_token" not in body


def test_client_credentials_form_body(sb: Any) -> None:
    r = _token(sb, data={"grant_type": "client_credentials", **_creds(sb)})
    assert r.status_code == 200
    assert r.json()["token_type"] == "Bearer"


def test_password_grant_returns_refresh_token_and_refresh_works(sb: Any) -> None:
    r = _token(sb, json={"grant_type": "password", **_creds(sb), "username": sb.info["oro"]["username"],
                         "password": sb.info["oro"]["password"]})
    assert r.status_code == 200
    refresh = r.json()["refresh_token"]
    r2 = _token(sb, json={"grant_type": "refresh_token", **_creds(sb), "refresh_token": refresh})
    assert r2.status_code == 200
    assert r2.json()["access_token"] != r.json()["access_token"]
    reused = _token(sb, json={"grant_type": "refresh_token", **_creds(sb), "refresh_token": refresh})
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"


def test_password_grant_wrong_password_is_invalid_grant(sb: Any) -> None:
    r = _token(sb, json={"grant_type": "password", **_creds(sb), "username": "admin", "password": "nope"})
    assert r.status_code == 400
    assert r.json() == {"error": "invalid_grant", "error_description": "The user credentials were incorrect."}


def test_wrong_secret_is_invalid_client_401(sb: Any) -> None:
    r = _token(sb, json={"grant_type": "client_credentials", "client_id": sb.info["oro"]["client_id"],
                         "client_secret": "wrong"})
    assert r.status_code == 401
    assert r.json() == {"error": "invalid_client", "error_description": "Client authentication failed"}


def test_missing_client_id_is_invalid_request(sb: Any) -> None:
    r = _token(sb, json={"grant_type": "client_credentials"})
    assert r.status_code == 400
    body = r.json()
    assert body["error"] == "invalid_request"
    assert body["hint"] == "Check the `client_id` parameter"
    assert body["error_description"].startswith("The request is missing a required parameter")


def test_unsupported_grant_type(sb: Any) -> None:
    r = _token(sb, json={"grant_type": "implicit", **_creds(sb)})
    assert r.status_code == 400
    assert r.json()["error"] == "unsupported_grant_type"
    assert r.json()["error_description"] == (
        "The authorization grant type is not supported by the authorization server.")


def test_options_token_endpoint_allows_options_and_post(sb: Any) -> None:
    r = requests.options(sb.oro_base_url + "/oauth2-token", timeout=30)
    assert r.status_code == 200
    assert r.headers["Allow"] == "OPTIONS, POST"


def test_api_without_token_is_401_empty_with_www_authenticate(sb: Any) -> None:
    r = requests.get(sb.oro_api_url + "/customers", headers={"Accept": JSONAPI}, timeout=30)
    assert r.status_code == 401
    assert r.content == b""
    assert r.headers["WWW-Authenticate"] == "Bearer"


def test_api_with_unknown_token_is_401_empty(sb: Any) -> None:
    r = requests.get(sb.oro_api_url + "/customers", headers={"Accept": JSONAPI, "Authorization": "Bearer nope"},
                     timeout=30)
    assert r.status_code == 401
    assert r.content == b""
    assert r.headers["WWW-Authenticate"] == "Bearer"


def test_token_expires_after_token_ttl(sb: Any) -> None:
    sb.set_switches(token_ttl=30)
    try:
        r = _token(sb, json={"grant_type": "client_credentials", **_creds(sb)})
        assert r.json()["expires_in"] == 30
        headers = {"Accept": JSONAPI, "Authorization": "Bearer " + r.json()["access_token"]}
        assert requests.get(sb.oro_api_url + "/customergroups", headers=headers, timeout=30).status_code == 200
        sb.advance_clock(31)
        expired = requests.get(sb.oro_api_url + "/customergroups", headers=headers, timeout=30)
        assert expired.status_code == 401
        assert expired.content == b""
        assert expired.headers["WWW-Authenticate"] == "Bearer"
    finally:
        sb.set_switches(token_ttl=3600)
