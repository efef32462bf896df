"""The SDK's `batch_config` (BATCH messages) works with incremental state, for both taps.

Each tap runs twice with RECORD messages and twice with BATCH messages (JSON lines, gzip), the second
run of each from the first run's state: the rows (read back from the batch files) and the bookmarks
are the same either way.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from oromc_sandbox.testing import RunningSandbox, running_sandbox


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox(customers=15, seed=3) as running:
        yield running


def _configs(sandbox: RunningSandbox) -> dict[str, dict[str, Any]]:
    oro, mc = sandbox.info["oro"], sandbox.info["mailchimp"]
    return {
        "tap-orocommerce": {
            "base_url": oro["base_url"],
            "client_id": oro["client_id"],
            "client_secret": oro["client_secret"],
            "streams": ["customer_users", "customers", "contacts", "orders"],
        },
        "tap-mailchimp-engagement": {
            "api_url": mc["api_url"],
            "api_key": mc["api_key"],
            "engagement_window_days": 365,
        },
    }


def _run(
    tap: str, config: dict[str, Any], state: dict[str, Any] | None, workdir: Path
) -> tuple[Counter[str], dict[str, Any], int]:
    """Rows per stream (RECORD or read back from BATCH files), the last state, BATCH messages."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(json.dumps(config))
    command = [str(Path(sys.executable).with_name(tap)), "--config", str(workdir / "config.json")]
    if state is not None:
        (workdir / "state.json").write_text(json.dumps(state))
        command += ["--state", str(workdir / "state.json")]
    out = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    rows: Counter[str] = Counter()
    last_state: dict[str, Any] = {}
    batches = 0
    for line in out.stdout.splitlines():
        message = json.loads(line)
        if message["type"] == "RECORD":
            rows[message["stream"]] += 1
        elif message["type"] == "BATCH":
            batches += 1
            assert message["encoding"] == {"format": "jsonl", "compression": "gzip"}
            for url in message["manifest"]:
                with gzip.open(urlparse(url).path, "rt") as f:
                    rows[message["stream"]] += sum(1 for _ in f)
        elif message["type"] == "STATE":
            last_state = message["value"]
    return rows, last_state, batches


def _bookmark_keys(state: dict[str, Any]) -> dict[str, set[str]]:
    return {stream: set(value) for stream, value in state.get("bookmarks", {}).items()}


@pytest.mark.parametrize("tap", ["tap-orocommerce", "tap-mailchimp-engagement"])
def test_batch_messages_with_incremental_state(
    tap: str, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    config = _configs(sandbox)[tap]
    batch_config = {
        **config,
        "batch_config": {
            "encoding": {"format": "jsonl", "compression": "gzip"},
            "storage": {"root": f"file://{tmp_path / 'batches'}", "prefix": "batch-"},
            "batch_size": 50,
        },
    }
    (tmp_path / "batches").mkdir()
    records_1, state_1, none = _run(tap, config, None, tmp_path / "records-1")
    batch_1, batch_state_1, batches = _run(tap, batch_config, None, tmp_path / "batch-1")
    assert none == 0
    assert batches > 0
    assert sum(records_1.values()) > 0
    assert batch_1 == records_1
    assert _bookmark_keys(batch_state_1) == _bookmark_keys(state_1)

    records_2, state_2, _ = _run(tap, config, state_1, tmp_path / "records-2")
    batch_2, batch_state_2, _ = _run(tap, batch_config, batch_state_1, tmp_path / "batch-2")
    assert batch_2 == records_2, "the second run resumes from the bookmarks in both modes"
    assert sum(batch_2.values()) < sum(batch_1.values())
    assert _bookmark_keys(batch_state_2) == _bookmark_keys(state_2)
