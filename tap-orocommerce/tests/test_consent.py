"""Marketing consent and deletions in ``contacts``, against the sandbox's two consent sources."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from oromc_common.idsets import BitMap, decode, encode
from oromc_sandbox.testing import OroTestClient, running_sandbox
from tap_orocommerce.consent import AcceptanceConsent

from tests.helpers import TapRun, run_tap, tap_config

FIELD = "marketing_consent"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    with running_sandbox(customers=8, seed=5) as sb:
        yield sb


class Oro(OroTestClient):
    """Changes made in Oro the way an admin (or target-orocommerce) makes them."""

    def send(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        r = self.request(method, path, body=body, params=params or None)
        assert r.status_code < 300, r.text
        return r.json() if r.content else None

    def users(self) -> dict[int, dict[str, Any]]:
        return {int(u["id"]): u for u in self.send("GET", "customerusers", **{"page[size]": -1})["data"]}

    def set_field(self, uid: int, value: bool | None, **attrs: Any) -> dict[str, Any]:
        body = {"data": {"type": "customerusers", "id": str(uid), "attributes": {FIELD: value, **attrs}}}
        data: dict[str, Any] = self.send("PATCH", f"customerusers/{uid}", body)["data"]
        return data

    def acceptance(self, uid: int) -> dict[str, Any] | None:
        rows = self.send("GET", "consentacceptances",
                         **{"filter[customerUser]": str(uid), "filter[consent]": "2"})["data"]
        return rows[0] if rows else None

    def accept(self, uid: int) -> dict[str, Any]:
        body = {"data": {"type": "consentacceptances", "relationships": {
            "customerUser": {"data": {"type": "customerusers", "id": str(uid)}},
            "consent": {"data": {"type": "consents", "id": "2"}}}}}
        data: dict[str, Any] = self.send("POST", "consentacceptances", body)["data"]
        return data


def _contacts(run: TapRun) -> dict[int, dict[str, Any]]:
    assert run.returncode == 0, run.stderr[-3000:]
    return {r["customer_user_id"]: r for r in run.records.get("contacts", [])}


def _config(sb: Any, **overrides: Any) -> dict[str, Any]:
    return tap_config(sb, streams=["contacts"], page_size=50, **overrides)


def test_field_source_values_changes_and_quiet_rerun(sandbox: Any, tmp_path: Path) -> None:
    sandbox.set_switches(consent_source="customer_user_field")
    oro = Oro(sandbox)
    config = _config(sandbox, consent_source="customer_user_field")
    run = run_tap(tmp_path, config, name="f1")
    first = _contacts(run)
    users = oro.users()
    assert set(first) == set(users)
    for uid, user in users.items():
        value = user["attributes"][FIELD]
        assert first[uid]["marketing_consent"] is value
        expected = user["attributes"]["updatedAt"] if value is not None else None
        assert first[uid]["consent_changed_at"] == expected
    assert {r["marketing_consent"] for r in first.values()} == {True, False, None}
    state = run.state

    sandbox.advance_clock(5)
    uid = next(u for u, r in first.items() if r["marketing_consent"] is True)
    changed = oro.set_field(uid, False)  # an opt-out recorded in Oro
    # the change's second has passed when the next run starts: a change in the very second a run
    # starts is read again by the run after it (the documented ">=" overlap), not a quiet rerun
    sandbox.advance_clock(2)
    second = run_tap(tmp_path, config, state=state, name="f2")
    rows = _contacts(second)
    assert set(rows) == {uid}
    assert rows[uid]["marketing_consent"] is False
    assert rows[uid]["consent_changed_at"] == changed["attributes"]["updatedAt"]
    assert _contacts(run_tap(tmp_path, config, state=second.state, name="f3")) == {}


def test_acceptance_source_accept_withdraw_reaccept(sandbox: Any, tmp_path: Path) -> None:
    sandbox.set_switches(consent_source="consent_acceptances")
    oro = Oro(sandbox)
    config = _config(sandbox, consent_source="consent_acceptances")
    run = run_tap(tmp_path, config, name="a1")
    first = _contacts(run)
    for uid in first:
        acceptance = oro.acceptance(uid)
        if acceptance is None:
            assert (first[uid]["marketing_consent"], first[uid]["consent_changed_at"]) == (None, None)
        else:
            assert first[uid]["marketing_consent"] is True
            assert first[uid]["consent_changed_at"] == acceptance["attributes"]["createdAt"]
    accepted = [u for u, r in first.items() if r["marketing_consent"]]
    assert accepted

    # The person declines: Oro deletes the acceptance (and does not touch the user).
    uid = accepted[0]
    acceptance = oro.acceptance(uid)
    assert acceptance is not None
    sandbox.advance_clock(5)
    oro.send("DELETE", f"consentacceptances/{acceptance['id']}")
    run = run_tap(tmp_path, config, state=run.state, name="a2")
    rows = _contacts(run)
    assert set(rows) == {uid}
    withdrawn_at = rows[uid]["consent_changed_at"]
    assert rows[uid]["marketing_consent"] is False
    assert withdrawn_at > acceptance["attributes"]["createdAt"]

    # An unrelated change later: still false, with the same withdrawal time.
    sandbox.advance_clock(5)
    oro.send("PATCH", f"customerusers/{uid}", {"data": {"type": "customerusers", "id": str(uid),
                                                        "attributes": {"firstName": "Renamed"}}})
    run = run_tap(tmp_path, config, state=run.state, name="a3")
    rows = _contacts(run)
    assert rows[uid]["marketing_consent"] is False
    assert rows[uid]["consent_changed_at"] == withdrawn_at

    # Accepting again: true, at the new acceptance's time.
    sandbox.advance_clock(5)
    created = oro.accept(uid)
    run = run_tap(tmp_path, config, state=run.state, name="a4")
    rows = _contacts(run)
    assert rows[uid]["marketing_consent"] is True
    assert rows[uid]["consent_changed_at"] == created["attributes"]["createdAt"]
    sandbox.set_switches(consent_source="none")


def test_deleted_users_and_accounts_become_erase_rows_once(sandbox: Any, tmp_path: Path) -> None:
    sandbox.set_switches(consent_source="none")
    oro = Oro(sandbox)
    config = _config(sandbox)
    run = run_tap(tmp_path, config, name="d1")
    first = _contacts(run)
    assert all(r["marketing_consent"] is None and r["erase"] is False for r in first.values())
    users = oro.users()
    by_customer: dict[str, list[int]] = {}
    for uid, user in users.items():
        by_customer.setdefault(user["relationships"]["customer"]["data"]["id"], []).append(uid)
    orders = oro.send("GET", "orders", **{"page[size]": -1, "fields[orders]": "customer"})["data"]
    with_orders = {o["relationships"]["customer"]["data"]["id"] for o in orders}
    account = next(c for c in by_customer if c not in with_orders and len(by_customer[c]) >= 1)
    single = next(u for c, ids in by_customer.items() if c != account for u in ids)
    oro.send("DELETE", f"customerusers/{single}")
    for uid in by_customer[account]:  # Oro refuses to delete an account that still has users
        oro.send("DELETE", f"customerusers/{uid}")
    oro.send("DELETE", f"customers/{account}")
    gone = {single, *by_customer[account]}

    run = run_tap(tmp_path, config, state=run.state, name="d2")
    rows = _contacts(run)
    assert set(rows) == gone
    for uid in gone:
        assert rows[uid]["erase"] is True
        assert rows[uid]["email"] is None
        assert rows[uid]["updated_at"]
    assert _contacts(run_tap(tmp_path, config, state=run.state, name="d3")) == {}


def test_deletion_check_never_and_ids_never_emitted(sandbox: Any, tmp_path: Path) -> None:
    oro = Oro(sandbox)
    users = oro.users()
    stamps = sorted(r["updated_at"] for r in _contacts(run_tap(tmp_path, _config(sandbox), name="n0")).values())
    cut = stamps[len(stamps) // 2]
    config = _config(sandbox, start_date=cut)
    run = run_tap(tmp_path, config, name="n1")
    emitted = set(_contacts(run))
    never_emitted = next(u for u in users if u not in emitted)
    oro.send("DELETE", f"customerusers/{never_emitted}")
    after = run_tap(tmp_path, config, state=run.state, name="n2")
    assert _contacts(after) == {}  # only ids the tap emitted before are reported

    victim = next(iter(emitted))
    oro.send("DELETE", f"customerusers/{victim}")
    quiet = run_tap(tmp_path, {**config, "deletion_check": "never"}, state=after.state, name="n3")
    assert _contacts(quiet) == {}
    reported = run_tap(tmp_path, config, state=quiet.state, name="n4")
    assert set(_contacts(reported)) == {victim}


@pytest.mark.parametrize(
    ("switch", "overrides", "setting"),
    [
        ("none", {"consent_source": "customer_user_field"}, "consent_field"),
        ("customer_user_field", {"consent_source": "customer_user_field", "consent_field": "optIn"},
         "consent_field"),
        ("none", {"consent_source": "consent_acceptances"}, "consent_acceptance_resource"),
        ("consent_acceptances", {"consent_source": "consent_acceptances", "consent_name": "Newsletter"},
         "consent_name"),
    ],
)
def test_missing_consent_source_fails_naming_the_setting(
    sandbox: Any, tmp_path: Path, switch: str, overrides: dict[str, Any], setting: str
) -> None:
    sandbox.set_switches(consent_source=switch)
    try:
        run = run_tap(tmp_path, _config(sandbox, **overrides), name="bad")
    finally:
        sandbox.set_switches(consent_source="none")
    assert run.returncode != 0
    assert f"Setting '{setting}'" in run.stderr
    assert not run.records.get("contacts")


def test_withdrawal_stamps_are_bounded_by_folding_into_the_later_one() -> None:
    reader = AcceptanceConsent("consentacceptances", "Email subscription")
    reader.consent_id = "2"
    saved = {"consent_id": "2", "accepted": encode(BitMap()),
             "withdrawn": {f"2026-01-{d:02d}T00:00:00Z": encode(BitMap([d])) for d in range(1, 31)}}
    saved["withdrawn"].update({f"2026-02-{d:02d}T00:00:00Z": encode(BitMap([100 + d])) for d in range(1, 29)})
    saved["withdrawn"].update({f"2026-03-{d:02d}T00:00:00Z": encode(BitMap([200 + d])) for d in range(1, 11)})
    reader.start({"consent": saved})
    state: dict[str, Any] = {}
    reader.finish(state, BitMap(range(1, 300)))
    kept = state["consent"]["withdrawn"]
    assert len(kept) == 64
    oldest = min(kept)
    assert decode(kept[oldest], "t") == BitMap(range(1, 6))  # five oldest folded into the fifth's time
    assert oldest == "2026-01-05T00:00:00Z"  # a later time: the conservative side for an opt-out
