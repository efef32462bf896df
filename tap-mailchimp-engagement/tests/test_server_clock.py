"""Windows and bookmarks follow the server's clock, not this machine's."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from oromc_sandbox.testing import running_sandbox


def test_changes_are_seen_when_the_server_clock_is_behind_ours(tools: Any) -> None:
    """A server a day behind this machine: a change after the first run still reaches the second."""
    epoch = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    with running_sandbox(customers=20, seed=3, epoch=epoch) as sb:
        list_id = sb.info["mailchimp"]["list_id"]
        config = tools.tap_config(sb)
        first = tools.run_tap(config, streams={"members"})
        member = next(r for r in first.records["members"] if r["status"] == "subscribed")
        bookmark = first.state["bookmarks"]["members"]["lists"][list_id]["since"]
        assert datetime.fromisoformat(bookmark) <= datetime.fromisoformat(sb.now())

        session = tools.mc_session(sb)
        url = f"{sb.mailchimp_api_url}/lists/{list_id}/members/{member['id']}"
        assert session.patch(url, json={"merge_fields": {"FNAME": "Later"}}).ok
        time.sleep(1.1)  # the cut-off has whole seconds
        second = tools.run_tap(config, state=first.state, streams={"members"})
        assert [r["merge_fields"]["FNAME"] for r in second.records["members"]] == ["Later"]
