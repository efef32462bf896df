"""Read-ahead of a backfill (readahead.py): contacts windows kept while the store's records are written,
order per person, the state after both; against the sandbox over HTTP (in-process target)."""

from __future__ import annotations

import json
import tracemalloc
import weakref
from types import SimpleNamespace
from typing import Any

import pytest
from oromc_common.mailchimp import MailchimpClient, subscriber_hash
from oromc_sandbox.testing import RunningSandbox
from target_mailchimp import target as target_module
from target_mailchimp.client import Audience
from target_mailchimp.contract import ECOMMERCE_SCHEMAS
from target_mailchimp.ecommerce import EcommerceSync, store_person
from target_mailchimp.readahead import ContactsSpool, HeldStoreRecords
from target_mailchimp.sync import ContactSync

from .conftest import DOMAIN, contact, member, run_target, singer_lines

STORE = "readahead-store"
LATER = "2999-01-01T00:00:00+00:00"
EXISTING = range(1, 31)  # members before the run
NEW = range(31, 41)  # people new to the audience, with consent
MOVED = 25  # an existing member whose address changes in the run (in a kept window)


def _store_lines(stream: str, records: list[dict[str, Any]]) -> list[str]:
    schema = {"type": "SCHEMA", "stream": stream, "schema": ECOMMERCE_SCHEMAS[stream], "key_properties": ["id"]}
    return [json.dumps(schema), *(json.dumps({"type": "RECORD", "stream": stream, "record": r}) for r in records)]


def _email(i: int) -> str:
    return f"moved{i}@{DOMAIN}" if i == MOVED else f"person{i}@{DOMAIN}"


def _customer(i: int) -> dict[str, Any]:
    return {"id": f"cu{i}", "email_address": _email(i), "opt_in_status": False, "first_name": f"First{i}"}


def _order(i: int) -> dict[str, Any]:
    return {
        "id": f"o{i}",
        "customer": _customer(i),
        "order_total": "10.00",
        "lines": [{"id": f"o{i}-1", "product_id": "p1", "product_variant_id": "p1", "quantity": 1,
                   "price": "10.00", "product_title": "Widget"}],
    }


def _contacts() -> list[dict[str, Any]]:
    records = [contact(i, first_name=f"Again{i}") for i in EXISTING]
    records[MOVED - 1] = contact(MOVED, email=_email(MOVED), first_name=f"Again{MOVED}")
    records += [contact(i, marketing_consent=True, consent_changed_at=LATER) for i in NEW]
    return records


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, set[str]]]:
    """(what, subscriber hashes) in the order written: each contacts window, each store window."""
    events: list[tuple[str, set[str]]] = []
    contacts_process, store_process = ContactSync.process, EcommerceSync._process

    def contacts(self: ContactSync, records: list[dict[str, Any]]) -> None:
        events.append(("contacts", {subscriber_hash(str(r["email"])) for r in records}))
        contacts_process(self, records)

    def store(self: EcommerceSync, stream: str, records: list[dict[str, Any]]) -> None:
        events.append((stream, {h for r in records if (h := store_person(stream, r)[1])}))
        store_process(self, stream, records)

    monkeypatch.setattr(ContactSync, "process", contacts)
    monkeypatch.setattr(EcommerceSync, "_process", store)
    return events


def test_store_records_of_members_go_ahead_of_their_contacts_others_after(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    list_id = config["list_id"]
    cfg = {**config, "store_id": STORE, "batch_size_rows": 10}
    run_target({**config, "batch_size_rows": 10}, singer_lines([contact(i) for i in EXISTING]))
    moved_before = member(api, list_id, f"person{MOVED}@{DOMAIN}")
    assert moved_before is not None
    events = _spy(monkeypatch)
    # one kept window per store drain (not more while store jobs run: the order below is fixed)
    monkeypatch.setattr(EcommerceSync, "busy_until", lambda self: 0.0)

    # windows of 10: contacts 1-10 (written: it reads the audience), 11-20, 21-30, new people (kept);
    # store records: 21-30 (members ahead of their window; the moved address held), the new people
    # (held), then the others
    people = [*range(21, 31), *NEW, *range(1, 21)]
    lines = [
        *singer_lines(_contacts(), state_every=10),
        *_store_lines("ecommerce_customers", [_customer(i) for i in people]),
        *_store_lines("ecommerce_orders", [_order(i) for i in people]),
    ]
    target, states = run_target(cfg, lines)
    streams = target.report.summary()["streams"]

    # The windows after the first were kept until the store records came, then written between them.
    assert streams["contacts"]["windows_read_ahead"] == 3
    first_store = next(i for i, (what, _) in enumerate(events) if what != "contacts")
    assert [what for what, _ in events[:first_store]] == ["contacts"]
    assert sum(what == "contacts" for what, _ in events[first_store:]) == 3

    # A store record goes before its person's contacts only when the person is a member at that
    # address; a new person's and a moved address's records come after their contacts.
    written_at: dict[str, int] = {}
    for i, (what, hashes) in enumerate(events):
        if what == "contacts":
            for h in hashes:
                written_at.setdefault(h, i)
    after = {subscriber_hash(_email(i)) for i in [*NEW, MOVED]}
    ahead = 0
    for i, (what, hashes) in enumerate(events):
        if what == "contacts":
            continue
        for h in hashes:
            if h in after:
                assert written_at[h] < i, (what, h)
            elif written_at[h] > i:
                ahead += 1
    assert ahead > 0  # some store records of members really went ahead of their contacts
    assert streams["ecommerce_customers"]["held_until_contacts"] == len(NEW) + 1

    # The outcome is the one without read-ahead: consent, the move, the store.
    for i in NEW:
        got = member(api, list_id, _email(i)) or {}
        assert got.get("status") == "subscribed", i
    moved = member(api, list_id, _email(MOVED))
    assert moved is not None
    assert moved["unique_email_id"] == moved_before["unique_email_id"]
    assert member(api, list_id, f"person{MOVED}@{DOMAIN}") is None
    assert streams["contacts"]["created"] == len(NEW)
    for i in people:
        assert api.get(f"/ecommerce/stores/{STORE}/orders/o{i}")["customer"]["email_address"] == _email(i)
    assert not streams["ecommerce_orders"].get("rejected_by_reason")

    # The state covering the contacts waits for the kept windows and the held records.
    assert states == [{"n": 10}, {"n": 40}]


def test_without_a_store_nothing_is_kept(
    sb: RunningSandbox, config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    events = _spy(monkeypatch)
    target, states = run_target({**config, "batch_size_rows": 10}, singer_lines(_contacts(), state_every=10))
    assert "windows_read_ahead" not in target.report.summary()["streams"]["contacts"]
    assert [what for what, _ in events] == ["contacts"] * 4
    assert states == [{"n": 10}, {"n": 20}, {"n": 30}, {"n": 40}]


def test_kept_windows_and_held_records_come_back_in_order() -> None:
    spool = ContactsSpool()
    spool.push([{"email": "a"}], {"0" * 32})
    spool.push([{"email": "b"}], {"f" * 32})
    assert spool.names("f" * 32)
    assert not spool.names("1" * 32)
    assert spool.pop() == [{"email": "a"}]
    assert not spool.names("0" * 32)
    assert spool.names("f" * 32)
    assert spool.pop() == [{"email": "b"}]
    assert len(spool) == 0

    held = HeldStoreRecords()
    held.hold("ecommerce_orders", [({"id": "o1"}, ("cu1", "a" * 32))])
    held.hold("ecommerce_customers", [({"id": "cu1"}, ("cu1", "a" * 32))])
    # later records of a held person, of a held customer id or with a held id follow them
    assert held.holds("ecommerce_carts", "c9", (None, "a" * 32))
    assert held.holds("ecommerce_carts", "c9", ("cu1", None))
    assert held.holds("ecommerce_orders", "o1", (None, None))
    assert not held.holds("ecommerce_orders", "o2", ("cu2", "b" * 32))
    held.hold("ecommerce_orders", [({"id": "o2"}, ("cu1", None)), ({"id": "o3"}, ("cu1", None))])
    held.hold("ecommerce_orders", [({"id": "o4"}, ("cu1", None))])
    # held parts of consecutive windows are joined up to the window size (one store job each)
    released = list(held.release(["ecommerce_customers", "ecommerce_orders"], 2))
    assert released == [
        ("ecommerce_customers", [{"id": "cu1"}]),
        ("ecommerce_orders", [{"id": "o1"}, {"id": "o2"}, {"id": "o3"}]),
        ("ecommerce_orders", [{"id": "o4"}]),
    ]
    assert len(held) == 0
    assert not held.holds("ecommerce_orders", "o1", (None, None))


def test_contacts_without_store_records_are_kept_only_up_to_a_bound(
    sb: RunningSandbox, config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store configured but no store record in the input: the read-ahead slides (at most
    MAX_KEPT_CONTACTS kept), the windows are written in their order, the state follows them."""
    monkeypatch.setattr(target_module, "MAX_KEPT_CONTACTS", 15)
    events = _spy(monkeypatch)
    lines = singer_lines([contact(i) for i in range(1, 41)], state_every=10)
    last = next(i for i, line in enumerate(lines) if f'"person40@{DOMAIN}"' in line)
    target, states = run_target(
        {**config, "store_id": STORE, "batch_size_rows": 10},
        lines,
        {last: lambda: events.append(("last record read", set()))},
    )
    assert target.report.summary()["streams"]["contacts"]["windows_read_ahead"] == 3
    people = [{subscriber_hash(f"person{i}@{DOMAIN}") for i in range(k, k + 10)} for k in (1, 11, 21, 31)]
    # window 2 was written while the input was read (15 contacts at most kept: when window 3 was)
    assert events == [
        ("contacts", people[0]),
        ("contacts", people[1]),
        ("last record read", set()),
        ("contacts", people[2]),
        ("contacts", people[3]),
    ]
    assert states == [{"n": 10}, {"n": 40}]
    assert target.report.summary()["streams"]["contacts"]["created"] == 40


def test_an_erasure_waits_for_the_store_job_that_names_the_person(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A member's store records went ahead of their kept contacts, as a /batches job; the kept window
    then erases the person: the erasure waits for that job (were the job to run after it, its
    customer write could bring the address back; Mailchimp does not document what such a write does
    to an archived member)."""
    list_id = config["list_id"]
    events: list[str] = []
    collect, delete = EcommerceSync._collect, Audience.delete_permanent

    def collected(self: EcommerceSync, batch_id: str) -> None:
        collect(self, batch_id)
        events.append("store job read")

    def deleted(self: Audience, hash_: str) -> None:
        events.append("erasure")
        delete(self, hash_)

    monkeypatch.setattr(EcommerceSync, "_collect", collected)
    monkeypatch.setattr(Audience, "delete_permanent", deleted)
    cfg = {**config, "batch_size_rows": 10, "audience_lookup": "full", "erasure_mode": "delete_permanent"}
    run_target(cfg, singer_lines([contact(i) for i in EXISTING]))
    erased = 15
    records = [contact(i, first_name=f"Again{i}") for i in EXISTING]
    records[erased - 1] = {"customer_user_id": erased, "erase": True, "email": None, "tags": [],
                           "updated_at": LATER}
    customers = [{**_customer(i), "id": str(i)} for i in range(11, 21)]  # 10: one /batches job
    lines = [*singer_lines(records), *_store_lines("ecommerce_customers", customers)]
    target, _ = run_target({**cfg, "store_id": STORE}, lines)
    streams = target.report.summary()["streams"]
    assert streams["contacts"]["windows_read_ahead"] == 2
    assert streams["contacts"]["erased"] == 1
    assert streams["ecommerce_customers"]["batched"] == 10
    assert "held_until_contacts" not in streams["ecommerce_customers"]
    assert member(api, list_id, f"person{erased}@{DOMAIN}") is None
    assert events == ["store job read", "erasure"]



@pytest.mark.parametrize("again", [False, True])
def test_archives_of_a_read_ahead_run_go_together_after_the_kept_windows(
    sb: RunningSandbox,
    config: dict[str, Any],
    api: MailchimpClient,
    monkeypatch: pytest.MonkeyPatch,
    again: bool,
) -> None:
    """Disabled users in three windows of a backfill: their archives are collected and run as one
    job once every kept window is written, behind the store jobs queued meanwhile (each window's own
    job would cost Mailchimp's queueing again); a later window naming a collected person (``again``)
    sends them first, and sees that person archived; the state waits for the archives."""
    list_id = config["list_id"]
    consented = {"marketing_consent": True, "consent_changed_at": LATER}
    run_target({**config, "batch_size_rows": 10}, singer_lines([contact(i, **consented) for i in EXISTING]))
    events = _spy(monkeypatch)
    monkeypatch.setattr(EcommerceSync, "busy_until", lambda self: 0.0)
    run_archives = ContactSync._run_archives

    def archives(self: ContactSync, items: list[Any]) -> None:
        if items:
            events.append(("archives", {c.hash for c, _ in items}))
        run_archives(self, items)

    monkeypatch.setattr(ContactSync, "_run_archives", archives)
    disabled = (2, 12, 22)
    # every contact changes (none settled on arrival): windows of 10, the 2nd and 3rd kept
    records = [contact(i, enabled=i not in disabled, first_name=f"Again{i}", **consented) for i in EXISTING]
    if again:  # a 4th window: 12 again, enabled
        records.append(contact(12, first_name="Later", **consented))
    lines = [
        *singer_lines(records, state_every=10),
        *_store_lines("ecommerce_customers", [_customer(i) for i in EXISTING]),
        *_store_lines("ecommerce_orders", [_order(i) for i in EXISTING]),
    ]
    target, states = run_target({**config, "store_id": STORE, "batch_size_rows": 10}, lines)
    streams = target.report.summary()["streams"]

    whats = [what for what, _ in events]
    assert whats.count("archives") == 1
    at = whats.index("archives")
    assert events[at][1] == {subscriber_hash(f"person{i}@{DOMAIN}") for i in disabled}
    if again:  # as the window naming 12 is written, before its lookup, which then finds 12 archived
        assert events[at - 1] == ("contacts", {subscriber_hash(f"person12@{DOMAIN}")})
        assert streams["contacts"]["archived_skipped"] == 1
    else:  # after every contacts window, behind store jobs
        assert at > max(i for i, w in enumerate(whats) if w == "contacts")
        assert whats.index("ecommerce_customers") < at
    for i in disabled:
        assert (member(api, list_id, f"person{i}@{DOMAIN}") or {}).get("status") == "archived", i
    assert streams["contacts"]["disabled_archived"] == len(disabled)
    assert states == [{"n": len(records)}]  # not after the first window: its archive waited


def test_what_is_remembered_of_the_people_kept_and_the_records_held_stays_small() -> None:
    """A no-op re-run keeps every contacts window and holds most store records (their people are not
    known yet when they arrive): at 100,000 Oro customers 196,527 contacts and ~230,000 records. What
    is remembered of them costs ~8 bytes a subscriber hash past a fixed bitmap and ~1 an id (customer
    and record ids: Roaring bitmaps), not the ~90-140 of a Python set (README.md, "Memory as records
    grow"), with the same answers."""
    people = [subscriber_hash(f"person{i}@{DOMAIN}") for i in range(40_000)]
    spool, held = ContactsSpool(), HeldStoreRecords()
    traced: list[int] = []
    tracemalloc.start()
    try:
        for w in range(0, len(people), 5_000):
            spool.push([{"email": "x"}], set(people[w : w + 5_000]))
            traced.append(tracemalloc.get_traced_memory()[0])
        for w in range(0, len(people), 5_000):
            held.hold(
                "ecommerce_orders",
                [({"id": str(1_000_000 + i)}, (str(i), people[i])) for i in range(w, w + 5_000)],
            )
            traced.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    # what the second half of each adds, per contact kept and per record held
    assert (traced[7] - traced[3]) / 20_000 < 15  # a Python set per window: ~140 bytes a contact
    # three Python sets (person, customer, id): ~270; ids as sorted 64-bit ints too: ~44; as bitmaps: ~15
    assert (traced[15] - traced[11]) / 20_000 < 20
    assert all(spool.names(h) for h in people[::997])
    assert not spool.names(subscriber_hash(f"nobody@{DOMAIN}"))
    assert held.holds("ecommerce_orders", "1039999", (None, None))
    assert held.holds("ecommerce_carts", "c1", ("39999", None))
    assert held.holds("ecommerce_carts", "c1", (None, people[12_345]))
    assert not held.holds("ecommerce_orders", "1040000", ("40000", subscriber_hash(f"nobody@{DOMAIN}")))
    # a decimal id is matched as its string, never as another spelling of the same number
    assert not held.holds("ecommerce_orders", "01039999", (None, None))
    assert not held.holds("ecommerce_carts", "c1", ("+39999", None))
    assert sum(len(records) for _, records in held.release(["ecommerce_orders"], 5_000)) == 40_000
    assert not held.holds("ecommerce_orders", "1039999", (None, None))
    while len(spool):
        spool.pop()
    assert not spool.names(people[0])


def test_held_keys_keep_the_answers_of_a_set_of_strings() -> None:
    """Ids that are not canonical decimal numbers stay strings; merges keep every id."""
    from target_mailchimp import readahead

    keys = readahead._Keys()
    added = ["0", "7", "007", "-3", "+3", " 3", "3 ", "x9", "12345678901234567890", "\u0663", "", "17"]
    added += [str(i) for i in range(100, 10_000, 3)]
    for key in added:
        keys.add(key)
    for key in added:
        assert key in keys
    for key in ["00", "3", "1", "101", "1234567890123456789", "\u0664", "70"]:
        assert key not in keys
    assert len(keys) == len(set(added))


class _Record(dict):  # type: ignore[type-arg]
    """A store record that can be watched (``weakref``) through its pickling to the held frames."""


def test_a_released_window_is_let_go_before_the_next_is_read_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """The held records are released window after window (each up to ~10,000 orders as objects):
    the window written is no longer referenced while the next one is read back from disk, so two
    are never in memory at once (they were: the re-run's peak, README.md "Memory as records grow")."""
    from target_mailchimp import readahead

    held = HeldStoreRecords()
    for i in range(6):
        held.hold("ecommerce_orders", [(_Record(id=f"o{i}"), (f"cu{i}", None))])
    written: list[weakref.ref[_Record]] = []
    frames_pop = readahead._Frames.pop

    def pop(self: Any) -> Any:
        assert all(ref() is None for ref in written), "a window written is still held"
        return frames_pop(self)

    class Store:
        def process(self, stream: str, records: list[dict[str, Any]]) -> None:
            written.extend(weakref.ref(r) for r in records)  # type: ignore[arg-type]

    monkeypatch.setattr(readahead._Frames, "pop", pop)
    monkeypatch.setattr(target_module, "ECOMMERCE_WINDOW", 2)
    target = SimpleNamespace(
        _spool=ContactsSpool(), _held=held, _ecommerce=Store(), _releasing=False, _sync=None,
        _emit_deferred_state=lambda: None,
    )  # fmt: skip
    target_module.TargetMailchimp._release_held(target)  # type: ignore[arg-type]
    assert len(written) == 6
    assert len(held) == 0
