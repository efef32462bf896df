"""Oro shopping lists and products into a Mailchimp store: storefront links, images and prices arrive, and a
shopping list emptied or deleted (as a checkout does) removes its cart from Mailchimp, once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
from oromc_common.mailchimp import PermanentMailchimpError
from oromc_sandbox.testing import running_sandbox

from tests.e2e.e2e_harness import Oro
from tests.e2e.store_pipe import STORE, STREAMS, StorePipe, store_api

SHOP = "https://shop.example.com"


def test_links_images_prices_and_removed_carts_reach_the_store(tmp_path: Path) -> None:
    with running_sandbox(customers=30, seed=5, shoppinglists=True) as sb:
        api = store_api(sb)
        pipe = StorePipe.of(sb, tmp_path, STREAMS, {"storefront_url": SHOP, "price_list_id": 1})
        state, records, _ = pipe.run()
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
        state, records, summary = pipe.run(state)
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
        _, records, _ = pipe.run(state)
        assert records == []  # each removal is sent once
