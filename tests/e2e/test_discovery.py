"""Discovery needs no credentials: `--discover` and `meltano select --list` work without any config."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pipelines import MELTANO, ROOT

TAPS = {
    "tap-orocommerce": {"contacts", "customer_users", "orders", "ecommerce_orders"},
    "tap-mailchimp-engagement": {"members", "campaigns", "email_activity", "unsubscribes"},
}


@pytest.mark.parametrize("tap", sorted(TAPS))
def test_discover_without_config(tap: str, tmp_path: Path) -> None:
    """`<tap> --discover` with no config at all prints the full catalog."""
    out = subprocess.run(
        [str(Path(sys.executable).with_name(tap)), "--discover"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    streams = {s["tap_stream_id"] for s in json.loads(out.stdout)["streams"]}
    assert TAPS[tap] <= streams


@pytest.mark.parametrize(
    ("tap", "environment"),
    [("tap-orocommerce", "--no-environment"), ("tap-mailchimp-engagement", "--environment=prod")],
)
def test_meltano_select_list_outside_the_dev_environment(
    tap: str, environment: str, meltano_ready: None, tmp_path: Path
) -> None:
    """`meltano select <tap> --list` works with no credentials (no environment, or prod unset)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MELTANO_", "TAP_", "TARGET_", "OROCOMMERCE_", "MAILCHIMP_"))
    }
    env.update(
        {
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path / 'meltano.db'}",
        }
    )
    out = subprocess.run(
        [MELTANO, environment, "select", tap, "--list"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    listed = {m.group(1) for m in re.finditer(r"\]\s+([a-z_]+)\.", out.stdout)}
    assert TAPS[tap] <= listed, sorted(listed)
