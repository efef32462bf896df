"""End-to-end: the target against the real sandbox over HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from oromc_common.mailchimp import MailchimpClient, MailchimpConfigError, subscriber_hash
from oromc_sandbox.testing import RunningSandbox
from target_mailchimp.target import TargetMailchimp

from .conftest import DOMAIN, contact, member, run_target, singer_lines, writes


def _summary(target: TargetMailchimp) -> dict[str, Any]:
    return target.report.summary()["streams"]["contacts"]


def test_create_update_and_noop_rerun(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    list_id = config["list_id"]
    records = [contact(i) for i in range(1, 31)]
    target, states = run_target(config, singer_lines(records))
    summary = _summary(target)
    assert summary["created"] == 30
    assert states[-1] == {"n": 30}
    got = member(api, list_id, f"person7@{DOMAIN}")
    assert got is not None
    assert got["status"] == "transactional"  # no recorded consent: status_if_new (default transactional)
    assert got["merge_fields"]["FNAME"] == "First7"
    assert got["merge_fields"]["LNAME"] == "Last7"
    assert got["all_tags"] == ["oro:account:Account 1", "oro:group:Retail"]
    stats = sb.stats("mailchimp")
    assert max(stats["connections"]["peak"].values()) <= 8
    assert not stats["connections"]["over_limit"]

    # Re-run with the same input: nothing changed, so no write call at all.
    sb.reset_stats()
    target, _ = run_target(config, singer_lines(records))
    assert writes(sb) == 0
    assert _summary(target)["unchanged"] == 30

    # One changed name, one cleared phone: exactly those are written, in one batch call.
    records[4] = contact(5, first_name="Renamed")
    records[5] = contact(6, phone="")
    sb.reset_stats()
    target, _ = run_target(config, singer_lines(records))
    assert writes(sb) == 1
    assert _summary(target)["updated"] == 2
    assert member(api, list_id, f"person5@{DOMAIN}")["merge_fields"]["FNAME"] == "Renamed"  # type: ignore[index]
    assert member(api, list_id, f"person6@{DOMAIN}")["merge_fields"]["PHONE"] == ""  # type: ignore[index]


def test_owned_tags_added_and_removed_foreign_tags_kept(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    list_id = config["list_id"]
    run_target(config, singer_lines([contact(1, tags=["VIP"])]))
    email = f"person1@{DOMAIN}"
    api.post(
        f"/lists/{list_id}/members/{subscriber_hash(email)}/tags",
        {"tags": [{"name": "Manual-Newsletter", "status": "active"}]},
    )
    assert member(api, list_id, email)["all_tags"] == [  # type: ignore[index]
        "Manual-Newsletter",
        "oro:account:Account 1",
        "oro:group:Retail",
        "oro:tag:VIP",
    ]

    target, _ = run_target(config, singer_lines([contact(1, customer_group="Wholesale", tags=[])]))
    assert member(api, list_id, email)["all_tags"] == [  # type: ignore[index]
        "Manual-Newsletter",
        "oro:account:Account 1",
        "oro:group:Wholesale",
    ]
    summary = _summary(target)
    assert summary["tags_added"] == 1
    assert summary["tags_removed"] == 2


def test_unsubscribed_in_mailchimp_stays_unsubscribed(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    list_id = config["list_id"]
    run_target(config, singer_lines([contact(1), contact(2)]))
    for i in (1, 2):
        api.patch(
            f"/lists/{list_id}/members/{subscriber_hash(f'person{i}@{DOMAIN}')}",
            {"status": "unsubscribed"},
        )
    # The source says "subscribed" (status_if_new) and even "consent true" (old, and newer-but-blocked).
    records = [
        contact(1, first_name="Changed", marketing_consent=True),
        contact(2, marketing_consent=True, consent_changed_at="2999-01-01T00:00:00+00:00"),
    ]
    target, _ = run_target({**config, "status_if_new": "subscribed"}, singer_lines(records))
    first = member(api, list_id, f"person1@{DOMAIN}")
    assert first is not None
    assert first["status"] == "unsubscribed"
    assert first["merge_fields"]["FNAME"] == "Changed"  # profile data still syncs
    assert member(api, list_id, f"person2@{DOMAIN}")["status"] == "unsubscribed"  # type: ignore[index]
    assert _summary(target)["consent_blocked"] == 2  # consent true never re-subscribes, with a time or without
    assert not target.report.rejected_by_reason("contacts")


def test_consent_withdrawal_and_new_opt_out(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    list_id = config["list_id"]
    run_target(config, singer_lines([contact(1)]))
    records = [
        contact(1, marketing_consent=False, consent_changed_at="2999-01-01T00:00:00+00:00"),
        contact(2, marketing_consent=False),
    ]
    run_target(config, singer_lines(records))
    assert member(api, list_id, f"person1@{DOMAIN}")["status"] == "unsubscribed"  # type: ignore[index]
    assert member(api, list_id, f"person2@{DOMAIN}")["status"] == "unsubscribed"  # type: ignore[index]


def test_bad_records_rejected_with_reasons_rest_lands(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    list_id = config["list_id"]
    api.post(
        f"/lists/{list_id}/merge-fields", {"tag": "LTV", "name": "Lifetime value", "type": "number"}
    )
    cfg = {
        **config,
        "merge_fields": {"FNAME": "first_name", "PHONE": "phone", "LTV": "lifetime_value"},
    }
    records = [
        contact(1, lifetime_value=10),
        contact(2, email="not-an-email"),
        contact(3, email="someone@mailinator.com"),
        contact(4, lifetime_value="lots", marketing_consent=True),
        contact(5, phone="call me", marketing_consent=True),
        contact(6, lifetime_value="12.5"),
    ]
    target, states = run_target(cfg, singer_lines(records))
    assert states[-1] == {"n": 6}
    assert member(api, list_id, f"person1@{DOMAIN}")["merge_fields"]["LTV"] == 10  # type: ignore[index]
    assert float(member(api, list_id, f"person6@{DOMAIN}")["merge_fields"]["LTV"]) == 12.5  # type: ignore[index]
    # a value that cannot fit its merge field is left out; the contact and its consent still land
    person4 = member(api, list_id, f"person4@{DOMAIN}")
    person5 = member(api, list_id, f"person5@{DOMAIN}")
    assert person4 is not None
    assert person5 is not None
    assert person4["status"] == person5["status"] == "subscribed"
    assert not person4["merge_fields"].get("LTV")
    assert person4["merge_fields"]["FNAME"] == "First4"
    assert not person5["merge_fields"].get("PHONE")
    assert member(api, list_id, "someone@mailinator.com") is None
    assert target.report.rejected_by_reason("contacts") == {"invalid_email": 1, "fake_email": 1}
    assert target.report.fields_rejected_by_reason("contacts") == {"invalid_merge_value": 2}
    lines = [json.loads(x) for x in Path(cfg["rejects_path"]).read_text().splitlines()]
    by_key = {x["key"]: x for x in lines}
    four, five = by_key["customer_user_id=4"], by_key["customer_user_id=5"]
    assert (four["kind"], four["field"]) == ("field_reject", "lifetime_value")
    assert four["value"] == "string, 4 chars"
    assert (five["field"], five["value"]) == ("phone", "string, 7 chars")
    assert (by_key["customer_user_id=3"]["reason"], by_key["customer_user_id=3"]["field"]) == ("fake_email", "email")
    assert (
        "mailinator" not in Path(cfg["rejects_path"]).read_text()
    )  # no e-mail addresses in the report


@pytest.mark.parametrize("honoured", [True, False])
def test_batch_subscribe_answers_are_read_without_the_members_written(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient, monkeypatch: Any, honoured: bool
) -> None:
    """Mailchimp answers a batch subscribe with the full body of every member it created or updated;
    the target reads only the refusals and totals, so it asks for the answer without the members
    (``exclude_fields``) and parses it without them either way (``honoured`` False: an API that
    ignores ``exclude_fields`` on this POST). Memory: ten calls in flight held ~31 MB of member
    objects. Creations, updates and a refusal land as before."""
    from target_mailchimp import client as client_module

    if not honoured:
        monkeypatch.setattr(client_module, "BATCH_SUBSCRIBE_UNREAD", "")
    answers: list[tuple[bool, dict[str, Any] | None]] = []
    parse = client_module._batch_subscribe_answer

    def recording(content: bytes) -> dict[str, Any] | None:
        answer = parse(content)
        answers.append((b'"new_members"' in content, answer))
        return answer

    monkeypatch.setattr(client_module, "_batch_subscribe_answer", recording)
    list_id = config["list_id"]
    first = [contact(1), contact(2), contact(3, email="someone@mailinator.com")]
    target, _ = run_target(config, singer_lines(first))
    assert target.report.rejected_by_reason("contacts") == {"fake_email": 1}
    run_target(config, singer_lines([contact(1, first_name="Renamed"), contact(4)]))

    assert len(answers) >= 2
    assert all(raw is not honoured for raw, _ in answers)  # sent only when not asked away
    parsed = [a for _, a in answers if a is not None]
    assert len(parsed) == len(answers)
    assert all(set(a) == {"errors", "total_created", "total_updated", "error_count"} for a in parsed)
    assert sum(a["total_created"] for a in parsed) == 3  # persons 1, 2 and 4
    assert sum(a["total_updated"] for a in parsed) == 1
    assert [e["email_address"] for a in parsed for e in a["errors"]] == ["someone@mailinator.com"]
    renamed = member(api, list_id, f"person1@{DOMAIN}")
    assert renamed is not None
    assert renamed["merge_fields"]["FNAME"] == "Renamed"
    assert member(api, list_id, f"person4@{DOMAIN}") is not None


def test_duplicates_merged(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    records = [
        contact(1, last_name=None),
        contact(1, email=f"  PERSON1@{DOMAIN.upper()} ", first_name="Later", last_name=None),
    ]
    target, _ = run_target(config, singer_lines(records))
    got = member(api, config["list_id"], f"person1@{DOMAIN}")
    assert got is not None
    assert got["merge_fields"]["FNAME"] == "Later"
    assert _summary(target)["duplicates_merged"] == 1
    assert _summary(target)["created"] == 1


@pytest.mark.parametrize("mode", ["archive", "delete_permanent"])
def test_erasure(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient, mode: str
) -> None:
    list_id = config["list_id"]
    run_target(config, singer_lines([contact(1), contact(2)]))
    target, _ = run_target(
        {**config, "erasure_mode": mode}, singer_lines([contact(1, erase=True), contact(2)])
    )
    assert _summary(target)["erased"] == 1
    gone = member(api, list_id, f"person1@{DOMAIN}")
    if mode == "archive":
        assert gone is not None
        assert gone["status"] == "archived"
    else:
        assert gone is None
    # A later plain sync does not bring the erased person back.
    target, _ = run_target(config, singer_lines([contact(1)]))
    again = member(api, list_id, f"person1@{DOMAIN}")
    if mode == "archive":
        assert again["status"] == "archived"  # type: ignore[index]
        assert _summary(target)["archived_skipped"] == 1
    else:
        assert again is None  # Mailchimp refuses to re-add a forgotten person: counted, no reject
        assert _summary(target)["forgotten_not_re_added"] == 1
        assert target.report.rejected_by_reason("contacts") == {}
        # Not even with a consent recorded at the source: only the person's own new opt-in (pending,
        # double opt-in) could bring them back.
        consented = contact(1, marketing_consent=True, consent_changed_at="2999-01-01T00:00:00Z")
        target, _ = run_target(config, singer_lines([consented]))
        assert member(api, list_id, f"person1@{DOMAIN}") is None
        assert _summary(target)["forgotten_not_re_added"] == 1


def _audience(api: MailchimpClient, list_id: str) -> dict[str, Any]:
    fields = "members.email_address,members.status,members.merge_fields.FNAME,members.merge_fields.PHONE,members.tags"
    return {
        m["email_address"]: (m["status"], m["merge_fields"], sorted(t["name"] for t in m["tags"]))
        for m in api.paginate(f"/lists/{list_id}/members", "members", {"fields": fields})
        if m["email_address"].endswith(DOMAIN)
    }


def test_fault_storm_gives_the_same_audience(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    records = [contact(i) for i in range(1, 61)]
    changed = [contact(i, customer_group="Gold", first_name=f"N{i}") for i in range(1, 61, 3)]
    cfg = {**config, "batch_size_rows": 20}
    run_target(cfg, singer_lines(records))
    run_target(cfg, singer_lines(changed))
    expected = _audience(api, config["list_id"])

    sb.reset()
    sb.set_faults("mailchimp", rate=0.3, kinds=["429", "500", "502", "503", "403", "reset"], seed=3)
    run_target(cfg, singer_lines(records))
    run_target(cfg, singer_lines(changed))
    faults = sb.stats("mailchimp")["faults_injected"]
    sb.set_faults("mailchimp", rate=0)
    assert sum(faults.values()) > 5
    assert _audience(api, config["list_id"]) == expected


def test_state_emitted_only_after_durable_writes(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    records = [contact(i) for i in range(1, 36)]
    lines = singer_lines(records, state_every=5)
    cfg = {**config, "batch_size_rows": 10, "max_tries": 2}
    # Lines: 1 schema, then per 5 records 5 RECORD + 1 STATE lines. Break Mailchimp while the third
    # window (records 21-30) is being read: its write fails and the run stops.
    first_line_of_record_21 = 1 + 20 + 4
    hooks = {first_line_of_record_21: lambda: sb.set_faults("mailchimp", rate=1.0, kinds=["503"])}
    with pytest.raises(Exception, match="server_error"):
        run_target(cfg, lines, hooks)
    states = run_target.last_states  # type: ignore[attr-defined]
    sb.set_faults("mailchimp", rate=0)
    # Each window's drain emits the latest state seen before it, and a state arriving right after a
    # drain (nothing pending) is emitted at once; nothing after the failed window is ever emitted.
    assert states == [{"n": 5}, {"n": 10}, {"n": 15}, {"n": 20}]
    present = {
        i for i in range(1, 36) if member(api, config["list_id"], f"person{i}@{DOMAIN}") is not None
    }
    assert set(range(1, 21)) <= present  # everything the last state covers is durable
    assert not present & set(range(31, 36))

    # Resume from the last state: only the unfinished window(s) are replayed and the audience completes.
    _, states = run_target(cfg, singer_lines(records[20:]))
    assert states[-1] == {"n": 15}
    assert all(member(api, config["list_id"], f"person{i}@{DOMAIN}") for i in range(21, 36))


def test_bad_credentials_and_missing_merge_field_fail_at_start(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    bad = {
        **config,
        "api_key": "0000000000000000000000000000dead-" + config["api_key"].rsplit("-", 1)[1],
    }
    with pytest.raises(MailchimpConfigError, match="auth_invalid"):
        run_target(bad, singer_lines([]))  # fails on the SCHEMA message, before any record
    assert "dead" not in str(run_target.last_states)

    with pytest.raises(MailchimpConfigError, match="http"):
        TargetMailchimp(config={**config, "api_url": "http://mailchimp.example.com/3.0"})

    cfg = {
        **config,
        "merge_fields": {"FNAME": "first_name", "COMPANY": "customer_name", "SINCE": "updated_at"},
    }
    with pytest.raises(MailchimpConfigError, match="COMPANY"):
        run_target(cfg, singer_lines([contact(1)]))
    run_target({**cfg, "create_missing_merge_fields": True}, singer_lines([contact(1)]))
    fields = {
        f["tag"]: f["type"]
        for f in api.paginate(f"/lists/{config['list_id']}/merge-fields", "merge_fields")
    }
    assert fields["COMPANY"] == "text"
    assert fields["SINCE"] == "date"
    assert (
        member(api, config["list_id"], f"person1@{DOMAIN}")["merge_fields"]["COMPANY"]
        == "Account 1"
    )  # type: ignore[index]


def test_other_streams_are_counted_not_written(sb: RunningSandbox, config: dict[str, Any]) -> None:
    lines = [
        *singer_lines([contact(1)]),
        json.dumps(
            {
                "type": "SCHEMA",
                "stream": "orders",
                "schema": {"properties": {"id": {"type": "integer"}}},
                "key_properties": ["id"],
            }
        ),
        json.dumps({"type": "RECORD", "stream": "orders", "record": {"id": 1}}),
    ]
    target, _ = run_target(config, lines)
    assert target.report.summary()["streams"]["orders"]["ignored"] == 1
    assert _summary(target)["created"] == 1


def test_backfill_with_is_syncing_writes_tags_through_batches(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    # 60 new members: their tags go with is_syncing, and 60 direct calls > 50 -> one /batches job.
    records = [contact(i, tags=["Imported"]) for i in range(1, 61)]
    target, states = run_target({**config, "is_syncing": True}, singer_lines(records))
    routes = {k: sum(v.values()) for k, v in sb.stats("mailchimp")["requests"].items()}
    assert routes["POST /3.0/batches"] == 1
    assert (
        routes.get("POST /3.0/lists/{list_id}/members/{subscriber_hash}/tags", 0) == 0
    )  # none direct
    assert member(api, config["list_id"], f"person3@{DOMAIN}")["all_tags"] == [  # type: ignore[index]
        "oro:account:Account 0",
        "oro:group:Retail",
        "oro:tag:Imported",
    ]
    assert _summary(target)["tagged"] == 60
    assert states[-1] == {"n": 60}
    # Re-run: nothing to do.
    sb.reset_stats()
    run_target({**config, "is_syncing": True}, singer_lines(records))
    assert writes(sb) == 0
    # A few new members: direct per-member tag calls (each carries is_syncing), no batch.
    sb.reset_stats()
    run_target({**config, "is_syncing": True}, singer_lines([contact(i) for i in range(61, 64)]))
    routes = {k: sum(v.values()) for k, v in sb.stats("mailchimp")["requests"].items()}
    assert routes["POST /3.0/lists/{list_id}/members/{subscriber_hash}/tags"] == 3
    assert "POST /3.0/batches" not in routes


def test_unchanged_records_settle_on_arrival_and_later_duplicates_still_win(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    cfg = {**config, "audience_lookup": "full", "batch_size_rows": 10}
    run_target(cfg, singer_lines([contact(i) for i in range(1, 31)]))
    # After the first window the audience is known and unchanged records settle on arrival. Contact 5
    # first changes, then comes back unchanged later in the stream: the later record wins, no write.
    first = [contact(i) for i in range(1, 13) if i != 5]
    records = [*first, contact(5, first_name="B"), *[contact(i) for i in range(13, 31)], contact(5)]
    sb.reset_stats()
    target, states = run_target(cfg, singer_lines(records, state_every=3))
    assert writes(sb) == 0
    assert member(api, config["list_id"], f"person5@{DOMAIN}")["merge_fields"]["FNAME"] == "First5"  # type: ignore[index]
    summary = _summary(target)
    assert (summary["received"], summary["unchanged"], summary["duplicates_merged"]) == (31, 30, 1)
    assert states[-1] == {"n": 31}
    # A single change among unchanged records costs exactly one write.
    sb.reset_stats()
    records = [contact(i, first_name="C") if i == 7 else contact(i) for i in range(1, 31)]
    target, _ = run_target(cfg, singer_lines(records))
    assert writes(sb) == 1
    assert _summary(target)["updated"] == 1


def test_members_with_more_than_50_tags_are_diffed_against_all_tags(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    list_id = config["list_id"]
    email = f"person1@{DOMAIN}"
    run_target(config, singer_lines([contact(1, tags=["Old"])]))
    many = [{"name": f"Manual {i:02d}", "status": "active"} for i in range(60)]
    api.post(f"/lists/{list_id}/members/{subscriber_hash(email)}/tags", {"tags": many})
    sb.reset_stats()
    run_target(config, singer_lines([contact(1, tags=["New"])]))
    routes = {k: sum(v.values()) for k, v in sb.stats("mailchimp")["requests"].items()}
    assert (
        routes["GET /3.0/lists/{list_id}/members/{subscriber_hash}/tags"] >= 1
    )  # the full list was read
    tags = member(api, list_id, email)["all_tags"]  # type: ignore[index]
    assert "oro:tag:New" in tags
    assert "oro:tag:Old" not in tags
    assert len([t for t in tags if t.startswith("Manual")]) == 60
    sb.reset_stats()
    run_target(config, singer_lines([contact(1, tags=["New"])]))
    assert writes(sb) == 0


def test_oauth_token_resolves_the_data_center_and_bad_tokens_fail_at_start(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    oauth = {k: v for k, v in config.items() if k not in {"api_key", "api_url"}}
    oauth["access_token"] = sb.info["mailchimp"]["oauth_token"]
    oauth["oauth_metadata_url"] = sb.mailchimp_base_url + "/oauth2/metadata"
    target, _ = run_target(oauth, singer_lines([contact(1)]))
    assert _summary(target)["created"] == 1
    assert member(api, config["list_id"], f"person1@{DOMAIN}") is not None
    with pytest.raises(MailchimpConfigError, match="OAuth token"):
        TargetMailchimp(config={**oauth, "access_token": "not-a-token"})


@pytest.mark.parametrize("limit", [3, 10])
def test_connections_never_exceed_the_governor_limit(
    sb: RunningSandbox, config: dict[str, Any], limit: int
) -> None:
    cfg = {
        **config,
        "max_connections": limit,
        "tag_write_mode": "member",
        "audience_lookup": "per_member",
    }
    run_target(cfg, singer_lines([contact(i) for i in range(1, 41)]))
    sb.reset_stats()
    # 40 existing members, each with a tag change and looked up one by one: 80 parallelisable calls.
    run_target(cfg, singer_lines([contact(i, tags=["Wave"]) for i in range(1, 41)]))
    stats = sb.stats("mailchimp")
    assert stats["total_requests"] >= 80
    assert 1 <= max(stats["connections"]["peak"].values()) <= limit
    assert not stats["connections"]["over_limit"]
