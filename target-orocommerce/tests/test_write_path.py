"""The activity write path at speed: Batch API on and off, creates behind the reading, state after them."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from oromc_sandbox.testing import RunningSandbox
from target_orocommerce.target import TargetOroCommerce

from .conftest import OroProbe, engagement, messages, run_target
from .test_activities import _activity_keys, _emails, _expected

BATCH = "PATCH /admin/api/{resource}"
POST = "POST /admin/api/{resource}"


@pytest.fixture
def batch_api(sb: RunningSandbox) -> Iterator[None]:
    """Oro with the Batch API enabled for marketing activities (an api.yml customization)."""
    sb.set_switches(marketingactivities_batch=True)
    try:
        yield
    finally:
        sb.set_switches(marketingactivities_batch=False)


def _config(config: dict[str, Any]) -> dict[str, Any]:
    # small sink batches, so several are in flight behind the reading
    return {**config, "activity_granularity": "every_event", "batch_size_rows": 40}


def test_batch_api_writes_every_activity_once_in_chunks(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any], batch_api: None
) -> None:
    streams = engagement(_emails(oro, 30), opens_per_member=4)
    expected = sum(_expected(streams, "every_event").values())
    sb.reset_stats()
    summary, states = run_target(_config(config), messages(streams))
    keys = _activity_keys(oro)
    assert len(keys) == len(set(keys)) == expected
    requests = sb.stats("oro")["requests"]
    assert requests[BATCH] == {"200": -(-30 // 40) + -(-(expected - 30) // 40)}  # one per sink batch (<= 100)
    assert requests[POST] == {"201": 1}  # the campaign
    assert summary["streams"]["email_activity"]["created"] + summary["streams"]["sent_to"]["created"] == expected
    assert states[-1]["done"] is True
    sb.reset_stats()
    summary, _ = run_target(_config(config), messages(streams))  # replay: nothing new
    assert len(_activity_keys(oro)) == expected
    assert BATCH not in sb.stats("oro")["requests"]


def test_stock_oro_probes_the_batch_api_once_then_posts_each_activity(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    streams = engagement(_emails(oro, 12), opens_per_member=2)
    expected = sum(_expected(streams, "every_event").values())
    sb.reset_stats()
    run_target(_config(config), messages(streams))
    keys = _activity_keys(oro)
    assert len(keys) == len(set(keys)) == expected
    requests = sb.stats("oro")["requests"]
    assert requests[BATCH] == {"405": 1}  # one probe, whatever number of sink batches were in flight
    assert requests[POST]["201"] == expected + 1  # + the campaign


class _StateProbe(io.StringIO):
    """The target's stdout: on every STATE line, counts this connector's activities in Oro right then."""

    def __init__(self, oro: OroProbe) -> None:
        super().__init__()
        self.oro = oro
        self.seen: list[tuple[dict[str, Any], int]] = []

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                self.seen.append((json.loads(line), len(self.oro.mailchimp_activities())))
        return super().write(text)


@pytest.mark.parametrize("batch_switch", [False, True], ids=["stock", "batch_api"])
def test_state_is_never_ahead_of_the_activities_in_oro(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any], batch_switch: bool
) -> None:
    streams = engagement(_emails(oro, 20), opens_per_member=3)
    sb.set_switches(latency="realistic", marketingactivities_batch=batch_switch)  # writes take time
    try:
        target = TargetOroCommerce(config={**_config(config), "batch_size_rows": 15}, validate_config=True)
        probe = _StateProbe(oro)
        with contextlib.redirect_stdout(probe):
            target.listen(io.StringIO("\n".join(messages(streams, state_every=25)) + "\n"))
    finally:
        sb.set_switches(latency="none", marketingactivities_batch=False)
    assert len(probe.seen) >= 4
    for state, in_oro in probe.seen:
        # {"n": k} covers the first k records: 1 campaign, then one activity per record
        assert in_oro >= state["n"] - 1, (state, in_oro)
    assert probe.seen[-1][1] == sum(_expected(streams, "every_event").values())
