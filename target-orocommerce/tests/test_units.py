"""Pure functions: keys, parsing, permission names (no sandbox needed)."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from target_orocommerce.activities import (
    EVERY_EVENT,
    FIRST_PER_ACTION,
    ActivityLedger,
    MappingError,
    intents_from_email_activity,
    intents_from_sent_to,
    keys_of,
)
from target_orocommerce.client import permission_hint
from target_orocommerce.lookups import CustomerUserDirectory, CustomerUserView
from target_orocommerce.members import MemberError, MemberSettings, parse_member, phone_digits

AT = datetime(2030, 1, 1, 10, 0, tzinfo=UTC)


def _row(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "campaign_id": "abc123", "email_id": "e1", "email_address": "A@Example.com",
        "action": "open", "timestamp": AT, "url": "", "bounce_type": None, "list_id": "L1",
    }
    row.update(overrides)
    return row


def test_event_key_is_deterministic_and_distinguishes_events() -> None:
    a = intents_from_email_activity("email_activity", _row())[0]
    b = intents_from_email_activity("email_activity", _row())[0]
    later = intents_from_email_activity("email_activity", _row(timestamp="2030-01-01T10:00:01+00:00"))[0]
    assert a.key == b.key
    assert a.key != later.key
    assert a.dedupe_key(EVERY_EVENT) != later.dedupe_key(EVERY_EVENT)
    # first_per_action: every open of a member in a campaign is the same key
    assert a.dedupe_key(FIRST_PER_ACTION) == later.dedupe_key(FIRST_PER_ACTION)


def test_details_round_trip_to_ledger_keys_without_pii() -> None:
    intent = intents_from_email_activity(
        "email_activity", _row(action="click", url="https://x.example/p")
    )[0]
    details = intent.details()
    assert "a@example.com" not in details.lower()  # no email address is stored
    keys = keys_of({"attributes": {"details": details}})
    assert intent.dedupe_key(EVERY_EVENT) in keys
    assert intent.dedupe_key(FIRST_PER_ACTION) in keys
    assert keys_of({"attributes": {"details": json.dumps({"source": "other"})}}) == []


def test_bounce_types_and_bad_rows() -> None:
    hard = intents_from_email_activity("email_activity", _row(action="bounce", bounce_type="hard"))[0]
    soft = intents_from_email_activity("email_activity", _row(action="bounce", bounce_type="soft"))[0]
    assert (hard.type, soft.type) == ("hard_bounce", "soft_bounce")
    with pytest.raises(MappingError) as err:
        intents_from_email_activity("email_activity", _row(action="forward"))
    assert err.value.field == "action"
    with pytest.raises(MappingError) as err:
        intents_from_email_activity("email_activity", _row(email_address="not-an-email"))
    assert err.value.field == "email_address"


def test_send_key_has_no_time_and_needs_a_send_time() -> None:
    row = {"campaign_id": "abc123", "email_id": "e1", "email_address": "a@example.com", "status": "sent"}
    one = intents_from_sent_to("sent_to", row, {"abc123": AT})[0]
    other = intents_from_sent_to("sent_to", row, {"abc123": datetime(2030, 2, 1, tzinfo=UTC)})[0]
    assert one.dedupe_key(EVERY_EVENT) == other.dedupe_key(EVERY_EVENT)
    with pytest.raises(MappingError) as err:
        intents_from_sent_to("sent_to", row, {})
    assert err.value.field == "send_time"


def test_a_send_is_dated_by_its_rows_send_time_before_any_fallback() -> None:
    """tap-mailchimp-engagement puts the campaign's send time on every `sent_to` row: a run resumed
    after a kill, which sees no `campaigns` record and would fall back to the Oro campaign's start
    date (midnight), dates the send to the second like the uninterrupted run."""
    row = {
        "campaign_id": "abc123",
        "email_id": "e1",
        "email_address": "a@example.com",
        "status": "sent",
        "send_time": "2030-01-15T09:30:12+00:00",
    }
    fallback = {"abc123": datetime(2030, 1, 15, tzinfo=UTC)}
    intent = intents_from_sent_to("sent_to", row, fallback)[0]
    assert intent.action_date == datetime(2030, 1, 15, 9, 30, 12, tzinfo=UTC)
    assert intent.details() == intents_from_sent_to("sent_to", row, {})[0].details()


def test_parse_member_reads_merge_fields_and_flags_partial_tag_lists() -> None:
    settings = MemberSettings()
    row = parse_member(
        {
            "list_id": "L", "id": "h", "email_address": " Ann@Example.com ", "status": "subscribed",
            "merge_fields": {"FNAME": "Ann", "LNAME": "", "PHONE": "+1 555"},
            "tags": [{"id": 1, "name": "VIP"}], "tags_count": 3, "last_changed": AT,
        },
        settings,
    )
    assert (row.email, row.first_name, row.last_name, row.phone) == ("ann@example.com", "Ann", None, "+1 555")
    assert row.tags == ["VIP"]
    assert row.tags_complete is False
    with pytest.raises(MemberError) as err:
        parse_member({"email_address": "a@b.example", "status": "gone"}, settings)
    assert err.value.field == "status"


def test_parse_member_finds_configured_fields_among_the_taps_other_merge_tags() -> None:
    settings = MemberSettings(first_name_field="GIVEN", identity_field="CRMID")
    record = {
        "list_id": "L", "id": "h", "email_address": "ann@example.com", "status": "subscribed",
        "merge_fields": {"FNAME": "Not used", "LNAME": "Lee"}, "merge_fields_other": {"GIVEN": "Ann", "CRMID": "42"},
        "last_changed": AT,
    }
    row = parse_member(record, settings)
    assert (row.first_name, row.last_name, row.oro_id) == ("Ann", "Lee", "42")


def test_phone_comparison_ignores_formatting() -> None:
    assert phone_digits("+1 (555) 010-0001") == phone_digits("+15550100001")


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "marketingactivities", "CREATE + VIEW on Marketing Activity"),
        ("PATCH", "customerusers", "EDIT + VIEW on Customer User"),
        ("POST", "customerusers/7/relationships/tags", "EDIT on Customer User (and ASSIGN/UNASSIGN on Tag)"),
        ("GET", "campaigns", "VIEW on Campaign"),
    ],
)
def test_permission_hint_names_the_permission(method: str, path: str, expected: str) -> None:
    assert permission_hint(method, path) == expected
    assert "oro_marketinglist_unsubscribed_item_create" in permission_hint(
        "POST", "rest/latest/marketinglist/3/unsubscribe/9"
    )


@pytest.mark.parametrize(
    ("override", "setting"),
    [
        ({"base_url": "http://shop.example.com"}, "base_url"),
        ({"activity_types": ["open", "conversion"]}, "activity_types"),
        ({"create_missing_customer_users": True}, "new_customer_user_customer_id"),
    ],
)
def test_bad_config_fails_fast_naming_the_setting(override: dict[str, object], setting: str) -> None:
    from target_orocommerce.target import TargetOroCommerce

    config = {"base_url": "https://shop.example.com", "client_id": "id", "client_secret": "secret", **override}
    with pytest.raises(ValueError, match=setting):
        TargetOroCommerce(config=config, validate_config=True)


def test_the_ledger_remembers_every_activity_off_the_python_heap() -> None:
    """Every activity read back or written is remembered by its keys with its Oro id: a re-run of a
    campaign to 100,000 people reads ~1,000,000 back. As sets and dicts that was ~410 bytes an
    activity (555 MB peak at 1,041,581 records, README "Memory as records grow"); now on disk."""
    ledger = ActivityLedger(writer=None)  # type: ignore[arg-type]  # nothing is read from Oro here

    def keys(i: int) -> list[str]:
        return [f"E:{i:032x}:open:2030-01-01T10:00:00Z", f"F:open|abc123|{i:020x}"]

    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for w in range(0, 40_000, 500):
            ledger._remember([(str(10_000 + i), keys(i)) for i in range(w, w + 500)])
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown / 40_000 < 20, grown  # ~410 bytes an activity as Python sets and dicts
    assert all(k in ledger for k in keys(39_999))
    assert keys(123)[1] in ledger
    assert keys(40_000)[0] not in ledger
    assert ledger.id_of(keys(7)[0]) == "10007"
    # written in this run: known, with no id until read back; a later read gives its id
    ledger.add("E:new")
    assert "E:new" in ledger
    assert ledger.id_of("E:new") is None
    ledger._remember([("99", ["E:new"])])
    ledger.add("E:new")  # written again: the id read back is kept
    assert ledger.id_of("E:new") == "99"
    assert ledger.id_of("E:never") is None


class _Activities:
    """An Oro writer listing ``count`` marketing activities of ours, one at a time."""

    def __init__(self, count: int) -> None:
        self.count = count

    def iter_resources(self, path: str, params: dict[str, str]) -> Iterator[dict[str, Any]]:
        for i in range(self.count):
            details = json.dumps({"source": "mailchimp", "key": f"{i:032x}:open", "action": "open",
                                  "campaign_id": "abc123", "email_id": f"{i:020x}"})  # fmt: skip
            yield {"type": "marketingactivities", "id": str(i), "attributes": {"details": details}}


def test_a_campaign_s_activities_are_remembered_a_page_at_a_time() -> None:
    """A re-run reads each campaign's activities back (~200,000 for a campaign to 100,000 people):
    kept as one list until the last arrived, that was the no-op re-run's extra ~35 MB at 1M records."""
    ledger = ActivityLedger(writer=_Activities(20_000), page_size=500)  # type: ignore[arg-type]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        ledger.ensure_campaign("7")
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert peak / 20_000 < 150, peak  # the whole campaign as one list: ~370 bytes an activity here
    assert f"E:{19_999:032x}:open" in ledger
    assert ledger.id_of(f"F:open|abc123|{123:020x}") == "123"


class _IndexPages:
    """An Oro writer serving ``pages`` pages of 500 customer users over ``emails`` addresses (the
    first user of each registered, the later ones guests), two requests at a time."""

    max_concurrency = 2

    def __init__(self, pages: int, emails: int = 5_000) -> None:
        self.pages = pages
        self.emails = emails

    def get_json(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        n = int(params["page[number]"])
        return {
            "data": [
                {
                    "type": "customerusers",
                    "id": str(i),
                    "attributes": {
                        "email": f"user{i % self.emails}@example.org", "firstName": "First", "lastName": "Last",
                        "updatedAt": "2030-01-01T10:00:00Z", "isGuest": i >= self.emails, "enabled": True,
                    },
                    "relationships": {
                        "tags": {"data": [{"type": "tags", "id": "3"}]},
                        "addresses": {"data": [{"type": "customeruseraddresses", "id": str(2 * i)}]},
                    },
                }
                for i in range((n - 1) * 500, n * 500)
            ],
            "links": {},
        }  # fmt: skip

    def run_parallel(self, tasks: Sequence[Callable[[], Any]]) -> list[Any]:
        return [task() for task in tasks]


def test_the_customer_user_index_is_read_a_few_pages_at_a_time() -> None:
    """Without comma lists for ``filter[email]`` (stock Oro) the target reads every customer user
    once. All pages' JSON held until the last arrived cost ~2 KB a customer user on top of the
    views (~400 MB at 60,000 customers, README "Memory as records grow"); now ``max_concurrency``
    pages at a time. The index itself is kept on disk: as views in a dict it stayed at ~0.9 KB a
    customer user for the rest of the run (~0.9 GB for a million). Per email the registered user is
    kept, as before."""
    directory = CustomerUserDirectory(_IndexPages(40, emails=20_000))  # type: ignore[arg-type]
    directory._total = 40 * 500
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        directory._load_index()
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert directory.index_loaded
    assert peak / 20_000 < 800, peak  # every page at once: ~1,170 bytes a user here
    # views in a dict: ~600 bytes a user (12 MB here); on disk a bounded buffer (~1 MB)
    assert (kept - before) / 20_000 < 100, (kept - before, peak)
    found = directory.resolve(["user7@example.org", "user4999@example.org", "nobody@example.org"])
    assert found["user7@example.org"] is not None
    assert (found["user7@example.org"].id, found["user7@example.org"].is_guest) == ("7", False)
    assert found["user4999@example.org"] is not None
    assert found["user4999@example.org"].id == "4999"
    assert found["nobody@example.org"] is None


def test_a_customer_user_handed_out_is_a_copy_and_store_keeps_its_changes() -> None:
    """Views are copies of what the directory keeps on disk: a change is seen by later answers
    only once stored, for the user's id and, unless another user answers for it, its email."""
    directory = CustomerUserDirectory(_IndexPages(12))  # type: ignore[arg-type]
    directory._total = 12 * 500
    directory._load_index()
    email = "user7@example.org"  # also guest 5007's: the registered user answers
    view = directory.resolve([email])[email]
    assert view is not None
    assert (view.id, view.is_guest) == ("7", False)
    view.first_name, view.extra["mc_consent"] = "Changed", False
    assert view.tag_ids is not None
    view.tag_ids.append("9")
    unchanged = directory.resolve([email])[email]
    assert unchanged is not None
    assert (unchanged.first_name, unchanged.extra, unchanged.tag_ids) == ("First", {}, ["3"])
    directory.store(view)
    for seen in (directory.resolve([email])[email], directory.resolve_ids(["7"])["7"]):
        assert seen is not None
        assert (seen.first_name, seen.extra, seen.tag_ids) == ("Changed", {"mc_consent": False}, ["3", "9"])
    # a guest sharing the email: its change is kept for its id; the registered user still answers the email
    guest = CustomerUserView.from_row(view.row())
    guest.id, guest.is_guest, guest.last_name = "5007", True, "Guest"
    directory.store(guest)
    by_email = directory.resolve([email])[email]
    by_id = directory.resolve_ids(["5007"])["5007"]
    assert by_email is not None
    assert by_id is not None
    assert (by_email.id, by_email.last_name) == ("7", "Last")
    assert (by_id.id, by_id.is_guest, by_id.last_name) == ("5007", True, "Guest")
    # an email forgotten (the old one after an email change) is nobody's once the index is loaded
    directory.forget("user8@example.org")
    assert directory.resolve(["user8@example.org"])["user8@example.org"] is None
