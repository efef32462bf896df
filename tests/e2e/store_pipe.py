"""tap-orocommerce's e-commerce streams piped into target-mailchimp's store (no Meltano): the setup shared
by test_store_carts_and_links, test_order_status_updates and test_abandoned_cart_email."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2e_harness import QUICK_BATCHES
from oromc_common.mailchimp import MailchimpClient
from oromc_sandbox.testing import RunningSandbox
from target_mailchimp.target import TargetMailchimp

TAP = str(Path(sys.executable).parent / "tap-orocommerce")
STREAMS = ["ecommerce_products", "ecommerce_customers", "ecommerce_orders", "ecommerce_carts"]
STORE_ID = "sandbox-store"
STORE = f"/ecommerce/stores/{STORE_ID}"


def store_api(sb: RunningSandbox) -> MailchimpClient:
    """A Mailchimp client of the sandbox (no retries: a test sees every error)."""
    mc = sb.info["mailchimp"]
    return MailchimpClient(api_key=mc["api_key"], api_url=sb.mailchimp_api_url, max_tries=1)


@dataclass
class StorePipe:
    """The sandbox's Oro e-commerce streams into its Mailchimp store; :meth:`run` is one tap run."""

    tmp: Path
    tap_config: dict[str, Any]
    target_config: dict[str, Any]

    @classmethod
    def of(
        cls,
        sb: RunningSandbox,
        tmp: Path,
        streams: Sequence[str],
        tap_settings: Mapping[str, Any] | None = None,
        target_settings: Mapping[str, Any] | None = None,
    ) -> StorePipe:
        """tap-orocommerce reading ``streams`` into the store ``sandbox-store`` of the sandbox's audience,
        its /batches jobs polled every 0.1 s (``QUICK_BATCHES``), plus the settings given."""
        oro, mc = sb.info["oro"], sb.info["mailchimp"]
        tap_config = {
            "base_url": sb.oro_base_url,
            "client_id": oro["client_id"],
            "client_secret": oro["client_secret"],
            "streams": list(streams),
            **(tap_settings or {}),
        }
        target_config = {
            "api_key": mc["api_key"],
            "api_url": sb.mailchimp_api_url,
            "list_id": mc["list_id"],
            "store_id": STORE_ID,
            "rejects_path": str(tmp / "rejects.jsonl"),
            **QUICK_BATCHES,  # the sandbox's /batches jobs take a tenth of Mailchimp's time
            **(target_settings or {}),
        }
        return cls(tmp, tap_config, target_config)

    def run(
        self, state: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
        """One tap run piped into target-mailchimp: (last state, records, the target's per-stream counters)."""
        (self.tmp / "tap.json").write_text(json.dumps(self.tap_config))
        cmd = [TAP, "--config", str(self.tmp / "tap.json")]
        if state:
            (self.tmp / "state.json").write_text(json.dumps(state))
            cmd += ["--state", str(self.tmp / "state.json")]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True)
        messages = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
        target = TargetMailchimp(config=self.target_config)
        with contextlib.redirect_stdout(io.StringIO()):
            target.listen(file_input=io.StringIO(proc.stdout))
        states = [m["value"] for m in messages if m["type"] == "STATE"]
        records = [m for m in messages if m["type"] == "RECORD"]
        return states[-1], records, target.report.summary()["streams"]
