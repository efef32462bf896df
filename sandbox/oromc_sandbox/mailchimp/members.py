"""Member queries (model, no HTTP): `GET /lists/{id}/members` filters, sorting and paging.

`MemberQuery` is the parsed query string; `select_members` answers one page and the total. Four
ways, cheapest first: one member by `unique_email_id`; a sorted view (bisect on the sort key, with
the time window on that key applied by bisect, cached per audience version); status-only filters
(totals from the audience counters); a full scan for everything else.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from .store import MailchimpStore
from .values import parse_ts

SORT_FIELDS = {"timestamp_opt": "ts_opt", "timestamp_signup": "ts_signup", "last_changed": "lc"}
ALL_STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional", "archived")
# Query parameter stem -> member attribute for the `since_<stem>` / `before_<stem>` windows.
WINDOWS = (("last_changed", "lc"), ("timestamp_opt", "ts_opt"))

Member = dict[str, Any]
Predicate = Callable[[Member], bool]


@dataclass(frozen=True)
class MemberQuery:
    """A validated member-list query (times as POSIX seconds)."""

    status: str | None = None
    email_type: str | None = None
    sort_field: str | None = None
    descending: bool = False
    bounds: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    unsubscribed_since: float | None = None
    since_last_campaign: bool = False
    vip_only: bool = False
    unique_email_id: str | None = None

    @property
    def sort_attr(self) -> str | None:
        return SORT_FIELDS.get(self.sort_field or "")


class SortedView:
    """Members sorted by one time attribute (unset first), with per-status key lists for counting."""

    def __init__(self, recs: list[Member], attr: str) -> None:
        self.recs = recs
        self.keys: list[float] = [-1.0 if r[attr] is None else r[attr] for r in recs]
        self.by_status: dict[str, list[float]] = {}
        for r, k in zip(recs, self.keys, strict=True):
            self.by_status.setdefault(r["status"], []).append(k)

    def count(self, statuses: Iterable[str], lo_key: float | None, hi_key: float | None) -> int:
        total = 0
        for status in statuses:
            keys = self.by_status.get(status, [])
            lo_i = bisect.bisect_right(keys, lo_key) if lo_key is not None else 0
            hi_i = bisect.bisect_right(keys, hi_key) if hi_key is not None else len(keys)
            total += max(hi_i - lo_i, 0)
        return total


def sorted_view(store: MailchimpStore, list_id: str, attr: str) -> SortedView:
    """Cached until the audience changes; a rebuild re-sorts the previous order (nearly sorted)."""
    aud = store.audiences[list_id]
    cached = aud.sort_cache.get(attr)
    if cached is not None and cached[0] == aud.version:
        view: SortedView = cached[1]
        return view
    members = store.members[list_id]
    if cached is not None and cached[2] == aud.membership_version:  # noqa: SIM108 - two cases, clearer apart
        recs = cached[1].recs  # same records, some keys moved: Timsort on a nearly sorted list
    else:
        recs = list(members.values())
    recs.sort(key=lambda r: -1.0 if r[attr] is None else r[attr])
    view = SortedView(recs, attr)
    aud.sort_cache[attr] = (aud.version, view, aud.membership_version)
    return view


def _above(attr: str, bound: float) -> Predicate:
    def pred(r: Member) -> bool:
        return r[attr] is not None and r[attr] > bound

    return pred


def _at_most(attr: str, bound: float) -> Predicate:
    def pred(r: Member) -> bool:
        return r[attr] is not None and r[attr] <= bound

    return pred


def predicates(store: MailchimpStore, list_id: str, query: MemberQuery) -> list[Predicate]:
    """The filters of `query`, status first (archived members only when asked for by status).

    A time window on the sort key is left out: `select_members` applies it by bisect.
    """
    status = query.status
    preds: list[Predicate] = [
        (lambda r: r["status"] == status)
        if status is not None
        else (lambda r: r["status"] != "archived")
    ]
    if query.email_type:
        preds.append(lambda r: r["email_type"] == query.email_type)
    if query.vip_only:
        preds.append(lambda r: bool(r["vip"]))
    if query.unsubscribed_since is not None:
        unsub_ts = query.unsubscribed_since
        preds.append(lambda r: r["lc"] > unsub_ts)
    if query.since_last_campaign:
        last = parse_ts(store.list_stats(list_id).get("campaign_last_sent") or "")
        ts_last = last.timestamp() if last else 0.0
        preds.append(lambda r: r["lc"] > ts_last)
    for attr, (lo, hi) in query.bounds.items():
        if attr == query.sort_attr:
            continue
        if lo is not None:
            preds.append(_above(attr, lo))
        if hi is not None:
            preds.append(_at_most(attr, hi))
    return preds


def _all(preds: list[Predicate]) -> Predicate:
    if len(preds) == 1:
        return preds[0]

    def ok(r: Member) -> bool:
        return all(p(r) for p in preds)

    return ok


def _statuses(query: MemberQuery) -> list[str]:
    if query.status is not None:
        return [query.status]
    return [x for x in ALL_STATUSES if x != "archived"]


def _slice(matched: list[Member], offset: int, count: int) -> tuple[list[Member], int]:
    return matched[offset : offset + count], len(matched)


def _by_unique_id(
    store: MailchimpStore, list_id: str, uid: str, ok: Predicate, offset: int, count: int
) -> tuple[list[Member], int]:
    h = store.audiences[list_id].uid_index.get(uid)
    rec = store.members[list_id].get(h) if h else None
    return _slice([rec] if rec is not None and ok(rec) else [], offset, count)


def _sorted(
    store: MailchimpStore,
    list_id: str,
    query: MemberQuery,
    preds: list[Predicate],
    offset: int,
    count: int,
) -> tuple[list[Member], int]:
    attr = query.sort_attr
    assert attr is not None
    view = sorted_view(store, list_id, attr)
    lo_key: float | None = None
    hi_key: float | None = None
    if attr in query.bounds:
        lo, hi = query.bounds[attr]
        lo_key = -1.0 if lo is None else max(lo, -1.0)  # a bound excludes unset values
        hi_key = hi
    lo_i = bisect.bisect_right(view.keys, lo_key) if lo_key is not None else 0
    hi_i = bisect.bisect_right(view.keys, hi_key) if hi_key is not None else len(view.keys)
    indices = range(hi_i - 1, lo_i - 1, -1) if query.descending else range(lo_i, hi_i)
    window = (view.recs[i] for i in indices)
    ok = _all(preds)
    if len(preds) == 1:  # status only: count from the per-status key lists, page lazily
        total = view.count(_statuses(query), lo_key, hi_key)
        return list(islice(filter(ok, window), offset, offset + count)), total
    return _slice([r for r in window if ok(r)], offset, count)


def select_members(
    store: MailchimpStore, list_id: str, query: MemberQuery, offset: int, count: int
) -> tuple[list[Member], int]:
    """One page of the audience's members matching `query`, and how many match in all."""
    preds = predicates(store, list_id, query)
    if query.unique_email_id:
        return _by_unique_id(store, list_id, query.unique_email_id, _all(preds), offset, count)
    if query.sort_attr is not None:
        return _sorted(store, list_id, query, preds, offset, count)
    members = store.members[list_id].values()
    if len(preds) == 1:  # status only: the total from the counters, the page by iteration
        counts = store.audiences[list_id].counts
        total = sum(counts.get(s, 0) for s in _statuses(query))
        return list(islice(filter(preds[0], members), offset, offset + count)), total
    ok = _all(preds)
    return _slice([r for r in members if ok(r)], offset, count)
