"""Marketing consent in the Oro sandbox: the two customizations behind ``consent_source``.

``customer_user_field``: a boolean custom field ``marketing_consent`` created in Entity Management
(exposed by Oro's API as a plain attribute, written with PATCH, moving ``updatedAt``; not filterable).
``consent_acceptances``: OroConsentBundle's Consent / ConsentAcceptance exposed by an api.yml
(``consents`` read-only, ``consentacceptances`` create/delete, ``customerusers.acceptedConsents``).
Also: a customer (account) that still has users cannot be deleted (Oro's CustomerAssignHelper).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from oromc_sandbox.oro import schema

FIELD = "marketing_consent"


@pytest.fixture
def source(sb: Any) -> Iterator[Any]:
    """Set ``consent_source`` for one test; back to stock Oro afterwards."""

    def use(value: str) -> None:
        sb.set_switches(consent_source=value)

    yield use
    sb.set_switches(consent_source="none")


def _acceptance(user: str, consent: str = "2") -> dict[str, Any]:
    return {"data": {"type": "consentacceptances", "relationships": {
        "customerUser": {"data": {"type": "customerusers", "id": user}},
        "consent": {"data": {"type": "consents", "id": consent}}}}}


def test_stock_oro_has_no_consent_field_nor_resources(api: Any, source: Any) -> None:
    source("none")
    attrs = api.get("/customerusers/1").json()["data"]["attributes"]
    assert FIELD not in attrs
    assert "acceptedConsents" not in api.get("/customerusers/1").json()["data"]["relationships"]
    for resource in ("consents", "consentacceptances"):
        r = api.get(f"/{resource}")
        assert r.status_code == 404
        assert r.json()["errors"][0]["title"] == "resource not accessible exception"
    r = api.patch("/customerusers/1", {"data": {"type": "customerusers", "id": "1", "attributes": {FIELD: True}}})
    assert r.status_code == 400
    assert r.json()["errors"][0]["title"] == "extra fields constraint"


def test_seeded_consent_mix_true_false_and_never_recorded(api: Any, source: Any) -> None:
    source("customer_user_field")
    users = api.get("/customerusers", {"page[size]": -1}).json()["data"]
    values = [u["attributes"][FIELD] for u in users]
    assert {True, False, None} <= set(values)
    guests = [u for u in users if u["attributes"]["isGuest"]]
    disabled = [u for u in users if not u["attributes"]["enabled"] and not u["attributes"]["isGuest"]]
    assert guests
    assert disabled
    assert {u["attributes"][FIELD] for u in guests} & {True}  # guests follow the same mix


def test_consent_field_patch_moves_updatedat_and_null_clears(sb: Any, api: Any, source: Any,
                                                             new_user: Any) -> None:
    source("customer_user_field")
    user = new_user()
    assert user["attributes"][FIELD] is None  # a new user has no recorded consent
    before = user["attributes"]["updatedAt"]
    sb.advance_clock(5)
    doc = {"data": {"type": "customerusers", "id": user["id"], "attributes": {FIELD: False}}}
    r = api.patch(f"/customerusers/{user['id']}", doc)
    assert r.status_code == 200, r.text
    after = r.json()["data"]["attributes"]
    assert after[FIELD] is False
    assert after["updatedAt"] > before  # CustomerUser::preUpdate: any changed column moves it
    doc["data"]["attributes"][FIELD] = None
    assert api.patch(f"/customerusers/{user['id']}", doc).json()["data"]["attributes"][FIELD] is None
    doc["data"]["attributes"][FIELD] = "yes"
    r = api.patch(f"/customerusers/{user['id']}", doc)
    assert r.status_code == 400
    assert r.json()["errors"][0]["source"]["pointer"] == f"/data/attributes/{FIELD}"


def test_consent_field_is_not_filterable(api: Any, source: Any) -> None:
    source("customer_user_field")
    r = api.get("/customerusers", {f"filter[{FIELD}]": "true"})
    assert r.status_code == 400
    assert r.json()["errors"][0]["detail"] == "The filter is not supported."


def test_consents_and_their_names(api: Any, source: Any) -> None:
    source("consent_acceptances")
    doc = api.get("/consents", {"include": "names"}).json()
    names = {i["id"]: i["attributes"]["string"] for i in doc["included"]}
    by_name = {names[c["relationships"]["names"]["data"][0]["id"]]: c for c in doc["data"]}
    assert by_name["Email subscription"]["attributes"]["mandatory"] is False
    assert by_name["Terms and Conditions"]["attributes"]["mandatory"] is True
    assert api.post("/consents", {"data": {"type": "consents"}}).status_code == 405


def test_acceptances_list_include_and_filters(api: Any, source: Any) -> None:
    source("consent_acceptances")
    users = api.get("/customerusers", {"page[size]": 20, "include": "acceptedConsents",
                                       "fields[consentacceptances]": "consent,createdAt"}).json()
    included = {i["id"]: i for i in users["included"]}
    marketing = [u for u in users["data"]
                 if any(included[a["id"]]["relationships"]["consent"]["data"]["id"] == "2"
                        for a in u["relationships"]["acceptedConsents"]["data"])]
    assert marketing
    uid = marketing[0]["id"]
    rows = api.get("/consentacceptances", {"filter[customerUser]": uid, "filter[consent]": "2"}).json()["data"]
    assert len(rows) == 1
    assert rows[0]["attributes"]["createdAt"]
    r = api.get("/consentacceptances", {"filter[createdAt][gte]": "2000-01-01T00:00:00Z", "sort": "-createdAt",
                                        "page[size]": 5})
    assert r.status_code == 200
    stamps = [a["attributes"]["createdAt"] for a in r.json()["data"]]
    assert stamps == sorted(stamps, reverse=True)


def test_accept_then_decline_deletes_the_acceptance(sb: Any, api: Any, source: Any, new_user: Any) -> None:
    source("consent_acceptances")
    user = new_user()
    before = api.get(f"/customerusers/{user['id']}").json()["data"]["attributes"]["updatedAt"]
    sb.advance_clock(5)
    r = api.post("/consentacceptances", _acceptance(user["id"]))
    assert r.status_code == 201, r.text
    created = r.json()["data"]
    assert created["attributes"]["createdAt"] > before
    again = api.post("/consentacceptances", _acceptance(user["id"]))
    assert again.status_code == 409
    assert again.json()["errors"][0] == {"status": "409", "title": "conflict constraint",
                                         "detail": "The entity already exists."}
    rel = api.get(f"/customerusers/{user['id']}/relationships/acceptedConsents").json()["data"]
    assert rel == [{"type": "consentacceptances", "id": created["id"]}]
    # the inverse side is read-only; an acceptance is never updated; accepting does not touch the user
    assert api.post(f"/customerusers/{user['id']}/relationships/acceptedConsents",
                    {"data": []}).status_code == 405
    assert api.patch(f"/consentacceptances/{created['id']}",
                     {"data": {"type": "consentacceptances", "id": created["id"]}}).status_code == 405
    after = api.get(f"/customerusers/{user['id']}").json()["data"]["attributes"]["updatedAt"]
    assert after == before
    # declining = deleting the acceptance; nothing of it remains
    assert api.delete(f"/consentacceptances/{created['id']}").status_code == 204
    assert api.get(f"/consentacceptances/{created['id']}").status_code == 404
    assert api.get(f"/customerusers/{user['id']}/relationships/acceptedConsents").json()["data"] == []


def test_acceptance_validation(api: Any, source: Any, new_user: Any) -> None:
    source("consent_acceptances")
    r = api.post("/consentacceptances", {"data": {"type": "consentacceptances"}})
    assert r.status_code == 400
    pointers = {e["source"]["pointer"] for e in r.json()["errors"]}
    assert pointers == {"/data/relationships/customerUser/data", "/data/relationships/consent/data"}
    r = api.post("/consentacceptances", _acceptance(new_user()["id"], consent="99"))
    assert r.status_code == 400
    assert r.json()["errors"][0]["detail"] == "The entity does not exist."


def test_acceptances_follow_customer_user_permissions(api: Any, make_api: Any, source: Any,
                                                      new_user: Any) -> None:
    source("consent_acceptances")
    client = {"client_id": f"ro-{time.time_ns()}", "client_secret": "s3cret",
              "denied": {"customerusers": ["edit"]}}
    assert api.session.post(api.sb.oro_base_url + "/_sandbox/oro/clients", json=client, timeout=30).ok
    readonly = make_api(client["client_id"], client["client_secret"])
    assert readonly.get("/consentacceptances").status_code == 200
    r = readonly.post("/consentacceptances", _acceptance(new_user()["id"]))
    assert r.status_code == 403
    assert r.json()["errors"][0]["title"] == "access denied exception"


def test_deleting_a_user_deletes_its_acceptances(api: Any, source: Any, new_user: Any) -> None:
    source("consent_acceptances")
    user = new_user()
    aid = api.post("/consentacceptances", _acceptance(user["id"])).json()["data"]["id"]
    assert api.delete(f"/customerusers/{user['id']}").status_code == 204
    assert api.get(f"/consentacceptances/{aid}").status_code == 404


def test_customer_with_users_cannot_be_deleted_until_they_are(api: Any) -> None:
    created = api.post("/customers", {"data": {"type": "customers", "attributes": {"name": "To close"}}})
    cid = created.json()["data"]["id"]
    body = {"data": {"type": "customerusers", "attributes": {
        "email": f"closing.{time.time_ns()}@example.com", "firstName": "A", "lastName": "B", "enabled": False},
        "relationships": {"customer": {"data": {"type": "customers", "id": cid}}}}}
    uid = api.post("/customerusers", body).json()["data"]["id"]
    r = api.delete(f"/customers/{cid}")
    assert r.status_code == 403
    assert r.json()["errors"][0] == {
        "status": "403", "title": "access denied exception",
        "detail": "The delete operation is forbidden. Reason: has associations to other entities."}
    r = api.delete("/customers", params={"filter[id]": cid})
    assert r.status_code == 403
    assert api.get(f"/customerusers/{uid}").status_code == 200  # nothing was deleted
    assert api.delete(f"/customerusers/{uid}").status_code == 204
    assert api.delete(f"/customers/{cid}").status_code == 204
    assert api.get(f"/customers/{cid}").status_code == 404


def test_live_switch_rejects_unknown_source(sb: Any) -> None:
    r = sb.control("oro").post("/_sandbox/config", json={"consent_source": "cookies"})
    assert r.status_code == 400
    assert sb.control("oro").get("/_sandbox/config").json()["consent_source"] == "none"


def test_readme_api_yml_describes_what_the_sandbox_serves() -> None:
    """The customization documented in the Oro sandbox README matches the resources served."""
    readme = (Path(schema.__file__).parent / "README.md").read_text()
    block = readme.split("```yaml\n", 1)[1].split("```", 1)[0]
    entities = yaml.safe_load(block)["api"]["entities"]
    acceptance = entities["Oro\\Bundle\\ConsentBundle\\Entity\\ConsentAcceptance"]
    served = schema.RESOURCES["consentacceptances"]
    disabled = {name for name, cfg in acceptance["actions"].items() if cfg is False}
    assert set(served.actions) == set(schema.ACTIONS) - disabled
    assert "createdAt" in acceptance["filters"]["fields"]
    assert "createdAt" in served.filters
    assert "createdAt" in acceptance["sorters"]["fields"]
    assert "createdAt" in served.sorters
    assert {a["acl_resource"] for n, a in acceptance["actions"].items() if isinstance(a, dict)} == {
        "oro_customer_customer_user_view", "oro_customer_customer_user_update"}
    consent = entities["Oro\\Bundle\\ConsentBundle\\Entity\\Consent"]
    assert all(v is False for v in consent["actions"].values())
    assert schema.RESOURCES["consents"].actions == schema.READ_ONLY
    assert consent["fields"]["acceptances"] == {"exclude": True}
    assert schema.RESOURCES["consents"].rel("acceptances") is None
    user_sub = entities["Oro\\Bundle\\CustomerBundle\\Entity\\CustomerUser"]["subresources"]
    assert set(user_sub["acceptedConsents"]["actions"].values()) == {False}
    rel = schema.RESOURCES["customerusers"].rel("acceptedConsents")
    assert rel is not None
    assert rel.ro
