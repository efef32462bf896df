"""Token expiry, lookup cost, tagging off, opt-in creation and conversions against the sandbox."""

from __future__ import annotations

from typing import Any

from oromc_sandbox.testing import RunningSandbox

from .conftest import OroProbe, engagement, member, messages, rejects, run_target


def _registered(oro: OroProbe) -> list[dict[str, Any]]:
    return [u for u in oro.all("customerusers") if not u["attributes"].get("isGuest")]


def test_expired_token_is_refreshed_once_and_the_run_continues(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    user = oro.users_with_primary_phone_address(1)[0]  # caches a token for this client id
    sb.advance_clock(2 * 3600)  # ... which the server now considers expired
    row = member(user["attributes"]["email"], merge_fields={"LNAME": "Renewed"})
    summary, _ = run_target(config, messages({"members": [row]}))
    assert oro.user(user["id"])["attributes"]["lastName"] == "Renewed"
    assert summary["api_calls_by_status"].get("GET 401") == 1


def test_member_lookups_cost_far_less_than_one_get_per_member(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    emails = sorted({u["attributes"]["email"] for u in _registered(oro)})[:30]
    records = [member(e, merge_fields={"FNAME": f"Bulk{i}"}) for i, e in enumerate(emails)]
    sb.reset_stats()
    summary, _ = run_target(config, messages({"members": records}))
    gets = sb.stats("oro")["requests"]["GET /admin/api/{resource}"]
    # probe (2-3 calls) + total count + one index page + addresses; never 30 single lookups
    assert sum(gets.values()) <= 8
    assert summary["streams"]["members"]["names_updated"] == 30
    patches = sb.stats("oro")["requests"]["PATCH /admin/api/{resource}"]
    assert patches == {"200": 1}  # all 30 name changes in one sync Batch API request


def test_tags_skipped_when_tagging_is_not_enabled(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    sb.set_switches(tagging=False)
    email = _registered(oro)[0]["attributes"]["email"]
    row = member(email, tags=[{"id": 1, "name": "VIP"}], tags_count=1)
    summary, _ = run_target(config, messages({"members": [row]}))
    assert summary["streams"]["members"]["tags_not_enabled_in_oro"] == 1
    assert rejects(config) == []


def test_opt_in_creation_of_missing_customer_users(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    customer_id = oro.all("customers")[0]["id"]
    cfg = {**config, "create_missing_customer_users": True, "new_customer_user_customer_id": customer_id}
    records = [
        member("new.person@brand-new.example", merge_fields={"FNAME": "New", "LNAME": "Person"}),
        member("gone.person@brand-new.example", status="unsubscribed", merge_fields={"FNAME": "Gone", "LNAME": "P"}),
        member("nameless@brand-new.example"),
    ]
    summary, _ = run_target(cfg, messages({"members": records}))
    created = [u for u in oro.all("customerusers") if u["attributes"]["email"].endswith("@brand-new.example")]
    assert [u["attributes"]["email"] for u in created] == ["new.person@brand-new.example"]
    assert created[0]["attributes"]["enabled"] is False  # no role configured
    counts = summary["streams"]["members"]
    assert counts["created"] == 1
    assert counts["not_created_opted_out"] == 1
    assert [r["reason"] for r in rejects(cfg)] == ["cannot_create"]
    # A re-run finds the new user and writes nothing.
    summary, _ = run_target(cfg, messages({"members": records[:1]}))
    assert summary["streams"]["members"]["unchanged"] == 1


def test_conversions_need_the_order_campaign_relation(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    order = oro.all("orders", **{"page[size]": "1"})[0]
    streams = engagement([_registered(oro)[0]["attributes"]["email"]])
    streams["attributed_orders"] = [
        {"store_id": "oro-store", "id": order["id"], "campaign_id": "c0ffee0001", "order_total": 10.0},
        {"store_id": "oro-store", "id": "999999999", "campaign_id": "c0ffee0001"},
        {"store_id": "oro-store", "id": order["id"], "campaign_id": None},
    ]
    summary, _ = run_target(config, messages(streams))
    reasons = sorted(r["reason"] for r in rejects(config) if r["stream"] == "attributed_orders")
    if "campaign" in order["relationships"]:
        assert reasons == ["no_oro_order"]
        refreshed = oro.get(f"orders/{order['id']}")["data"]
        assert refreshed["relationships"]["campaign"]["data"]["type"] == "campaigns"
    else:  # stock Oro: the custom relation is missing -> clear rejection, nothing written
        assert reasons == ["no_oro_order", "order_campaign_field_missing"]
    assert summary["streams"]["attributed_orders"]["not_attributed"] == 1
    summary, _ = run_target({**config, "conversion_mode": "off"}, messages(streams))
    assert summary["streams"]["attributed_orders"]["ignored_no_oro_destination"] == 3
