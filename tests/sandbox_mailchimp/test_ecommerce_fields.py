"""The e-commerce write fields come from Mailchimp's OpenAPI description (issue 11 item 5).

The sandbox copies a write body's fields by the request schemas of `openapi_types.json`; the two
tables it still spells out (a line's fields and an address's, whose order shapes new documents) must
name the same fields as the description.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from oromc_sandbox.mailchimp.models.ecommerce import ADDRESS_KEYS, LINE_KEYS, STORE_KEYS
from oromc_sandbox.mailchimp.schemas import request_fields, schema_for

STORE = "/ecommerce/stores/{store_id}"


def test_spelled_out_fields_are_the_openapi_ones() -> None:
    line = request_fields("PATCH", STORE + "/orders/{order_id}/lines/{line_id}")
    assert set(LINE_KEYS) == set(line)
    customer = schema_for("requests", "POST", STORE + "/customers")
    assert customer is not None
    assert set(ADDRESS_KEYS) == set(customer["properties"]["address"]["properties"])


def test_an_operation_missing_from_the_types_file_fails_loudly() -> None:
    with pytest.raises(LookupError, match="PATCH /ecommerce/nothing"):
        request_fields("PATCH", "/ecommerce/nothing")


def test_every_writable_store_field_is_stored(mc: Any) -> None:
    """PATCH `/ecommerce/stores/{id}` with a value for each field its request schema lists."""
    sid = f"store-{uuid.uuid4().hex[:10]}"
    resp = mc.post(
        "/ecommerce/stores",
        json={"id": sid, "list_id": mc.list_id, "name": "Fields", "currency_code": "EUR"},
    )
    assert resp.status_code == 200, resp.text
    values: dict[str, Any] = {
        "name": "Renamed",
        "platform": "OroCommerce",
        "domain": "fields.example.com",
        "is_syncing": True,
        "email_address": "shop@fields.example.com",
        "currency_code": "USD",
        "money_format": "$",
        "primary_locale": "fr",
        "timezone": "Europe/Paris",
        "phone": "+33 1 23 45 67 89",
        "address": {"address1": "1 rue de la Paix", "city": "Paris", "country_code": "FR"},
    }
    assert set(values) == set(STORE_KEYS)
    resp = mc.patch(f"/ecommerce/stores/{sid}", json=values)
    assert resp.status_code == 200, resp.text
    doc = mc.get(f"/ecommerce/stores/{sid}").json()
    assert {key: doc[key] for key in values} == values
