"""Member merge-field validation by type, required fields and clearing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="module")
def extra_fields(mc: Any) -> Iterator[dict[str, int]]:
    path = f"/lists/{mc.list_id}/merge-fields"
    specs = [
        {"name": "Score", "type": "number", "tag": "SCORE"},
        {"name": "Since", "type": "date", "tag": "SINCE", "options": {"date_format": "DD/MM/YYYY"}},
        {"name": "Site", "type": "url", "tag": "SITE"},
        {
            "name": "Size",
            "type": "dropdown",
            "tag": "SIZE",
            "options": {"choices": ["S", "M", "L"]},
        },
        {"name": "Zip", "type": "zip", "tag": "ZIPC"},
        {"name": "US phone", "type": "phone", "tag": "USPHONE", "options": {"phone_format": "US"}},
    ]
    ids = {}
    for spec in specs:
        resp = mc.post(path, json=spec)
        assert resp.status_code == 200, resp.text
        ids[spec["tag"]] = resp.json()["merge_id"]
    yield ids
    for mid in ids.values():
        mc.delete(f"{path}/{mid}")


def _put(mc: Any, email: str, merge: dict[str, Any], **params: Any) -> Any:
    return mc.put(
        f"{mc.members}/{email}",
        json={"email_address": email, "status_if_new": "subscribed", "merge_fields": merge},
        params=params,
    )


@pytest.mark.parametrize(
    ("tag", "value", "message"),
    [
        ("SCORE", "ten", "Please enter a number"),
        ("SINCE", "2024-13-45", "Please enter a valid date"),
        ("SITE", "not a url", "Please enter a valid URL"),
        ("SIZE", "XL", "Please select one of the choices"),
        ("ZIPC", "ABCDE", "Please enter a valid zip code"),
        ("USPHONE", "+44 20 7946 0958", "Please enter a valid phone number"),
        ("BIRTHDAY", "13/40", "Please enter a valid birthday"),
        (
            "ADDRESS",
            {"addr1": "1 Main St", "city": "Springfield"},
            "Please enter a complete address",
        ),
    ],
)
def test_bad_merge_value_is_invalid_resource(
    mc: Any, fresh: Any, extra_fields: Any, tag: str, value: Any, message: str
) -> None:
    resp = _put(mc, fresh(), {tag: value})
    assert resp.status_code == 400
    body = resp.json()
    assert body["title"] == "Invalid Resource"
    assert body["detail"] == "Your merge fields were invalid."
    assert body["errors"] == [{"field": tag, "message": message}]


def test_good_values_are_normalised(mc: Any, fresh: Any, extra_fields: Any) -> None:
    email = fresh()
    resp = _put(
        mc,
        email,
        {
            "SCORE": "42",
            "SINCE": "31/01/2024",
            "SITE": "https://example.org/x",
            "SIZE": "M",
            "ZIPC": "12345",
            "USPHONE": "(555) 123-4567",
            "BIRTHDAY": "5/7",
            "ADDRESS": {"addr1": "1 Main St", "city": "Springfield", "state": "IL", "zip": "62701"},
        },
    )
    assert resp.status_code == 200, resp.text
    mf = resp.json()["merge_fields"]
    assert mf["SCORE"] == 42
    assert mf["SINCE"] == "2024-01-31"
    assert mf["BIRTHDAY"] == "05/07"
    assert mf["ADDRESS"]["country"] == "US"
    assert mf["ADDRESS"]["addr2"] == ""


def test_empty_string_clears_value(mc: Any, fresh: Any) -> None:
    doc = mc.add(fresh(), merge_fields={"FNAME": "Ada"})
    assert doc["merge_fields"]["FNAME"] == "Ada"
    resp = mc.patch(f"{mc.members}/{doc['id']}", json={"merge_fields": {"FNAME": ""}})
    assert resp.json()["merge_fields"]["FNAME"] == ""


def test_booleans_are_not_accepted(mc: Any, fresh: Any) -> None:
    resp = _put(mc, fresh(), {"FNAME": True})
    assert resp.status_code == 400


def test_required_field_and_skip_merge_validation(mc: Any, fresh: Any) -> None:
    path = f"/lists/{mc.list_id}/merge-fields"
    mf = mc.post(
        path, json={"name": "Company", "type": "text", "tag": "COMPANYR", "required": True}
    ).json()
    try:
        missing = mc.post(mc.members, json={"email_address": fresh(), "status": "subscribed"})
        assert missing.status_code == 400
        assert missing.json()["errors"] == [
            {"field": "COMPANYR", "message": "Please enter a value"}
        ]
        skipped = mc.post(
            mc.members,
            json={"email_address": fresh(), "status": "subscribed"},
            params={"skip_merge_validation": "true"},
        )
        assert skipped.status_code == 200
        given = mc.post(
            mc.members,
            json={
                "email_address": fresh(),
                "status": "subscribed",
                "merge_fields": {"COMPANYR": "Acme"},
            },
        )
        assert given.status_code == 200
        cleared = mc.patch(
            f"{mc.members}/{given.json()['id']}", json={"merge_fields": {"COMPANYR": ""}}
        )
        assert cleared.status_code == 400
    finally:
        mc.delete(f"{path}/{mf['merge_id']}")


def test_unknown_merge_tags_are_ignored(mc: Any, fresh: Any) -> None:
    resp = _put(mc, fresh(), {"NOSUCHTAG": "x"})
    assert resp.status_code == 200
    assert "NOSUCHTAG" not in resp.json()["merge_fields"]
