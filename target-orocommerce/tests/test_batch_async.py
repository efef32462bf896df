"""A sync Batch API request that Oro turns into an asynchronous one (past its 25 s wait).

Oro (platform ``Processor/UpdateList/ProcessSynchronousOperation.php``) answers such a request with 202
and the ``asyncoperations`` resource; the queue still processes it all-or-nothing. The target must wait
for the outcome before it counts anything as written, and re-send the valid records only once the
first attempt has ended. The sandbox emulates a slow queue with ``batch_queue_delay`` >
``batch_sync_wait_timeout``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from oromc_sandbox.testing import RunningSandbox

from .conftest import OroProbe, member, messages, rejects, run_target


@pytest.fixture
def slow_queue(sb: RunningSandbox) -> Iterator[None]:
    sb.set_switches(batch_queue_delay=0.5, batch_sync_wait_timeout=0.1)
    try:
        yield
    finally:
        sb.set_switches(batch_queue_delay=0.05, batch_sync_wait_timeout=25.0)


def test_sync_batch_turned_async_then_resent_lands_each_update_once(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any], slow_queue: None
) -> None:
    users = oro.users_with_primary_phone_address(3)
    emails = [u["attributes"]["email"] for u in users]
    records = [
        member(emails[0], merge_fields={"FNAME": "Late", "LNAME": "One"}),
        member(emails[1], merge_fields={"FNAME": "X" * 300, "LNAME": "TooLong"}),
        member(emails[2], merge_fields={"FNAME": "Late", "LNAME": "Three"}),
    ]
    sb.reset_stats()
    summary, states = run_target(config, messages({"members": records}))

    assert oro.user(users[0]["id"])["attributes"]["lastName"] == "One"
    assert oro.user(users[2]["id"])["attributes"]["lastName"] == "Three"
    # the refused first name is left out; the record's last name is re-sent and lands
    assert oro.user(users[1]["id"])["attributes"]["lastName"] == "TooLong"
    assert oro.user(users[1]["id"])["attributes"]["firstName"] == users[1]["attributes"]["firstName"]
    (bad,) = rejects(config)
    assert bad["key"] == records[1]["list_id"] + "/" + records[1]["id"]
    assert (bad["kind"], bad["field"]) == ("field_reject", "/data/attributes/firstName")
    assert summary["streams"]["members"]["fields_rejected"] == 1
    assert summary["streams"]["members"]["names_updated"] == 3
    assert states[-1]["done"] is True

    # Two batch requests, both answered 202: the first (3 records) failed as a whole in synchronous
    # mode, the re-sent one (the 3 records, without the refused first name) wrote them; no record was
    # sent a third time.
    requests_seen = sb.stats("oro")["requests"]
    assert requests_seen["PATCH /admin/api/{resource}"] == {"202": 2}
    assert "PATCH /admin/api/{resource}/{id}" not in requests_seen
    first, second = (oro.get(f"asyncoperations/{n}")["data"]["attributes"] for n in (1, 2))
    assert (first["status"], first["summary"]["readCount"], first["summary"]["writeCount"]) == ("failed", 3, 0)
    assert (second["status"], second["summary"]["readCount"], second["summary"]["writeCount"]) == ("success", 3, 3)

    # Replaying the same input re-sends only the value Oro refused (the others are unchanged); it is
    # refused again and nothing is left to send.
    sb.reset_stats()
    summary, _ = run_target(config, messages({"members": records}))
    assert sb.stats("oro")["requests"]["PATCH /admin/api/{resource}"] == {"202": 1}
    third = oro.get("asyncoperations/3")["data"]["attributes"]
    assert (third["status"], third["summary"]["readCount"], third["summary"]["writeCount"]) == ("failed", 1, 0)
    assert summary["streams"]["members"].get("names_updated", 0) == 0
    assert summary["streams"]["members"]["fields_rejected"] == 1
