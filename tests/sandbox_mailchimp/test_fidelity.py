"""Sandbox fidelity (issue 12): rules where the sandbox was stricter or kinder than the real API.

Each test names its source: the Mailchimp OpenAPI description (operation id), Mailchimp's docs, or
what production clients send and the real API answers.
"""

from __future__ import annotations

from typing import Any

SINGER_COLLECTION_FIELDS = "_links,total_items,constraints,{key}._links"


def test_fields_with_paths_the_resource_lacks_are_answered(mc: Any) -> None:
    """singer-io tap-mailchimp 1.3.3 `format_selected_fields` adds these to every collection.

    `constraints` exists only on `GET /lists`; the tap works against the real API, so the members
    collection must answer 200 with what does exist.
    """
    fields = "members.email_address," + SINGER_COLLECTION_FIELDS.format(key="members")
    resp = mc.get(mc.members, params={"fields": fields, "count": 2})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == {"members", "total_items", "_links"}
    assert all(set(m) == {"email_address", "_links"} for m in body["members"])


def test_exclude_fields_with_absent_paths_are_answered(mc: Any) -> None:
    """Airbyte's source-mailchimp sends `exclude_fields=<key>._links` on every call, tag-search too."""
    resp = mc.get(
        f"/lists/{mc.list_id}/tag-search", params={"exclude_fields": "tags._links,nothing.here"}
    )
    assert resp.status_code == 200, resp.text
    assert "tags" in resp.json()


def test_fields_naming_nothing_at_all_is_422(mc: Any) -> None:
    """Error glossary: RequestedFieldsInvalid, when no requested path exists in the response."""
    resp = mc.get(mc.members, params={"fields": "email_address,nothing"})
    assert resp.status_code == 422
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["title"] == "Requested Fields Invalid"
