"""Members: windows of last_changed, nothing-new re-runs, changes, archive, permanent deletes, tags."""

from __future__ import annotations

import time
from typing import Any

MEMBER_STREAMS = {"members", "member_tags", "member_reconciliation", "member_ids"}


def _all_member_ids(tools: Any, sb: Any, list_id: str) -> dict[str, str]:
    """id -> status of every member (archived included), straight from the API."""
    session = tools.mc_session(sb)
    out: dict[str, str] = {}
    for status in (None, "archived"):
        offset = 0
        while True:
            params: dict[str, Any] = {"count": 1000, "offset": offset, "fields": "members.id,members.status"}
            if status:
                params["status"] = status
            page = session.get(f"{sb.mailchimp_api_url}/lists/{list_id}/members", params=params).json()
            out.update({m["id"]: m["status"] for m in page["members"]})
            if len(page["members"]) < 1000:
                break
            offset += 1000
    return out


def test_first_run_reads_every_member_once_and_rerun_reads_nothing(sandbox: Any, tools: Any) -> None:
    list_id = sandbox.info["mailchimp"]["list_id"]
    expected = _all_member_ids(tools, sandbox, list_id)
    config = tools.tap_config(sandbox)

    first = tools.run_tap(config, streams=MEMBER_STREAMS)
    ids = [r["id"] for r in first.records["members"]]
    assert len(ids) == len(set(ids)), "a member was emitted twice"
    assert {r["id"]: r["status"] for r in first.records["members"]} == expected
    assert "archived" in expected.values(), "the seed has archived members; the sweep must find them"
    assert first.state["bookmarks"]["members"]["lists"][list_id]["since"]
    (recon,) = first.records["member_reconciliation"]
    assert recon["total_members"] == len(expected)
    assert recon["previous_total"] is None

    again = tools.run_tap(config, state=first.state, streams=MEMBER_STREAMS)
    assert again.records["members"] == []
    assert again.records["member_tags"] == []
    assert again.records["member_reconciliation"] == []


def test_small_pages_keyset_paging_loses_and_duplicates_nothing(sandbox: Any, tools: Any) -> None:
    list_id = sandbox.info["mailchimp"]["list_id"]
    expected = _all_member_ids(tools, sandbox, list_id)
    run = tools.run_tap(tools.tap_config(sandbox, page_size=7, member_window_days=15), streams={"members"})
    ids = [r["id"] for r in run.records["members"]]
    assert len(ids) == len(set(ids))
    assert set(ids) == set(expected)
    stamps = [r["last_changed"] for r in run.records["members"] if r["status"] != "archived"]
    assert stamps == sorted(stamps), "members are read in ascending last_changed order"


def test_changed_archived_and_deleted_members_reach_the_other_side(sandbox: Any, tools: Any) -> None:
    list_id = sandbox.info["mailchimp"]["list_id"]
    config = tools.tap_config(sandbox)
    base = tools.run_tap(config, streams=MEMBER_STREAMS)
    subscribed = [r for r in base.records["members"] if r["status"] == "subscribed"]
    changed, archived, erased = subscribed[0]["id"], subscribed[1]["id"], subscribed[2]["id"]
    session = tools.mc_session(sandbox)
    members = f"{sandbox.mailchimp_api_url}/lists/{list_id}/members"
    assert session.patch(f"{members}/{changed}", json={"merge_fields": {"FNAME": "Renamed"}}).ok
    assert session.delete(f"{members}/{archived}").status_code == 204
    assert session.post(f"{members}/{erased}/actions/delete-permanent").status_code == 204
    tags = [{"name": f"T{i:02d}", "status": "active"} for i in range(55)]
    assert session.post(f"{members}/{changed}/tags", json={"tags": tags}).status_code == 204
    time.sleep(1.1)  # the run cut-off is whole seconds: let the changes' second pass

    run = tools.run_tap(config, state=base.state, streams=MEMBER_STREAMS)
    by_id = {r["id"]: r for r in run.records["members"]}
    assert set(by_id) == {changed, archived}
    assert by_id[changed]["merge_fields"]["FNAME"] == "Renamed"
    assert by_id[archived]["status"] == "archived"
    tag_rows = [t for t in run.records["member_tags"] if t["member_id"] == changed]
    assert by_id[changed]["tags_count"] >= 55
    assert len(tag_rows) == by_id[changed]["tags_count"], "member_tags carries all tags, not only 50"
    assert all(t["date_added"] for t in tag_rows)
    assert {f"T{i:02d}" for i in range(55)} <= {t["name"] for t in tag_rows}

    (recon,) = run.records["member_reconciliation"]
    assert recon["missing_members"] == 1
    assert recon["id_sweep"] is True
    snapshot = {r["id"] for r in run.records["member_ids"]}
    assert erased not in snapshot
    assert snapshot == set(_all_member_ids(tools, sandbox, list_id))
    assert changed in snapshot
    assert archived in snapshot
    assert run.state["bookmarks"]["member_reconciliation"]["pending_sweeps"] == {}


def test_without_member_ids_selected_no_snapshot_is_owed(sandbox: Any, tools: Any) -> None:
    """meltano.yml deselects member_ids for the engagement job: a sweep the reconciliation asks for
    then leaves no snapshot owed in the state (nothing would ever pay it)."""
    list_id = sandbox.info["mailchimp"]["list_id"]
    config = tools.tap_config(sandbox)
    streams = MEMBER_STREAMS - {"member_ids"}
    base = tools.run_tap(config, streams=streams)
    gone = next(r["id"] for r in base.records["members"] if r["status"] == "subscribed")
    members = f"{sandbox.mailchimp_api_url}/lists/{list_id}/members"
    deleted = tools.mc_session(sandbox).post(f"{members}/{gone}/actions/delete-permanent")
    assert deleted.status_code == 204
    time.sleep(1.1)

    run = tools.run_tap(config, state=base.state, streams=streams)
    (recon,) = run.records["member_reconciliation"]
    assert recon["missing_members"] == 1
    assert run.records["member_ids"] == []
    assert run.state["bookmarks"]["member_reconciliation"].get("pending_sweeps", {}) == {}


def test_bursts_of_changes_in_consecutive_seconds_are_all_read_with_small_pages(
    sandbox: Any, tools: Any
) -> None:
    """Keyset pages skip only rows of the last second already read, never those of the second before.

    `since_last_changed` is exclusive: the next page's cursor is one second before the last row read,
    so the rows read *at* that second are not in the next answer and must not be counted in the offset
    (they were, and bursts of changes across consecutive seconds lost members with small pages).
    """
    list_id = sandbox.info["mailchimp"]["list_id"]
    config = tools.tap_config(sandbox)
    base = tools.run_tap(config, streams={"members"})
    session = tools.mc_session(sandbox)
    members = f"{sandbox.mailchimp_api_url}/lists/{list_id}/members"
    subscribed = sorted(r["id"] for r in base.records["members"] if r["status"] == "subscribed")[:24]
    for n, member_id in enumerate(subscribed):
        assert session.patch(f"{members}/{member_id}", json={"merge_fields": {"LNAME": f"Burst {n}"}}).ok
        if n % 6 == 5:
            time.sleep(0.4)  # the burst spans several seconds
    time.sleep(1.1)
    run = tools.run_tap(tools.tap_config(sandbox, page_size=3), state=base.state, streams={"members"})
    assert {r["id"] for r in run.records["members"]} == set(subscribed)
