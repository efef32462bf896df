"""Seed data realism and determinism, and persistence across restarts (own sandboxes)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests
from oromc_sandbox.testing import running_sandbox

JSONAPI = "application/vnd.api+json"


def _session(sb: Any) -> requests.Session:
    token = requests.post(sb.oro_base_url + "/oauth2-token", timeout=30, json={
        "grant_type": "client_credentials", "client_id": sb.info["oro"]["client_id"],
        "client_secret": sb.info["oro"]["client_secret"]}).json()["access_token"]
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {token}", "Accept": JSONAPI})
    return session


def _all(sb: Any, session: requests.Session, path: str, **params: Any) -> list[dict[str, Any]]:
    r = session.get(sb.oro_api_url + path, params={"page[size]": -1, **params},
                    headers={"X-Include": "noHateoas"}, timeout=60)
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


@pytest.fixture(scope="module")
def big() -> Any:
    with running_sandbox(customers=1500, seed=3) as sandbox:
        yield sandbox


def test_seeded_customer_users_are_realistic(big: Any) -> None:
    session = _session(big)
    users = _all(big, session, "/customerusers")
    attrs = [u["attributes"] for u in users]
    per_customer = Counter(u["relationships"]["customer"]["data"]["id"] for u in users)
    assert len(per_customer) == 1500
    assert max(per_customer.values()) >= 5
    assert any(a["isGuest"] for a in attrs)
    assert any(not a["enabled"] and not a["isGuest"] for a in attrs)
    assert any(not a["confirmed"] for a in attrs)
    assert any(not (a["firstName"] + a["lastName"]).isascii() for a in attrs)
    assert max(len(a["lastName"]) for a in attrs) > 100
    emails = [a["email"] for a in attrs]
    assert len(set(emails)) == len(emails)
    assert any(u["relationships"]["tags"]["data"] for u in users)


def test_seeded_addresses_have_one_primary_and_phones(big: Any) -> None:
    session = _session(big)
    addresses = _all(big, session, "/customeruseraddresses")
    by_user: dict[str, list[dict[str, Any]]] = {}
    for a in addresses:
        by_user.setdefault(a["relationships"]["customerUser"]["data"]["id"], []).append(a)
    assert max(len(v) for v in by_user.values()) == 3
    for items in by_user.values():
        assert sum(1 for a in items if a["attributes"]["primary"]) == 1
    assert 0.5 < sum(1 for a in addresses if a["attributes"]["phone"]) / len(addresses) < 0.9


def test_seeded_orders_span_two_years_and_some_customers_order_a_lot(big: Any) -> None:
    session = _session(big)
    orders = _all(big, session, "/orders", **{"fields[orders]": "createdAt,customer,lineItems"})
    per_customer = Counter(o["relationships"]["customer"]["data"]["id"] for o in orders)
    assert max(per_customer.values()) >= 10
    years = {o["attributes"]["createdAt"][:4] for o in orders}
    assert len(years) >= 2
    assert all(o["relationships"]["lineItems"]["data"] for o in orders)
    groups = Counter(c["relationships"]["group"]["data"]["id"] if c["relationships"]["group"]["data"] else None
                     for c in _all(big, session, "/customers", **{"fields[customers]": "group"}))
    assert len(groups) >= 5


def test_same_seed_gives_same_data(big: Any) -> None:
    session = _session(big)
    first = [(u["attributes"]["email"], u["attributes"]["lastName"])
             for u in _all(big, session, "/customerusers", **{"filter[id]": "1..50"})]
    with running_sandbox(customers=1500, seed=3) as again:
        second = [(u["attributes"]["email"], u["attributes"]["lastName"])
                  for u in _all(again, _session(again), "/customerusers", **{"filter[id]": "1..50"})]
    assert first == second


def test_data_survives_a_restart_with_data_dir(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "data")
    with running_sandbox(customers=30, seed=9, data_dir=data_dir) as sb:
        session = _session(sb)
        session.headers["Content-Type"] = JSONAPI
        created = session.post(sb.oro_api_url + "/campaigns", timeout=30, json={"data": {
            "type": "campaigns", "attributes": {"name": "Kept", "code": "kept_1"}}})
        assert created.status_code == 201
        patched = session.patch(sb.oro_api_url + "/customers/3", timeout=30, json={"data": {
            "type": "customers", "id": "3", "attributes": {"name": "Persisted Name"}}})
        assert patched.status_code == 200
        assert session.delete(sb.oro_api_url + "/customerusers/2", timeout=30).status_code == 204
        assert sb.control("oro").post("/_sandbox/save").status_code == 200
    with running_sandbox(customers=30, seed=9, data_dir=data_dir) as sb:
        session = _session(sb)
        assert session.get(sb.oro_api_url + "/customers/3", timeout=30).json()["data"]["attributes"]["name"] == (
            "Persisted Name")
        codes = {c["attributes"]["code"] for c in _all(sb, session, "/campaigns")}
        assert "kept_1" in codes
        assert session.get(sb.oro_api_url + "/customerusers/2", timeout=30).status_code == 404
