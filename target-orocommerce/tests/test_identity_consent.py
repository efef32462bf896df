"""Identity (the Oro id on the member), email changes, the consent source, archived and forgotten members."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from oromc_sandbox.testing import RunningSandbox

from .conftest import BASE_TIME, LIST_ID, OroProbe, iso, member, messages, rejects, run_target

OLD_OPT_IN = iso(BASE_TIME - timedelta(days=400))


@pytest.fixture
def consent_sb(sb: RunningSandbox) -> Iterator[RunningSandbox]:
    """The sandbox; the test sets ``consent_source``; it is switched off again afterwards."""
    yield sb
    sb.set_switches(consent_source="none")


def _using(sb: RunningSandbox, config: dict[str, Any], source: str, **settings: Any) -> dict[str, Any]:
    """Switch the sandbox's Oro to ``source`` and return the target config that uses it."""
    sb.set_switches(consent_source=source)
    return {**config, "consent_source": source, **settings}


def _writes(sb: RunningSandbox) -> int:
    total = 0
    for route, statuses in sb.stats("oro")["requests"].items():
        if route.split(" ", 1)[0] in {"POST", "PUT", "PATCH", "DELETE"} and "oauth2-token" not in route:
            total += sum(statuses.values())
    return total


def _users(oro: OroProbe, n: int, **attrs: Any) -> list[dict[str, Any]]:
    """``n`` registered customer users whose attributes match ``attrs``, lowest ids first."""
    found = [
        u for u in oro.all("customerusers")
        if not u["attributes"].get("isGuest") and all(u["attributes"].get(k) == v for k, v in attrs.items())
    ]
    found.sort(key=lambda u: int(u["id"]))
    assert len(found) >= n, f"the seed has fewer than {n} users with {attrs}"
    return found[:n]


def _unsubscribes(oro: OroProbe, user_id: str) -> list[dict[str, Any]]:
    return [
        a["details"] for a in oro.mailchimp_activities()
        if a["details"]["action"] == "unsubscribe" and a["relationships"]["entity"]["data"]["id"] == user_id
    ]


def _with_id(email: str, user_id: str, **overrides: Any) -> dict[str, Any]:
    record = member(email, **overrides)
    record["merge_fields"] = {**record.get("merge_fields", {}), "OROID": user_id}
    return record


def _actions(config: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in rejects(config) if r.get("kind") == "action"]


# -- identity and email changes ---------------------------------------------------------------


def test_a_member_is_its_oro_id_and_an_address_changed_in_mailchimp_is_reported_not_applied(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    (user,) = _users(oro, 1)
    old_email = user["attributes"]["email"]
    moved = _with_id("moved.in.mailchimp@example.com", user["id"], merge_fields={"FNAME": "Renamed"})
    summary, _ = run_target(config, messages({"members": [moved]}))

    after = oro.user(user["id"])["attributes"]
    assert after["email"] == old_email, "the Oro login did not change"
    assert after["firstName"] == "Renamed", "the rest of the member still reached the right person"
    counts = summary["streams"]["members"]
    assert counts["matched_by_identity"] == 1
    assert "no_customer_user" not in counts["rejected_by_reason"]
    (action,) = _actions(config)
    assert action["reason"] == "email_changed_in_mailchimp"
    assert action["key"] == f"{LIST_ID}/{moved['id']}"
    assert user["id"] in action["detail"]
    assert "moved.in.mailchimp" not in str(rejects(config)), "the report never holds an address"
    assert summary["actions_required"] == 1


def test_an_address_changed_in_mailchimp_is_applied_when_configured_and_then_settles(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    (user,) = _users(oro, 1)
    cfg = {**config, "apply_email_changes": True}
    moved = _with_id("New.Address@Example.com", user["id"])
    summary, _ = run_target(cfg, messages({"members": [moved]}))
    assert oro.user(user["id"])["attributes"]["email"] == "new.address@example.com"
    assert summary["streams"]["members"]["emails_updated"] == 1
    assert _actions(cfg) == []

    sb.reset_stats()
    summary, _ = run_target(cfg, messages({"members": [moved]}))
    assert _writes(sb) == 0
    assert summary["streams"]["members"]["unchanged"] == 1


def test_an_applied_address_change_never_takes_another_users_email(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    user, other = _users(oro, 2)
    cfg = {**config, "apply_email_changes": True}
    taken = _with_id(other["attributes"]["email"], user["id"])
    sb.reset_stats()
    run_target(cfg, messages({"members": [taken]}))
    assert oro.user(user["id"])["attributes"]["email"] == user["attributes"]["email"]
    assert oro.user(other["id"])["attributes"]["email"] == other["attributes"]["email"]
    (action,) = _actions(cfg)
    assert action["reason"] == "email_change_conflict"
    assert f"customer user {other['id']}" in action["detail"]
    assert _writes(sb) == 0


def test_an_oro_change_newer_than_the_member_keeps_the_oro_email(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    """The address probably changed in Oro and the audience sync has not carried it yet."""
    (user,) = _users(oro, 1)
    cfg = {**config, "apply_email_changes": True}
    stale = _with_id("stale.old@example.com", user["id"], last_changed=iso(BASE_TIME - timedelta(days=3000)))
    run_target(cfg, messages({"members": [stale]}))
    assert oro.user(user["id"])["attributes"]["email"] == user["attributes"]["email"]
    (action,) = _actions(cfg)
    assert action["reason"] == "email_change_not_applied_oro_newer"


def test_an_id_oro_no_longer_has_falls_back_to_the_email_and_a_bad_id_is_rejected(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    user, other = _users(oro, 2)
    gone = _with_id(user["attributes"]["email"], "99999999", merge_fields={"LNAME": "Fallback"})
    bad = _with_id(other["attributes"]["email"], "12a", merge_fields={"LNAME": "Never"})
    summary, _ = run_target(config, messages({"members": [gone, bad]}))
    assert oro.user(user["id"])["attributes"]["lastName"] == "Fallback"
    assert oro.user(other["id"])["attributes"]["lastName"] == other["attributes"]["lastName"]
    counts = summary["streams"]["members"]
    assert counts["identity_not_in_oro_matched_by_email"] == 1
    (reject,) = [r for r in rejects(config) if r["kind"] == "reject"]
    assert (reject["reason"], reject["field"]) == ("invalid_record", "merge_fields.OROID")


# -- the consent source: a custom field ------------------------------------------------------


def test_field_opt_out_then_resubscribe_then_nothing(
    consent_sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    sb = consent_sb
    cfg = _using(sb, config, "customer_user_field", marketing_list_ids=[1])
    (user,) = _users(oro, 1, marketing_consent=True)
    email = user["attributes"]["email"]

    gone = _with_id(email, user["id"], status="unsubscribed", timestamp_opt=OLD_OPT_IN)
    summary, _ = run_target(cfg, messages({"members": [gone]}))
    assert oro.user(user["id"])["attributes"]["marketing_consent"] is False
    assert summary["streams"]["members"]["consent_withdrawn"] == 1
    assert len(_unsubscribes(oro, user["id"])) == 1

    sb.reset_stats()
    run_target(cfg, messages({"members": [{**gone, "last_changed": iso(BASE_TIME + timedelta(hours=1))}]}))
    assert _writes(sb) == 0, "the same opt-out read again writes nothing"

    back = _with_id(email, user["id"], status="subscribed", timestamp_opt=iso(BASE_TIME + timedelta(days=1)),
                    last_changed=iso(BASE_TIME + timedelta(days=1)))
    summary, _ = run_target(cfg, messages({"members": [back]}))
    assert oro.user(user["id"])["attributes"]["marketing_consent"] is True
    assert summary["streams"]["members"]["consent_given"] == 1
    assert summary["streams"]["members"]["marketing_list_subscribed"] == 1
    (unsubscribe,) = _unsubscribes(oro, user["id"])
    assert unsubscribe["resubscribed_at"]

    sb.reset_stats()
    run_target(cfg, messages({"members": [{**back, "last_changed": iso(BASE_TIME + timedelta(days=2))}]}))
    assert _writes(sb) == 0, "the re-subscribe read again writes nothing"


def test_field_never_recorded_is_not_turned_into_consent_and_a_newer_oro_choice_stands(
    consent_sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    sb = consent_sb
    cfg = _using(sb, config, "customer_user_field")
    (unknown,) = _users(oro, 1, marketing_consent=None)
    (declined,) = _users(oro, 1, marketing_consent=False)
    subscribed_long_ago = {"status": "subscribed", "timestamp_opt": iso(BASE_TIME - timedelta(days=9000))}
    sb.reset_stats()
    summary, _ = run_target(cfg, messages({"members": [
        _with_id(unknown["attributes"]["email"], unknown["id"], **subscribed_long_ago),
        _with_id(declined["attributes"]["email"], declined["id"], **subscribed_long_ago),
    ]}))
    assert oro.user(unknown["id"])["attributes"]["marketing_consent"] is None
    assert oro.user(declined["id"])["attributes"]["marketing_consent"] is False
    assert summary["streams"]["members"]["consent_kept_oro_newer"] == 1
    assert _writes(sb) == 0


def test_field_pending_and_transactional_members_change_nothing(
    consent_sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    """Neither status is a choice about marketing: Oro's consent, lists and activities stay."""
    sb = consent_sb
    cfg = _using(sb, config, "customer_user_field", marketing_list_ids=[1])
    (consented,) = _users(oro, 1, marketing_consent=True)
    (declined,) = _users(oro, 1, marketing_consent=False)
    (unknown,) = _users(oro, 1, marketing_consent=None)
    rows = [
        _with_id(consented["attributes"]["email"], consented["id"], status="pending"),
        _with_id(declined["attributes"]["email"], declined["id"], status="transactional"),
        _with_id(unknown["attributes"]["email"], unknown["id"], status="transactional"),
    ]
    sb.reset_stats()
    summary, _ = run_target(cfg, messages({"members": rows}))
    people = (consented, declined, unknown)
    consents = [oro.user(u["id"])["attributes"]["marketing_consent"] for u in people]
    assert consents == [True, False, None]
    assert all(_unsubscribes(oro, u["id"]) == [] for u in people)
    assert _writes(sb) == 0, summary["streams"]["members"]


def test_field_archived_member_withdraws_by_default_and_not_with_keep(
    consent_sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    sb = consent_sb
    cfg = _using(sb, config, "customer_user_field", marketing_list_ids=[1])
    first, second = _users(oro, 2, marketing_consent=True)
    archived = {"status": "archived", "timestamp_opt": OLD_OPT_IN}
    run_target(cfg, messages({"members": [_with_id(first["attributes"]["email"], first["id"], **archived)]}))
    assert oro.user(first["id"])["attributes"]["marketing_consent"] is False
    (activity,) = _unsubscribes(oro, first["id"])
    assert activity["status"] == "archived"

    sb.reset_stats()
    keep = {**cfg, "archived_member_consent": "keep"}
    run_target(keep, messages({"members": [_with_id(second["attributes"]["email"], second["id"], **archived)]}))
    assert oro.user(second["id"])["attributes"]["marketing_consent"] is True
    assert _unsubscribes(oro, second["id"]) == []
    assert _writes(sb) == 0

    # target-mailchimp archives the member of a disabled user: the account's state, not an opt-out.
    (disabled,) = _users(oro, 1, enabled=False, marketing_consent=True)
    row = _with_id(disabled["attributes"]["email"], disabled["id"], **archived)
    summary, _ = run_target(cfg, messages({"members": [row]}))
    assert oro.user(disabled["id"])["attributes"]["marketing_consent"] is True
    assert _unsubscribes(oro, disabled["id"]) == []
    assert summary["streams"]["members"]["archived_disabled_user_not_an_opt_out"] == 1
    assert _writes(sb) == 0


def test_a_missing_consent_field_fails_naming_the_setting(
    sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    (user,) = _users(oro, 1)
    cfg = {**config, "consent_source": "customer_user_field"}  # the sandbox switch is off
    gone = _with_id(user["attributes"]["email"], user["id"], status="unsubscribed")
    with pytest.raises(ValueError, match="consent_field"):
        run_target(cfg, messages({"members": [gone]}))


# -- the consent source: OroConsentBundle acceptances -------------------------------------------


def _acceptance_of(oro: OroProbe, user_id: str) -> list[dict[str, Any]]:
    consents = oro.get("consents", include="names", **{"page[size]": "-1"})
    names = {i["id"]: i["attributes"]["string"] for i in consents.get("included", [])}
    email_subscription = next(
        c["id"] for c in consents["data"]
        if any(names.get(r["id"]) == "Email subscription" for r in c["relationships"]["names"]["data"])
    )
    return oro.all("consentacceptances", **{"filter[customerUser]": user_id, "filter[consent]": email_subscription})


def _accepting_user(oro: OroProbe) -> dict[str, Any]:
    for user in _users(oro, 10):
        if _acceptance_of(oro, user["id"]):
            return user
    raise AssertionError("no seeded user accepted 'Email subscription'")


def test_acceptances_opt_out_deletes_resubscribe_creates_and_then_nothing(
    consent_sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    sb = consent_sb
    cfg = _using(sb, config, "consent_acceptances")
    user = _accepting_user(oro)
    email = user["attributes"]["email"]

    gone = _with_id(email, user["id"], status="cleaned", timestamp_opt=OLD_OPT_IN)
    summary, _ = run_target(cfg, messages({"members": [gone]}))
    assert _acceptance_of(oro, user["id"]) == []
    assert summary["streams"]["members"]["consent_withdrawn"] == 1

    back = _with_id(email, user["id"], status="subscribed", timestamp_opt=iso(BASE_TIME + timedelta(days=1)),
                    last_changed=iso(BASE_TIME + timedelta(days=1)))
    summary, _ = run_target(cfg, messages({"members": [back]}))
    assert len(_acceptance_of(oro, user["id"])) == 1
    assert summary["streams"]["members"]["consent_given"] == 1

    # The person declines in Oro afterwards: reading the same Mailchimp opt-in again must not undo it.
    (acceptance,) = _acceptance_of(oro, user["id"])
    oro.session.delete(f"{oro.api}/consentacceptances/{acceptance['id']}", timeout=30).raise_for_status()
    sb.reset_stats()
    run_target(cfg, messages({"members": [{**back, "last_changed": iso(BASE_TIME + timedelta(days=2))}]}))
    assert _acceptance_of(oro, user["id"]) == []
    assert _writes(sb) == 0


def test_acceptances_subscribed_without_an_opt_out_of_ours_creates_nothing(
    consent_sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    sb = consent_sb
    cfg = _using(sb, config, "consent_acceptances")
    user = next(u for u in _users(oro, 10) if not _acceptance_of(oro, u["id"]))
    sb.reset_stats()
    run_target(cfg, messages({"members": [_with_id(user["attributes"]["email"], user["id"], status="subscribed")]}))
    assert _acceptance_of(oro, user["id"]) == []
    assert _writes(sb) == 0


# -- permanently deleted (forgotten) members ----------------------------------------------------


def _forgotten(oro_id: str) -> dict[str, Any]:
    return {
        "list_id": LIST_ID,
        "oro_id": oro_id,
        "identity_merge_field": "OROID",
        "detected_at": iso(BASE_TIME),
        "previous_sweep_at": iso(BASE_TIME - timedelta(days=1)),
    }


def test_a_forgotten_member_is_an_opt_out_and_a_gdpr_request_naming_the_customer_user(
    consent_sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    sb = consent_sb
    cfg = _using(sb, config, "customer_user_field", marketing_list_ids=[1])
    (user,) = _users(oro, 1, marketing_consent=True)
    rows = [_forgotten(user["id"]), _forgotten("99999999")]
    summary, _ = run_target(cfg, messages({"forgotten_members": rows}))

    assert oro.user(user["id"])["attributes"]["marketing_consent"] is False
    (activity,) = _unsubscribes(oro, user["id"])
    assert activity["status"] == "forgotten"
    assert activity["email_id"] == hashlib.md5(user["attributes"]["email"].encode()).hexdigest()  # noqa: S324
    unsubscribed = sb.control("oro").get("/_sandbox/oro/marketinglists").json()["1"]["unsubscribed"]
    assert int(user["id"]) in unsubscribed
    counts = summary["streams"]["forgotten_members"]
    assert counts["already_deleted_in_oro"] == 1
    assert summary["actions_required"] == 1
    (action,) = _actions(cfg)
    assert action["reason"] == "gdpr_erasure_request"
    assert action["key"] == f"{LIST_ID}/oro:{user['id']}"
    assert f"customer user {user['id']}" in action["detail"]
    assert user["attributes"]["email"] not in str(rejects(cfg))

    sb.reset_stats()
    run_target(cfg, messages({"forgotten_members": rows[:1]}))
    assert _writes(sb) == 0, "a replayed detection writes nothing more (it is reported again)"
    assert len(_unsubscribes(oro, user["id"])) == 1


def test_field_opt_out_written_in_one_batch_is_what_the_next_batch_of_the_run_reads(
    consent_sb: RunningSandbox, oro: OroProbe, config: dict[str, Any]
) -> None:
    """The directory hands out copies of customer users: the consent field written for an opt-out
    must be what a later batch of the same run reads, or the opt-out is written again."""
    sb = consent_sb
    cfg = _using(sb, config, "customer_user_field", marketing_list_ids=[1], batch_size_rows=1)
    (user,) = _users(oro, 1, marketing_consent=True)
    gone = _with_id(user["attributes"]["email"], user["id"], status="unsubscribed", timestamp_opt=OLD_OPT_IN)
    again = {**gone, "last_changed": iso(BASE_TIME + timedelta(hours=1))}
    summary, _ = run_target(cfg, messages({"members": [gone, again]}))
    counts = summary["streams"]["members"]
    assert counts.get("superseded_in_batch", 0) == 0  # two batches, not one
    assert counts["consent_withdrawn"] == 1
    assert oro.user(user["id"])["attributes"]["marketing_consent"] is False
    assert len(_unsubscribes(oro, user["id"])) == 1
