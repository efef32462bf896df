"""Which fields filter and sort, and how values parse: Oro's own rules (item 11 of issue 12).

Sources (oroinc/platform 6.1.0 unless noted): ``ApiBundle/Processor/GetConfig/CompleteFilters.php``,
``CompleteSorters.php``, ``Util/DoctrineHelper.php`` (id, first column of an index, unique columns and
every association are filterable *and* sortable), ``Resources/config/oro/app.yml``
(``filter_disallow_array_data_types: [string, text, boolean]``, operators per data type),
``Request/RestFilterValueAccessor.php`` (operator names), ``Processor/NormalizeValue/AbstractProcessor.php``
(value errors); entity indexes and ``api.yml`` of orocommerce 6.1.0 (``OrderBundle``, ``ProductBundle``)
and customer-portal 6.1.0 (``CustomerBundle``).
"""

from __future__ import annotations

import uuid
from typing import Any


def _all(api: Any, path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    r = api.get(path, params={"page[size]": -1, **(params or {})})
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


def _error(r: Any) -> dict[str, Any]:
    assert r.status_code == 400, r.text
    errors = r.json()["errors"]
    assert len(errors) == 1
    error: dict[str, Any] = errors[0]
    return error


def test_orders_sort_by_identifier_a_unique_column(api: Any) -> None:
    # Order::$identifier is unique: true (OrderBundle Entity/Order.php) -> indexed -> sortable
    got = _all(api, "/orders", {"sort": "-identifier"})
    identifiers = [o["attributes"]["identifier"] for o in got]
    assert identifiers == sorted(identifiers, reverse=True)
    assert _error(api.get("/orders", params={"sort": "poNumber"}))["detail"] == \
        'Sorting by "poNumber" field is not supported.'


def test_products_sku_filter_takes_a_list(api: Any) -> None:
    # ProductBundle api.yml: filters.fields.sku.allow_array: true (ProductTest::
    # testGetListFilteredBySeveralProductsWithDifferentInventoryStatuses)
    first, second = _all(api, "/products", {"filter[id]": "3,7"})
    skus = f"{first['attributes']['sku']},{second['attributes']['sku']}"
    assert [p["id"] for p in _all(api, "/products", {"filter[sku]": skus})] == ["3", "7"]


def test_string_filters_without_allow_array_take_the_comma_as_part_of_the_value(api: Any) -> None:
    # customers.name is a string filter without allow_array: "a,b" is one value that matches nothing
    first, second = _all(api, "/customers", {"filter[id]": "1,2"})
    names = f"{first['attributes']['name']},{second['attributes']['name']}"
    assert _all(api, "/customers", {"filter[name]": names}) == []
    assert [c["id"] for c in _all(api, "/customers", {"filter[name]": first["attributes"]["name"]})][:1] == ["1"]


def test_products_status_featured_new_arrival_filter_and_sort(api: Any) -> None:
    # Product indexes: status, is_featured, is_new_arrival (ProductBundle Entity/Product.php)
    everything = _all(api, "/products")
    disabled = _all(api, "/products", {"filter[status]": "disabled"})
    assert disabled
    assert {p["id"] for p in disabled} == {p["id"] for p in everything if p["attributes"]["status"] == "disabled"}
    featured = _all(api, "/products", {"filter[featured]": "yes"})
    assert {p["id"] for p in featured} == {p["id"] for p in everything if p["attributes"]["featured"]}
    assert api.get("/products", params={"filter[newArrival]": "0"}).status_code == 200
    by_status = [p["attributes"]["status"] for p in _all(api, "/products", {"sort": "status,id"})]
    assert by_status == sorted(by_status)
    assert api.get("/products", params={"sort": "-featured,newArrival,id"}).status_code == 200
    # productType is not indexed
    assert _error(api.get("/products", params={"sort": "productType"}))["title"] == "sort constraint"


def test_product_type_attribute_is_renamed_product_type(api: Any) -> None:
    # JSON:API reserves "type": FixFieldNaming renames the entity field (get_product_by_id.yml: productType)
    attrs = api.get("/products/1").json()["data"]["attributes"]
    assert attrs["productType"] == "simple"
    assert "type" not in attrs


def test_associations_are_sortable(api: Any) -> None:
    # CompleteSorters::completeSortersForAssociations
    got = _all(api, "/customerusers", {"sort": "-customer,id"})
    keys = [(-int(u["relationships"]["customer"]["data"]["id"]), int(u["id"])) for u in got]
    assert keys == sorted(keys)
    assert api.get("/orders", params={"sort": "internalStatus,id"}).status_code == 200
    assert api.get("/marketingactivities", params={"sort": "campaign,-id"}).status_code == 200
    assert api.get("/customergroups", params={"sort": "owner"}).status_code == 200


def test_to_one_integer_association_supports_comparisons_and_ranges(api: Any) -> None:
    everything = _all(api, "/customerusers")
    got = _all(api, "/customerusers", {"filter[customer][gt]": "30"})
    assert {u["id"] for u in got} == {u["id"] for u in everything
                                      if int(u["relationships"]["customer"]["data"]["id"]) > 30}
    ranged = _all(api, "/customerusers", {"filter[customer]": "3..5"})
    assert {u["relationships"]["customer"]["data"]["id"] for u in ranged} == {"3", "4", "5"}


def test_enum_association_filters_are_strings_without_lists(api: Any) -> None:
    # an enum field is an association whose filter data type is "string" (CompleteSection::
    # getIndexedAssociations): string operators, no comma list
    closed = _all(api, "/orders", {"filter[internalStatus]": "closed"})
    assert closed
    assert all(o["relationships"]["internalStatus"]["data"]["id"] == "closed" for o in closed)
    assert _all(api, "/orders", {"filter[internalStatus]": "closed,open"}) == []
    r = api.get("/orders", params={"filter[internalStatus][gt]": "open"})
    assert _error(r) == {"status": "400", "title": "filter constraint",
                         "detail": 'The operator "gt" is not supported.',
                         "source": {"parameter": "filter[internalStatus][gt]"}}


def test_enum_options_filter_by_id_list_and_sort_by_priority(api: Any) -> None:
    # ApiBundle api.yml, EnumOption: filters id (allow_array) and priority; sorter priority
    # (OrderInternalStatusTest::testGetList / testGetListSortedByPriority)
    got = _all(api, "/orderinternalstatuses", {"filter[id]": "open,closed,cancelled", "sort": "priority"})
    assert [s["id"] for s in got] == ["open", "cancelled", "closed"]
    assert got[0]["attributes"] == {"name": "Open", "priority": 1, "default": False}
    ship = _all(api, "/ordershippingstatuses", {"sort": "priority"})
    assert [(s["id"], s["attributes"]["default"]) for s in ship] == [
        ("not_shipped", True), ("shipped", False), ("partially_shipped", False)]


def test_order_identifier_filter_is_case_insensitive_and_takes_lists(api: Any) -> None:
    # OrderBundle api.yml: identifier/poNumber allow_array + case_insensitive
    # (OrderTest::testGetListFilterByIdentifier*)
    tag = uuid.uuid4().hex[:6]
    ids = []
    for n in (2, 3):
        r = api.post("/orders", {"data": {"type": "orders", "attributes": {"identifier": f"SIMPLE_order{n}_{tag}"},
                                          "relationships": {"customer": {"data": {"type": "customers", "id": "1"}}}}})
        assert r.status_code == 201, r.text
        ids.append(r.json()["data"]["id"])
    assert [o["id"] for o in _all(api, "/orders", {"filter[identifier]": f"simple_ORDER2_{tag}"})] == ids[:1]
    both = _all(api, "/orders", {"filter[identifier]": f"simple_order2_{tag},SIMPLE_ORDER3_{tag}"})
    assert [o["id"] for o in both] == ids
    others = _all(api, "/orders", {"filter[identifier][neq]": f"simple_order2_{tag}"})
    assert ids[0] not in {o["id"] for o in others}
    assert ids[1] in {o["id"] for o in others}


def test_address_type_filter(api: Any) -> None:
    # CustomerBundle api.yml: addressType (types.type, string, allow_array); "types" itself is excluded
    # (CustomerUserAddressTest::testTryToGetListFilterByTypes)
    everything = _all(api, "/customeruseraddresses")
    shipping = _all(api, "/customeruseraddresses", {"filter[addressType]": "shipping"})
    expected = {a["id"] for a in everything
                if "shipping" in {t["addressType"] for t in a["attributes"]["types"]}}
    assert {a["id"] for a in shipping} == expected
    assert len(expected) < len(everything)
    both = _all(api, "/customeruseraddresses", {"filter[addressType]": "billing,shipping"})
    assert len(both) == len(everything)
    assert _error(api.get("/customeruseraddresses", params={"filter[types]": "billing"}))["detail"] == \
        "The filter is not supported."


def test_an_unknown_operator_name_is_a_nested_path_not_an_operator(api: Any) -> None:
    # RestFilterValueAccessor: "[foo]" is an operator only when foo is a known operator name
    assert _error(api.get("/customers", params={"filter[id][foo]": "1"})) == {
        "status": "400", "title": "filter constraint", "detail": "The filter is not supported.",
        "source": {"parameter": "filter[id][foo]"}}
    assert _error(api.get("/customers", params={"filter[name][contains]": "a"}))["detail"] == \
        'The operator "contains" is not supported.'


def test_value_errors_use_oros_wording(api: Any) -> None:
    # NormalizeValue/AbstractProcessor.php
    assert _error(api.get("/customers", params={"filter[id]": "1,a"})) == {
        "status": "400", "title": "filter constraint", "detail": 'Expected an array of integers. Given "1,a".',
        "source": {"parameter": "filter[id]"}}
    assert _error(api.get("/customers", params={"filter[id]": "1..a"}))["detail"] == \
        'Expected a pair of integers (integer..integer). Given "1..a".'
    assert _error(api.get("/customers", params={"filter[name]": ""}))["detail"] == \
        'Expected not empty string value. Given "".'
    assert _error(api.get("/customers", params={"filter[updatedAt]": "2024-01-01,x"}))["detail"] == \
        'Expected an array of datetimes. Given "2024-01-01,x".'
    assert _error(api.get("/orders", params={"filter[external]": "maybe"}))["detail"] == \
        'Expected boolean value. Given "maybe".'


def test_datetime_lists_match_any_of_the_periods(api: Any) -> None:
    everything = _all(api, "/orders")
    days = sorted({o["attributes"]["createdAt"][:10] for o in everything})[:2]
    got = _all(api, "/orders", {"filter[createdAt]": ",".join(days)})
    assert {o["id"] for o in got} == {o["id"] for o in everything if o["attributes"]["createdAt"][:10] in days}


def test_meta_property_errors(api: Any) -> None:
    # GetWithFiltersTest: testUnknownMetaProperty*, testMetaTitlesWhenTitleMetaPropertyIsDisabled,
    # testMetaTitlesWhenMetaFilterIsDisabled, testMetaWithEmptyValue
    assert _error(api.get("/customers", params={"meta": "another"}))["detail"] == \
        'The "another" is not known meta property. Known properties: title.'
    assert _error(api.get("/marketingactivities", params={"meta": "title"}))["detail"] == \
        'The "title" is not allowed meta property. Allowed properties: .'
    assert _error(api.get("/orderlineitems", params={"meta": "title"}))["detail"] == \
        'The "title" is not allowed meta property. Allowed properties: .'
    assert _error(api.get("/customers", params={"meta": ""}))["detail"] == \
        'Expected not empty string value. Given "".'
    assert _error(api.get("/customers", params={"meta": "title,"}))["detail"] == \
        'Expected an array of not empty strings. Given "title,".'
