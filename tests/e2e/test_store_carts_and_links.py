"""Oro shopping lists and products into a Mailchimp store: storefront links, images and prices arrive, and a
shopping list emptied or deleted (as a checkout does) removes its cart from Mailchimp, once."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from oromc_common.mailchimp import MailchimpClient, PermanentMailchimpError
from oromc_sandbox.testing import running_sandbox
from target_mailchimp.target import TargetMailchimp

from tests.e2e.e2e_harness import Oro

TAP = str(Path(sys.executable).parent / "tap-orocommerce")
STREAMS = ["ecommerce_products", "ecommerce_customers", "ecommerce_orders", "ecommerce_carts"]
SHOP = "https://shop.example.com"
STORE = "/ecommerce/stores/sandbox-store"


def _pipe(
    tmp: Path,
    tap_config: dict[str, Any],
    target_config: dict[str, Any],
    state: dict[str, Any] | None,
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """One tap run piped into target-mailchimp: (last state, records, the target's per-stream counters)."""
    (tmp / "tap.json").write_text(json.dumps(tap_config))
    cmd = [TAP, "--config", str(tmp / "tap.json")]
    if state:
        (tmp / "state.json").write_text(json.dumps(state))
        cmd += ["--state", str(tmp / "state.json")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True)
    messages = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    target = TargetMailchimp(config=target_config)
    with contextlib.redirect_stdout(io.StringIO()):
        target.listen(file_input=io.StringIO(proc.stdout))
    states = [m["value"] for m in messages if m["type"] == "STATE"]
    records = [m for m in messages if m["type"] == "RECORD"]
    return states[-1], records, target.report.summary()["streams"]


def test_links_images_prices_and_removed_carts_reach_the_store(tmp_path: Path) -> None:
    with running_sandbox(customers=30, seed=5, shoppinglists=True) as sb:
        info, mc = sb.info["oro"], sb.info["mailchimp"]
        api = MailchimpClient(api_key=mc["api_key"], api_url=sb.mailchimp_api_url, max_tries=1)
        tap_config = {
            "base_url": sb.oro_base_url,
            "client_id": info["client_id"],
            "client_secret": info["client_secret"],
            "streams": STREAMS,
            "storefront_url": SHOP,
            "price_list_id": 1,
        }
        target_config = {
            "api_key": mc["api_key"],
            "api_url": sb.mailchimp_api_url,
            "list_id": mc["list_id"],
            "store_id": "sandbox-store",
            "rejects_path": str(tmp_path / "rejects.jsonl"),
        }
        state, records, _ = _pipe(tmp_path, tap_config, target_config, None)
        carts = [r["record"] for r in records if r["stream"] == "ecommerce_carts"]
        products = [r["record"] for r in records if r["stream"] == "ecommerce_products"]
        assert len(carts) >= 3
        for cart in carts:
            assert api.get(f"{STORE}/carts/{cart['id']}")["checkout_url"] == (
                f"{SHOP}/customer/shoppinglist/update/{cart['id']}"
            )
        oro = Oro(sb)
        for product in products[:5]:
            held = api.get(f"{STORE}/products/{product['id']}")
            assert held["url"] == f"{SHOP}/product/view/{product['id']}"
            assert held["image_url"] == (product["image_url"] or "")
            prices = oro.all(
                "productprices", **{"filter[priceList]": "1", "filter[product]": product["id"]}
            )
            smallest = min(prices, key=lambda p: float(p["attributes"]["quantity"]))
            assert held["variants"][0]["price"] == pytest.approx(
                float(smallest["attributes"]["value"])
            )

        imaged = [p for p in products if p["image_url"]]
        assert imaged  # the main image of Oro's product reaches Mailchimp
        held = api.get(f"{STORE}/products/{imaged[0]['id']}")
        assert held["image_url"].startswith(f"{SHOP}/media/cache/attachment/filter/product_original/")

        # a list deleted (as a checkout that became an order does) and one emptied on the storefront
        time.sleep(2.1)  # let the second of the last change end (see tap-orocommerce's tests)
        control = f"{sb.oro_base_url}/_sandbox/oro/shoppinglists"
        converted, emptied, kept = carts[0]["id"], carts[1]["id"], carts[2]["id"]
        for cid, action in ((converted, "delete"), (emptied, "empty")):
            assert (
                requests.post(f"{control}/{cid}", json={"action": action}, timeout=30).status_code
                == 204
            )
        assert oro._send("GET", f"shoppinglists/{converted}").status_code == 404
        time.sleep(2.1)
        state, records, summary = _pipe(tmp_path, tap_config, target_config, state)
        assert sorted((r["record"]["id"], r["record"].get("deleted")) for r in records) == sorted(
            [(converted, True), (emptied, True)]
        )
        assert summary["ecommerce_carts"]["deleted"] == 2
        for cid in (converted, emptied):
            with pytest.raises(PermanentMailchimpError) as gone:
                api.get(f"{STORE}/carts/{cid}")
            assert gone.value.status == 404
        assert api.get(f"{STORE}/carts/{kept}")["id"] == kept

        time.sleep(2.1)
        _, records, _ = _pipe(tmp_path, tap_config, target_config, state)
        assert records == []  # each removal is sent once
