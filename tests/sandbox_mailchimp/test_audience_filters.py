"""Member collection filters and sorting (incremental extraction semantics)."""

from __future__ import annotations

from typing import Any


def test_since_last_changed_is_strict_and_before_inclusive(
    mc: Any, fresh: Any, sandbox: Any
) -> None:
    sandbox.advance_clock(60)
    doc = mc.add(fresh())
    lc = doc["last_changed"]
    uid = doc["unique_email_id"]
    assert (
        mc.get(mc.members, params={"since_last_changed": lc, "unique_email_id": uid}).json()[
            "total_items"
        ]
        == 0
    )
    assert (
        mc.get(mc.members, params={"before_last_changed": lc, "unique_email_id": uid}).json()[
            "total_items"
        ]
        == 1
    )


def test_window_sorted_by_last_changed(mc: Any, fresh: Any, sandbox: Any) -> None:
    sandbox.advance_clock(3600)
    start = mc.add(fresh())["last_changed"]
    sandbox.advance_clock(10)
    emails = []
    for _ in range(3):
        emails.append(mc.add(fresh())["email_address"])
        sandbox.advance_clock(2)
    body = mc.get(
        mc.members,
        params={
            "since_last_changed": start,
            "sort_field": "last_changed",
            "sort_dir": "ASC",
            "count": 100,
        },
    ).json()
    got = [m["email_address"] for m in body["members"]]
    assert got[:3] == emails
    stamps = [m["last_changed"] for m in body["members"]]
    assert stamps == sorted(stamps)
    desc = mc.get(
        mc.members,
        params={
            "since_last_changed": start,
            "sort_field": "last_changed",
            "sort_dir": "DESC",
            "count": 100,
        },
    ).json()
    assert [m["email_address"] for m in desc["members"]] == list(reversed(got))


def test_status_filter(mc: Any) -> None:
    for status in ("subscribed", "unsubscribed", "cleaned", "pending", "transactional", "archived"):
        body = mc.get(mc.members, params={"status": status, "count": 50}).json()
        assert all(m["status"] == status for m in body["members"])
        assert body["total_items"] > 0, status


def test_invalid_sort_field_and_status(mc: Any) -> None:
    assert mc.get(mc.members, params={"sort_field": "email"}).status_code == 400
    assert mc.get(mc.members, params={"status": "gone"}).status_code == 400
    assert mc.get(mc.members, params={"since_last_changed": "yesterday"}).status_code == 400


def test_unsubscribed_since_requires_status(mc: Any) -> None:
    assert (
        mc.get(mc.members, params={"unsubscribed_since": "2020-01-01T00:00:00+00:00"}).status_code
        == 400
    )
    ok = mc.get(
        mc.members,
        params={"status": "unsubscribed", "unsubscribed_since": "2000-01-01T00:00:00+00:00"},
    )
    assert ok.status_code == 200


def test_timestamp_opt_window(mc: Any, fresh: Any, sandbox: Any) -> None:
    sandbox.advance_clock(120)
    doc = mc.add(fresh())
    params = {
        "since_timestamp_opt": doc["timestamp_opt"],
        "unique_email_id": doc["unique_email_id"],
    }
    assert mc.get(mc.members, params=params).json()["total_items"] == 0
    params = {
        "before_timestamp_opt": doc["timestamp_opt"],
        "unique_email_id": doc["unique_email_id"],
    }
    assert mc.get(mc.members, params=params).json()["total_items"] == 1


def test_sort_by_timestamp_opt(mc: Any) -> None:
    body = mc.get(
        mc.members,
        params={
            "sort_field": "timestamp_opt",
            "sort_dir": "DESC",
            "count": 50,
            "status": "subscribed",
        },
    ).json()
    stamps = [m["timestamp_opt"] for m in body["members"]]
    assert stamps == sorted(stamps, reverse=True)


def test_vip_only(mc: Any, fresh: Any) -> None:
    doc = mc.add(fresh(), vip=True)
    body = mc.get(mc.members, params={"vip_only": "true", "count": 1000}).json()
    assert all(m["vip"] for m in body["members"])
    assert doc["id"] in {m["id"] for m in body["members"]}


def test_seed_contains_every_status_and_tags(mc: Any) -> None:
    tags = mc.get(f"/lists/{mc.list_id}/tag-search").json()
    assert tags["total_items"] >= 5
    tagged = mc.get(mc.members, params={"count": 100}).json()["members"]
    assert any(m["tags_count"] > 0 for m in tagged)


def test_sorted_and_unsorted_totals_agree(mc: Any) -> None:
    bound = "2026-01-01T00:00:00+00:00"
    for status in (None, "subscribed", "unsubscribed", "archived", "pending"):
        base = {"count": 1000, "since_last_changed": bound}
        if status:
            base["status"] = status
        plain = mc.get(mc.members, params=base).json()
        for direction in ("ASC", "DESC"):
            params = {**base, "sort_field": "last_changed", "sort_dir": direction}
            sorted_body = mc.get(mc.members, params=params).json()
            assert sorted_body["total_items"] == plain["total_items"], (status, direction)
            assert {m["id"] for m in sorted_body["members"]} == {m["id"] for m in plain["members"]}
            assert all(m["last_changed"] > bound for m in sorted_body["members"])


def test_before_timestamp_opt_excludes_unset(mc: Any) -> None:
    everyone = mc.get(mc.members, params={"count": 1}).json()["total_items"]
    params = {
        "before_timestamp_opt": "2100-01-01T00:00:00+00:00",
        "sort_field": "timestamp_opt",
        "count": 1000,
    }
    body = mc.get(mc.members, params=params).json()
    assert 0 < body["total_items"] < everyone  # pending/transactional members have no opt-in time
    assert all(m["timestamp_opt"] for m in body["members"])
