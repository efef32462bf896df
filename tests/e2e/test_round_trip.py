"""Round trip through both pipelines with real `meltano run` commands against one sandbox.

The tests of this module share one sandbox and run in file order: each step builds on the data the
previous ones synced, as a shop's pipelines do over time.
"""

from __future__ import annotations

from typing import Any

from e2e_harness import Project

NEW_EMAIL = "zoe.angstrom@example.org"


def _group_name(project: Project, customer: dict[str, Any]) -> str | None:
    group = customer["relationships"].get("group", {}).get("data")
    if not group:
        return None
    name: str = project.oro.get(f"customergroups/{group['id']}")["data"]["attributes"]["name"]
    return name


def test_first_cycle_and_new_customer_user_reaches_mailchimp(project: Project) -> None:
    """A customer user created in Oro arrives in Mailchimp with merge fields and owned tags."""
    # Let all seeded engagement arrive first (the sandbox clock moves 30 days on, still behind
    # this machine's clock), so later cycles see only what the tests change.
    project.sandbox.advance_clock(30 * 86400)
    project.run("audience-sync")
    project.run("engagement-sync")

    oro, mc = project.oro, project.mailchimp
    customer = oro.get("customers", **{"page[size]": 1})["data"][0]
    oro.post(
        "customerusers",
        {
            "data": {
                "type": "customerusers",
                "attributes": {
                    "email": NEW_EMAIL,
                    "firstName": "Zoë",
                    "lastName": "Ångström",
                    "enabled": True,
                    "confirmed": True,
                    # consent recorded at signup (dev environment: the custom field); without it
                    # the person would join as transactional
                    "marketing_consent": True,
                },
                "relationships": {
                    "customer": {"data": {"type": "customers", "id": customer["id"]}},
                    "userRoles": {"data": [{"type": "customeruserroles", "id": "2"}]},
                },
            }
        },
    )
    project.run("audience-sync")

    member = mc.member(NEW_EMAIL)
    assert member["status"] == "subscribed"
    assert member["merge_fields"]["FNAME"] == "Zoë"
    assert member["merge_fields"]["LNAME"] == "Ångström"
    tags = {t["name"] for t in member["tags"]}
    assert f"oro:account:{customer['attributes']['name']}" in tags
    group = _group_name(project, customer)
    if group:
        assert f"oro:group:{group}" in tags


def test_unsubscribe_and_engagement_flow_back_and_are_not_undone(project: Project) -> None:
    """Mailchimp engagement and an unsubscribe land in Oro; the next audience sync keeps consent."""
    oro, mc = project.oro, project.mailchimp
    campaign_id = mc.send_campaign_to([NEW_EMAIL], tag="e2e-autumn")
    # Real engagement cannot be driven through Mailchimp's API: the sandbox's control route
    # records what the person did (a click defaults to the campaign's first link).
    for action in ("open", "click", "unsub"):
        project.sandbox.control("mailchimp").post(
            f"/_sandbox/mailchimp/campaigns/{campaign_id}/engage",
            json={"email_address": NEW_EMAIL, "action": action},
        ).raise_for_status()
    project.sandbox.advance_clock(120)
    assert mc.member(NEW_EMAIL)["status"] == "unsubscribed"

    project.run("engagement-sync")

    user = oro.customer_user_by_email(NEW_EMAIL)
    activities = oro.activities_of(user["id"])
    kinds = {kind for kind, _ in activities}
    assert {"send", "open", "click", "unsubscribe"} <= kinds, activities
    oro_campaigns = {c["id"]: c["attributes"]["code"] for c in oro.all("campaigns")}
    assert campaign_id in {oro_campaigns.get(cid) for _, cid in activities if cid}

    # Oro changes the person (so the contact is re-sent) but says nothing about consent.
    oro.patch(
        f"customerusers/{user['id']}",
        {
            "data": {
                "type": "customerusers",
                "id": user["id"],
                "attributes": {"lastName": "Angstrom"},
            }
        },
    )
    project.run("audience-sync")
    member = mc.member(NEW_EMAIL)
    assert member["merge_fields"]["LNAME"] == "Angstrom"
    assert member["status"] == "unsubscribed"


def _member_with_primary_address(project: Project) -> tuple[dict[str, Any], dict[str, Any]]:
    """A subscribed Mailchimp member whose Oro customer user has a primary address."""
    oro, mc = project.oro, project.mailchimp
    for address in oro.all("customeruseraddresses"):
        if not address["attributes"].get("primary"):
            continue
        user_id = address["relationships"]["customerUser"]["data"]["id"]
        user = oro.get(f"customerusers/{user_id}")["data"]
        response = mc.session.get(
            f"{mc.api}/lists/{mc.list_id}/members/{mc.hash(user['attributes']['email'])}",
            timeout=30,
        )
        if response.status_code == 200 and response.json()["status"] == "subscribed":
            return user, address
    raise AssertionError("the seed has no subscribed member with a primary address")


def test_name_from_mailchimp_and_phone_from_oro(project: Project) -> None:
    """A name edited in Mailchimp reaches Oro; a phone edited in Oro reaches Mailchimp."""
    oro, mc = project.oro, project.mailchimp
    user, address = _member_with_primary_address(project)
    email = user["attributes"]["email"]

    mc.call(
        "PATCH",
        f"lists/{mc.list_id}/members/{mc.hash(email)}",
        {"merge_fields": {"FNAME": "Renamed-In-Mailchimp"}},
    )
    project.run("engagement-sync")
    assert oro.get(f"customerusers/{user['id']}")["data"]["attributes"]["firstName"] == (
        "Renamed-In-Mailchimp"
    )

    oro.patch(
        f"customeruseraddresses/{address['id']}",
        {
            "data": {
                "type": "customeruseraddresses",
                "id": address["id"],
                "attributes": {"phone": "+1 555-0100-77"},
            }
        },
    )
    project.run("audience-sync")
    assert mc.member(email)["merge_fields"]["PHONE"] == "+1 555-0100-77"
