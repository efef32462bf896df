"""oromc_common.oro: JSON:API helpers (pure) and the OAuth2 token cache (against the sandbox)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from oromc_common.oro import (
    OroAuthError,
    OroClientError,
    OroOAuth2Authenticator,
    OroRetriableError,
    build_filters,
    clear_token_cache,
    fields_params,
    flatten_resource,
    format_oro_datetime,
    oro_error_message,
    parse_oro_datetime,
    raise_for_oro_status,
)
from oromc_sandbox.testing import running_sandbox
from tap_orocommerce.tap import TapOroCommerce


def _response(
    status: int, body: bytes, url: str, headers: dict[str, str] | None = None
) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.headers.update(headers or {})
    response.request = requests.Request("GET", url).prepare()
    return response


def test_build_filters_uses_bracket_form_and_oro_datetimes() -> None:
    params = build_filters(
        {
            "updatedAt": {"gte": datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)},
            "customer": [3, 4],
            "email": "x",
        }
    )
    assert params == {
        "filter[updatedAt][gte]": "2024-05-01T10:20:30Z",
        "filter[customer]": "3,4",
        "filter[email]": "x",
    }
    assert fields_params({"customerusers": ["email", "customer"]}) == {
        "fields[customerusers]": "email,customer"
    }


def test_datetimes_round_trip_in_utc() -> None:
    assert (
        format_oro_datetime(parse_oro_datetime("2024-05-01T12:20:30+02:00"))
        == "2024-05-01T10:20:30Z"
    )


def test_flatten_resource_keeps_attributes_and_relationship_ids() -> None:
    resource = {
        "type": "customerusers",
        "id": "7",
        "attributes": {"email": "a@example.org"},
        "relationships": {
            "customer": {"data": {"type": "customers", "id": "3"}},
            "addresses": {"data": [{"type": "customeruseraddresses", "id": "1"}]},
            "owner": {"data": None},
        },
    }
    row = flatten_resource(
        resource,
        to_one={"customer": "customer_id", "owner": "owner_id"},
        to_many={"addresses": "address_ids"},
    )
    assert row == {
        "id": "7",
        "email": "a@example.org",
        "customer_id": "3",
        "owner_id": None,
        "address_ids": ["1"],
    }


def test_error_message_names_resource_and_detail_without_pii() -> None:
    body = (
        b'{"errors":[{"status":"400","title":"filter constraint","detail":"Bad value a@b.com",'
        b'"source":{"parameter":"filter[updatedAt]"}}]}'
    )
    response = _response(
        400, body, "http://127.0.0.1/admin/api/customerusers?filter%5Bemail%5D=x%40y.com"
    )
    message = oro_error_message(response)
    assert message == (
        "GET customerusers -> 400 filter constraint: Bad value <email> (filter[updatedAt])"
    )
    with pytest.raises(OroClientError) as info:
        raise_for_oro_status(response)
    assert info.value.status == 400
    assert info.value.resource == "GET customerusers"


def test_retriable_statuses_carry_retry_after() -> None:
    response = _response(429, b"", "http://127.0.0.1/admin/api/orders", {"Retry-After": "7"})
    with pytest.raises(OroRetriableError) as info:
        raise_for_oro_status(response)
    assert info.value.retry_after == 7.0


def test_backoff_waits_honour_retry_after_then_grow() -> None:
    """The stream's SDK hooks: a Retry-After is waited as sent (not jittered), computed waits grow
    and are spread by x1.0-1.2."""
    tap = TapOroCommerce(
        config={"base_url": "http://127.0.0.1:9", "client_id": "c", "client_secret": "s"},
        parse_env_config=False,
    )
    stream = tap.streams["orders"]
    assert stream.backoff_jitter(7.0) == 7.0
    waits = stream.backoff_wait_generator()
    waits.send(None)

    class ExcError(Exception):
        def __init__(self, response: Any) -> None:
            self.response = response

    hinted = ExcError(
        _response(429, b"", "http://127.0.0.1/admin/api/orders", {"Retry-After": "7"})
    )
    plain = ExcError(_response(503, b"", "http://127.0.0.1/admin/api/orders"))
    assert waits.send(hinted) == 7.0
    assert 1.0 <= waits.send(plain) <= 1.2  # second attempt: 0.5 * 2, spread
    assert 2.0 <= waits.send(plain) <= 2.4
    assert waits.send(hinted) == 7.0


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    with running_sandbox(customers=3, token_ttl=3) as sb:
        yield sb


def _auth(sb: Any, **kwargs: Any) -> OroOAuth2Authenticator:
    info = sb.info["oro"]
    return OroOAuth2Authenticator(
        base_url=sb.oro_base_url,
        client_id=info["client_id"],
        client_secret=info["client_secret"],
        **kwargs,
    )


def test_token_is_shared_per_client_and_refreshed_before_expiry(sandbox: Any) -> None:
    clear_token_cache()
    first, second = _auth(sandbox), _auth(sandbox)
    token = first.get_token()
    assert second.get_token() == token  # one token for every stream of the process
    assert first.fetch_count == 1
    # ttl 3 s, margin capped at half the lifetime: after 1.6 s the token is renewed proactively
    time.sleep(1.6)
    assert first.get_token() != token
    assert first.fetch_count == 2


def test_invalidate_forces_a_new_token_once(sandbox: Any) -> None:
    clear_token_cache()
    auth = _auth(sandbox)
    old = auth.get_token()
    auth.invalidate(old)
    new = auth.get_token()
    assert new != old
    auth.invalidate(old)  # a stale 401 from another stream does not throw the new token away
    assert auth.get_token() == new
    assert auth.fetch_count == 2


def test_bad_secret_is_an_auth_error_without_the_secret(sandbox: Any) -> None:
    clear_token_cache()
    auth = OroOAuth2Authenticator(
        base_url=sandbox.oro_base_url, client_id="nope", client_secret="very-secret-value"
    )
    with pytest.raises(OroAuthError) as info:
        auth.get_token()
    assert "very-secret-value" not in str(info.value)
    assert "oauth2-token" in str(info.value)
