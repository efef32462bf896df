"""Switch `campaign_statistics_fields`: custom fields on Campaign holding a Mailchimp report's figures.

An admin adds them to Campaign in Entity Management (integers, two percent fields, a money field);
Oro exposes custom fields in the back-office API as plain attributes under their field name. Without
them the attributes are absent and writing one is an "extra fields constraint", as on stock Oro.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from oromc_sandbox.oro.schema import CAMPAIGN_STATISTICS_FIELDS


@pytest.fixture
def fields_on(sb: Any) -> Iterator[None]:
    sb.set_switches(campaign_statistics_fields=True)
    try:
        yield
    finally:
        sb.set_switches(campaign_statistics_fields=False)


def _patch(api: Any, attributes: dict[str, Any]) -> Any:
    return api.patch("/campaigns/1", {"data": {"type": "campaigns", "id": "1", "attributes": attributes}})


def test_off_by_default_fields_absent_and_write_rejected(api: Any) -> None:
    attributes = api.get("/campaigns/1").json()["data"]["attributes"]
    assert not set(CAMPAIGN_STATISTICS_FIELDS) & set(attributes)
    r = _patch(api, {"mc_opens": 3})
    assert r.status_code == 400
    assert r.json()["errors"][0]["title"] == "extra fields constraint"


def test_fields_read_null_then_hold_what_is_written(api: Any, fields_on: None) -> None:
    attributes = api.get("/campaigns/1").json()["data"]["attributes"]
    assert {name: attributes[name] for name in CAMPAIGN_STATISTICS_FIELDS} == dict.fromkeys(CAMPAIGN_STATISTICS_FIELDS)
    r = _patch(api, {"mc_emails_sent": 55, "mc_open_rate": 0.4909, "mc_revenue": 10207.93})
    assert r.status_code == 200, r.text
    attributes = api.get("/campaigns/1").json()["data"]["attributes"]
    assert (attributes["mc_emails_sent"], attributes["mc_open_rate"]) == (55, 0.4909)
    assert attributes["mc_revenue"] == "10207.9300"  # money: a string with four decimals
    bad = _patch(api, {"mc_opens": "many"})
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["source"]["pointer"] == "/data/attributes/mc_opens"
