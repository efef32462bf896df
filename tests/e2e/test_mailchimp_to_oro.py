"""Consent, identity and erasure from Mailchimp to OroCommerce, with real `meltano run` commands.

Once per Oro consent source (a custom field, OroConsentBundle acceptances), against one small sandbox:
both pipelines run once to link every member to its Oro customer user (``OROID``); then people change
their minds in Mailchimp (unsubscribe, a hard bounce = cleaned, archived by the merchant, a new address,
a re-subscription through double opt-in); ``engagement-sync`` carries that into Oro and
``audience-sync`` runs after it. Each test checks one transition in both systems, then a quiet cycle
must write nothing anywhere, and last a member deleted permanently in Mailchimp ("forget") becomes a
GDPR request naming the Oro customer user, and is never re-added by audience-sync. The tests of one
source share its sandbox and run in order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from e2e_harness import QUICK_BATCHES, Project, project_copy
from oromc_sandbox.testing import running_sandbox
from pipelines import RunResult, write_counts

FIELD, ACCEPTANCES = "customer_user_field", "consent_acceptances"
NEW_ADDRESS = "moved.in.mailchimp@example.net"


@dataclass
class Flow:
    """One consent source's sandbox, the people the tests follow and what the runs reported."""

    project: Project
    source: str
    people: dict[str, dict[str, Any]] = field(default_factory=dict)  # role -> Oro customer user
    emails: dict[str, str] = field(default_factory=dict)  # role -> Mailchimp address before the changes
    unique_ids: dict[str, str] = field(default_factory=dict)  # role -> Mailchimp unique_email_id
    runs: dict[str, RunResult] = field(default_factory=dict)

    @property
    def apply_email_changes(self) -> bool:
        return self.source == ACCEPTANCES  # one source each way

    def consent(self, role: str) -> bool | None:
        """What Oro records now for the person: True, False, or None (custom field never set)."""
        oro, user_id = self.project.oro, self.people[role]["id"]
        if self.source == FIELD:
            value: bool | None = oro.get(f"customerusers/{user_id}")["data"]["attributes"]["marketing_consent"]
            return value
        query = {"filter[customerUser]": user_id, "filter[consent]": self.consent_id()}
        return bool(oro.all("consentacceptances", **query))

    def consent_id(self) -> str:
        consents = self.project.oro.get("consents", include="names", **{"page[size]": -1})
        names = {i["id"]: i["attributes"]["string"] for i in consents.get("included", [])}
        return str(next(
            c["id"] for c in consents["data"]
            if any(names.get(r["id"]) == "Email subscription" for r in c["relationships"]["names"]["data"])
        ))

    def unsubscribes(self, role: str) -> list[dict[str, Any]]:
        """The details of this connector's unsubscribe activities on the person."""
        user_id = self.people[role]["id"]
        out = []
        for row in self.project.oro.all("marketingactivities", **{"filter[marketingActivityType]": "unsubscribe"}):
            entity = row["relationships"]["entity"]["data"]
            details = row["attributes"].get("details") or ""
            if entity and entity["id"] == user_id and '"source":"mailchimp"' in details:
                out.append(json.loads(details))
        return out

    def member(self, role: str, email: str | None = None) -> dict[str, Any]:
        data: dict[str, Any] = self.project.mailchimp.member(email or self.emails[role])
        return data

    def reports(self) -> list[dict[str, Any]]:
        path = Path(self.project.env["TARGET_OROCOMMERCE_REJECTS_PATH"])
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _oro_consent_given(flow: Flow, user: dict[str, Any], acceptances: set[str]) -> bool:
    if flow.source == FIELD:
        return user["attributes"].get("marketing_consent") is True
    return user["id"] in acceptances


def _choose_people(flow: Flow) -> None:
    """Five subscribed people with consent in Oro, and one the connector saw unsubscribe earlier."""
    oro, mc = flow.project.oro, flow.project.mailchimp
    users = {u["id"]: u for u in oro.all("customerusers")}
    accepted: set[str] = set()
    if flow.source == ACCEPTANCES:
        rows = oro.all("consentacceptances", **{"filter[consent]": flow.consent_id()})
        accepted = {r["relationships"]["customerUser"]["data"]["id"] for r in rows}
    members = mc.get(
        f"lists/{mc.list_id}/members", count=1000,
        fields="members.email_address,members.status,members.merge_fields,members.unique_email_id",
    )["members"]
    candidates: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {"subscribed": [], "unsubscribed": []}
    for m in members:
        user = users.get(str(m["merge_fields"].get("OROID") or ""))
        if user is None or user["attributes"].get("isGuest") or not user["attributes"].get("enabled"):
            continue
        if m["status"] == "subscribed" and _oro_consent_given(flow, user, accepted):
            candidates["subscribed"].append((m, user))
        if m["status"] == "unsubscribed" and not _oro_consent_given(flow, user, accepted):
            candidates["unsubscribed"].append((m, user))
    roles = ["unsubscribe", "clean", "archive", "new_address", "forget"]
    assert len(candidates["subscribed"]) >= len(roles), "the sandbox is too small for the roles"
    picked = dict(zip(roles, sorted(candidates["subscribed"], key=lambda mu: int(mu[1]["id"])), strict=False))
    resubscribing = sorted(candidates["unsubscribed"], key=lambda mu: int(mu[1]["id"]))
    assert resubscribing, "the seed has no unsubscribed member with a declined Oro consent"
    picked["resubscribe"] = resubscribing[0]
    for role, (m, user) in picked.items():
        flow.people[role] = user
        flow.emails[role] = m["email_address"]
        flow.unique_ids[role] = m["unique_email_id"]


def _set_status(flow: Flow, role: str, status: str) -> None:
    mc = flow.project.mailchimp
    mc.call("PATCH", f"lists/{mc.list_id}/members/{mc.hash(flow.emails[role])}", {"status": status})


@pytest.fixture(scope="module", params=[FIELD, ACCEPTANCES])
def flow(
    request: pytest.FixtureRequest, meltano_ready: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flow]:
    source = str(request.param)
    epoch = (datetime.now(UTC) - timedelta(days=31)).isoformat()
    with running_sandbox(customers=10, seed=11, epoch=epoch, consent_source=source) as sandbox:
        root = project_copy(tmp_path_factory.mktemp(f"mc-to-oro-{source}-project"), QUICK_BATCHES)
        flow = Flow(Project(sandbox, tmp_path_factory.mktemp(f"mc-to-oro-{source}"), root=root), source)
        env = flow.project.env
        for plugin in ("TAP_OROCOMMERCE", "TARGET_OROCOMMERCE"):
            env[f"{plugin}_CONSENT_SOURCE"] = source
        env["TARGET_OROCOMMERCE_APPLY_EMAIL_CHANGES"] = "true" if flow.apply_email_changes else "false"
        flow.project.run("audience-sync")  # links every member to its Oro id (OROID)
        flow.project.run("engagement-sync")  # records the seeded opt-outs in Oro
        _choose_people(flow)
        assert flow.unsubscribes("resubscribe"), "the seeded opt-out is recorded by this connector"

        sandbox.advance_clock(60)
        mc = flow.project.mailchimp
        _set_status(flow, "unsubscribe", "unsubscribed")  # the person unsubscribes
        _set_status(flow, "clean", "cleaned")  # a hard bounce
        mc.call("DELETE", f"lists/{mc.list_id}/members/{mc.hash(flow.emails['archive'])}")  # the merchant archives
        mc.call(  # the person edits their profile
            "PATCH", f"lists/{mc.list_id}/members/{mc.hash(flow.emails['new_address'])}", {"email_address": NEW_ADDRESS}
        )
        _set_status(flow, "resubscribe", "pending")  # signs up again: double opt-in ...
        sandbox.advance_clock(60)
        _set_status(flow, "resubscribe", "subscribed")  # ... confirmed
        sandbox.advance_clock(60)
        flow.runs["engagement"] = flow.project.run("engagement-sync")
        flow.runs["audience"] = flow.project.run("audience-sync")
        yield flow


def test_unsubscribe_in_mailchimp_withdraws_consent_in_oro(flow: Flow) -> None:
    assert flow.consent("unsubscribe") is False
    (activity,) = flow.unsubscribes("unsubscribe")
    assert activity["status"] == "unsubscribed"
    assert flow.member("unsubscribe")["status"] == "unsubscribed"


def test_cleaned_in_mailchimp_withdraws_consent_in_oro(flow: Flow) -> None:
    assert flow.consent("clean") is False
    (activity,) = flow.unsubscribes("clean")
    assert activity["status"] == "cleaned"
    assert flow.member("clean")["status"] == "cleaned"


def test_archived_in_mailchimp_withdraws_consent_and_stays_archived(flow: Flow) -> None:
    assert flow.consent("archive") is False
    (activity,) = flow.unsubscribes("archive")
    assert activity["status"] == "archived"
    assert flow.member("archive")["status"] == "archived", "audience-sync did not bring the member back"


def test_address_changed_in_mailchimp(flow: Flow) -> None:
    user_id = flow.people["new_address"]["id"]
    login = flow.project.oro.get(f"customerusers/{user_id}")["data"]["attributes"]["email"]
    actions = [r for r in flow.reports() if r.get("kind") == "action" and r["reason"] == "email_changed_in_mailchimp"]
    if flow.apply_email_changes:
        assert login == NEW_ADDRESS, "applied: the Oro login follows Mailchimp"
        assert actions == []
    else:
        assert login == flow.emails["new_address"], "reported: the Oro login did not change"
        (action,) = actions
        assert f"customer user {user_id}" in action["detail"]
        assert NEW_ADDRESS not in json.dumps(flow.reports())
    # The Oro customer user did not change, so audience-sync had nothing to send for it: the member
    # keeps the address the person gave Mailchimp until Oro changes the customer user (then
    # target-mailchimp moves it to the Oro email).
    member = flow.member("new_address", NEW_ADDRESS)
    assert member["unique_email_id"] == flow.unique_ids["new_address"], "the same member, not a new one"
    assert member["status"] == "subscribed"
    assert member["merge_fields"]["OROID"] == user_id


def test_resubscribe_in_mailchimp_gives_consent_and_a_quiet_cycle_writes_nothing(flow: Flow) -> None:
    assert flow.consent("resubscribe") is True
    (activity,) = flow.unsubscribes("resubscribe")
    assert activity["resubscribed_at"], "the reversal is anchored on the opt-out it reverses"
    assert flow.member("resubscribe")["status"] == "subscribed"

    sandbox = flow.project.sandbox
    sandbox.advance_clock(60)
    sandbox.reset_stats()
    audience = flow.project.run("audience-sync")
    engagement = flow.project.run("engagement-sync")
    writes = (write_counts(sandbox.stats("oro")), write_counts(sandbox.stats("mailchimp")))
    assert writes == (0, 0), (
        f"quiet cycle wrote Oro={writes[0]} Mailchimp={writes[1]}; "
        f"target-mailchimp {audience.summaries.get('target-mailchimp', {}).get('streams')}; "
        f"target-orocommerce {engagement.summaries.get('target-orocommerce', {}).get('streams')}"
    )


def test_forgotten_in_mailchimp_is_an_opt_out_and_a_gdpr_request(flow: Flow) -> None:
    mc, user_id = flow.project.mailchimp, flow.people["forget"]["id"]
    mc.call("POST", f"lists/{mc.list_id}/members/{mc.hash(flow.emails['forget'])}/actions/delete-permanent")
    flow.project.sandbox.advance_clock(60)
    run = flow.project.run("engagement-sync")

    assert flow.consent("forget") is False
    (activity,) = flow.unsubscribes("forget")
    assert activity["status"] == "forgotten"
    summary = run.summaries["target-orocommerce"]
    assert summary["actions_required"] >= 1
    assert summary["streams"]["forgotten_members"]["actions_by_reason"] == {"gdpr_erasure_request": 1}
    (request,) = [r for r in flow.reports() if r.get("kind") == "action" and r["reason"] == "gdpr_erasure_request"]
    assert request["key"] == f"{mc.list_id}/oro:{user_id}"
    assert f"customer user {user_id}" in request["detail"]
    assert flow.emails["forget"] not in json.dumps(flow.reports())
    response = mc.session.get(f"{mc.api}/lists/{mc.list_id}/members/{mc.hash(flow.emails['forget'])}", timeout=30)
    assert response.status_code == 404, "Mailchimp keeps nothing of the person"

    # The person changes in Oro (an edit by the shop), so audience-sync sends them again: the
    # forgotten person has no consent in Oro any more and is never re-added; counted, no reject.
    flow.project.oro.patch(
        f"customerusers/{user_id}",
        {"data": {"type": "customerusers", "id": user_id, "attributes": {"firstName": "Edited"}}},
    )
    flow.project.sandbox.advance_clock(60)
    resync = flow.project.run("audience-sync")
    audience = resync.summaries["target-mailchimp"]["streams"]["contacts"]
    assert audience.get("forgotten_not_re_added") == 1, audience
    assert "forgotten_email" not in audience["rejected_by_reason"]
    member_url = f"{mc.api}/lists/{mc.list_id}/members/{mc.hash(flow.emails['forget'])}"
    assert mc.session.get(member_url, timeout=30).status_code == 404, "not re-added"
