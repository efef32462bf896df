"""An Oro shopping list left behind becomes a Mailchimp cart, receives the abandoned-cart email once it is
an hour old, and the buyer's click on that email comes back to Oro as a marketing activity of the Oro
campaign that mirrors the automation email (both connector pairs, no Meltano: see store_pipe).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests
from oromc_sandbox.testing import RunningSandbox, running_sandbox
from target_orocommerce.target import TargetOroCommerce

from tests.e2e.e2e_harness import Oro
from tests.e2e.store_pipe import STREAMS, StorePipe

ENGAGEMENT_TAP = str(Path(sys.executable).parent / "tap-mailchimp-engagement")
ENGAGEMENT_STREAMS = {"campaigns", "email_activity"}


def _engagement_to_oro(sb: RunningSandbox, tmp: Path) -> dict[str, Any]:
    """tap-mailchimp-engagement (campaigns, email_activity) piped into target-orocommerce."""
    mc, oro = sb.info["mailchimp"], sb.info["oro"]
    config = tmp / "engagement-tap.json"
    config.write_text(json.dumps({"api_url": sb.mailchimp_api_url, "api_key": mc["api_key"]}))
    found = subprocess.run(
        [ENGAGEMENT_TAP, "--config", str(config), "--discover"],
        capture_output=True, text=True, timeout=120, check=True,
    )
    catalog = json.loads(found.stdout)
    for stream in catalog["streams"]:
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = stream["tap_stream_id"] in ENGAGEMENT_STREAMS
    (tmp / "engagement-catalog.json").write_text(json.dumps(catalog))
    run = subprocess.run(
        [ENGAGEMENT_TAP, "--config", str(config), "--catalog", str(tmp / "engagement-catalog.json")],
        capture_output=True, text=True, timeout=300, check=True,
    )
    target = TargetOroCommerce(
        config={
            "base_url": sb.oro_base_url,
            "client_id": oro["client_id"],
            "client_secret": oro["client_secret"],
            "rejects_path": str(tmp / "oro-rejects.jsonl"),
        }
    )
    with contextlib.redirect_stdout(io.StringIO()):
        target.listen(io.StringIO(run.stdout))
    summary: dict[str, Any] = target.services.report.summary()
    return summary


def test_abandoned_cart_email_is_sent_and_its_click_reaches_oro(tmp_path: Path) -> None:
    with running_sandbox(customers=40, seed=11, shoppinglists=True) as sb:
        mc = sb.info["mailchimp"]
        pipe = StorePipe.of(
            sb, tmp_path, STREAMS, {"storefront_url": "https://shop.example.com", "price_list_id": 1}
        )
        _, records, _ = pipe.run()
        session = requests.Session()
        session.auth = ("test", mc["api_key"])
        api = sb.mailchimp_api_url
        members = f"{api}/lists/{mc['list_id']}/members"
        carts = []  # (email, subscriber hash, member status) of each cart's buyer
        for record in records:
            if record["stream"] == "ecommerce_carts":
                email = record["record"]["customer"]["email_address"]
                hash_ = hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest()
                carts.append((email, hash_, session.get(f"{members}/{hash_}").json().get("status")))
        buyers = [(email, hash_) for email, hash_, status in carts if status == "subscribed"]
        assert buyers, f"no shopping list of a subscribed customer in the seed: {carts}"
        email, hash_ = buyers[0]

        session.get(f"{api}/ping")  # the sandbox queues the carts for the abandoned-cart email
        sb.advance_clock(3600 + 60)
        workflow = next(
            a
            for a in session.get(f"{api}/automations").json()["automations"]
            if a["trigger_settings"]["workflow_type"] == "abandonedCart"
        )
        email_id = session.get(f"{api}/automations/{workflow['id']}/emails").json()["emails"][0]["id"]
        assert session.get(f"{api}/reports/{email_id}/email-activity/{hash_}").status_code == 200
        clicked = requests.post(
            f"{sb.mailchimp_base_url}/_sandbox/mailchimp/campaigns/{email_id}/engage",
            json={"email_address": email, "action": "click"},
            timeout=10,
        )
        assert clicked.status_code == 200, clicked.text

        _engagement_to_oro(sb, tmp_path)
        oro = Oro(sb)
        campaign = next(c for c in oro.all("campaigns") if c["attributes"]["code"] == email_id)
        user = oro.customer_user_by_email(email)
        assert ("click", campaign["id"]) in oro.activities_of(user["id"])
