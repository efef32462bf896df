"""Consent against the sandbox: one unsubscribe per opt-out, lists touched once, no echo writes.

Mailchimp's ``last_changed`` moves whenever anything about a member changes (audience-sync writes
merge fields and tags), so an opt-out is read again and again with a new timestamp; and the same
opt-out is seen twice, as the member's status and as a campaign report row, with different times.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from oromc_sandbox.testing import RunningSandbox

from .conftest import BASE_TIME, OroProbe, email_id, iso, member, messages, run_target

CAMPAIGN = "c0ffee0001"


def _writes(sb: RunningSandbox) -> dict[str, int]:
    """Every write request (any status) on Oro, the token endpoint excepted."""
    out = {}
    for route, statuses in sb.stats("oro")["requests"].items():
        method = route.split(" ", 1)[0]
        if method in {"POST", "PUT", "PATCH", "DELETE"} and "oauth2-token" not in route:
            out[route] = sum(statuses.values())
    return out


def _unsubscribes(oro: OroProbe, user_id: str) -> list[dict[str, Any]]:
    return [
        a for a in oro.mailchimp_activities()
        if a["details"]["action"] == "unsubscribe" and a["relationships"]["entity"]["data"]["id"] == user_id
    ]


def _unsubscribed_in(sb: RunningSandbox, list_id: str) -> set[int]:
    return set(sb.control("oro").get("/_sandbox/oro/marketinglists").json()[list_id]["unsubscribed"])


def _report_row(email: str, when: str) -> dict[str, Any]:
    return {"campaign_id": CAMPAIGN, "email_id": email_id(email), "email_address": email,
            "timestamp": when, "reason": "N/A (Unsubscribed by user)", "list_id": "a1b2c3d4e5"}


def _user(oro: OroProbe, skip: int = 0) -> dict[str, Any]:
    users = [u for u in oro.all("customerusers") if not u["attributes"].get("isGuest")]
    return sorted(users, key=lambda u: int(u["id"]))[skip]


def test_opt_out_read_again_with_a_new_last_changed_writes_nothing(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    user = _user(oro)
    email = user["attributes"]["email"]
    cfg = {**config, "marketing_list_ids": [1, 2]}
    opted_in = iso(BASE_TIME - timedelta(days=30))
    gone = member(email, status="unsubscribed", timestamp_opt=opted_in, last_changed=iso(BASE_TIME))
    summary, _ = run_target(cfg, messages({"members": [gone]}))
    assert summary["streams"]["members"]["marketing_list_unsubscribed"] == 2
    assert len(_unsubscribes(oro, user["id"])) == 1

    # audience-sync touched the member: same opt-out, later last_changed (hours and days later).
    for later in (timedelta(hours=3), timedelta(days=2)):
        touched = member(email, status="unsubscribed", timestamp_opt=opted_in,
                         last_changed=iso(BASE_TIME + later))
        sb.reset_stats()
        summary, _ = run_target(cfg, messages({"members": [touched]}))
        assert _writes(sb) == {}
        assert summary["streams"]["members"]["opt_out_already_in_oro"] == 1
        assert len(_unsubscribes(oro, user["id"])) == 1
    assert int(user["id"]) in _unsubscribed_in(sb, "1")


def test_status_and_report_row_of_one_opt_out_are_one_activity_with_the_campaign(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    cfg = {**config, "marketing_list_ids": [1]}
    # The tap sends members before unsubscribes; the two times differ. With a STATE between the
    # streams (as the tap sends them) the member-status activity is written first and then given
    # the campaign; with one STATE at the end the report row is written and the status skipped.
    for n, state_every in enumerate((1, 0)):
        user = _user(oro, 1 + n)
        email = user["attributes"]["email"]
        gone = member(email, status="unsubscribed", timestamp_opt=iso(BASE_TIME - timedelta(days=9)),
                      last_changed=iso(BASE_TIME + timedelta(hours=5)))
        streams = {"members": [gone], "unsubscribes": [_report_row(email, iso(BASE_TIME))]}
        sb.reset_stats()
        run_target(cfg, messages(streams, state_every=state_every))
        unsubs = _unsubscribes(oro, user["id"])
        assert len(unsubs) == 1
        assert unsubs[0]["details"]["campaign_id"] == CAMPAIGN
        assert unsubs[0]["details"]["reason"] == "N/A (Unsubscribed by user)"
        assert unsubs[0]["attributes"]["actionDate"].startswith(BASE_TIME.strftime("%Y-%m-%dT%H:%M:%S"))
        assert unsubs[0]["relationships"]["campaign"]["data"] is not None
        list_calls = sum(n for r, n in _writes(sb).items() if "marketinglist" in r)
        assert list_calls == 1  # the status and the report row: one list call
        assert int(user["id"]) in _unsubscribed_in(sb, "1")

        # The report row alone in a later run, and the member once more: nothing new.
        sb.reset_stats()
        run_target(cfg, messages({"unsubscribes": [_report_row(email, iso(BASE_TIME))]}))
        run_target(cfg, messages({"members": [gone]}))
        assert _writes(sb) == {}
        assert len(_unsubscribes(oro, user["id"])) == 1


def test_report_row_first_does_the_lists_and_a_later_status_adds_nothing(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    user = _user(oro, 4)
    email = user["attributes"]["email"]
    cfg = {**config, "marketing_list_ids": [2]}
    run_target(cfg, messages({"unsubscribes": [_report_row(email, iso(BASE_TIME))]}))
    assert int(user["id"]) in _unsubscribed_in(sb, "2")
    sb.reset_stats()
    gone = member(email, status="unsubscribed", timestamp_opt=iso(BASE_TIME - timedelta(days=9)),
                  last_changed=iso(BASE_TIME + timedelta(days=1)))
    run_target(cfg, messages({"members": [gone]}))
    assert _writes(sb) == {}
    assert len(_unsubscribes(oro, user["id"])) == 1


def test_resubscribe_is_sent_once_and_a_new_opt_out_is_recorded_again(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    user = _user(oro, 5)
    email = user["attributes"]["email"]
    cfg = {**config, "marketing_list_ids": [1]}
    first_opt_in = iso(BASE_TIME - timedelta(days=30))
    run_target(cfg, messages({"members": [member(email, status="unsubscribed", timestamp_opt=first_opt_in,
                                                 last_changed=iso(BASE_TIME))]}))
    assert int(user["id"]) in _unsubscribed_in(sb, "1")

    opted_in_again = iso(BASE_TIME + timedelta(days=1))
    back = member(email, status="subscribed", timestamp_opt=opted_in_again, last_changed=opted_in_again)
    summary, _ = run_target(cfg, messages({"members": [back]}))
    assert summary["streams"]["members"]["marketing_list_subscribed"] == 1
    assert int(user["id"]) not in _unsubscribed_in(sb, "1")

    # Read again later (audience-sync touched the member): no second re-subscribe, no write.
    sb.reset_stats()
    touched = member(email, status="subscribed", timestamp_opt=opted_in_again,
                     last_changed=iso(BASE_TIME + timedelta(days=3)))
    run_target(cfg, messages({"members": [touched]}))
    assert _writes(sb) == {}

    # A new opt-out after the re-subscribe is a new activity and a new list unsubscribe.
    again = member(email, status="unsubscribed", timestamp_opt=opted_in_again,
                   last_changed=iso(BASE_TIME + timedelta(days=5)))
    run_target(cfg, messages({"members": [again]}))
    assert len(_unsubscribes(oro, user["id"])) == 2
    assert int(user["id"]) in _unsubscribed_in(sb, "1")


def test_a_member_status_unsubscribe_whose_answer_was_lost_still_gets_the_campaign(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    """Every activity create is applied and its answer lost: the retry finds the member-status
    unsubscribe in Oro and takes its id from there, so the report row still gives it the campaign
    (one activity, not a campaign-less one)."""
    user = _user(oro, 5)
    email = user["attributes"]["email"]
    gone = member(email, status="unsubscribed", timestamp_opt=iso(BASE_TIME - timedelta(days=9)),
                  last_changed=iso(BASE_TIME + timedelta(hours=5)))
    streams = {"members": [gone], "unsubscribes": [_report_row(email, iso(BASE_TIME))]}
    other = _user(oro, 6)["attributes"]["email"]  # creates the campaign (its POST is not the point)
    run_target(config, messages({"unsubscribes": [_report_row(other, iso(BASE_TIME))]}))
    sb.set_faults("oro", rate=1.0, kinds=["lost_response"], routes=["POST /admin/api/{resource}"])
    try:
        summary, _ = run_target(config, messages(streams, state_every=1))
    finally:
        sb.set_faults("oro", rate=0)
    assert "POST /admin/api/{resource}" in sb.stats("oro")["lost_responses"]
    assert summary["streams"]["unsubscribes"]["campaign_added_to_member_status_unsubscribe"] == 1
    unsubs = _unsubscribes(oro, user["id"])
    assert len(unsubs) == 1
    assert unsubs[0]["details"]["campaign_id"] == CAMPAIGN
    assert unsubs[0]["relationships"]["campaign"]["data"] is not None
