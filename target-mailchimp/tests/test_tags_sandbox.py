"""End-to-end (real sandbox over HTTP): existing tags are reused, other owners' tags never echo, and
values that only differ in form cause no write."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest
from oromc_common.mailchimp import MailchimpClient, subscriber_hash
from oromc_sandbox.testing import RunningSandbox
from target_mailchimp.tags import BATCHES_WHEN_DIRECT_CALLS_OVER

from .conftest import DOMAIN, contact, member, routes, run_target, singer_lines, writes

ACCOUNT = {"customer_name": "Acme", "customer_group": "Retail"}


def _segment_creates(sb: RunningSandbox) -> dict[str, int]:
    """Answers of ``POST /lists/{id}/segments`` (tag creation) by status since the last reset."""
    requests: dict[str, dict[str, int]] = sb.stats("mailchimp")["requests"]
    return requests.get("POST /3.0/lists/{list_id}/segments", {})


def test_tag_created_inline_earlier_in_the_run_is_reused_not_recreated(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    """Window 2 creates a member with tag ``Second`` inline (batch subscribe) and adds ``SECOND`` to
    existing members by segment: the segment list read in window 1 is stale by then, and creating
    the tag again would be refused ("A tag with the name ... already exists") and stop the run."""
    list_id = config["list_id"]
    run_target(config, singer_lines([contact(i, tags=[], **ACCOUNT) for i in range(1, 5)]))
    cfg = {**config, "batch_size_rows": 4, "tag_write_mode": "segment"}
    window_1 = [contact(i, tags=["First"], **ACCOUNT) for i in range(1, 5)]
    window_2 = [contact(7, tags=["Second"], **ACCOUNT)] + [
        contact(i, tags=["First", "SECOND"], **ACCOUNT) for i in range(1, 4)
    ]
    sb.reset_stats()
    target, states = run_target(cfg, singer_lines(window_1 + window_2, state_every=4))

    assert states[-1] == {"n": 8}
    assert not target.report.rejected_by_reason("contacts")
    assert _segment_creates(sb) == {
        "200": 1
    }  # only "oro:tag:First" was new when written by segment
    for i in (1, 2, 3):
        got = member(api, list_id, f"person{i}@{DOMAIN}")
        assert got is not None
        assert "oro:tag:Second" in got["all_tags"]
        assert "oro:tag:First" in got["all_tags"]
    tags = [t["name"] for t in api.paginate(f"/lists/{list_id}/tag-search", "tags")]
    assert sorted(n for n in tags if n.lower() == "oro:tag:second") == ["oro:tag:Second"]


def test_tag_created_by_someone_else_mid_run_in_other_case_is_reused(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    """A tag that appears after the target read the tag list (another run, a person) and differs in
    case: Mailchimp refuses to create it again; the target finds and reuses it, the run goes on."""
    list_id = config["list_id"]
    run_target(config, singer_lines([contact(i, tags=[], **ACCOUNT) for i in range(1, 5)]))

    def someone_tags_person_9() -> None:
        api.post(
            f"/lists/{list_id}",
            {"members": [{"email_address": f"person9@{DOMAIN}", "status": "subscribed"}]},
        )
        api.post(
            f"/lists/{list_id}/members/{subscriber_hash(f'person9@{DOMAIN}')}/tags",
            {"tags": [{"name": "ORO:TAG:Third", "status": "active"}]},
        )

    cfg = {**config, "batch_size_rows": 4, "tag_write_mode": "segment"}
    window_1 = [contact(i, tags=["First"], **ACCOUNT) for i in range(1, 5)]
    window_2 = [contact(i, tags=["First", "Third"], **ACCOUNT) for i in range(1, 5)]
    lines = singer_lines(window_1 + window_2, state_every=4)
    first_line_of_window_2 = 1 + 4 + 1  # SCHEMA, 4 records, STATE
    target, states = run_target(cfg, lines, {first_line_of_window_2: someone_tags_person_9})

    assert states[-1] == {"n": 8}
    assert not target.report.rejected_by_reason("contacts")
    for i in range(1, 5):
        got = member(api, list_id, f"person{i}@{DOMAIN}")
        assert got is not None
        assert "ORO:TAG:Third" in got["all_tags"]
    assert _summary_count(target, "tags_added") == 8


def _summary_count(target: Any, name: str) -> int:
    return int(target.report.summary()["streams"]["contacts"].get(name, 0))


def test_source_tags_of_another_owner_are_not_echoed(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    """``mc:`` tags (mirrored from Mailchimp into Oro by target-orocommerce) give no ``oro:tag:mc:``
    tag; one an older version pushed is removed; ``exclude_tag_prefixes: []`` turns this off."""
    list_id = config["list_id"]
    email = f"person1@{DOMAIN}"
    run_target({**config, "exclude_tag_prefixes": []}, singer_lines([contact(1, tags=["mc:VIP"])]))
    assert "oro:tag:mc:VIP" in member(api, list_id, email)["all_tags"]  # type: ignore[index]

    records = [
        contact(1, tags=["mc:VIP", "Reseller"]),
        contact(2, tags=["MC:Newsletter", "mc: Lead", "Reseller"]),
    ]
    target, _ = run_target(config, singer_lines(records))
    assert member(api, list_id, email)["all_tags"] == [  # type: ignore[index]
        "oro:account:Account 1",
        "oro:group:Retail",
        "oro:tag:Reseller",
    ]
    assert member(api, list_id, f"person2@{DOMAIN}")["all_tags"] == [  # type: ignore[index]
        "oro:account:Account 2",
        "oro:group:Wholesale",
        "oro:tag:Reseller",
    ]
    assert _summary_count(target, "tags_removed") == 1

    sb.reset_stats()
    run_target(config, singer_lines(records))
    assert writes(sb) == 0


def test_values_differing_only_in_form_cause_no_write(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    """What engagement-sync copies back into the source comes back in another form (phone format,
    Unicode composition, spacing, tag case): none of that is a change, so a re-run writes nothing."""
    list_id = config["list_id"]
    record = contact(1, first_name="Zoë", last_name="Ångström", phone="+1 555-010-0001")
    record["tags"] = ["Über-Kunde", "Loyalty: gold"]
    run_target(config, singer_lines([record]))
    before = member(api, list_id, f"person1@{DOMAIN}")
    assert before is not None

    echoed = {
        **record,
        "first_name": unicodedata.normalize("NFD", "Zoë"),
        "last_name": " Ångström ",
        "phone": "+1 (555) 010 0001",
        "tags": [unicodedata.normalize("NFD", "über-kunde"), "LOYALTY:  GOLD"],
        "customer_name": "ACCOUNT 1",
    }
    sb.reset_stats()
    target, _ = run_target(config, singer_lines([echoed]))
    assert writes(sb) == 0
    assert _summary_count(target, "unchanged") == 1
    after = member(api, list_id, f"person1@{DOMAIN}")
    assert after is not None
    assert after["merge_fields"] == before["merge_fields"]
    assert after["all_tags"] == before["all_tags"]

    # A real change still goes through, as sent.
    sb.reset_stats()
    run_target(config, singer_lines([{**echoed, "phone": "+1 555-010-0002"}]))
    assert writes(sb) == 1
    assert member(api, list_id, f"person1@{DOMAIN}")["merge_fields"]["PHONE"] == "+1 555-010-0002"  # type: ignore[index]


def test_tag_deleted_mid_run_is_written_per_member(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    """The tag list says a tag exists, but it was deleted meanwhile: Mailchimp refuses the segment
    call (404); those members' tags are written per member (re-creating the tag by name)."""
    list_id = config["list_id"]
    run_target(config, singer_lines([contact(i, tags=[], **ACCOUNT) for i in range(1, 9)]))

    def someone_deletes_the_tag() -> None:
        search = {"name": "oro:tag:First"}
        (tag,) = list(api.paginate(f"/lists/{list_id}/tag-search", "tags", search))
        api.delete(f"/lists/{list_id}/segments/{tag['id']}")

    cfg = {**config, "batch_size_rows": 4, "tag_write_mode": "segment"}
    window_1 = [contact(i, tags=["First"], **ACCOUNT) for i in range(1, 5)]
    window_2 = [contact(i, tags=["First"], **ACCOUNT) for i in range(5, 9)]
    lines = singer_lines(window_1 + window_2, state_every=4)
    target, states = run_target(cfg, lines, {1 + 4 + 1: someone_deletes_the_tag})

    assert states[-1] == {"n": 8}
    assert not target.report.rejected_by_reason("contacts")
    for i in range(5, 9):
        assert "oro:tag:First" in member(api, list_id, f"person{i}@{DOMAIN}")["all_tags"]  # type: ignore[index]


def test_tag_batches_are_read_later_and_the_state_waits_for_them(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient, monkeypatch: Any
) -> None:
    """A window's tag ``/batches`` job is not awaited inside the window (the next records are read
    meanwhile); its results are read before the next window and at the end, and a STATE is only
    written once every batch submitted before it has finished."""
    from oromc_common.sdk_seams import SeamTarget

    list_id = config["list_id"]
    run_target(config, singer_lines([contact(i, tags=[], **ACCOUNT) for i in range(1, 9)]))
    emitted: list[tuple[dict[str, Any], list[str]]] = []
    original = SeamTarget.write_state

    def recording(self: SeamTarget, state: dict[str, Any]) -> None:  # what reaches stdout, when
        statuses = [b["status"] for b in api.get("/batches", {"count": 1000})["batches"]]
        emitted.append((state, statuses))
        original(self, state)

    monkeypatch.setattr(SeamTarget, "write_state", recording)
    cfg = {**config, "batch_size_rows": 4, "tag_write_mode": "batches", "batch_poll_seconds": 0.2}
    records = [contact(i, tags=["First"], **ACCOUNT) for i in range(1, 5)]
    records += [contact(i, tags=["Second"], **ACCOUNT) for i in range(5, 9)]
    target, states = run_target(cfg, singer_lines(records, state_every=4))

    assert states == [{"n": 4}, {"n": 8}]
    assert [s for s, _ in emitted] == [{"n": 4}, {"n": 8}]
    # the account's batches in submission order, one tag batch per window: a STATE is written once
    # every batch submitted before it (its window's and earlier ones) has finished
    for (state, statuses), windows in zip(emitted, (1, 2), strict=True):
        assert len(statuses) >= windows, state
        assert statuses[:windows] == ["finished"] * windows, state
    assert len(emitted[-1][1]) >= 2  # one tag batch per window
    # the second window's batch was submitted before the first one's results were read (Mailchimp's
    # queue did not wait for the target), and is finished before the last STATE
    assert len(emitted[0][1]) == 2
    assert emitted[-1][1] == ["finished", "finished"]
    assert not target.report.rejected_by_reason("contacts")
    assert _summary_count(target, "tagged") == 8
    assert not target.contact_sync().batches_pending
    for i in range(1, 9):
        got = member(api, list_id, f"person{i}@{DOMAIN}")
        assert got is not None
        assert ("oro:tag:First" if i < 5 else "oro:tag:Second") in got["all_tags"]


def test_a_window_waits_for_the_queued_tag_batch_of_its_members(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    """An earlier window's tag batch stays queued while the next window is written, unless that
    window changes one of its members: then it is read first, so the new tags are compared with what
    it wrote (``First`` replaced by ``Second``, not both)."""
    list_id = config["list_id"]
    run_target(config, singer_lines([contact(i, tags=[], **ACCOUNT) for i in range(1, 9)]))
    cfg = {**config, "batch_size_rows": 4, "tag_write_mode": "batches", "batch_poll_seconds": 0.2}
    window_1 = [contact(i, tags=["First"], **ACCOUNT) for i in range(1, 5)]
    window_2 = [contact(i, tags=["Second"], **ACCOUNT) for i in range(5, 9)]
    window_3 = [contact(1, tags=["Second"], **ACCOUNT)] + [
        contact(i, tags=["Third"], **ACCOUNT) for i in range(5, 8)
    ]
    target, states = run_target(cfg, singer_lines(window_1 + window_2 + window_3, state_every=4))

    assert states[-1] == {"n": 12}
    assert not target.report.rejected_by_reason("contacts")
    members = {i: member(api, list_id, f"person{i}@{DOMAIN}") or {} for i in range(1, 9)}
    owned = {i: sorted(t for t in m["all_tags"] if t.startswith("oro:tag:")) for i, m in members.items()}
    assert owned == {
        1: ["oro:tag:Second"],
        2: ["oro:tag:First"], 3: ["oro:tag:First"], 4: ["oro:tag:First"],
        5: ["oro:tag:Third"], 6: ["oro:tag:Third"], 7: ["oro:tag:Third"],
        8: ["oro:tag:Second"],
    }


SEGMENT_ADD = "POST /3.0/lists/{list_id}/segments/{segment_id}"
MEMBER_TAGS = "POST /3.0/lists/{list_id}/members/{subscriber_hash}/tags"
BATCHES = "POST /3.0/batches"


@pytest.mark.parametrize("is_syncing", [False, True])
def test_a_big_windows_tags_go_by_segments_unless_is_syncing(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient, is_syncing: bool
) -> None:
    """``auto``, a window whose direct tag writes need more than 50 calls: without ``is_syncing`` the
    segment calls (500 members each, on the target's connections) are faster than a ``/batches`` job in
    Mailchimp's serial queue, so they write the tags; with ``is_syncing`` (segment calls cannot carry
    it) the window's tags go as one ``/batches`` job. Every member ends up with its tags either way."""
    n = BATCHES_WHEN_DIRECT_CALLS_OVER + 10  # distinct tags: one segment call each
    list_id = config["list_id"]
    # members 1..n carry T1..Tn (the tags exist), members n+1..2n none yet
    first = [contact(i, tags=[f"T{i}"], **ACCOUNT) for i in range(1, n + 1)]
    first += [contact(n + i, tags=[], **ACCOUNT) for i in range(1, n + 1)]
    run_target(config, singer_lines(first))
    sb.reset_stats()
    cfg = {**config, "tag_write_mode": "auto", "is_syncing": is_syncing, "batch_poll_seconds": 0.2}
    second = [contact(i, tags=[f"T{i}"], **ACCOUNT) for i in range(1, n + 1)]
    second += [contact(n + i, tags=[f"T{i}"], **ACCOUNT) for i in range(1, n + 1)]
    target, _ = run_target(cfg, singer_lines(second))

    served = routes(sb)
    if is_syncing:
        assert served.get(BATCHES) == 1
        assert SEGMENT_ADD not in served
    else:
        assert served.get(SEGMENT_ADD) == n  # one per tag: n calls > 50, no batch queue
        assert BATCHES not in served
    assert MEMBER_TAGS not in served
    assert not target.report.rejected_by_reason("contacts")
    assert _summary_count(target, "tagged") == n
    assert not target.contact_sync().batches_pending
    for i in range(1, n + 1):
        got = member(api, list_id, f"person{n + i}@{DOMAIN}")
        assert got is not None
        assert f"oro:tag:T{i}" in got["all_tags"], i


SUBSCRIBE = "POST /3.0/lists/{list_id}"


def _owned(api: MailchimpClient, list_id: str, i: int) -> list[str]:
    got = member(api, list_id, f"person{i}@{DOMAIN}")
    assert got is not None
    return [t for t in got["all_tags"] if t.startswith("oro:tag:")]


@pytest.mark.parametrize("is_syncing", [False, True])
def test_an_updated_members_tag_additions_ride_in_its_batch_subscribe_item(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient, is_syncing: bool
) -> None:
    """Existing members updated anyway (a renamed first name) get their new owned tags in the same
    batch-subscribe item (``tags`` without ``sync_tags``): no tag write, the merchant's own tag and the
    member's status stay. Removals still go as member tag writes. With ``is_syncing`` (batch subscribe
    cannot carry it) every tag change goes as a member tag write, as before."""
    list_id = config["list_id"]
    run_target(config, singer_lines([contact(i, tags=["First"], **ACCOUNT) for i in range(1, 5)]))
    api.post(
        f"/lists/{list_id}/members/{subscriber_hash(f'person1@{DOMAIN}')}/tags",
        {"tags": [{"name": "VIP by hand", "status": "active"}]},
    )
    before = {i: member(api, list_id, f"person{i}@{DOMAIN}") or {} for i in range(1, 5)}
    sb.reset_stats()
    cfg = {**config, "is_syncing": is_syncing}
    records = [
        contact(i, first_name=f"New{i}", tags=["Second"] if i == 2 else ["First", "Second"], **ACCOUNT)
        for i in range(1, 5)
    ]
    target, states = run_target(cfg, singer_lines(records))

    assert states[-1] == {"n": 4}
    served = routes(sb)
    assert served.get(SUBSCRIBE) == 1
    assert served.get(MEMBER_TAGS) == (4 if is_syncing else 1)  # person 2's removal of First
    assert BATCHES not in served
    assert SEGMENT_ADD not in served
    assert not target.report.rejected_by_reason("contacts")
    counts = {k: _summary_count(target, k) for k in ("updated", "tagged", "tags_added", "untagged", "tags_removed")}
    assert counts == {"updated": 4, "tagged": 4, "tags_added": 4, "untagged": 1, "tags_removed": 1}
    assert {i: _owned(api, list_id, i) for i in range(1, 5)} == {
        1: ["oro:tag:First", "oro:tag:Second"],
        2: ["oro:tag:Second"],
        3: ["oro:tag:First", "oro:tag:Second"],
        4: ["oro:tag:First", "oro:tag:Second"],
    }
    after = {i: member(api, list_id, f"person{i}@{DOMAIN}") or {} for i in range(1, 5)}
    assert "VIP by hand" in after[1]["all_tags"]
    assert {i: m["status"] for i, m in after.items()} == {i: m["status"] for i, m in before.items()}
    assert all(after[i]["merge_fields"]["FNAME"] == f"New{i}" for i in after)

    sb.reset_stats()
    run_target(cfg, singer_lines(records))  # what the run remembered is what Mailchimp holds
    assert writes(sb) == 0


def _refuse_items(monkeypatch: Any, refusals: dict[str, dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Make Mailchimp refuse some batch-subscribe items (by address -> ``errors[]`` item) as it does
    per member: the item is not applied, the rest of the call is. Returns the items sent."""
    from target_mailchimp.client import Audience

    original = Audience.batch_subscribe
    sent: list[list[dict[str, Any]]] = []

    def refusing(self: Audience, members: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
        sent.append([dict(m) for m in members])
        kept = [m for m in members if m["email_address"] not in refusals]
        response = original(self, kept, **kwargs) if kept else {"errors": []}
        errors = [
            {"email_address": m["email_address"], **refusals[m["email_address"]]}
            for m in members
            if m["email_address"] in refusals
        ]
        return {**response, "errors": [*(response.get("errors") or []), *errors]}

    monkeypatch.setattr(Audience, "batch_subscribe", refusing)
    return sent


def test_a_refused_items_tag_additions_are_still_written_and_counted_once(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient, monkeypatch: Any
) -> None:
    """Three updated members whose batch-subscribe item (with inline tags) Mailchimp refuses: one
    for good (rejected as today), one for a merge value (written again by a single PUT without it),
    one over its tags (written again by a single PUT without them, so tags never cost a member its
    update). Their additions are written by tag writes instead, counted once; the fourth
    member's additions ride inline."""
    list_id = config["list_id"]
    run_target(config, singer_lines([contact(i, tags=["First"], **ACCOUNT) for i in range(1, 5)]))
    sent = _refuse_items(
        monkeypatch,
        {
            f"person1@{DOMAIN}": {"error": "Something went wrong", "error_code": "ERROR_GENERIC"},
            f"person2@{DOMAIN}": {
                "error": "Your merge fields were invalid.",
                "error_code": "ERROR_GENERIC",
                "field": "merge_fields.FNAME",
                "field_message": "Please enter a value",
            },
            f"person3@{DOMAIN}": {"error": "Invalid tag name", "error_code": "ERROR_GENERIC"},
        },
    )
    sb.reset_stats()
    records = [contact(i, first_name=f"New{i}", tags=["First", "Second"], **ACCOUNT) for i in range(1, 5)]
    target, states = run_target(config, singer_lines(records))

    assert states[-1] == {"n": 4}
    assert [sorted(m.get("tags", [])) for m in sent[0]] == [["oro:tag:Second"]] * 4
    served = routes(sb)
    assert served.get(SEGMENT_ADD) == 1  # the three fallbacks' Second: one segment call (auto)
    assert MEMBER_TAGS not in served
    assert served.get("PUT /3.0/lists/{list_id}/members/{subscriber_hash}") == 2  # persons 2 and 3
    assert BATCHES not in served
    assert target.report.rejected_by_reason("contacts") == {"bad_request": 1}  # person 1's update
    assert target.report.fields_rejected_by_reason("contacts") == {"invalid_merge_value": 1}
    assert (_summary_count(target, "tagged"), _summary_count(target, "tags_added")) == (4, 4)
    assert _summary_count(target, "updated") == 3
    for i in range(1, 5):
        assert _owned(api, list_id, i) == ["oro:tag:First", "oro:tag:Second"], i
    names = {i: (member(api, list_id, f"person{i}@{DOMAIN}") or {})["merge_fields"]["FNAME"] for i in range(1, 5)}
    assert names == {1: "First1", 2: "First2", 3: "New3", 4: "New4"}
