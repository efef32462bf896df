"""Cached lookups shared by every sink: customer users by email, tags by name, campaigns by code.

Each directory answers many records with one filtered list call (``filter[email]=a,b,c``,
``filter[code]=x,y``) and caches the answer for the rest of the run, so the target makes about one
lookup request per 50 distinct emails instead of one GET per record.
"""

from __future__ import annotations

import functools
import math
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from oromc_common.dates import parse_utc
from oromc_common.diskmap import DiskMap
from oromc_common.oro import (
    OroClientError,
    build_filters,
    relationship_ids,
)

from target_orocommerce.client import ALREADY_APPLIED, PLANNED_ID, OroWriter

CAMPAIGN_CODE_RE = re.compile(r"^[a-zA-Z0-9_\-]{1,20}$")
TAG_NAME_MAX = 50
CAMPAIGN_NAME_MAX = 100


@dataclass(slots=True)
class CustomerUserView:
    """What the target needs to know about one Oro customer user."""

    id: str
    email: str
    first_name: str | None
    last_name: str | None
    updated_at: datetime | None
    is_guest: bool
    tag_ids: list[str] | None  # None: tagging is not enabled for customer users
    address_ids: list[str] = field(default_factory=list)
    enabled: bool = True
    # Attributes asked for by name (e.g. the consent custom field): absent key = not in the resource.
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_resource(cls, resource: Mapping[str, Any], extra_fields: Sequence[str] = ()) -> CustomerUserView:
        """Build from a ``customerusers`` resource object."""
        attrs = resource.get("attributes") or {}
        rels = resource.get("relationships") or {}
        tags = relationship_ids(resource, "tags") if "tags" in rels else None
        return cls(
            id=str(resource.get("id")),
            email=str(attrs.get("email") or "").strip().lower(),
            first_name=attrs.get("firstName"),
            last_name=attrs.get("lastName"),
            updated_at=parse_utc(attrs.get("updatedAt")),
            is_guest=bool(attrs.get("isGuest")),
            tag_ids=tags,
            address_ids=relationship_ids(resource, "addresses"),
            enabled=attrs.get("enabled") is not False,
            extra={name: attrs[name] for name in extra_fields if name in attrs},
        )

    def row(self) -> tuple[Any, ...]:
        """The view as a plain tuple (what :class:`~oromc_common.diskmap.DiskMap` stores)."""
        updated = None if self.updated_at is None else self.updated_at.isoformat()
        tags = None if self.tag_ids is None else list(self.tag_ids)
        return (self.id, self.email, self.first_name, self.last_name, updated, self.is_guest,
                tags, list(self.address_ids), self.enabled, dict(self.extra))  # fmt: skip

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> CustomerUserView:
        """The view :meth:`row` made the tuple of (its own lists and dict: a copy)."""
        uid, email, first, last, updated, guest, tags, addresses, enabled, extra = row
        when = None if updated is None else datetime.fromisoformat(updated)
        tag_ids = None if tags is None else list(tags)
        return cls(uid, email, first, last, when, guest, tag_ids, list(addresses), enabled, dict(extra))


def _view(row: Sequence[Any] | None) -> CustomerUserView | None:
    return None if row is None else CustomerUserView.from_row(row)


class CustomerUserDirectory:
    """Customer users by email, cached for the run, fetched as cheaply as the instance allows.

    Oro accepts a comma list (``filter[email]=a,b,c``) only where the filter is configured with
    ``allow_array``; elsewhere the comma list is silently taken as one literal email and matches
    nothing (200, empty). So the directory *probes* once: after the first email found with a plain
    filter it asks ``filter[email]=<it>,<it>``; a hit means lists work (one call per 50 emails from
    then on). Without lists it looks emails up one by one (bounded concurrency) until that has cost
    as many calls as reading the whole customer-user table would (``ceil(total / 1000)`` pages with a
    sparse fieldset, total from ``X-Include: totalCount``), and then loads that index once: never
    more than about twice the cheaper of the two strategies.

    What it knows is kept on disk (:class:`~oromc_common.diskmap.DiskMap`, one row a customer user):
    as Python objects a customer user took ~0.9 KB, ~0.9 GB for a shop of a million. A view handed
    out is a copy: whoever changes one in Oro calls :meth:`store` (or :meth:`remember` for a new
    one or a new email) so that later answers see the change.
    """

    INDEX_FIELDS = "email,firstName,lastName,updatedAt,isGuest,enabled,tags"

    def __init__(
        self,
        writer: OroWriter,
        chunk_size: int = 50,
        index_page_size: int = 1000,
        extra_fields: Sequence[str] = (),
    ) -> None:
        self.writer = writer
        self.chunk_size = max(1, chunk_size)
        self.index_page_size = index_page_size
        self.extra_fields = tuple(extra_fields)
        # email -> row of its customer user (None: Oro has none); id -> row; the index (email -> row)
        self._cache = DiskMap(prefix="oromc-customer-users-")
        self._by_id = DiskMap(prefix="oromc-customer-user-ids-")
        self._index: DiskMap | None = None
        self._lock = threading.RLock()
        self._fetch_lock = threading.Lock()
        self.array_filter_supported: bool | None = None
        self.index_loaded = False
        self.single_lookups = 0
        self._total: int | None = None

    def resolve(self, emails: Iterable[str]) -> dict[str, CustomerUserView | None]:
        """Map each (normalized) email to its customer user, or None when Oro has none."""
        wanted = list(dict.fromkeys(emails))
        with self._fetch_lock:
            with self._lock:
                missing = [e for e in wanted if e not in self._cache]
            if missing:
                found = self._fetch(missing)
                with self._lock:
                    for email in missing:
                        view = found.get(email)
                        self._cache[email] = None if view is None else view.row()
        with self._lock:
            return {e: _view(self._cache.get(e)) for e in wanted}

    def resolve_ids(self, ids: Iterable[str]) -> dict[str, CustomerUserView | None]:
        """Map customer-user ids to customer users (None when Oro has none): one call per 50 ids.

        ``filter[id]`` takes a comma list in every Oro version (the identifier filter allows arrays).
        """
        wanted = list(dict.fromkeys(ids))
        with self._fetch_lock:
            with self._lock:
                missing = [i for i in wanted if i not in self._by_id]
            chunks = [missing[i : i + self.chunk_size] for i in range(0, len(missing), self.chunk_size)]
            found: dict[str, CustomerUserView] = {}
            for result in self.writer.run_parallel([functools.partial(self._list_ids, c) for c in chunks]):
                if isinstance(result, BaseException):
                    raise result
                found.update({v.id: v for v in result})
            with self._lock:
                for user_id in missing:
                    view = found.get(user_id)
                    self._by_id[user_id] = None if view is None else view.row()
                    if view is not None:
                        self._cache.setdefault(view.email, view.row())
        with self._lock:
            return {i: _view(self._by_id.get(i)) for i in wanted}

    def _list_ids(self, ids: Sequence[str]) -> list[CustomerUserView]:
        params = build_filters({"id": list(ids)})
        params["page[size]"] = str(max(10, len(ids)))
        return [
            CustomerUserView.from_resource(r, self.extra_fields)
            for r in self.writer.iter_resources("customerusers", params)
        ]

    def remember(self, view: CustomerUserView) -> None:
        """Store a customer user the target just created or gave a new email: the answer for its
        email and its id from now on."""
        row = view.row()
        with self._lock:
            self._cache[view.email] = row
            self._by_id[view.id] = row

    def store(self, view: CustomerUserView) -> None:
        """Keep the changes made to a customer user handed out (names, tags, consent), wherever it
        is the answer: for its id, and for its email when it is that email's answer (a registered
        user is the answer for an email a guest shares)."""
        row = view.row()
        with self._lock:
            self._by_id[view.id] = row
            held = self._cache.get(view.email)
            if held is not None and held[0] == view.id:
                self._cache[view.email] = row

    def forget(self, email: str) -> None:
        """Drop a cached answer (before re-checking whether a create landed; an old email after a
        change): asked again, Oro answers, or once the index is loaded, nobody."""
        with self._lock:
            self._cache.pop(email, None)
            if self._index is not None:
                self._index.pop(email, None)

    # -- strategies -----------------------------------------------------------------------
    def _fetch(self, emails: list[str]) -> dict[str, CustomerUserView]:
        if self.index_loaded:
            return self._from_index(emails)  # the index holds every customer user: a miss is a miss
        found: dict[str, CustomerUserView] = {}
        pending = list(emails)
        if self.array_filter_supported is None:
            pending = self._probe(pending, found)
        if not pending:
            return found
        if self.array_filter_supported:
            listable = [e for e in pending if "," not in e]
            chunks = [listable[i : i + self.chunk_size] for i in range(0, len(listable), self.chunk_size)]
            self._collect(self.writer.run_parallel([functools.partial(self._list, c) for c in chunks]), found)
            pending = [e for e in pending if "," in e]
        elif self._index_is_cheaper(len(pending)):
            self._load_index()
            return self._from_index(pending) | found
        self.single_lookups += len(pending)
        self._collect(self.writer.run_parallel([functools.partial(self._list, [e]) for e in pending]), found)
        return found

    def _probe(self, pending: list[str], found: dict[str, CustomerUserView]) -> list[str]:
        """Single lookups until one email exists, then test whether a comma list finds it."""
        while pending:
            email = pending.pop(0)
            self.single_lookups += 1
            views = self._list([email])
            if views:
                found[email] = _pick(views)
                if "," in email:
                    continue
                again = self._list([email, email])
                self.array_filter_supported = any(v.email == email for v in again)
                break
        return pending

    def _index_is_cheaper(self, upcoming: int) -> bool:
        if self._total is None:
            response = self.writer.call(
                "GET", "customerusers", params={"page[size]": "1", "fields[customerusers]": "email"},
                headers={"X-Include": "totalCount"},
            )
            header = getattr(response, "headers", {}).get("X-Include-Total-Count")
            self._total = int(header) if header and str(header).isdigit() else -1
        if self._total < 0:
            return False
        pages = -(-self._total // self.index_page_size)
        return self.single_lookups + upcoming > pages

    def _from_index(self, emails: Iterable[str]) -> dict[str, CustomerUserView]:
        index = self._index
        if index is None:
            return {}
        return {e: CustomerUserView.from_row(row) for e in emails if (row := index.get(e)) is not None}

    def _load_index(self) -> None:
        """Every customer user into the index, per email the one :func:`_pick` prefers. What the run
        already knows (users written or looked up before) stays the answer for its email."""
        fields = ",".join([self.INDEX_FIELDS, *self.extra_fields])
        params = {"page[size]": str(self.index_page_size), "sort": "id", "fields[customerusers]": fields}
        best = DiskMap(prefix="oromc-customer-user-index-")
        try:
            self._index_into(best, params)
        except OroClientError as exc:
            best.close()
            if exc.status != 400:
                raise
            # No "tags" field (tagging not enabled for customer users): ask without it.
            params["fields[customerusers]"] = fields.replace(",tags", "")
            best = DiskMap(prefix="oromc-customer-user-index-")
            self._index_into(best, params)
        self._index = best
        self.index_loaded = True

    def _index_into(self, best: DiskMap, params: dict[str, str]) -> None:
        """Every customer user into ``best`` (per email the one :func:`_pick` prefers): the pages
        the total count announces, ``max_concurrency`` at a time in parallel (``page[number]``),
        then ``links.next`` from the last one (users added meanwhile). Each page's JSON is let go
        once read into views: all pages at once were ~2 KB a customer user (~220 MB at 110,000)."""
        pages = max(1, -(-(self._total or 0) // self.index_page_size))

        def page(number: int) -> dict[str, Any]:
            return self.writer.get_json("customerusers", {**params, "page[number]": str(number)})

        def keep(resources: Iterable[Any]) -> int:
            kept = 0
            for resource in resources:
                if isinstance(resource, dict):
                    view = CustomerUserView.from_resource(resource, self.extra_fields)
                    held = best.get(view.email)
                    if held is None or _pick([CustomerUserView.from_row(held), view]) is view:
                        best[view.email] = view.row()
                    kept += 1
            return kept

        read, last = 0, None
        step = self.writer.max_concurrency
        for first in range(1, pages + 1, step):
            numbers = range(first, min(pages, first + step - 1) + 1)
            docs = self.writer.run_parallel([functools.partial(page, n) for n in numbers])
            for doc in docs:
                if isinstance(doc, BaseException):
                    raise doc
                read += keep(doc.get("data") or [])
            last = docs[-1]
        next_link = ((last.get("links") or {}) if isinstance(last, dict) else {}).get("next")
        if isinstance(next_link, dict):
            next_link = next_link.get("href")
        if next_link and read >= pages * self.index_page_size:
            keep(self.writer.iter_resources(str(next_link)))

    @staticmethod
    def _collect(results: list[list[CustomerUserView] | BaseException], found: dict[str, CustomerUserView]) -> None:
        grouped: dict[str, list[CustomerUserView]] = {}
        for result in results:
            if isinstance(result, BaseException):
                raise result
            for view in result:
                grouped.setdefault(view.email, []).append(view)
        found.update({email: _pick(views) for email, views in grouped.items()})

    def _list(self, emails: Sequence[str]) -> list[CustomerUserView]:
        params = build_filters({"email": list(emails)})
        params["page[size]"] = str(max(10, 2 * len(emails)))
        wanted = set(emails)
        views = [
            CustomerUserView.from_resource(r, self.extra_fields)
            for r in self.writer.iter_resources("customerusers", params)
        ]
        return [v for v in views if v.email in wanted]


def _pick(views: list[CustomerUserView]) -> CustomerUserView:
    """Prefer a registered (non-guest) customer user; lowest id among equals."""
    return sorted(views, key=lambda v: (v.is_guest, int(v.id) if v.id.isdigit() else 0, v.id))[0]


class TagDirectory:
    """All Oro tags by name (case-insensitive) and id; loaded once, created on demand."""

    def __init__(self, writer: OroWriter) -> None:
        self.writer = writer
        self._by_name: dict[str, str] = {}
        self._by_id: dict[str, str] = {}
        self._loaded = False
        self._unknown: set[str] = set()
        self._lock = threading.Lock()

    def _load_locked(self) -> None:
        self._by_name.clear()
        self._by_id.clear()
        for tag in self.writer.iter_resources("tags", {"page[size]": "500"}):
            name = str((tag.get("attributes") or {}).get("name") or "")
            self._by_id[str(tag["id"])] = name
            self._by_name.setdefault(name.lower(), str(tag["id"]))
        self._loaded = True

    def name_of(self, tag_id: str) -> str | None:
        """Name of a tag id (None if unknown)."""
        with self._lock:
            if not self._loaded:
                self._load_locked()
            if tag_id not in self._by_id and tag_id not in self._unknown:
                self._load_locked()  # a tag created since the load
                if tag_id not in self._by_id:
                    self._unknown.add(tag_id)
            return self._by_id.get(tag_id)

    def find_or_create(self, name: str) -> str:
        """Id of the tag called ``name`` (case-insensitive), creating it when missing."""
        with self._lock:
            if not self._loaded:
                self._load_locked()
            tag_id = self._by_name.get(name.lower())
            if tag_id:
                return tag_id
            body = {"data": {"type": "tags", "attributes": {"name": name}}}
            self.writer.plan.add("tags", "create_tag", name)
            if self.writer.dry_run:  # a placeholder id, so the tag is planned once
                tag_id = f"{PLANNED_ID}tag:{name.lower()}"
                self._by_name[name.lower()] = tag_id
                self._by_id[tag_id] = name
                return tag_id

            def landed() -> bool:
                self._load_locked()
                return name.lower() in self._by_name

            try:
                response = self.writer.call("POST", "tags", body=body, verify=landed)
            except OroClientError as exc:
                if exc.status in {400, 409}:  # created meanwhile by someone else (unique name)
                    self._load_locked()
                    if name.lower() in self._by_name:
                        return self._by_name[name.lower()]
                raise
            if response is ALREADY_APPLIED:
                return self._by_name[name.lower()]
            data = response.json()["data"]  # type: ignore[union-attr]
            tag_id = str(data["id"])
            self._by_name[name.lower()] = tag_id
            self._by_id[tag_id] = name
            return tag_id


@dataclass
class CampaignView:
    """An Oro campaign that mirrors a Mailchimp campaign (``code`` = Mailchimp campaign id)."""

    id: str
    code: str
    name: str | None
    description: str | None
    start_date: str | None
    #: Every attribute Oro returned, custom fields included (e.g. the campaign results' ``mc_*``).
    attributes: dict[str, Any] = field(default_factory=dict)


class CampaignDirectory:
    """Oro campaigns by ``code``; created on demand for activities whose campaign was not synced."""

    def __init__(self, writer: OroWriter, chunk_size: int = 50) -> None:
        self.writer = writer
        self.chunk_size = chunk_size
        self._cache: dict[str, CampaignView | None] = {}
        self._lock = threading.Lock()

    def resolve(self, codes: Iterable[str]) -> dict[str, CampaignView | None]:
        """Map Mailchimp campaign ids to Oro campaigns (None when Oro has none yet)."""
        wanted = list(dict.fromkeys(codes))
        with self._lock:
            missing = [c for c in wanted if c not in self._cache]
        # ``filter[code]`` takes one value (Oro allows comma lists only where configured);
        # campaigns per run are few, so one call per new code, in parallel.
        results = self.writer.run_parallel([functools.partial(self._one, c) for c in missing])
        for code, result in zip(missing, results, strict=True):
            if isinstance(result, BaseException):
                raise result
            with self._lock:
                self._cache[code] = result
        with self._lock:
            return {c: self._cache.get(c) for c in wanted}

    def _one(self, code: str) -> CampaignView | None:
        params = {**build_filters({"code": code}), "page[size]": "10"}
        for res in self.writer.iter_resources("campaigns", params):
            view = _campaign_view(res)
            if view.code == code:
                return view
        return None

    def remember(self, view: CampaignView) -> None:
        """Cache a campaign the target just wrote."""
        with self._lock:
            self._cache[view.code] = view

    def upsert(
        self, code: str, attributes: Mapping[str, Any], plan_as: tuple[str, str] = ("campaigns", "update_campaign")
    ) -> tuple[CampaignView, str]:
        """Create or update the campaign with ``code``; returns (view, "created"|"updated"|"unchanged").

        ``plan_as``: the stream and action an update is planned (and counted) under.
        """
        current = self.resolve([code])[code]
        if current is not None:
            changes = {k: v for k, v in attributes.items() if not same_value(_campaign_attr(current, k), v)}
            if not changes:
                return current, "unchanged"
            body = {"data": {"type": "campaigns", "id": current.id, "attributes": changes}}
            self.writer.plan.add(*plan_as, code, fields=sorted(changes))
            if self.writer.dry_run:
                view = replace(
                    current,
                    name=changes.get("name", current.name),
                    description=changes.get("description", current.description),
                    start_date=changes.get("startDate", current.start_date),
                    attributes={**current.attributes, **changes},
                )
                self.remember(view)
                return view, "updated"
            response = self.writer.call("PATCH", f"campaigns/{current.id}", body=body)
            view = _campaign_view(response.json()["data"])  # type: ignore[union-attr]
            self.remember(view)
            return view, "updated"
        body = {
            "data": {
                "type": "campaigns",
                "meta": {"upsert": ["code"]},
                "attributes": {"code": code, **attributes},
            }
        }
        self.writer.plan.add("campaigns", "create_campaign", code, fields=sorted(attributes))
        if self.writer.dry_run:
            view = _campaign_view({"id": f"{PLANNED_ID}campaign:{code}", "attributes": {"code": code, **attributes}})
            self.remember(view)
            return view, "created"
        # Upsert by the unique code: a retry after a lost response updates instead of duplicating.
        response = self.writer.call("POST", "campaigns", body=body)
        view = _campaign_view(response.json()["data"])  # type: ignore[union-attr]
        self.remember(view)
        return view, "created"

    def ensure(self, code: str) -> CampaignView:
        """The Oro campaign for ``code``, creating a placeholder (named after the id) if missing."""
        current = self.resolve([code])[code]
        if current is not None:
            return current
        view, _ = self.upsert(code, {"name": f"Mailchimp campaign {code}"})
        return view


def _campaign_attr(view: CampaignView, name: str) -> Any:
    known = {"name": view.name, "description": view.description, "startDate": view.start_date}
    return known[name] if name in known else view.attributes.get(name)


def same_value(current: Any, wanted: Any) -> bool:
    """Whether Oro's ``current`` value already means ``wanted``.

    Numbers are compared by value: Oro returns money as a string with four decimals (``"12.5000"``)
    and a float column may not give back the last bit of a double.
    """
    if isinstance(wanted, bool) or not isinstance(wanted, int | float) or current is None:
        return bool(current == wanted)
    try:
        number = float(current)
    except (TypeError, ValueError):
        return False
    return math.isclose(number, float(wanted), rel_tol=1e-9, abs_tol=1e-9)


def _campaign_view(resource: Mapping[str, Any]) -> CampaignView:
    attrs = resource.get("attributes") or {}
    return CampaignView(
        id=str(resource.get("id")),
        code=str(attrs.get("code") or ""),
        name=attrs.get("name"),
        description=attrs.get("description"),
        start_date=attrs.get("startDate"),
        attributes=dict(attrs),
    )
