"""Consent, identity and erasure from OroCommerce to Mailchimp, one transition per test, each checked
in both systems after a real `meltano run audience-sync` (dev environment: consent in the custom
field `marketing_consent` on customer users).

The tests share one small sandbox and run in file order; each works on people it creates itself.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import random
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_harness import QUICK_BATCHES, Project, project_copy
from oromc_sandbox.testing import running_sandbox
from pipelines import DEV_SANDBOX_OPTIONS, MELTANO, NO_LATENCY_BATCH_POLL_SECONDS, ROOT
from target_mailchimp.ecommerce import EcommerceSync
from target_mailchimp.sync import ContactSync
from target_mailchimp.target import TargetMailchimp

DOMAIN = "consent-e2e.example.org"
_seq = itertools.count(1)


@pytest.fixture(scope="module")
def project(meltano_ready: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    with running_sandbox(customers=10, seed=21, **DEV_SANDBOX_OPTIONS) as sandbox:
        root = project_copy(tmp_path_factory.mktemp("consent-project"), QUICK_BATCHES)
        project = Project(sandbox, tmp_path_factory.mktemp("consent"), root=root)
        project.run("audience-sync")  # the shop's audience as it is before the tests change anything
        yield project


def _customer(project: Project, name: str | None = None) -> str:
    """A seeded customer (account) id, or a new one called ``name``."""
    if name is None:
        return str(project.oro.get("customers", **{"page[size]": 1})["data"][0]["id"])
    created = project.oro.post("customers", {"data": {"type": "customers", "attributes": {"name": name}}})
    return str(created["data"]["id"])


def _new_user(project: Project, consent: bool | None, *, enabled: bool = True, guest: bool = False,
              customer: str | None = None) -> dict[str, Any]:
    n = next(_seq)
    attributes = {"email": f"person{n}@{DOMAIN}", "firstName": "Person", "lastName": f"No{n}",
                  "enabled": enabled, "isGuest": guest, "marketing_consent": consent}
    relationships: dict[str, Any] = {"customer": {"data": {"type": "customers",
                                                           "id": customer or _customer(project)}}}
    if enabled:
        relationships["userRoles"] = {"data": [{"type": "customeruserroles", "id": "2"}]}
    doc = {"data": {"type": "customerusers", "attributes": attributes, "relationships": relationships}}
    data: dict[str, Any] = project.oro.post("customerusers", doc)["data"]
    return data


def _set(project: Project, user: dict[str, Any], **attributes: Any) -> None:
    project.oro.patch(f"customerusers/{user['id']}",
                      {"data": {"type": "customerusers", "id": user["id"], "attributes": attributes}})


def _member(project: Project, email: str) -> dict[str, Any] | None:
    mc = project.mailchimp
    response = mc.session.get(f"{mc.api}/lists/{mc.list_id}/members/{mc.hash(email)}", timeout=30)
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def _oro_user(project: Project, user_id: str) -> dict[str, Any] | None:
    response = project.oro._send("GET", f"customerusers/{user_id}")
    if response.status_code == 404:
        return None
    data: dict[str, Any] = response.json()["data"]
    return data


def _statuses(project: Project) -> dict[str, str]:
    """Every member's status by address, archived members included."""
    mc = project.mailchimp
    out: dict[str, str] = {}
    for status in (None, "archived"):
        params: dict[str, Any] = {"count": 1000, "fields": "members.email_address,members.status"}
        if status:
            params["status"] = status
        for m in mc.get(f"lists/{mc.list_id}/members", **params)["members"]:
            out[m["email_address"].lower()] = m["status"]
    return out


def _sync(project: Project) -> dict[str, Any]:
    result = project.run("audience-sync")
    summary: dict[str, Any] = result.summaries["target-mailchimp"]["streams"].get("contacts", {})
    return summary  # empty when the tap sent no contact at all


def test_new_users_consent_true_false_absent(project: Project) -> None:
    given, declined, unknown = (_new_user(project, c) for c in (True, False, None))
    _sync(project)
    statuses = [_member(project, u["attributes"]["email"])["status"] for u in (given, declined, unknown)]  # type: ignore[index]
    assert statuses == ["subscribed", "unsubscribed", "transactional"]
    for user in (given, declined, unknown):
        member = _member(project, user["attributes"]["email"])
        assert member["merge_fields"]["OROID"] == user["id"]  # type: ignore[index]
        oro = _oro_user(project, user["id"])
        assert oro["attributes"]["marketing_consent"] is user["attributes"]["marketing_consent"]  # type: ignore[index]


def test_disabled_user_is_never_subscribed(project: Project) -> None:
    new_disabled = _new_user(project, True, enabled=False)
    was_subscribed = _new_user(project, True)
    _sync(project)
    assert _member(project, was_subscribed["attributes"]["email"])["status"] == "subscribed"  # type: ignore[index]
    _set(project, was_subscribed, enabled=False)
    summary = _sync(project)
    assert _member(project, new_disabled["attributes"]["email"])["status"] == "transactional"  # type: ignore[index]
    assert _member(project, was_subscribed["attributes"]["email"])["status"] == "archived"  # type: ignore[index]
    assert summary["disabled_archived"] == 1
    assert _oro_user(project, was_subscribed["id"])["attributes"]["enabled"] is False  # type: ignore[index]


def test_guest_follows_the_consent_rules(project: Project) -> None:
    guest = _new_user(project, True, enabled=False, guest=True)  # Oro creates guests disabled
    silent_guest = _new_user(project, None, enabled=False, guest=True)
    _sync(project)
    assert _member(project, guest["attributes"]["email"])["status"] == "subscribed"  # type: ignore[index]
    assert _member(project, silent_guest["attributes"]["email"])["status"] == "transactional"  # type: ignore[index]


def test_opt_out_in_oro_unsubscribes(project: Project) -> None:
    user = _new_user(project, True)
    _sync(project)
    _set(project, user, firstName="Edited")
    _sync(project)  # our own merge-field write moves the member's last_changed
    _set(project, user, marketing_consent=False)
    summary = _sync(project)
    member = _member(project, user["attributes"]["email"])
    assert member["status"] == "unsubscribed"  # type: ignore[index]
    assert member["merge_fields"]["FNAME"] == "Edited"  # type: ignore[index]
    assert summary["opted_out"] == 1
    assert _oro_user(project, user["id"])["attributes"]["marketing_consent"] is False  # type: ignore[index]
    quiet = _sync(project)
    assert quiet.get("consent_changes", 0) == 0  # nothing left to do
    assert quiet.get("updated", 0) == 0


def test_email_change_in_oro_moves_the_member(project: Project) -> None:
    user = _new_user(project, True)
    old = user["attributes"]["email"]
    _sync(project)
    mc = project.mailchimp
    mc.call("POST", f"lists/{mc.list_id}/members/{mc.hash(old)}/tags",
            {"tags": [{"name": "Hand-picked", "status": "active"}]})
    before = _member(project, old)
    new = f"moved.{user['id']}@{DOMAIN}"
    _set(project, user, email=new)
    summary = _sync(project)
    assert summary["email_changes"] == 1
    assert _member(project, old) is None  # one member, not two
    after = _member(project, new)
    assert after is not None
    assert before is not None
    assert after["unique_email_id"] == before["unique_email_id"]
    assert after["status"] == "subscribed"
    assert {t["name"] for t in after["tags"]} == {t["name"] for t in before["tags"]}
    assert "Hand-picked" in {t["name"] for t in after["tags"]}
    assert _oro_user(project, user["id"])["attributes"]["email"] == new  # type: ignore[index]


def test_email_change_onto_another_member_is_a_reported_conflict(project: Project) -> None:
    user = _new_user(project, True)
    _sync(project)
    mc = project.mailchimp
    hand = f"hand.{user['id']}@{DOMAIN}"
    mc.call("POST", f"lists/{mc.list_id}/members", {"email_address": hand, "status": "subscribed"})
    _set(project, user, email=hand)
    summary = _sync(project)
    assert summary["rejected_by_reason"] == {"email_conflict": 1}
    assert _member(project, user["attributes"]["email"])["merge_fields"]["OROID"] == user["id"]  # type: ignore[index]
    hand_member = _member(project, hand)
    assert hand_member["merge_fields"].get("OROID", "") == ""  # type: ignore[index]  # nothing merged
    assert hand_member["status"] == "subscribed"  # type: ignore[index]
    rejects = Path(project.env["TARGET_MAILCHIMP_REJECTS_PATH"]).read_text().splitlines()
    last = json.loads(rejects[-1])
    assert (last["reason"], last["key"], last["field"]) == ("email_conflict", f"customer_user_id={user['id']}", "email")
    assert _oro_user(project, user["id"])["attributes"]["email"] == hand  # type: ignore[index]


def test_deleted_user_and_deleted_account_are_erased_hand_added_member_survives(project: Project) -> None:
    mc = project.mailchimp
    hand = f"by-hand@{DOMAIN}"
    mc.call("POST", f"lists/{mc.list_id}/members", {"email_address": hand, "status": "subscribed"})
    loner = _new_user(project, True)
    account = _customer(project, name="Closing Ltd")
    colleagues = [_new_user(project, True, customer=account), _new_user(project, None, customer=account)]
    _sync(project)
    assert project.oro._send("DELETE", f"customers/{account}").status_code == 403  # users first
    for user in (loner, *colleagues):
        assert project.oro._send("DELETE", f"customerusers/{user['id']}").status_code == 204
    assert project.oro._send("DELETE", f"customers/{account}").status_code == 204
    summary = _sync(project)
    assert summary["erased"] == 3
    for user in (loner, *colleagues):
        member = _member(project, user["attributes"]["email"])
        assert member["status"] == "archived"  # type: ignore[index]
        assert member["merge_fields"]["OROID"] == user["id"]  # type: ignore[index]
        assert _oro_user(project, user["id"]) is None
    assert project.oro._send("GET", f"customers/{account}").status_code == 404
    assert _member(project, hand)["status"] == "subscribed"  # type: ignore[index]  # not ours: untouched
    assert _sync(project).get("erased", 0) == 0  # reported once


def _tap_output(project: Project) -> list[str]:
    """The Singer messages `meltano invoke tap-orocommerce--audience` writes (contacts and store).

    No project lock: the project's system directory is its own (its run files are not shared)."""
    proc = subprocess.run(
        [MELTANO, "invoke", "tap-orocommerce--audience"], cwd=ROOT, env=project.env,
        capture_output=True, text=True, timeout=600, check=True,
    )
    return [line for line in proc.stdout.splitlines() if line.startswith("{")]


class _Lines(io.StringIO):
    def __init__(self, lines: list[str]) -> None:
        super().__init__()
        self._lines = lines

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]
        return (line + "\n" for line in self._lines)


def test_same_input_ten_times_with_random_timing_gives_the_same_statuses(
    meltano_ready: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audience pipeline's input (read once from Oro with Meltano), written ten times into a
    fresh audience with random sink delays, window sizes, connections and retried faults: the
    statuses depend only on the data."""
    rng = random.Random(2024)
    delays = random.Random(7)
    contacts_process, store_process = ContactSync.process, EcommerceSync.process

    def slow_contacts(self: ContactSync, records: list[dict[str, Any]]) -> None:
        time.sleep(delays.uniform(0, 0.05))
        contacts_process(self, records)

    def slow_store(self: EcommerceSync, stream: str, records: list[dict[str, Any]]) -> None:
        time.sleep(delays.uniform(0, 0.05))
        store_process(self, stream, records)

    monkeypatch.setattr(ContactSync, "process", slow_contacts)
    monkeypatch.setattr(EcommerceSync, "process", slow_store)
    outcomes = []
    with running_sandbox(customers=6, seed=33, **DEV_SANDBOX_OPTIONS) as sandbox:
        project = Project(sandbox, tmp_path / "tap")
        seeded = set(_statuses(project))
        lines = _tap_output(project)
        assert any('"stream": "ecommerce_orders"' in line or '"stream":"ecommerce_orders"' in line for line in lines)
        users = project.oro.all("customerusers")
        mc = sandbox.info["mailchimp"]
        for run in range(10):
            sandbox.reset()
            sandbox.set_faults("mailchimp", rate=0.05, kinds=["429", "500", "reset"], seed=rng.randrange(10**6))
            config = {
                "api_key": mc["api_key"], "api_url": sandbox.mailchimp_api_url, "list_id": mc["list_id"],
                "store_id": "sandbox-store", "rejects_path": str(tmp_path / f"rejects{run}.jsonl"),
                "backoff_factor_seconds": 0.02, "max_tries": 10,
                "batch_poll_seconds": NO_LATENCY_BATCH_POLL_SECONDS,  # the sandbox's quick /batches jobs
                "batch_size_rows": rng.choice([2, 5, 20, 500]),
                "max_connections": rng.choice([1, 3, 10]),
            }
            target = TargetMailchimp(config=config)
            with contextlib.redirect_stdout(io.StringIO()):
                target.listen(file_input=_Lines(lines))
            sandbox.set_faults("mailchimp", rate=0)
            outcomes.append(_statuses(project))
    assert all(outcome == outcomes[0] for outcome in outcomes[1:])
    created = 0
    for user in users:  # and they follow the rules
        attributes = user["attributes"]
        email = attributes["email"].lower()
        status = outcomes[0].get(email)
        consent = attributes["marketing_consent"]
        if consent is False:
            assert status not in {"subscribed", "pending"}
        if email in seeded:
            continue
        created += 1
        disabled = not attributes["enabled"] and not attributes["isGuest"]
        expected = (
            "unsubscribed" if consent is False else "transactional" if disabled or consent is None else "subscribed"
        )
        assert status == expected, (attributes, status)
    assert created  # some people were new to the audience


def test_a_new_order_moves_only_its_buyers_purchase_history(project: Project) -> None:
    """Dev environment: ORDERS/SPENT/AOV (number) and FIRSTORDER/LASTORDER (date) merge fields, created
    by target-mailchimp, follow the buyer's Oro orders; ADDRESS (address), BIRTHDAY (birthday),
    REGION, CUSTGROUP and ACCOUNT come from Oro; a quiet sync then writes nothing."""
    mc = project.mailchimp
    buyer = _new_user(project, True)
    _set(project, buyer, birthday="1985-03-07")
    project.oro.post("customeruseraddresses", {"data": {
        "type": "customeruseraddresses",
        "attributes": {"street": "1 Main St", "city": "Springfield", "postalCode": "62701",
                       "firstName": "Person", "lastName": "Buyer", "primary": True},
        "relationships": {"customerUser": {"data": {"type": "customerusers", "id": buyer["id"]}},
                          "country": {"data": {"type": "countries", "id": "US"}},
                          "region": {"data": {"type": "regions", "id": "US-IL"}}},
    }})  # fmt: skip
    _sync(project)
    fields = {f["tag"]: f for f in mc.get(f"lists/{mc.list_id}/merge-fields", count=100)["merge_fields"]}
    typed = ("ORDERS", "SPENT", "AOV", "FIRSTORDER", "LASTORDER", "ADDRESS", "BIRTHDAY")
    assert {t: fields[t]["type"] for t in typed} == {
        "ORDERS": "number", "SPENT": "number", "AOV": "number", "FIRSTORDER": "date", "LASTORDER": "date",
        "ADDRESS": "address", "BIRTHDAY": "birthday"}  # fmt: skip
    merge = _member(project, buyer["attributes"]["email"])["merge_fields"]  # type: ignore[index]
    assert (merge["ORDERS"], merge["SPENT"], merge["FIRSTORDER"], merge["LASTORDER"]) == (0, 0, "", "")
    assert (merge["AOV"], merge["BIRTHDAY"], merge["REGION"]) == (0, "03/07", "US-IL")
    assert {k: merge["ADDRESS"][k] for k in ("addr1", "city", "state", "zip", "country")} == {
        "addr1": "1 Main St", "city": "Springfield", "state": "IL", "zip": "62701", "country": "US"}  # fmt: skip
    account = project.oro.get(f"customers/{buyer['relationships']['customer']['data']['id']}")["data"]
    assert merge["ACCOUNT"] == account["attributes"]["name"]

    before = mc.snapshot()
    order = project.oro.post("orders", {"data": {
        "type": "orders", "attributes": {"currency": "USD", "overriddenShippingCostAmount": "25"},
        "relationships": {"customer": {"data": buyer["relationships"]["customer"]["data"]},
                          "customerUser": {"data": {"type": "customerusers", "id": buyer["id"]}}},
    }})["data"]  # fmt: skip
    summary = _sync(project)
    after = mc.snapshot()
    email = buyer["attributes"]["email"].lower()
    assert {e for e in after if after[e] != before.get(e)} == {email}  # nobody else's member moved
    assert summary.get("updated") == 1
    merge = _member(project, email)["merge_fields"]  # type: ignore[index]
    day = order["attributes"]["createdAt"][:10]  # Mailchimp returns dates as YYYY-MM-DD, any date_format
    assert (merge["ORDERS"], float(merge["SPENT"]), merge["FIRSTORDER"], merge["LASTORDER"]) == (1, 25.0, day, day)
    assert float(merge["AOV"]) == 25.0

    quiet = _sync(project)
    assert quiet.get("updated", 0) == 0
    assert mc.snapshot() == after
