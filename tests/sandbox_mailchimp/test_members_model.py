"""`members.select_members` without HTTP: its fast paths answer what a plain scan answers."""

from __future__ import annotations

from typing import Any

import pytest
from oromc_sandbox.core.state import SandboxOptions
from oromc_sandbox.core.stores import new_state
from oromc_sandbox.mailchimp.members import MemberQuery, select_members


@pytest.fixture(scope="module")
def store() -> Any:
    return new_state(SandboxOptions(customers=150)).mailchimp


def _naive(store: Any, list_id: str, q: MemberQuery) -> list[dict[str, Any]]:
    recs = list(store.members[list_id].values())
    out = [
        r
        for r in recs
        if (r["status"] == q.status if q.status else r["status"] != "archived")
        and (not q.email_type or r["email_type"] == q.email_type)
        and (not q.vip_only or r["vip"])
        and all(
            r[attr] is not None and (lo is None or r[attr] > lo) and (hi is None or r[attr] <= hi)
            for attr, (lo, hi) in q.bounds.items()
        )
    ]
    if q.sort_attr:
        out.sort(key=lambda r: -1.0 if r[q.sort_attr] is None else r[q.sort_attr])
        if q.descending:
            out.reverse()
    return out


def test_every_path_matches_a_plain_scan(store: Any) -> None:
    list_id = store.default_list_id()
    times = sorted(r["lc"] for r in store.members[list_id].values())
    mid, late = times[len(times) // 3], times[(2 * len(times)) // 3]
    queries = [
        MemberQuery(),
        MemberQuery(status="subscribed"),
        MemberQuery(status="unsubscribed", email_type="html"),
        MemberQuery(sort_field="last_changed"),
        MemberQuery(sort_field="last_changed", descending=True, status="subscribed"),
        MemberQuery(sort_field="last_changed", bounds={"lc": (mid, late)}),
        MemberQuery(sort_field="timestamp_opt", bounds={"lc": (mid, None)}, vip_only=False),
        MemberQuery(bounds={"lc": (None, late)}, email_type="text"),
    ]
    for query in queries:
        expected = _naive(store, list_id, query)
        assert expected or query.email_type, query  # the seed has members for each shape
        for offset, count in ((0, 10), (7, 25), (0, 1000)):
            page, total = select_members(store, list_id, query, offset, count)
            assert total == len(expected), query
            want = expected[offset : offset + count]
            if query.sort_attr:  # ties in the sort key may come in either order
                key = query.sort_attr
                assert [r[key] for r in page] == [r[key] for r in want], query
                assert {r["id"] for r in page} <= {r["id"] for r in expected}
            else:  # the audience's own order
                assert [r["id"] for r in page] == [r["id"] for r in want], query


def test_unique_email_id_finds_one_member(store: Any) -> None:
    list_id = store.default_list_id()
    rec = next(r for r in store.members[list_id].values() if r["status"] == "subscribed")
    page, total = select_members(
        store, list_id, MemberQuery(unique_email_id=rec["unique_email_id"]), 0, 10
    )
    assert (total, [r["id"] for r in page]) == (1, [rec["id"]])
    page, total = select_members(
        store,
        list_id,
        MemberQuery(status="cleaned", unique_email_id=rec["unique_email_id"]),
        0,
        10,
    )
    assert (total, page) == (0, [])
