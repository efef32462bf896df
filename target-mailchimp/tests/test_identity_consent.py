"""Identity (the source id in a merge field), consent rules, erasure by id and a deterministic outcome,
against the real sandbox over HTTP (in-process target)."""

from __future__ import annotations

import inspect
import json
import threading
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from oromc_common.mailchimp import MailchimpClient, subscriber_hash
from oromc_sandbox.testing import RunningSandbox
from singer_sdk.target_base import Target
from target_mailchimp.contract import ECOMMERCE_SCHEMAS
from target_mailchimp.ecommerce import EcommerceSync
from target_mailchimp.sync import ContactSync
from target_mailchimp.target import TargetMailchimp

from .conftest import DOMAIN, contact, member, run_target, singer_lines, writes

LATER = "2999-01-01T00:00:00+00:00"


def _summary(target: TargetMailchimp) -> dict[str, Any]:
    return target.report.summary()["streams"]["contacts"]


def _hand_added(api: MailchimpClient, list_id: str, email: str, status: str = "subscribed") -> dict[str, Any]:
    return api.post(f"/lists/{list_id}/members", {"email_address": email, "status": status,
                                                  "merge_fields": {"FNAME": "Hand"}}) or {}


def test_identity_field_is_created_and_carries_the_source_id(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    list_id = config["list_id"]
    target, _ = run_target(config, singer_lines([contact(1, marketing_consent=True, consent_changed_at=LATER)]))
    fields = {f["tag"]: f for f in api.paginate(f"/lists/{list_id}/merge-fields", "merge_fields")}
    assert fields["OROID"]["type"] == "text"
    assert fields["OROID"]["public"] is False
    got = member(api, list_id, f"person1@{DOMAIN}")
    assert got is not None
    assert got["merge_fields"]["OROID"] == "1"
    assert got["status"] == "subscribed"
    assert got["timestamp_opt"] == LATER  # the consent's time, as recorded at the source
    assert _summary(target)["created"] == 1


def test_a_public_identity_field_is_hidden_from_the_forms(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    """An OROID field someone created public (on the signup/profile forms, where a subscriber could
    edit it and claim another customer's member) is patched to public=false; a hidden one is left
    alone."""
    list_id = config["list_id"]
    field = {"tag": "OROID", "name": "Oro id", "type": "text", "public": True}
    api.post(f"/lists/{list_id}/merge-fields", field)
    run_target(config, singer_lines([contact(1, marketing_consent=True, consent_changed_at=LATER)]))
    fields = {f["tag"]: f for f in api.paginate(f"/lists/{list_id}/merge-fields", "merge_fields")}
    assert fields["OROID"]["public"] is False
    assert fields["OROID"]["name"] == "Oro id", "the merchant's field, only hidden"
    sb.reset_stats()
    run_target(config, singer_lines([contact(1, marketing_consent=True, consent_changed_at=LATER)]))
    assert not any("merge-fields" in p for p in _writes_by_path(sb)), "already hidden: no write"


def _writes_by_path(sb: RunningSandbox) -> list[str]:
    routes: dict[str, dict[str, int]] = sb.stats("mailchimp")["requests"]
    return [r for r in routes if r.split(" ", 1)[0] in {"POST", "PUT", "PATCH", "DELETE"}]


def test_email_change_moves_the_same_member(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    list_id = config["list_id"]
    run_target(config, singer_lines([contact(1, marketing_consent=True, consent_changed_at=LATER, tags=["VIP"])]))
    before = member(api, list_id, f"person1@{DOMAIN}")
    assert before is not None
    api.post(f"/lists/{list_id}/members/{subscriber_hash(f'person1@{DOMAIN}')}/tags",
             {"tags": [{"name": "Manual", "status": "active"}]})
    new_email = f"renamed1@{DOMAIN}"
    target, _ = run_target(config, singer_lines([contact(1, email=new_email, first_name="Renamed", tags=["VIP"])]))
    summary = _summary(target)
    assert summary["email_changes"] == 1
    assert member(api, list_id, f"person1@{DOMAIN}") is None  # no second member, old address gone
    after = member(api, list_id, new_email)
    assert after is not None
    assert after["unique_email_id"] == before["unique_email_id"]
    assert after["status"] == "subscribed"
    assert after["merge_fields"]["FNAME"] == "Renamed"
    assert after["all_tags"] == sorted([*before["all_tags"], "Manual"])  # tags kept, foreign ones too
    sb.reset_stats()
    target, _ = run_target(config, singer_lines([contact(1, email=new_email, first_name="Renamed", tags=["VIP"])]))
    assert writes(sb) == 0
    assert _summary(target)["unchanged"] == 1


def test_email_change_to_an_existing_member_is_a_conflict(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    list_id = config["list_id"]
    run_target(config, singer_lines([contact(1), contact(2)]))
    _hand_added(api, list_id, f"taken@{DOMAIN}")
    target, _ = run_target(config, singer_lines([contact(1, email=f"person2@{DOMAIN}"),
                                                 contact(2, email=f"taken@{DOMAIN}")]))
    assert target.report.rejected_by_reason("contacts") == {"email_conflict": 2}
    for i in (1, 2):
        got = member(api, list_id, f"person{i}@{DOMAIN}")
        assert got is not None
        assert got["merge_fields"]["OROID"] == str(i)
    assert member(api, list_id, f"taken@{DOMAIN}")["merge_fields"]["FNAME"] == "Hand"  # type: ignore[index]
    rejects = [json.loads(x) for x in Path(config["rejects_path"]).read_text().splitlines()]
    assert {r["reason"] for r in rejects} == {"email_conflict"}
    assert all(r["field"] == "email" and "nothing was merged" in r["detail"] for r in rejects)


def test_hand_added_member_is_linked_and_never_erased_by_someone_else(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    list_id = config["list_id"]
    _hand_added(api, list_id, f"person3@{DOMAIN}")
    _hand_added(api, list_id, f"visitor@{DOMAIN}")
    target, _ = run_target(config, singer_lines([contact(3)]))
    assert _summary(target)["ids_linked"] == 1
    linked = member(api, list_id, f"person3@{DOMAIN}")
    assert linked["merge_fields"]["OROID"] == "3"  # type: ignore[index]
    assert linked["status"] == "subscribed"  # type: ignore[index]  # the person's own choice stays
    # Erase rows carry only the id: the member with that id is archived, nobody else is touched.
    erase = {"customer_user_id": 3, "erase": True, "email": None, "tags": [], "updated_at": LATER}
    unknown = {**erase, "customer_user_id": 99}
    target, _ = run_target(config, singer_lines([erase, unknown]))
    summary = _summary(target)
    assert summary["erased"] == 1
    assert summary["erase_noop"] == 1
    assert member(api, list_id, f"person3@{DOMAIN}")["status"] == "archived"  # type: ignore[index]
    assert member(api, list_id, f"visitor@{DOMAIN}")["status"] == "subscribed"  # type: ignore[index]
    # An erase row naming the address of a member that does not carry the id: untouched.
    target, _ = run_target(config, singer_lines([{**erase, "customer_user_id": 7, "email": f"visitor@{DOMAIN}"}]))
    assert _summary(target)["erase_not_owned"] == 1
    assert member(api, list_id, f"visitor@{DOMAIN}")["status"] == "subscribed"  # type: ignore[index]


def test_opt_out_reaches_a_member_whose_profile_we_just_wrote(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    """Our own merge-field writes move last_changed; the opt-out compares with timestamp_opt."""
    list_id = config["list_id"]
    consented = "2024-03-01T00:00:00+00:00"
    run_target(config, singer_lines([contact(1, marketing_consent=True, consent_changed_at=consented),
                                     contact(2, marketing_consent=True, consent_changed_at=consented)]))
    run_target(config, singer_lines([contact(1, first_name="Edited", marketing_consent=True,
                                             consent_changed_at=consented)]))
    opted_out = "2024-04-01T00:00:00+00:00"  # later than the consent, earlier than our edit
    api.patch(f"/lists/{list_id}/members/{subscriber_hash(f'person2@{DOMAIN}')}",
              {"status": "subscribed", "timestamp_opt": "2024-05-01T00:00:00+00:00"})  # re-opted in
    target, _ = run_target(config, singer_lines([
        contact(1, marketing_consent=False, consent_changed_at=opted_out),
        contact(2, marketing_consent=False, consent_changed_at=opted_out),
    ]))
    assert member(api, list_id, f"person1@{DOMAIN}")["status"] == "unsubscribed"  # type: ignore[index]
    # person 2 opted in again in Mailchimp after the Oro opt-out: the newer choice stays
    assert member(api, list_id, f"person2@{DOMAIN}")["status"] == "subscribed"  # type: ignore[index]
    summary = _summary(target)
    assert summary["opted_out"] == 1
    assert summary["opt_out_older_than_mailchimp_opt_in"] == 1


@pytest.mark.parametrize("policy", ["archive", "unsubscribe", "keep"])
def test_disabled_users_are_never_subscribed(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient, policy: str
) -> None:
    list_id = config["list_id"]
    cfg = {**config, "disabled_user_policy": policy, "status_if_new": "subscribed"}
    run_target(cfg, singer_lines([contact(1, marketing_consent=True, consent_changed_at=LATER)]))
    run_target(cfg, singer_lines([
        contact(1, enabled=False, marketing_consent=True, consent_changed_at=LATER),
        contact(2, enabled=False, marketing_consent=True, consent_changed_at=LATER),  # new
        contact(3, enabled=False, is_guest=True, marketing_consent=True, consent_changed_at=LATER),
    ]))
    expected = {"archive": "archived", "unsubscribe": "unsubscribed", "keep": "subscribed"}[policy]
    assert member(api, list_id, f"person1@{DOMAIN}")["status"] == expected  # type: ignore[index]
    assert member(api, list_id, f"person2@{DOMAIN}")["status"] == "transactional"  # type: ignore[index]
    assert member(api, list_id, f"person3@{DOMAIN}")["status"] == "subscribed"  # type: ignore[index]  # a guest


def test_double_opt_in_and_defaults_for_new_contacts(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    list_id = config["list_id"]
    records = [contact(1, marketing_consent=True, consent_changed_at=LATER), contact(2, marketing_consent=False),
               contact(3)]
    run_target({**config, "double_opt_in": True}, singer_lines(records))
    statuses = [member(api, list_id, f"person{i}@{DOMAIN}")["status"] for i in (1, 2, 3)]  # type: ignore[index]
    assert statuses == ["pending", "unsubscribed", "transactional"]


def _ecommerce_customer(i: int) -> str:
    record = {"id": str(i), "email_address": f"person{i}@{DOMAIN}", "opt_in_status": True,
              "first_name": f"First{i}"}
    return json.dumps({"type": "RECORD", "stream": "ecommerce_customers", "record": record})


@pytest.mark.parametrize("store_first", [True, False])
def test_store_customer_write_cannot_change_the_outcome(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient, store_first: bool
) -> None:
    """The same people through the store and the contacts stream, in either order."""
    cfg = {**config, "store_id": "det-store"}
    people = [contact(1, marketing_consent=True, consent_changed_at=LATER),
              contact(2, marketing_consent=False), contact(3)]
    schema = json.dumps({"type": "SCHEMA", "stream": "ecommerce_customers",
                         "schema": ECOMMERCE_SCHEMAS["ecommerce_customers"], "key_properties": ["id"]})
    store = [schema, *(_ecommerce_customer(i) for i in (1, 2, 3))]
    contacts = singer_lines(people)
    if store_first:  # the store customers exist in Mailchimp before their contacts
        run_target(cfg, store)
        run_target(cfg, contacts)
    else:
        run_target(cfg, contacts)
        run_target(cfg, store)
    statuses = [member(api, config["list_id"], f"person{i}@{DOMAIN}")["status"] for i in (1, 2, 3)]  # type: ignore[index]
    assert statuses == ["subscribed", "unsubscribed", "transactional"]


def test_contacts_drain_before_ecommerce_pinned_to_the_sdk(
    sb: RunningSandbox, config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """target.py orders the drain in ``drain_sinks`` (oromc_common.sdk_seams, over the SDK's private
    ``Target._drain_all``): check that the SDK still drains through it, and that a window's contacts
    are written before its store records."""
    assert version("singer-sdk").startswith("0.54."), "re-check oromc_common.sdk_seams.SeamTarget"
    assert "self._drain_all(self._sinks_active.values(), self.max_parallelism)" in inspect.getsource(
        Target.drain_all
    )
    events: list[tuple[str, float]] = []
    lock = threading.Lock()
    contacts_process, store_process = ContactSync.process, EcommerceSync.process

    def slow_contacts(self: ContactSync, records: list[dict[str, Any]]) -> None:
        time.sleep(0.5)  # were the sinks drained in parallel, the store would finish first
        contacts_process(self, records)
        with lock:
            events.append(("contacts", time.monotonic()))

    def store(self: EcommerceSync, stream: str, records: list[dict[str, Any]]) -> None:
        with lock:
            events.append(("store-start", time.monotonic()))
        store_process(self, stream, records)

    monkeypatch.setattr(ContactSync, "process", slow_contacts)
    monkeypatch.setattr(EcommerceSync, "process", store)
    schema = json.dumps({"type": "SCHEMA", "stream": "ecommerce_customers",
                         "schema": ECOMMERCE_SCHEMAS["ecommerce_customers"], "key_properties": ["id"]})
    lines = [*singer_lines([contact(1)])[:-1], schema, _ecommerce_customer(1)]
    run_target({**config, "store_id": "order-store"}, lines)
    assert [name for name, _ in events] == ["contacts", "store-start"]
