"""Cached lookups shared by every sink: customer users by email, tags by name, campaigns by code.

Each directory answers many records with one filtered list call (``filter[email]=a,b,c``,
``filter[code]=x,y``) and caches the answer for the rest of the run, so the target makes about one
lookup request per 50 distinct emails instead of one GET per record.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from oromc_common.oro import (
    OroClientError,
    build_filters,
    parse_oro_datetime,
    relationship_ids,
)

from target_orocommerce.client import ALREADY_APPLIED, OroWriter

CAMPAIGN_CODE_RE = re.compile(r"^[a-zA-Z0-9_\-]{1,20}$")
TAG_NAME_MAX = 50
CAMPAIGN_NAME_MAX = 100


def normalize_email(value: Any) -> str | None:
    """Lower-cased, trimmed email, or None when it does not look like one."""
    if not isinstance(value, str):
        return None
    email = value.strip().lower()
    if "@" not in email or " " in email or len(email) > 254:
        return None
    return email


def _parse_dt(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return parse_oro_datetime(value)
        except ValueError:
            return None
    return None


@dataclass
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

    @classmethod
    def from_resource(cls, resource: Mapping[str, Any]) -> CustomerUserView:
        """Build from a ``customerusers`` resource object."""
        attrs = resource.get("attributes") or {}
        rels = resource.get("relationships") or {}
        tags = relationship_ids(resource, "tags") if "tags" in rels else None
        return cls(
            id=str(resource.get("id")),
            email=str(attrs.get("email") or "").strip().lower(),
            first_name=attrs.get("firstName"),
            last_name=attrs.get("lastName"),
            updated_at=_parse_dt(attrs.get("updatedAt")),
            is_guest=bool(attrs.get("isGuest")),
            tag_ids=tags,
            address_ids=relationship_ids(resource, "addresses"),
        )


class CustomerUserDirectory:
    """Customer users by email, fetched in chunks with ``filter[email]=a,b,...`` and cached."""

    def __init__(self, writer: OroWriter, chunk_size: int = 50) -> None:
        self.writer = writer
        self.chunk_size = max(1, chunk_size)
        self._cache: dict[str, CustomerUserView | None] = {}
        self._lock = threading.Lock()
        self.array_filter_supported = True
        self.lookup_calls = 0

    def resolve(self, emails: Iterable[str]) -> dict[str, CustomerUserView | None]:
        """Map each (normalized) email to its customer user, or None when Oro has none."""
        wanted = list(dict.fromkeys(emails))
        with self._lock:
            missing = [e for e in wanted if e not in self._cache]
        if missing:
            found = self._fetch(missing)
            with self._lock:
                for email in missing:
                    self._cache[email] = found.get(email)
        with self._lock:
            return {e: self._cache.get(e) for e in wanted}

    def remember(self, view: CustomerUserView) -> None:
        """Store a customer user the target just created or changed."""
        with self._lock:
            self._cache[view.email] = view

    def forget(self, email: str) -> None:
        """Drop a cached answer (before re-checking whether a create landed)."""
        with self._lock:
            self._cache.pop(email, None)

    def _fetch(self, emails: Sequence[str]) -> dict[str, CustomerUserView]:
        plain = [e for e in emails if "," not in e]
        single = [e for e in emails if "," in e]
        found: dict[str, list[CustomerUserView]] = {}
        chunks = [plain[i : i + self.chunk_size] for i in range(0, len(plain), self.chunk_size)]
        if self.array_filter_supported and chunks:
            results = self.writer.run_parallel([functools.partial(self._list, c) for c in chunks])
            for chunk, result in zip(chunks, results, strict=True):
                if isinstance(result, OroClientError) and result.status == 400 and len(chunk) > 1:
                    # The instance does not accept a list for filter[email]: one email per call.
                    self.array_filter_supported = False
                    single.extend(chunk)
                elif isinstance(result, BaseException):
                    raise result
                else:
                    for view in result:
                        found.setdefault(view.email, []).append(view)
        elif chunks:
            single.extend(plain)
        if single:
            results = self.writer.run_parallel([functools.partial(self._list, [e]) for e in single])
            for result in results:
                if isinstance(result, BaseException):
                    raise result
                for view in result:
                    found.setdefault(view.email, []).append(view)
        return {email: _pick(views) for email, views in found.items()}

    def _list(self, emails: Sequence[str]) -> list[CustomerUserView]:
        self.lookup_calls += 1
        params = build_filters({"email": list(emails)})
        params["page[size]"] = str(max(10, 2 * len(emails)))
        wanted = set(emails)
        views = [CustomerUserView.from_resource(r) for r in self.writer.iter_resources("customerusers", params)]
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
            if tag_id not in self._by_id:
                self._load_locked()
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
        for i in range(0, len(missing), self.chunk_size):
            chunk = missing[i : i + self.chunk_size]
            params = build_filters({"code": chunk})
            params["page[size]"] = str(max(10, len(chunk)))
            found = {}
            for res in self.writer.iter_resources("campaigns", params):
                view = _campaign_view(res)
                found[view.code] = view
            with self._lock:
                for code in chunk:
                    self._cache[code] = found.get(code)
        with self._lock:
            return {c: self._cache.get(c) for c in wanted}

    def remember(self, view: CampaignView) -> None:
        """Cache a campaign the target just wrote."""
        with self._lock:
            self._cache[view.code] = view

    def upsert(self, code: str, attributes: Mapping[str, Any]) -> tuple[CampaignView, str]:
        """Create or update the campaign with ``code``; returns (view, "created"|"updated"|"unchanged")."""
        current = self.resolve([code])[code]
        if current is not None:
            changes = {k: v for k, v in attributes.items() if _campaign_attr(current, k) != v}
            if not changes:
                return current, "unchanged"
            body = {"data": {"type": "campaigns", "id": current.id, "attributes": changes}}
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
    return {"name": view.name, "description": view.description, "startDate": view.start_date}.get(name)


def _campaign_view(resource: Mapping[str, Any]) -> CampaignView:
    attrs = resource.get("attributes") or {}
    return CampaignView(
        id=str(resource.get("id")),
        code=str(attrs.get("code") or ""),
        name=attrs.get("name"),
        description=attrs.get("description"),
        start_date=attrs.get("startDate"),
    )
