"""Oro orders cancelled and refunded after they reached the Mailchimp store: the next run sends
exactly those two orders again, Mailchimp holds financial_status cancelled and refunded (what its
cancellation and refund notifications key on), and a quiet run writes nothing."""

from __future__ import annotations

import time
from pathlib import Path

import requests
from oromc_sandbox.testing import running_sandbox

from tests.e2e.e2e_harness import Oro
from tests.e2e.store_pipe import STORE, StorePipe, store_api

STREAMS = ["ecommerce_products", "ecommerce_customers", "ecommerce_orders"]


def test_cancelled_and_refunded_orders_update_mailchimp(tmp_path: Path) -> None:
    with running_sandbox(customers=20, seed=7, order_external_status_management=True) as sb:
        api = store_api(sb)
        pipe = StorePipe.of(
            sb, tmp_path, STREAMS, {"refunded_order_statuses": ["refunded"]}, {"is_syncing": True}
        )
        state, records, _ = pipe.run()
        assert api.get(STORE)["is_syncing"] is False  # a backfill's is_syncing is switched off at the end
        sent = {r["record"]["id"]: r["record"] for r in records if r["stream"] == "ecommerce_orders"}
        open_ids = [oid for oid, o in sent.items() if o["financial_status"] == "pending"]
        cancelled, refunded = open_ids[0], open_ids[1]
        assert api.get(f"{STORE}/orders/{cancelled}")["financial_status"] == "pending"

        time.sleep(2.1)  # second-precision updatedAt (see tap-orocommerce's tests)
        control = f"{sb.oro_base_url}/_sandbox/oro/orders"
        # a back-office Cancel (internal status), a refund marked with the merchant's external status
        assert requests.post(f"{control}/{cancelled}", json={"internalStatus": "cancelled"}, timeout=30).ok
        Oro(sb).patch(
            f"orders/{refunded}",
            {"data": {"type": "orders", "id": refunded, "relationships": {
                "status": {"data": {"type": "orderstatuses", "id": "refunded"}}}}},
        )  # fmt: skip
        time.sleep(2.1)
        state, records, summary = pipe.run(state)
        assert sorted(r["record"]["id"] for r in records if r["stream"] == "ecommerce_orders") == sorted(
            [cancelled, refunded]
        )
        assert summary["ecommerce_orders"].get("updated") == 2
        assert api.get(f"{STORE}/orders/{cancelled}")["financial_status"] == "cancelled"
        assert api.get(f"{STORE}/orders/{refunded}")["financial_status"] == "refunded"

        time.sleep(2.1)
        _, records, summary = pipe.run(state)
        assert records == []
        assert not any(summary.get(s, {}).get(k) for s in STREAMS for k in ("created", "updated"))
