"""End-to-end: the e-commerce streams into a Mailchimp store of the sandbox."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from oromc_common.mailchimp import MailchimpClient, MailchimpConfigError, PermanentMailchimpError
from oromc_sandbox.testing import RunningSandbox
from target_mailchimp.contract import ECOMMERCE_SCHEMAS

from .conftest import DOMAIN, run_target, writes

STORE = "oro-shop"


def _lines(stream: str, records: list[dict[str, Any]]) -> list[str]:
    schema = ECOMMERCE_SCHEMAS[stream]
    out = [
        json.dumps({"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": ["id"]})
    ]
    out += [json.dumps({"type": "RECORD", "stream": stream, "record": r}) for r in records]
    return out


def _order(oid: str, status: str = "pending", **extra: Any) -> dict[str, Any]:
    return {
        "id": oid,
        "customer": {
            "id": "cu1",
            "email_address": f"buyer1@{DOMAIN}",
            "opt_in_status": False,
            "first_name": "Bo",
        },
        "order_total": "59.90",
        "financial_status": status,
        "lines": [
            {
                "id": f"{oid}-1",
                "product_id": "p1",
                "product_variant_id": "p1",
                "quantity": 2,
                "price": "29.95",
                "product_title": "Widget",
            }
        ],
        **extra,
    }


def test_ecommerce_streams_create_update_noop_and_reject(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    cfg = {**config, "store_id": STORE, "store_currency_code": "EUR"}
    # Orders first: their product does not exist yet -> a placeholder is created, completed later.
    lines = (
        _lines("ecommerce_orders", [_order("o1"), _order("o2", customer={"email_address": "x"})])
        + _lines(
            "ecommerce_products",
            [
                {
                    "id": "p1",
                    "title": "Widget deluxe",
                    "sku": "W-1",
                    "price": "29.95",
                    "url": "https://shop.example.org/p1",
                }
            ],
        )
        + _lines(
            "ecommerce_customers",
            [
                {
                    "id": "cu2",
                    "email_address": f"buyer2@{DOMAIN}",
                    "opt_in_status": True,
                    "first_name": "Al",
                }
            ],
        )
        + _lines(
            "ecommerce_carts",
            [
                {
                    "id": "c1",
                    "customer": {"id": "cu2"},
                    "order_total": 10,
                    "checkout_url": "https://shop.example.org/cart/c1",
                    "lines": [{"id": "l1", "product_id": "p1", "quantity": 1, "price": 10}],
                }
            ],
        )
        + [json.dumps({"type": "STATE", "value": {"done": 1}})]
    )
    target, states = run_target(cfg, lines)
    assert states[-1] == {"done": 1}
    base = f"/ecommerce/stores/{STORE}"
    store = api.get(base)
    assert store["list_id"] == config["list_id"]
    assert store["currency_code"] == "EUR"
    order = api.get(f"{base}/orders/o1")
    assert float(order["order_total"]) == 59.9
    assert order["lines"][0]["quantity"] == 2
    assert api.get(f"{base}/products/p1")["title"] == "Widget deluxe"
    assert api.get(f"{base}/carts/c1")["checkout_url"].endswith("/cart/c1")
    # consent travels only in contacts: a store customer is never an opt-in
    assert api.get(f"{base}/customers/cu2")["opt_in_status"] is False
    summary = target.report.summary()["streams"]
    assert summary["ecommerce_orders"]["created"] == 1
    assert summary["ecommerce_orders"]["rejected_by_reason"] == {
        "schema_violation": 1
    }  # o2 has no customer id (a required property of the stream's schema)
    rejects = [json.loads(x) for x in Path(cfg["rejects_path"]).read_text().splitlines()]
    assert [(r["stream"], r["field"]) for r in rejects] == [("ecommerce_orders", "customer.id")]

    # Same input again: nothing to write.
    sb.reset_stats()
    run_target(cfg, lines)
    assert writes(sb) == 0

    # A paid order and a converted (deleted) cart, sent as the tap's tombstone (its id alone):
    # one PATCH, one DELETE.
    sb.reset_stats()
    target, _ = run_target(
        cfg,
        _lines("ecommerce_orders", [_order("o1", "paid")])
        + _lines("ecommerce_carts", [{"id": "c1", "deleted": True}]),
    )
    assert writes(sb) == 2
    assert api.get(f"{base}/orders/o1")["financial_status"] == "paid"
    with pytest.raises(PermanentMailchimpError, match="not_found"):
        api.get(f"{base}/carts/c1")


def test_ecommerce_without_store_id_fails_clearly(
    sb: RunningSandbox, config: dict[str, Any]
) -> None:
    import pytest

    with pytest.raises(MailchimpConfigError, match="store_id"):
        run_target(config, _lines("ecommerce_orders", [_order("o1")]))
