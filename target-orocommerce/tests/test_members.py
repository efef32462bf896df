"""Members -> customer users against the sandbox: names, phone, tags, conflicts, consent, echo-free re-runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from oromc_sandbox.testing import RunningSandbox

from .conftest import BASE_TIME, OroProbe, iso, member, messages, rejects, run_target


def _api_writes(stats: dict[str, Any]) -> dict[str, int]:
    """Successful write requests on Oro API routes (the token endpoint is not a data write)."""
    out = {}
    for route, statuses in stats["requests"].items():
        method = route.split(" ", 1)[0]
        if method in {"POST", "PATCH", "DELETE"} and "oauth2-token" not in route:
            ok = sum(n for status, n in statuses.items() if status.isdigit() and int(status) < 300)
            if ok:
                out[route] = ok
    return out


def test_name_phone_and_tag_changes_land_and_rerun_writes_nothing(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    users = oro.users_with_primary_phone_address(3)
    emails = [u["attributes"]["email"] for u in users]
    # A tag the connector does not own must survive.
    manual = oro.write("POST", "tags", {"data": {"type": "tags", "attributes": {"name": "manual-vip"}}})["data"]
    oro.write("POST", f"customerusers/{users[0]['id']}/relationships/tags",
              {"data": [{"type": "tags", "id": manual["id"]}]})
    records = [
        member(emails[0], merge_fields={"FNAME": "Annabel", "LNAME": "Zed", "PHONE": "+1 555 0100 001"},
               tags=[{"id": 1, "name": "VIP"}, {"id": 2, "name": "Newsletter"}], tags_count=2),
        member(emails[1], merge_fields={"FNAME": users[1]["attributes"]["firstName"], "LNAME": "Changed"}),
        member(emails[2], merge_fields={"PHONE": "+44 20 7946 0000"},
               tags=[{"id": 3, "name": "oro:group:Retail"}], tags_count=1),
    ]
    summary, states = run_target(config, messages({"members": records}))

    first = oro.user(users[0]["id"])
    assert (first["attributes"]["firstName"], first["attributes"]["lastName"]) == ("Annabel", "Zed")
    assert oro.tag_names(first) == {"manual-vip", "mc:VIP", "mc:Newsletter"}
    second = oro.user(users[1]["id"])
    assert second["attributes"]["firstName"] == users[1]["attributes"]["firstName"]
    assert second["attributes"]["lastName"] == "Changed"
    third = oro.user(users[2]["id"])
    assert oro.tag_names(third) == oro.tag_names(users[2])  # "oro:" tags come from Oro: never mirrored back
    phones = {a["id"]: a["attributes"]["phone"] for a in oro.all("customeruseraddresses")}
    assert phones[users[0]["primary_address"]["id"]] == "+1 555 0100 001"
    assert phones[users[2]["primary_address"]["id"]] == "+44 20 7946 0000"
    counts = summary["streams"]["members"]
    assert counts["read"] == 3
    assert counts["updated"] == 3
    assert counts["names_updated"] == 2
    assert counts["phones_updated"] == 2
    assert counts["tags_added"] == 2
    assert states[-1] == {"n": 3, "done": True}

    # Same input again: nothing differs, so nothing is written (no echo to Mailchimp).
    sb.reset_stats()
    summary, _ = run_target(config, messages({"members": records}))
    assert _api_writes(sb.stats("oro")) == {}
    assert summary["streams"]["members"]["unchanged"] == 3

    # Mailchimp drops "Newsletter": only the owned tag goes, the manual one stays.
    records[0]["tags"], records[0]["tags_count"] = [{"id": 1, "name": "VIP"}], 1
    records[0]["last_changed"] = iso(BASE_TIME + timedelta(hours=1))
    summary, _ = run_target(config, messages({"members": records[:1]}))
    assert oro.tag_names(oro.user(users[0]["id"])) == {"manual-vip", "mc:VIP"}
    assert summary["streams"]["members"]["tags_removed"] == 1


def test_conflict_policy_newer_wins_keeps_newer_oro_values(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    user = oro.users_with_primary_phone_address(1)[0]
    email = user["attributes"]["email"]
    stale = member(email, merge_fields={"FNAME": "Stale"}, last_changed="2001-01-01T00:00:00+00:00")
    summary, _ = run_target(config, messages({"members": [stale]}))
    assert oro.user(user["id"])["attributes"]["firstName"] == user["attributes"]["firstName"]
    assert summary["streams"]["members"]["conflict_kept_oro"] == 1

    summary, _ = run_target({**config, "conflict_policy": "mailchimp_wins"}, messages({"members": [stale]}))
    assert oro.user(user["id"])["attributes"]["firstName"] == "Stale"


def test_unknown_members_are_reported_not_created(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    before = len(oro.all("customerusers"))
    records = [member("nobody-here@nowhere.example", merge_fields={"FNAME": "No", "LNAME": "Body"}),
               member("broken-address", merge_fields={"FNAME": "X"})]
    summary, _ = run_target(config, messages({"members": records}))
    assert len(oro.all("customerusers")) == before
    reasons = {r["reason"]: r for r in rejects(config)}
    assert reasons["no_customer_user"]["field"] == "email_address"
    assert reasons["invalid_record"]["field"] == "email_address"
    assert "nobody-here" not in str(reasons)  # rejects never hold the email
    assert summary["streams"]["members"]["rejected"] == 2


def test_unsubscribe_creates_one_activity_and_resubscribe_reverses_list_state(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    user = oro.users_with_primary_phone_address(1)[0]
    email = user["attributes"]["email"]
    gone = member(email, status="unsubscribed", unsubscribe_reason="N/A (Unsubscribed by user)",
                  last_changed=iso(BASE_TIME + timedelta(days=1)))
    cfg = {**config, "marketing_list_ids": [1]}
    summary, _ = run_target(cfg, messages({"members": [gone]}))
    unsubs = [a for a in oro.mailchimp_activities() if a["details"]["action"] == "unsubscribe"]
    assert len(unsubs) == 1
    assert unsubs[0]["relationships"]["entity"]["data"] == {"type": "customerusers", "id": user["id"]}
    assert summary["streams"]["members"]["marketing_list_unsubscribed"] == 1

    # Replaying the same change creates nothing new (activity deduped, list item already there).
    summary, _ = run_target(cfg, messages({"members": [gone]}))
    assert len([a for a in oro.mailchimp_activities() if a["details"]["action"] == "unsubscribe"]) == 1
    assert summary["streams"]["members"]["unchanged"] == 1

    def unsubscribed_in_list_1() -> list[int]:
        lists = sb.control("oro").get("/_sandbox/oro/marketinglists").json()
        return list(lists["1"]["unsubscribed"])

    assert int(user["id"]) in unsubscribed_in_list_1()

    # A member who never opted out costs no marketing-list call; a re-subscribe reverses ours.
    other = next(u for u in oro.all("customerusers")
                 if u["id"] != user["id"] and int(u["id"]) not in unsubscribed_in_list_1())
    back = member(email, status="subscribed", last_changed=iso(BASE_TIME + timedelta(days=2)))
    still = member(other["attributes"]["email"], status="subscribed")
    sb.reset_stats()
    summary, _ = run_target(cfg, messages({"members": [back, still]}))
    assert summary["streams"]["members"]["marketing_list_subscribed"] == 1
    assert int(user["id"]) not in unsubscribed_in_list_1()
    list_calls = {r: c for r, c in sb.stats("oro")["requests"].items() if "marketinglist" in r}
    assert sum(sum(c.values()) for c in list_calls.values()) == 1


def test_newer_wins_compares_server_times_only_even_when_the_sandbox_clock_moves(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    """The conflict decision uses the two servers' timestamps, never this machine's clock.

    The sandbox clock is moved far behind this machine's (as in the end-to-end tests), the Oro edit
    is stamped by Oro, and the Mailchimp edits are stamped relative to that server time.
    """
    clock = sb.control("oro")
    past = (datetime.now(UTC) - timedelta(days=400)).isoformat()
    clock.post("/_sandbox/clock", json={"set": past}).raise_for_status()
    try:
        user = oro.users_with_primary_phone_address(1)[0]
        email = user["attributes"]["email"]
        edited = oro.write("PATCH", f"customerusers/{user['id']}", {"data": {
            "type": "customerusers", "id": user["id"], "attributes": {"lastName": "Edited-In-Oro"}}})
        oro_time = datetime.fromisoformat(edited["data"]["attributes"]["updatedAt"].replace("Z", "+00:00"))
        assert oro_time < datetime.now(UTC) - timedelta(days=300)  # the server clock is far behind ours

        older = member(email, merge_fields={"FNAME": "Older", "LNAME": "Older"},
                       last_changed=iso(oro_time - timedelta(seconds=5)))
        summary, _ = run_target(config, messages({"members": [older]}))
        assert summary["streams"]["members"]["conflict_kept_oro"] == 1
        assert oro.user(user["id"])["attributes"]["lastName"] == "Edited-In-Oro"

        renamed = member(email, merge_fields={"FNAME": "Renamed-In-Mailchimp"},
                         last_changed=iso(oro_time + timedelta(seconds=5)))
        summary, _ = run_target(config, messages({"members": [renamed]}))
        attrs = oro.user(user["id"])["attributes"]
        assert (attrs["firstName"], attrs["lastName"]) == ("Renamed-In-Mailchimp", "Edited-In-Oro")
        assert summary["streams"]["members"]["names_updated"] == 1
    finally:
        clock.post("/_sandbox/clock", json={"set": datetime.now(UTC).isoformat()}).raise_for_status()


def test_what_one_batch_wrote_is_what_the_next_batch_of_the_run_compares_with(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    """The customer-user directory hands out copies (it keeps customer users on disk): names and tags
    written for a person in one batch must be what a later batch of the same run compares with, or
    the same change is written twice."""
    email = oro.users_with_primary_phone_address(1)[0]["attributes"]["email"]
    wanted = {"merge_fields": {"FNAME": "Annabel", "LNAME": "Zed"}, "tags": [{"id": 1, "name": "VIP"}], "tags_count": 1}
    later = iso(BASE_TIME + timedelta(minutes=5))
    records = [member(email, **wanted), member(email, **wanted, last_changed=later)]
    summary, _ = run_target({**config, "batch_size_rows": 1}, messages({"members": records}))
    counts = summary["streams"]["members"]
    assert counts.get("superseded_in_batch", 0) == 0  # two batches, not one
    assert counts["names_updated"] == 1
    assert counts["tags_added"] == 1
    assert counts["updated"] == 1
    assert counts["unchanged"] == 1
