"""Conversions end to end: the real tap-mailchimp-engagement reads the sandbox's attributed orders
(Mailchimp order id = Oro order id) and the target points each Oro order at the campaign's Oro record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from oromc_sandbox.testing import RunningSandbox

from .conftest import OroProbe, rejects, run_tap, run_target

STREAMS = {"campaigns", "attributed_orders"}


def _attributed_orders(sb: RunningSandbox) -> dict[str, str]:
    """Mailchimp order id -> campaign id, read from the Mailchimp API."""
    session = sb.mailchimp_client().session
    out = {}
    for store in session.get(f"{sb.mailchimp_api_url}/ecommerce/stores", timeout=30).json()["stores"]:
        page = session.get(f"{sb.mailchimp_api_url}/ecommerce/stores/{store['id']}/orders",
                           params={"count": 1000}, timeout=30).json()
        out.update({o["id"]: o["campaign_id"] for o in page["orders"] if o.get("campaign_id")})
    return out


def test_attributed_mailchimp_orders_land_on_the_oro_orders(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any], tmp_path: Path
) -> None:
    sb.set_switches(order_campaign_relation=True)
    try:
        attributed = _attributed_orders(sb)
        assert attributed, "the seeded store has no attributed order"
        lines = run_tap(sb, tmp_path, STREAMS)
        summary, _ = run_target(config, lines)
        orders = summary["streams"]["attributed_orders"]
        assert orders["updated"] == len(attributed)
        assert orders.get("not_attributed", 0) == orders["read"] - len(attributed)
        assert [r for r in rejects(config) if r["stream"] == "attributed_orders"] == []

        codes = {c["id"]: c["attributes"]["code"] for c in oro.all("campaigns")}
        for order_id, campaign_id in attributed.items():
            relation = oro.get(f"orders/{order_id}")["data"]["relationships"]["campaign"]["data"]
            assert relation is not None
            assert codes[relation["id"]] == campaign_id
        with_campaign = oro.all("orders", **{"filter[campaign]": ",".join(sorted(set(codes)))})
        assert {o["id"] for o in with_campaign} == set(attributed)

        # The same input again: every order already points at its campaign, nothing is written.
        sb.reset_stats()
        summary, _ = run_target(config, lines)
        assert summary["streams"]["attributed_orders"]["unchanged"] == len(attributed)
        writes = [r for r in sb.stats("oro")["requests"] if r.split(" ", 1)[0] in {"POST", "PATCH", "DELETE"}
                  and "oauth2-token" not in r]
        assert writes == []
    finally:
        sb.set_switches(order_campaign_relation=False)
