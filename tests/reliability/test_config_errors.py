"""A bad configuration stops every connector at once with an ERROR line naming the setting and why."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BIN = Path(sys.executable).parent
KEY = "0123456789abcdef0123456789abcdef-us21"
ORO = {"base_url": "https://shop.example.com", "client_id": "id", "client_secret": "s3cret-value"}

CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("tap-orocommerce", {**ORO, "base_url": "http://shop.example.com"},
     ["base_url", "plain HTTP to a non-loopback host"]),
    ("tap-orocommerce", {**ORO, "page_size": 5000}, ["page_size", "1000"]),
    ("tap-orocommerce", {"base_url": ORO["base_url"], "client_id": "id"},
     ["client_secret", "required"]),
    ("target-orocommerce", {**ORO, "base_url": "http://shop.example.com"},
     ["base_url", "plain HTTP to a non-loopback host"]),
    ("target-orocommerce", {"client_id": "id", "client_secret": "x"}, ["base_url", "required"]),
    ("tap-mailchimp-engagement", {"api_key": "0123456789abcdef"},
     ["api_key", "data center suffix is missing"]),
    ("tap-mailchimp-engagement", {"api_key": KEY, "api_url": "http://mailchimp.example.com/3.0"},
     ["api_url", "plain HTTP to a non-loopback host"]),
    ("tap-mailchimp-engagement", {"api_key": KEY, "max_connections": 20},
     ["max_connections", "maximum of 10"]),
    ("tap-mailchimp-engagement", {}, ["api_key", "access_token"]),
    ("target-mailchimp", {"api_key": "0123456789abcdef", "list_id": "x"},
     ["api_key", "data center suffix is missing"]),
    ("target-mailchimp", {"api_key": KEY}, ["list_id", "required"]),
    ("target-mailchimp", {"api_key": KEY, "list_id": "x", "max_connections": 11},
     ["max_connections", "maximum of 10"]),
]  # fmt: skip


@pytest.mark.parametrize(("command", "config", "words"), CASES)
def test_bad_setting_is_named_with_the_reason(
    command: str, config: dict[str, Any], words: list[str], tmp_path: Path
) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    result = subprocess.run(
        [str(BIN / command), "--config", str(path)],
        input=b"", capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    errors = [line for line in result.stderr.decode().splitlines() if "| ERROR" in line]
    assert any(all(word in line for word in words) for line in errors), "\n".join(errors)
    assert "s3cret-value" not in result.stderr.decode()
