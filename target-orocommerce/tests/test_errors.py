"""Per-record validation errors, missing permissions and 429/5xx storms."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from oromc_sandbox.testing import RunningSandbox
from target_orocommerce.client import DEFAULT_MAX_CONNECTIONS, OroPermissionError

from .conftest import OroProbe, engagement, member, messages, rejects, run_target


def test_validation_error_drops_only_that_field(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    users = oro.users_with_primary_phone_address(3)
    emails = [u["attributes"]["email"] for u in users]
    records = [
        member(emails[0], merge_fields={"FNAME": "Good", "LNAME": "One"}),
        member(emails[1], merge_fields={"FNAME": "X" * 300, "LNAME": "TooLong"}),
        member(emails[2], merge_fields={"FNAME": "Good", "LNAME": "Three"}),
    ]
    summary, states = run_target(config, messages({"members": records}))
    assert oro.user(users[0]["id"])["attributes"]["lastName"] == "One"
    assert oro.user(users[2]["id"])["attributes"]["lastName"] == "Three"
    # Oro refused the first name only: it is left out, the last name still lands
    second = oro.user(users[1]["id"])["attributes"]
    assert second["lastName"] == "TooLong"
    assert second["firstName"] == users[1]["attributes"]["firstName"]
    (bad,) = rejects(config)
    assert bad["kind"] == "field_reject"
    assert bad["key"] == records[1]["list_id"] + "/" + records[1]["id"]
    assert bad["field"] == "/data/attributes/firstName"
    assert bad["value"] == "string, 300 chars"
    assert "255" in bad["detail"] or "long" in bad["detail"]
    assert summary["streams"]["members"]["fields_rejected"] == 1
    assert "rejected" not in summary["streams"]["members"]
    assert states  # the run went on to the end and emitted its state


def test_missing_permission_fails_fast_and_names_it(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    response = sb.control("oro").post(
        "/_sandbox/oro/clients",
        json={"client_id": "no-activities", "client_secret": "s3cret-no-activities",
              "denied": {"marketingactivities": ["create"]}},
    )
    assert response.status_code < 300, response.text
    cfg = {**config, "client_id": "no-activities", "client_secret": "s3cret-no-activities"}
    streams = engagement([u["attributes"]["email"] for u in oro.all("customerusers")[:3]])
    sb.reset_stats()
    with pytest.raises(OroPermissionError) as err:
        run_target(cfg, messages(streams))
    assert "CREATE" in str(err.value)
    assert "Marketing Activity" in str(err.value)
    posts = sb.stats("oro")["requests"].get("POST /admin/api/marketingactivities", {})
    # stopped at the first 403s, no retries
    assert sum(posts.values()) <= cfg.get("max_connections", DEFAULT_MAX_CONNECTIONS)


def test_429_and_5xx_storm_still_writes_everything_once(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    users = oro.users_with_primary_phone_address(4)
    emails = [u["attributes"]["email"] for u in users]
    streams = engagement(emails)
    streams["members"] = [member(e, merge_fields={"FNAME": f"Storm{i}"}) for i, e in enumerate(emails)]
    sb.set_faults("oro", rate=0.3, kinds=["429", "500", "502", "503", "reset"], seed=3)
    summary, _ = run_target({**config, "backoff_max_seconds": 0.2}, messages(streams))
    sb.set_faults("oro", rate=0)
    retried = sum(
        n for call, n in summary["api_calls_by_status"].items()
        if call.split(" ")[1] in {"429", "500", "502", "503", "error"}
    )
    assert retried > 0  # the storm really hit the target
    assert [oro.user(u["id"])["attributes"]["firstName"] for u in users] == [f"Storm{i}" for i in range(4)]
    kinds = Counter(a["relationships"]["marketingActivityType"]["data"]["id"] for a in oro.mailchimp_activities())
    assert kinds["send"] == 4
    assert kinds["open"] == 4
    assert kinds["click"] == 4
    assert len({a["details"]["key"] for a in oro.mailchimp_activities()}) == sum(kinds.values())
    assert rejects(config) == []
