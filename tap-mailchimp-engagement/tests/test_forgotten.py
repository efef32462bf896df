"""forgotten_members: permanently deleted members named by the Oro id they carried, from bounded state."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
from oromc_common import idsets
from oromc_sandbox.testing import RunningSandbox, running_sandbox
from tap_mailchimp_engagement import identity, streams
from tap_mailchimp_engagement.client import MailchimpContext

STREAMS = {"members", "member_reconciliation", "forgotten_members"}


@pytest.fixture(scope="module")
def small() -> Iterator[RunningSandbox]:
    """A small audience of its own: these tests delete members."""
    with running_sandbox(customers=25, seed=5) as sb:
        yield sb


class Audience:
    """Set-up helpers on the sandbox audience (plain Mailchimp API calls)."""

    def __init__(self, tools: Any, sb: RunningSandbox) -> None:
        self.session = tools.mc_session(sb)
        self.list_id = sb.info["mailchimp"]["list_id"]
        self.members_url = f"{sb.mailchimp_api_url}/lists/{self.list_id}/members"
        fields = self.session.get(f"{sb.mailchimp_api_url}/lists/{self.list_id}/merge-fields").json()
        if not any(f["tag"] == "OROID" for f in fields["merge_fields"]):
            body = {"tag": "OROID", "name": "Oro id", "type": "text", "public": False}
            assert self.session.post(f"{sb.mailchimp_api_url}/lists/{self.list_id}/merge-fields", json=body).ok

    def ids(self, status: str = "subscribed") -> list[str]:
        page = self.session.get(
            self.members_url, params={"status": status, "count": 1000, "fields": "members.id"}
        ).json()
        return sorted(m["id"] for m in page["members"])

    def set_oro_id(self, member_id: str, oro_id: str) -> None:
        assert self.session.patch(f"{self.members_url}/{member_id}", json={"merge_fields": {"OROID": oro_id}}).ok

    def add(self, email: str, oro_id: str) -> str:
        body = {"email_address": email, "status": "subscribed", "merge_fields": {"OROID": oro_id}}
        response = self.session.post(self.members_url, json=body)
        assert response.ok, response.text
        return str(response.json()["id"])

    def forget(self, member_id: str) -> None:
        assert self.session.post(f"{self.members_url}/{member_id}/actions/delete-permanent").status_code == 204

    def archive(self, member_id: str) -> None:
        assert self.session.delete(f"{self.members_url}/{member_id}").status_code == 204


def _run(tools: Any, config: dict[str, Any], state: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
    """Run the tap; return what it wrote and its run summary's counters per stream."""
    taps: list[Any] = []
    run = tools.run_tap(config, state=state, streams=STREAMS, prepare=taps.append)
    return run, taps[0].report.summary()


def _forgotten(run: Any) -> set[str]:
    return {r["oro_id"] for r in run.records["forgotten_members"]}


def test_deleted_members_are_named_by_their_oro_id_once(small: RunningSandbox, tools: Any) -> None:
    audience = Audience(tools, small)
    subscribed = audience.ids()
    with_id = subscribed[:6]
    for n, member_id in enumerate(with_id, start=101):
        audience.set_oro_id(member_id, str(n))
    mailchimp_only = subscribed[6]  # no Oro id: joined in Mailchimp, never reported to Oro
    config = tools.tap_config(small)

    first, counts = _run(tools, config)
    first_calls = counts["api_calls"]
    assert first.records["forgotten_members"] == []  # the first sweep only builds the baseline
    entry = first.state["bookmarks"]["forgotten_members"]["lists"][audience.list_id]
    assert set(idsets.decode(entry["oro_ids"], "test")) == set(range(101, 107))
    assert entry["baseline_at"]
    assert "pending" not in entry
    assert counts["streams"]["forgotten_members"]["baseline_sweeps"] == 1

    audience.forget(with_id[0])  # OROID 101
    audience.forget(mailchimp_only)
    audience.archive(with_id[1])  # OROID 102: archived is not gone
    time.sleep(1.1)  # the run cut-off has whole seconds
    second = tools.run_tap(config, state=first.state, streams=STREAMS)
    (row,) = second.records["forgotten_members"]
    assert row["oro_id"] == "101"
    assert row["list_id"] == audience.list_id
    assert row["identity_merge_field"] == "OROID"
    assert row["previous_sweep_at"] == entry["baseline_at"]
    (recon,) = second.records["member_reconciliation"]
    assert recon["missing_members"] == 2
    after = second.state["bookmarks"]["forgotten_members"]["lists"][audience.list_id]
    assert set(idsets.decode(after["oro_ids"], "test")) == set(range(102, 107))

    third, counts = _run(tools, config, second.state)
    assert third.records["forgotten_members"] == []
    assert "forgotten_members" not in counts["streams"]  # no sweep, nothing emitted
    assert counts["api_calls"] < first_calls / 4, "a quiet run sweeps nothing"


def test_a_member_seen_between_sweeps_and_then_deleted_is_reported(small: RunningSandbox, tools: Any) -> None:
    audience = Audience(tools, small)
    config = tools.tap_config(small)
    base = tools.run_tap(config, streams=STREAMS)  # baseline (or an incremental run on an existing one)
    new_id = audience.add("late.joiner@example.com", "777")
    time.sleep(1.1)
    seen = tools.run_tap(config, state=base.state, streams=STREAMS)
    assert [r["id"] for r in seen.records["members"]] == [new_id]
    assert seen.records["forgotten_members"] == []  # nothing missing: no sweep, the id is remembered
    entry = seen.state["bookmarks"]["forgotten_members"]["lists"][audience.list_id]
    assert 777 in idsets.decode(entry["oro_ids"], "test")
    lists = base.state["bookmarks"]["forgotten_members"]["lists"]
    assert entry["baseline_at"] == lists[audience.list_id]["baseline_at"]

    audience.forget(new_id)
    time.sleep(1.1)
    gone = tools.run_tap(config, state=seen.state, streams=STREAMS)
    assert _forgotten(gone) == {"777"}


def test_a_sweep_killed_midway_is_owed_to_the_next_run(
    small: RunningSandbox, tools: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    audience = Audience(tools, small)
    config = tools.tap_config(small)
    victim = audience.add("killed.sweep@example.com", "888")
    base = tools.run_tap(config, streams=STREAMS)
    audience.forget(victim)
    time.sleep(1.1)

    def broken(mc: Any, list_id: str) -> Iterator[dict[str, Any]]:
        raise ConnectionError("killed during the sweep")
        yield {}  # pragma: no cover

    written: list[dict[str, Any]] = []

    def prepare(tap: Any) -> None:
        original = tap.state_writer.write_state

        def spy(state: dict[str, Any]) -> None:
            written.append(json.loads(json.dumps(state)))
            original(state)

        tap.state_writer.write_state = spy

    monkeypatch.setattr(streams, "sweep_members", broken)
    with pytest.raises(ConnectionError):
        tools.run_tap(config, state=base.state, streams=STREAMS, prepare=prepare)
    monkeypatch.undo()
    # Meltano keeps the last STATE the tap wrote before it died: the counts are already updated
    # (nothing looks missing any more), but the sweep is still owed.
    killed_state = written[-1]
    assert killed_state["bookmarks"]["member_reconciliation"]["totals"][audience.list_id] >= 1
    assert killed_state["bookmarks"]["forgotten_members"]["lists"][audience.list_id]["pending"] is True
    resumed = tools.run_tap(config, state=killed_state, streams=STREAMS)
    assert _forgotten(resumed) == {"888"}
    (recon,) = resumed.records["member_reconciliation"] or [{"missing_members": 0}]
    assert not recon["missing_members"], "the resumed run found nothing missing by counts"
    assert "pending" not in resumed.state["bookmarks"]["forgotten_members"]["lists"][audience.list_id]


def test_members_deleted_while_the_sweep_pages_do_not_hide_others(
    small: RunningSandbox, tools: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offsets shift when a member is deleted mid-sweep; the sweep must not skip (and so report) anyone."""
    audience = Audience(tools, small)
    statuses = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional")
    everyone = [m for status in statuses for m in audience.ids(status)]
    oro_of = {member_id: str(500 + n) for n, member_id in enumerate(everyone)}
    for member_id, oro_id in oro_of.items():
        audience.set_oro_id(member_id, oro_id)
    config = tools.tap_config(small, page_size=4)
    base = tools.run_tap(config, streams=STREAMS)
    trigger = audience.add("deleted.first@example.com", "999")
    time.sleep(1.1)
    seen = tools.run_tap(config, state=base.state, streams=STREAMS)
    audience.forget(trigger)  # one member missing: the next run sweeps
    doomed: list[dict[str, Any]] = []
    time.sleep(1.1)
    pages = {"n": 0}  # sweep pages read before the deletion
    original = MailchimpContext.page

    def page_and_delete(self: Any, path: str, key: str, offset: int, params: Any = None) -> Any:
        answer = original(self, path, key, offset, params)
        if "OROID" in str((params or {}).get("fields")) and not doomed:  # a sweep page
            read = [r for r in answer[0] if r["merge_fields"].get("OROID")]
            if read:  # a member read already: with offsets every later row would shift by one
                doomed.append(read[0])
                audience.forget(read[0]["id"])
            pages["n"] += 1
        return answer

    monkeypatch.setattr(MailchimpContext, "page", page_and_delete)
    run = tools.run_tap(config, state=seen.state, streams=STREAMS)
    assert doomed, "a member was deleted in the middle of the sweep"
    assert _forgotten(run) <= {"999", doomed[0]["merge_fields"]["OROID"]}
    assert "999" in _forgotten(run)


def test_identity_set_stays_small_at_a_million_members() -> None:
    dense = idsets.encode(idsets.BitMap(range(1, 1_000_001)))
    assert len(dense) < 1_000
    rng = random.Random(3)
    spread = idsets.encode(idsets.BitMap(rng.sample(range(1, 2_000_001), 1_000_000)))
    assert len(spread) < 400_000
    assert len(idsets.decode(spread, "test")) == 1_000_000
    assert idsets.decode(None, "test") == idsets.BitMap()
    with pytest.raises(ValueError, match=r"bookmarks\.forgotten_members\.lists\.x\.oro_ids"):
        idsets.decode("not a set!", identity.state_key("x"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [("42", 42), (" 42 ", 42), (42, 42), ("", None), ("abc", None), ("0", None), (True, None), ("4294967296", None)],
)
def test_identity_values(value: Any, expected: int | None) -> None:
    assert identity.identity_value({"merge_fields": {"OROID": value}}, "OROID") == expected
    assert identity.identity_value({"merge_fields": {}}, "OROID") is None
    assert identity.identity_value({"merge_fields": {"OROID": "5"}}, "") is None
