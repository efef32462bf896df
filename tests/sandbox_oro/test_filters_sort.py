"""Filters and sorting: per-resource whitelists and exact 400 errors (§3.3, §3.4, §5; checklist 4)."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def _all(api: Any, path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = api.get(path, params={"page[size]": -1, **(params or {})}).json()["data"]
    return data


def test_customerusers_reject_updatedat_filter_by_default(api: Any) -> None:
    r = api.get("/customerusers", params={"filter[updatedAt][gte]": "2024-01-01T00:00:00Z"})
    assert r.status_code == 400
    assert r.json() == {"errors": [{"status": "400", "title": "filter constraint",
                                    "detail": "The filter is not supported.",
                                    "source": {"parameter": "filter[updatedAt][gte]"}}]}


def test_customerusers_reject_sort_by_updatedat_by_default(api: Any) -> None:
    r = api.get("/customerusers", params={"sort": "updatedAt,id"})
    assert r.status_code == 400
    assert r.json() == {"errors": [{"status": "400", "title": "sort constraint",
                                    "detail": 'Sorting by "updatedAt" field is not supported.',
                                    "source": {"parameter": "sort"}}]}


def test_switch_enables_customeruser_updatedat_filter_and_sort(sb: Any, api: Any) -> None:
    sb.set_switches(customeruser_updatedat_filter=True)
    try:
        everything = _all(api, "/customerusers")
        stamps = sorted(u["attributes"]["updatedAt"] for u in everything)
        pivot = stamps[len(stamps) // 2]
        r = api.get("/customerusers", params={"filter[updatedAt][gte]": pivot, "sort": "updatedAt,id",
                                              "page[size]": -1})
        assert r.status_code == 200
        got = [(u["attributes"]["updatedAt"], int(u["id"])) for u in r.json()["data"]]
        expected = sorted((u["attributes"]["updatedAt"], int(u["id"])) for u in everything
                          if u["attributes"]["updatedAt"] >= pivot)
        assert got == expected
    finally:
        sb.set_switches(customeruser_updatedat_filter=False)
    assert api.get("/customerusers", params={"sort": "updatedAt"}).status_code == 400


def test_customers_filter_updatedat_gte(api: Any) -> None:
    everything = _all(api, "/customers")
    pivot = sorted(c["attributes"]["updatedAt"] for c in everything)[len(everything) // 3]
    got = _all(api, "/customers", {"filter[updatedAt][gte]": pivot, "sort": "updatedAt,id"})
    assert [c["id"] for c in got] == [c["id"] for c in sorted(
        (c for c in everything if c["attributes"]["updatedAt"] >= pivot),
        key=lambda c: (c["attributes"]["updatedAt"], int(c["id"])))]


def test_datetime_filter_gt_lt_and_offsets(api: Any) -> None:
    everything = _all(api, "/orders")
    pivot = sorted(o["attributes"]["createdAt"] for o in everything)[len(everything) // 2]
    later = _all(api, "/orders", {"filter[createdAt][gt]": pivot})
    assert all(o["attributes"]["createdAt"] > pivot for o in later)
    assert len(later) == sum(1 for o in everything if o["attributes"]["createdAt"] > pivot)
    as_offset = datetime.fromisoformat(pivot.replace("Z", "+00:00")).astimezone().isoformat()
    r = api.get("/orders", params={"filter[createdAt][gt]": as_offset, "page[size]": -1})
    assert [o["id"] for o in r.json()["data"]] == [o["id"] for o in later]


def test_date_only_eq_covers_the_whole_day(api: Any) -> None:
    everything = _all(api, "/orders")
    day = everything[0]["attributes"]["createdAt"][:10]
    got = _all(api, "/orders", {"filter[createdAt]": day})
    assert {o["id"] for o in got} == {o["id"] for o in everything if o["attributes"]["createdAt"].startswith(day)}


def test_id_list_range_and_comparison(api: Any) -> None:
    assert [c["id"] for c in _all(api, "/customers", {"filter[id]": "3,1,5"})] == ["1", "3", "5"]
    assert [c["id"] for c in _all(api, "/customers", {"filter[id]": "2..4"})] == ["2", "3", "4"]
    r = api.get("/customers", params=[("filter[id][gt]", "57"), ("filter[id][lte]", "60")])
    assert [c["id"] for c in r.json()["data"]] == ["58", "59", "60"]
    assert "1" not in {c["id"] for c in _all(api, "/customers", {"filter[id][neq]": "1"})}


def test_association_filter(api: Any) -> None:
    users = _all(api, "/customerusers", {"filter[customer]": "2"})
    assert users
    assert all(u["relationships"]["customer"]["data"]["id"] == "2" for u in users)


def test_email_filter_is_exact(api: Any) -> None:
    user = api.get("/customerusers/3").json()["data"]
    email = user["attributes"]["email"]
    assert [u["id"] for u in _all(api, "/customerusers", {"filter[email]": email})] == ["3"]
    assert _all(api, "/customerusers", {"filter[email]": email.upper()}) == []


def test_exists_operator(api: Any) -> None:
    with_parent = _all(api, "/customers", {"filter[parent][exists]": "true"})
    without = _all(api, "/customers", {"filter[parent][exists]": "false"})
    assert all(c["relationships"]["parent"]["data"] is not None for c in with_parent)
    assert all(c["relationships"]["parent"]["data"] is None for c in without)
    assert len(with_parent) + len(without) == len(_all(api, "/customers"))


def test_unknown_filter_is_400(api: Any) -> None:
    r = api.get("/customers", params={"filter[nosuch]": "1"})
    assert r.status_code == 400
    assert r.json()["errors"][0] == {"status": "400", "title": "filter constraint",
                                     "detail": "The filter is not supported.",
                                     "source": {"parameter": "filter[nosuch]"}}


def test_unsupported_operator_is_400(api: Any) -> None:
    # the parameter is the key as sent (platform FiltersByFieldsTest::testContainsFilterShouldBeDisabledByDefault:
    # "source": {"parameter": "filter[fieldString][contains]"})
    r = api.get("/customerusers", params={"filter[email][gt]": "a"})
    assert r.status_code == 400
    assert r.json()["errors"] == [{"status": "400", "title": "filter constraint",
                                   "detail": 'The operator "gt" is not supported.',
                                   "source": {"parameter": "filter[email][gt]"}}]


def test_to_many_association_filter_operators(api: Any) -> None:
    # a collection supports eq, neq, exists, neq_or_null (platform Filter/ComparisonFilter.php
    # doBuildCollectionExpression; FiltersByAssociationTest::testNotEqualFilterForManyToManyAssociation)
    everyone = _all(api, "/customerusers")
    admins = _all(api, "/customerusers", {"filter[userRoles]": "1"})
    others = _all(api, "/customerusers", {"filter[userRoles][neq]": "1"})
    assert admins
    assert all({"type": "customeruserroles", "id": "1"} in u["relationships"]["userRoles"]["data"] for u in admins)
    # NOT MEMBER OF: users without any role (guests) are included
    assert {u["id"] for u in others} == {u["id"] for u in everyone} - {u["id"] for u in admins}
    assert any(not u["relationships"]["userRoles"]["data"] for u in others)
    r = api.get("/customerusers", params={"filter[userRoles][gt]": "1"})
    assert r.json()["errors"] == [{"status": "400", "title": "filter constraint",
                                   "detail": 'The operator "gt" is not supported.',
                                   "source": {"parameter": "filter[userRoles][gt]"}}]


def test_bad_filter_values_are_400(api: Any) -> None:
    r = api.get("/customers", params={"filter[id]": "aaa"})
    assert r.json()["errors"][0]["detail"] == 'Expected integer value. Given "aaa".'
    r = api.get("/customers", params={"filter[updatedAt][gte]": "test"})
    assert r.status_code == 400
    assert r.json()["errors"][0]["detail"] == 'Expected datetime value. Given "test".'


def test_campaigns_are_not_filterable_by_updatedat(api: Any) -> None:
    assert api.get("/campaigns", params={"filter[updatedAt]": "2024"}).status_code == 400


def test_marketingactivities_filter_and_sort_by_actiondate(api: Any) -> None:
    got = _all(api, "/marketingactivities", {"filter[actionDate][gte]": "2000-01-01T00:00:00Z",
                                             "sort": "actionDate,id"})
    keys = [(a["attributes"]["actionDate"], int(a["id"])) for a in got]
    assert keys == sorted(keys)
    assert api.get("/marketingactivities", params={"filter[entity]": "1"}).status_code == 400


def test_default_sort_is_id_ascending_and_desc_works(api: Any) -> None:
    ids = [int(c["id"]) for c in _all(api, "/customers")]
    assert ids == sorted(ids)
    desc = [int(c["id"]) for c in _all(api, "/customers", {"sort": "-id"})]
    assert desc == sorted(ids, reverse=True)


def test_several_unsupported_sort_fields_message(api: Any) -> None:
    r = api.get("/customerusers", params={"sort": "firstName,-lastName"})
    assert r.json()["errors"][0]["detail"] == 'Sorting by "firstName, lastName" fields are not supported.'


def test_orders_sorted_by_updatedat_desc(api: Any) -> None:
    got = _all(api, "/orders", {"sort": "-updatedAt,id"})
    keys = [o["attributes"]["updatedAt"] for o in got]
    assert keys == sorted(keys, reverse=True)


def test_line_items_filter_by_customer_through_orders(api: Any) -> None:
    orders = _all(api, "/orders", {"filter[customer]": "1"}) or _all(api, "/orders", {"page[size]": 1})
    customer = orders[0]["relationships"]["customer"]["data"]["id"]
    order_ids = {o["id"] for o in _all(api, "/orders", {"filter[customer]": customer})}
    items = _all(api, "/orderlineitems", {"filter[customer]": customer})
    assert items
    assert {i["relationships"]["orders"]["data"][0]["id"] for i in items} <= order_ids


def test_datetime_filter_space_is_read_as_plus(api: Any) -> None:
    encoded = api.get("/orders", params={"filter[createdAt][gte]": "2020-01-01T00:00:00+02:00", "page[size]": -1})
    raw = api.get(api.base + "/orders?filter[createdAt][gte]=2020-01-01T00:00:00 02:00&page[size]=-1")
    assert raw.status_code == 200
    assert [o["id"] for o in raw.json()["data"]] == [o["id"] for o in encoded.json()["data"]]
