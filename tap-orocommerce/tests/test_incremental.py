"""Incremental behaviour against the sandbox: exact change sets, contacts, kill and resume."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from oromc_common.oro import OroOAuth2Authenticator, jsonapi_headers
from oromc_sandbox.testing import running_sandbox

from tests.helpers import TapRun, finish_tap, parse_messages, run_tap, start_tap, tap_config

ALL = [
    "customer_users", "customer_user_addresses", "customers", "customer_groups",
    "orders", "order_line_items", "products", "tags", "contacts",
]  # fmt: skip


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    with running_sandbox(customers=8) as sb:
        yield sb


class Oro:
    """Minimal JSON:API client for changing sandbox data the way a user would."""

    def __init__(self, sb: Any) -> None:
        info = sb.info["oro"]
        self.api = sb.oro_base_url + "/admin/api"
        self.session = requests.Session()
        self.session.auth = OroOAuth2Authenticator(
            base_url=sb.oro_base_url,
            client_id=info["client_id"],
            client_secret=info["client_secret"],
        )

    def list(self, rtype: str, **params: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        url: str | None = f"{self.api}/{rtype}"
        query: dict[str, Any] | None = {"page[size]": 500, **params}
        while url:
            r = self.session.get(url, params=query, headers=jsonapi_headers(), timeout=30)
            r.raise_for_status()
            doc = r.json()
            out += doc["data"]
            url, query = doc.get("links", {}).get("next"), None
        return out

    def patch(self, rtype: str, rid: str, attributes: dict[str, Any]) -> None:
        body = {"data": {"type": rtype, "id": str(rid), "attributes": attributes}}
        r = self.session.patch(
            f"{self.api}/{rtype}/{rid}",
            data=json.dumps(body),
            headers=jsonapi_headers(write=True),
            timeout=30,
        )
        assert r.status_code == 200, r.text


def _ids(run: TapRun, stream: str, key: str = "id") -> set[Any]:
    return set(run.ids(stream, key))


def test_incremental_runs_emit_exactly_the_changed_rows(sandbox: Any, tmp_path: Path) -> None:
    oro = Oro(sandbox)
    config = tap_config(sandbox)
    first = run_tap(tmp_path, config, name="first")
    assert first.returncode == 0, first.stderr[-3000:]
    users = oro.list("customerusers")
    assert _ids(first, "customer_users") == {int(u["id"]) for u in users}
    assert _ids(first, "contacts", "customer_user_id") == {int(u["id"]) for u in users}
    for stream in ALL:
        assert first.records.get(stream), f"no records in {stream}"
    assert len(first.ids("customer_users")) == len(users)  # no duplicates in one run

    # no changes: nothing is emitted again (ids at the bookmark are remembered in state)
    second = run_tap(tmp_path, config, state=first.state, name="second")
    assert second.returncode == 0, second.stderr[-3000:]
    assert {s: len(r) for s, r in second.records.items() if r} == {}

    # change 3 customer users, 1 address phone, 1 customer group name
    changed_users = [users[0]["id"], users[3]["id"], users[5]["id"]]
    for uid in changed_users:
        oro.patch("customerusers", uid, {"firstName": f"Changed{uid}"})
    address = oro.list("customeruseraddresses")[2]
    oro.patch("customeruseraddresses", address["id"], {"phone": "+1 555 0100"})
    groups = oro.list("customergroups")
    customers = oro.list("customers")
    group = next(
        g for g in groups
        if any((c["relationships"].get("group") or {}).get("data", {}) == {"type": "customergroups", "id": g["id"]}
               for c in customers)
    )  # fmt: skip
    oro.patch("customergroups", group["id"], {"name": "Renamed group"})

    # Oro stamps have second precision: let the second of the last change end, so the next run can
    # know it has seen every change of that second (else the documented ">=" overlap applies).
    # 2 s, because the server's Date header (the tap's clock) may lag by up to a second.
    time.sleep(2.1)
    third = run_tap(tmp_path, config, state=second.state or first.state, name="third")
    assert third.returncode == 0, third.stderr[-3000:]
    assert _ids(third, "customer_users") == {int(u) for u in changed_users}
    assert _ids(third, "customer_user_addresses") == {int(address["id"])}
    assert _ids(third, "customer_groups") == {int(group["id"])}
    for stream in ("customers", "orders", "order_line_items", "products", "tags"):
        assert not third.records.get(stream), stream

    owner = int(address["relationships"]["customerUser"]["data"]["id"])
    in_group = {
        int(c["id"]) for c in customers
        if ((c["relationships"].get("group") or {}).get("data") or {}).get("id") == group["id"]
    }  # fmt: skip
    group_users = {
        int(u["id"]) for u in users if int(u["relationships"]["customer"]["data"]["id"]) in in_group
    }
    expected_contacts = {int(u) for u in changed_users} | {owner} | group_users
    assert _ids(third, "contacts", "customer_user_id") == expected_contacts
    by_id = {r["customer_user_id"]: r for r in third.records["contacts"]}
    assert by_id[owner]["phone"] == "+1 555 0100" or by_id[owner]["primary_address_id"] != int(
        address["id"]
    )
    for uid in group_users:
        assert by_id[uid]["customer_group_name"] == "Renamed group"
    for uid in changed_users:
        assert by_id[int(uid)]["first_name"] == f"Changed{uid}"

    fourth = run_tap(tmp_path, config, state=third.state, name="fourth")
    assert fourth.returncode == 0, fourth.stderr[-3000:]
    assert {s: len(r) for s, r in fourth.records.items() if r} == {}


def test_killed_run_resumes_without_losing_rows(sandbox: Any, tmp_path: Path) -> None:
    config = tap_config(sandbox, streams=["orders"], page_size=5, state_every_records=5)
    full = run_tap(tmp_path, config, name="full")
    assert full.returncode == 0, full.stderr[-3000:]
    all_ids = _ids(full, "orders")
    assert len(all_ids) > 25

    proc = start_tap(tmp_path, config, name="killed")
    assert proc.stdout is not None
    lines: list[str] = []
    records = 0
    for line in proc.stdout:
        lines.append(line)
        if '"type":"RECORD"' in line.replace(" ", ""):
            records += 1
        if records >= 17:
            break
    proc.send_signal(signal.SIGKILL)  # no chance to write a final state
    proc.wait(timeout=30)
    proc.stdout.close()
    if proc.stderr is not None:
        proc.stderr.close()
    killed = TapRun(proc.returncode)
    parse_messages(lines, killed)
    assert killed.states, "a resumable stream writes STATE while it runs"
    bookmark = killed.state["bookmarks"]["orders"]["replication_key_value"]
    assert bookmark

    resumed = run_tap(tmp_path, config, state=killed.state, name="resumed")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _ids(killed, "orders") | _ids(resumed, "orders") == all_ids
    assert len(resumed.ids("orders")) < len(all_ids)  # it resumed, it did not start over


def test_pages_of_equal_timestamps_are_drained_without_gaps(sandbox: Any, tmp_path: Path) -> None:
    # Line items of one order share updatedAt; with 2 rows per page whole pages are ties.
    oro = Oro(sandbox)
    expected = {int(i["id"]) for i in oro.list("orderlineitems")}
    run = run_tap(
        tmp_path, tap_config(sandbox, streams=["order_line_items"], page_size=2), name="ties"
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert sorted(run.ids("order_line_items")) == sorted(expected)  # each once, none missing
    stamps = [r["updated_at"] for r in run.records["order_line_items"]]
    assert stamps == sorted(stamps)  # emitted in bookmark order (resumable)
    assert len(set(stamps)) < len(stamps)  # the data really has ties


def test_server_side_customer_user_filter_is_used_when_enabled(
    sandbox: Any, tmp_path: Path
) -> None:
    sandbox.set_switches(customeruser_updatedat_filter=True)
    try:
        sandbox.reset_stats()
        run = run_tap(tmp_path, tap_config(sandbox, streams=["customer_users"]), name="server")
        stats = sandbox.stats("oro")
        again = run_tap(
            tmp_path, tap_config(sandbox, streams=["customer_users"]), state=run.state, name="again"
        )
    finally:
        sandbox.set_switches(customeruser_updatedat_filter=False)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "falling back to a scan" not in run.stderr
    assert sorted(run.ids("customer_users")) == sorted(
        int(u["id"]) for u in Oro(sandbox).list("customerusers")
    )
    assert int(stats["by_status"].get("400", 0)) == 0
    assert again.returncode == 0
    assert not again.records.get("customer_users")
    stamps = [r["updated_at"] for r in run.records["customer_users"]]
    assert stamps == sorted(stamps)


def test_rows_changed_while_paging_are_not_skipped(sandbox: Any, tmp_path: Path) -> None:
    # With page[number] offsets, a row updated mid-run moves to the end of the updatedAt order
    # and shifts the next row out of view; the keyset cursor must not lose it.
    oro = Oro(sandbox)
    all_ids = {int(o["id"]) for o in oro.list("orders")}
    proc = start_tap(tmp_path, tap_config(sandbox, streams=["orders"], page_size=2), name="paging")
    assert proc.stdout is not None
    lines: list[str] = []
    while sum('"RECORD"' in ln for ln in lines) < 4:
        lines.append(proc.stdout.readline())
    proc.send_signal(signal.SIGSTOP)  # freeze the tap between pages
    try:
        first = [json.loads(ln)["record"]["id"] for ln in lines if '"RECORD"' in ln]
        for oid in first[:3]:
            oro.patch("orders", str(oid), {"customerNotes": f"changed while paging {oid}"})
    finally:
        proc.send_signal(signal.SIGCONT)
    out, err = finish_tap(proc, tmp_path, "paging")
    run = TapRun(proc.returncode, stderr=err)
    parse_messages(lines + out.splitlines(), run)
    assert run.returncode == 0, err[-3000:]
    assert _ids(run, "orders") == all_ids
    latest = {r["id"]: r for r in run.records["orders"]}
    for oid in first[:3]:
        assert latest[oid]["customer_notes"] == f"changed while paging {oid}"  # re-read, new values


def test_optional_streams_follow_what_the_instance_exposes(sandbox: Any, tmp_path: Path) -> None:
    streams = ["tags", "shopping_lists", "contacts", "customer_users"]
    sandbox.set_switches(tagging=False, shoppinglists=True)
    try:
        run = run_tap(tmp_path, tap_config(sandbox, streams=streams), name="switches")
        carts = {int(c["id"]) for c in Oro(sandbox).list("shoppinglists")}
    finally:
        sandbox.set_switches(tagging=True, shoppinglists=False)
    assert run.returncode == 0, run.stderr[-3000:]
    assert not run.records.get("tags")
    assert "Stream 'tags' will be skipped: tagging is not enabled for customer users" in run.stderr
    assert "Stream 'shopping_lists' will be skipped" not in run.stderr  # exposed: extracted
    assert _ids(run, "shopping_lists") == carts
    assert all(c["tags"] == [] for c in run.records["contacts"])
    assert all(u["tag_ids"] == [] for u in run.records["customer_users"])

    default = run_tap(tmp_path, tap_config(sandbox, streams=streams), name="defaults")
    assert default.returncode == 0, default.stderr[-3000:]
    assert default.records.get("tags")
    assert not default.records.get("shopping_lists")
    assert (
        "Stream 'shopping_lists' will be skipped: the back-office API does not expose"
        in default.stderr
    )
    assert any(c["tags"] for c in default.records["contacts"])


def _purchase_history(orders: list[dict[str, Any]]) -> dict[int, tuple[int, float, str, str]]:
    """Per customer user from the Oro API: (orders, total, first, last createdAt), cancelled and
    non-USD orders left out (the README's definition)."""
    out: dict[int, tuple[int, float, str, str]] = {}
    for order in orders:
        user = order["relationships"]["customerUser"]["data"]
        status = order["relationships"]["internalStatus"]["data"]
        attrs = order["attributes"]
        if not user or (status and status["id"] == "cancelled") or attrs["currency"] != "USD":
            continue
        count, total, first, last = out.get(int(user["id"]), (0, 0.0, "9999", ""))
        created = attrs["createdAt"]
        out[int(user["id"])] = (
            count + 1, total + float(attrs["totalValue"]), min(first, created), max(last, created)
        )  # fmt: skip
    return out


def _last_products(
    orders: list[dict[str, Any]], lines: list[dict[str, Any]]
) -> dict[int, str]:
    """Per customer user: productName of the first line (lowest id) of the latest counted order."""
    latest: dict[int, tuple[str, int]] = {}
    for order in orders:
        user = order["relationships"]["customerUser"]["data"]
        status = order["relationships"]["internalStatus"]["data"]
        if not user or (status and status["id"] == "cancelled") or order["attributes"]["currency"] != "USD":
            continue
        key = (order["attributes"]["createdAt"], int(order["id"]))
        latest[int(user["id"])] = max(latest.get(int(user["id"]), ("", 0)), key)
    buyer_of = {oid: uid for uid, (_, oid) in latest.items()}
    out: dict[int, str] = {}
    for line in sorted(lines, key=lambda item: int(item["id"])):
        for ref in line["relationships"]["orders"]["data"]:
            uid = buyer_of.get(int(ref["id"]))
            if uid is not None and uid not in out and line["attributes"]["productName"]:
                out[uid] = line["attributes"]["productName"]
    return out


def test_contacts_carry_purchase_history_and_a_new_order_re_emits_its_buyer(
    sandbox: Any, tmp_path: Path
) -> None:
    oro = Oro(sandbox)
    config = tap_config(
        sandbox, streams=["contacts"], contact_order_stats=True, contact_last_product=True
    )
    first = run_tap(tmp_path, config, name="first")
    assert first.returncode == 0, first.stderr[-3000:]
    orders = oro.list("orders")
    expected = _purchase_history(orders)
    last_products = _last_products(orders, oro.list("orderlineitems"))
    assert len(expected) >= 2  # the sandbox has buyers, and
    contacts = {r["customer_user_id"]: r for r in first.records["contacts"]}
    assert set(contacts) - set(expected)  # users without orders
    for uid, row in contacts.items():
        count, total, first_at, last_at = expected.get(uid, (0, 0.0, None, None))
        got = (row["orders_count"], row["total_spent"], row["first_order_date"], row["last_order_date"])
        assert got == (count, pytest.approx(total, abs=1e-6), first_at, last_at), uid
        assert row["average_order_value"] == pytest.approx(round(total / count, 2) if count else 0)
        assert row["last_product"] == last_products.get(uid), uid
    assert any(r["last_product"] for r in contacts.values())
    users = {int(u["id"]): u["attributes"] for u in oro.list("customerusers")}
    assert all(r["birthday"] == users[uid]["birthday"] for uid, r in contacts.items())
    assert any(r["birthday"] for r in contacts.values())
    addresses = {int(a["id"]): a for a in oro.list("customeruseraddresses")}
    with_address = [r for r in contacts.values() if r["primary_address_id"] is not None]
    assert with_address
    for row in with_address:
        address = addresses[row["primary_address_id"]]
        assert address["attributes"]["primary"] is True
        assert row["city"] == address["attributes"]["city"]
        assert row["country"] == address["relationships"]["country"]["data"]["id"]
        region = address["relationships"]["region"]["data"]["id"]
        assert row["region"] == region
        assert row["address"] == {
            "addr1": address["attributes"]["street"], "addr2": address["attributes"]["street2"] or "",
            "city": address["attributes"]["city"], "state": region.split("-")[1],
            "zip": address["attributes"]["postalCode"], "country": row["country"],
        }  # fmt: skip

    # a new order (total 25: no lines, shipping cost 25) for a user with orders
    buyer = next(uid for uid in expected if uid in contacts)
    user = next(u for u in oro.list("customerusers") if int(u["id"]) == buyer)
    body = {"data": {"type": "orders", "attributes": {"currency": "USD", "overriddenShippingCostAmount": "25"},
                     "relationships": {
                         "customer": {"data": user["relationships"]["customer"]["data"]},
                         "customerUser": {"data": {"type": "customerusers", "id": str(buyer)}}}}}  # fmt: skip
    r = oro.session.post(f"{oro.api}/orders", data=json.dumps(body),
                         headers=jsonapi_headers(write=True), timeout=30)  # fmt: skip
    assert r.status_code == 201, r.text
    created = r.json()["data"]["attributes"]
    assert float(created["totalValue"]) == 25
    time.sleep(2.1)  # second-precision stamps (see test_incremental_runs_emit_exactly_the_changed_rows)
    second = run_tap(tmp_path, config, state=first.state, name="second")
    assert second.returncode == 0, second.stderr[-3000:]
    assert [r["customer_user_id"] for r in second.records["contacts"]] == [buyer]
    row = second.records["contacts"][0]
    count, total, first_at, _ = expected[buyer]
    assert row["orders_count"] == count + 1
    assert row["total_spent"] == pytest.approx(total + 25, abs=1e-6)
    assert (row["first_order_date"], row["last_order_date"]) == (first_at, created["createdAt"])

    quiet = run_tap(tmp_path, config, state=second.state, name="quiet")
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    assert {s: len(r) for s, r in quiet.records.items() if r} == {}
