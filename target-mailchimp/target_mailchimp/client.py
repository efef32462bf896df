"""Audience-level Mailchimp operations for the target: what the audience holds, and bulk writes.

``Audience`` knows what Mailchimp already has for the contacts we sync (status, the merge fields we
map, the tags we own, ``last_changed``), either by one paged read of the whole audience (``fields``
trimmed, 1,000 per call, pages fetched concurrently) or, for small runs against big audiences, by one
GET per contact, or by one ``/batches`` job of those GETs (a handful of calls for any number of
contacts); ``auto`` picks whichever costs fewer calls. Writes go through ``MailchimpClient`` and
therefore through the shared connection governor.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import msgspec
from oromc_common.batches import SMALL_BATCH_CALLS, WORTH_A_BATCH, OperationResult
from oromc_common.diskmap import DiskMap
from oromc_common.governor import run_concurrently
from oromc_common.mailchimp import (
    MailchimpClient,
    PermanentMailchimpError,
    parts_of,
    subscriber_hash,
)

from target_mailchimp.mapping import MergeFieldSpec, owned, tag_key
from target_mailchimp.memberindex import MemberIndex

LOGGER = logging.getLogger("target_mailchimp.client")

PAGE_SIZE = 1000
# A window whose unknown contacts are more than this share of the audience reads the audience's pages
# instead of a /batches job of GETs: a big run's first window (the next ones need the read too), and
# a job of thousands of GETs runs longer at Mailchimp than the concurrent page reads: Mailchimp runs an
# account's jobs one at a time, ~5 ms an operation, while a page of 1,000 members takes ~0.8 s on
# each of the 8-10 connections, so the job of 2 % of the audience's members takes about as long as
# reading all of them (100,000 members: 2,000 GETs ~12 s, 100 pages ~10 s). Below it the job is the
# fewer calls for about the same time. (At 0.1, a 100,000-contact backfill's first window, 4,000
# contacts, 4.6 % of the audience, went as a 22 s job, and the audience was then read anyway for
# the source-id index.)
BATCH_LOOKUP_MAX_SHARE = 0.02
BATCH_SUBSCRIBE_MAX = 500
#: The parts of a batch-subscribe answer never read (the full bodies of the members written).
BATCH_SUBSCRIBE_UNREAD = "new_members,updated_members"


class _BatchSubscribeAnswer(msgspec.Struct):
    """What the target reads of a batch-subscribe answer; any other key is skipped while parsing."""

    errors: list[Any] = msgspec.field(default_factory=list)
    total_created: Any = None
    total_updated: Any = None
    error_count: Any = None


#: The answer's ``errors`` and totals, without building the members written; None when it is
#: empty or not JSON (as any other answer).
_batch_subscribe_answer = parts_of(_BatchSubscribeAnswer)

SEGMENT_MEMBERS_MAX = 500
MEMBER_TAGS_EMBEDDED_MAX = 50

BatchRunner = Callable[[list[dict[str, Any]]], Iterator[OperationResult]]
"""Runs operations as one ``/batches`` job and yields their results (``oromc_common.batches.run_batch``
with the run's poll settings)."""


@dataclass(slots=True)
class MemberState:
    """What Mailchimp holds for one member (only the parts the target manages)."""

    status: str
    merge: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)  # owned tags: tag_key(name) -> name
    last_changed: str | None = None
    tags_complete: bool = True
    oro_id: str | None = None  # the source id in the identity merge field ("" / None: none)
    timestamp_opt: str | None = None
    timestamp_signup: str | None = None


class Audience:
    """One Mailchimp audience (list) as seen by the target."""

    def __init__(
        self,
        client: MailchimpClient,
        list_id: str,
        merge_tags: Iterable[str],
        tag_prefix: str,
        lookup_mode: str = "auto",
        identity_tag: str | None = None,
    ) -> None:
        """Bind to ``list_id``; ``merge_tags`` are the merge fields the target maps;
        ``identity_tag`` holds the source id that identifies a member across email changes."""
        self.client = client
        self.list_id = list_id
        self.identity_tag = identity_tag
        self.merge_tags = sorted(set(merge_tags) | ({identity_tag} if identity_tag else set()))
        # source id -> subscriber hash (complete once loaded); on disk, as the member states
        self.by_id = DiskMap()
        self.tag_prefix = tag_prefix
        self.lookup_mode = lookup_mode
        self.members = MemberIndex()
        self._members_lock = threading.Lock()
        self._names: dict[
            str, str
        ] = {}  # interned tag names and statuses (many members share them)
        self.loaded = False
        self.estimated_size = 0
        self.lookup_calls = 0  # calls spent so far on per-contact lookups (single GETs, /batches jobs)
        self._segments: dict[str, int] | None = None
        self._tags_lock = threading.Lock()
        # True while nothing this run sent could have created a tag since the list was read.
        self._tags_fresh = False

    # -- discovery -------------------------------------------------------------------------
    @property
    def base(self) -> str:
        """Path of the list resource."""
        return f"/lists/{self.list_id}"

    def check_access(self) -> dict[str, Any]:
        """Read the list (fails fast on bad credentials or an unknown list id)."""
        info = self.client.get(self.base, {"fields": "id,name,stats"}) or {}
        stats = info.get("stats") or {}
        self.estimated_size = sum(
            int(stats.get(k) or 0) for k in ("member_count", "unsubscribe_count", "cleaned_count")
        )
        return info

    def merge_fields(self) -> dict[str, MergeFieldSpec]:
        """All merge fields of the audience by tag (paged with count=1000, not the default 10)."""
        items = self.client.paginate(
            f"{self.base}/merge-fields", "merge_fields", page_size=PAGE_SIZE
        )
        return {spec.tag: spec for spec in (MergeFieldSpec.from_api(i) for i in items)}

    def create_merge_field(self, tag: str, kind: str, name: str) -> MergeFieldSpec:
        """Create a merge field with the given type."""
        body: dict[str, Any] = {
            "tag": tag,
            "name": name,
            "type": kind,
            "required": False,
            "public": False,
        }
        try:
            created = self.client.post(f"{self.base}/merge-fields", body) or {}
        except PermanentMailchimpError as exc:
            # A retried create whose first answer was lost finds the field already there
            # (400 "already exists"): read it back, and use it when it has the type asked for.
            existing = self.merge_fields().get(tag) if exc.status == 400 else None
            if existing is None or existing.type != kind:
                raise
            return existing
        return MergeFieldSpec.from_api({"tag": tag, "type": kind, **created})

    def hide_merge_field(self, spec: MergeFieldSpec) -> MergeFieldSpec:
        """``PATCH`` a merge field to ``public: false`` (off the signup and profile forms); the
        update's schema requires ``name``, sent unchanged."""
        if spec.merge_id is None:
            msg = f"merge field {spec.tag} has no merge_id"
            raise ValueError(msg)
        body = {"name": spec.name or spec.tag, "public": False}
        changed = self.client.patch(f"{self.base}/merge-fields/{spec.merge_id}", body) or {}
        known = {"tag": spec.tag, "type": spec.type, "merge_id": spec.merge_id, "name": spec.name}
        return MergeFieldSpec.from_api({**known, **changed})

    # -- what Mailchimp has ----------------------------------------------------------------
    def _member_fields(self, prefix: str) -> str:
        parts = ["id", "status", "last_changed", "timestamp_opt", "timestamp_signup", "tags", "tags_count"]
        parts += [f"merge_fields.{t}" for t in self.merge_tags]
        return ",".join(f"{prefix}{p}" for p in parts)

    def state_from(self, item: dict[str, Any]) -> MemberState:
        names = self._names
        tags = {}
        for t in item.get("tags") or []:
            name = str(t.get("name", ""))
            if owned(name, self.tag_prefix):
                name = names.setdefault(name, name)
                low = tag_key(name)
                tags[names.setdefault(low, low)] = name
        count = item.get("tags_count")
        embedded = len(item.get("tags") or [])
        complete = not (isinstance(count, int) and count > embedded)
        merge = item.get("merge_fields") or {}
        status = str(item.get("status", ""))
        oro_id = str(merge.get(self.identity_tag) or "").strip() if self.identity_tag else ""
        return MemberState(
            status=names.setdefault(status, status),
            merge={t: merge.get(t) for t in self.merge_tags if t in merge},
            tags=tags,
            last_changed=item.get("last_changed"),
            tags_complete=complete,
            oro_id=oro_id or None,
            timestamp_opt=item.get("timestamp_opt") or None,
            timestamp_signup=item.get("timestamp_signup") or None,
        )

    def remember(self, hash_: str, state: MemberState) -> None:
        """Record what Mailchimp now holds for a member (and where its source id lives)."""
        with self._members_lock:
            self.members[hash_] = state
            if state.oro_id:
                self.by_id[state.oro_id] = hash_

    def forget(self, hash_: str) -> None:
        """A member that is gone (permanently deleted, or moved to another address)."""
        with self._members_lock:
            state = self.members.pop(hash_, None)
            if state is not None and state.oro_id and self.by_id.get(state.oro_id) == hash_:
                del self.by_id[state.oro_id]

    def find_id(self, oro_id: str) -> str | None:
        """The member carrying ``oro_id`` (complete answer only once the audience is loaded)."""
        return self.by_id.get(oro_id)

    def load_all(self, max_workers: int) -> None:
        """Read the whole audience (all statuses incl. archived) with trimmed fields.

        Pages are fetched concurrently and reduced to ``MemberState`` as they arrive, so raw pages
        never pile up in memory.
        """
        for status in (None, "archived"):
            params: dict[str, Any] = {"fields": self._member_fields("members.") + ",total_items"}
            if status:
                params["status"] = status
            self.client.each_page(
                f"{self.base}/members", self._load_page, params, PAGE_SIZE, max_workers
            )
        self.loaded = True

    def _load_page(self, page: dict[str, Any]) -> None:
        states = {str(item["id"]): self.state_from(item) for item in page.get("members") or []}
        with self._members_lock:
            for hash_, state in states.items():
                if self.members.setdefault(hash_, state) is state and state.oro_id:
                    self.by_id.setdefault(state.oro_id, hash_)

    def _get_one(self, hash_: str) -> MemberState | None:
        try:
            item = self.client.get(
                f"{self.base}/members/{hash_}", {"fields": self._member_fields("")}
            )
        except PermanentMailchimpError as exc:
            if exc.status == 404:
                return None
            raise
        return self.state_from(item or {})

    def lookup(
        self, hashes: list[str], max_workers: int, batch: BatchRunner | None = None
    ) -> dict[str, MemberState | None]:
        """Member state for each hash (None = not in the audience), choosing the cheaper read.

        Per-contact reads (one GET each, or with ``batch`` one ``/batches`` job of those GETs once
        there are ``WORTH_A_BATCH`` of them, up to ``BATCH_LOOKUP_MAX_SHARE`` of the audience) while
        their calls so far stay under one read of the whole audience; then that read, once (what the
        run reads later is then known too).
        """
        if not self.loaded:
            pages = math.ceil(self.estimated_size / PAGE_SIZE) + 2
            unknown = [h for h in hashes if h not in self.members]
            by_batch = (
                batch is not None
                and self.lookup_mode == "auto"
                and WORTH_A_BATCH <= len(unknown) <= BATCH_LOOKUP_MAX_SHARE * self.estimated_size
            )
            cost = SMALL_BATCH_CALLS if by_batch else len(unknown)
            if self.lookup_mode == "per_member" or (
                self.lookup_mode == "auto" and self.lookup_calls + cost < pages
            ):
                self.lookup_calls += cost
                if by_batch and batch is not None:
                    found = self._get_by_batch(unknown, batch, max_workers)
                else:
                    found = run_concurrently([partial(self._get_one, h) for h in unknown], max_workers)
                result: dict[str, MemberState | None] = {h: self.members.get(h) for h in hashes}
                for h, state in zip(unknown, found, strict=True):
                    result[h] = state
                    if state is not None:
                        self.remember(h, state)
                return result
            LOGGER.info(
                "Reading the audience once (about %d members) to know what Mailchimp has",
                self.estimated_size,
            )
            self.load_all(max_workers)
        return {h: self.members.get(h) for h in hashes}

    def _get_by_batch(
        self, hashes: list[str], batch: BatchRunner, max_workers: int
    ) -> list[MemberState | None]:
        """The members of ``hashes`` through one ``/batches`` job of member GETs (404: not a member);
        one without a usable result (a retryable error, missing) is read again with a single GET."""
        params = {"fields": self._member_fields("")}
        ops = [
            {"method": "GET", "path": f"{self.base}/members/{h}", "params": params, "operation_id": h}
            for h in hashes
        ]
        wanted = set(hashes)
        found: dict[str, MemberState | None] = {}
        for result in batch(ops):
            key, body = result.operation_id, result.body
            if key not in wanted or key in found:
                continue
            if result.status_code == 404:
                found[key] = None
            elif result.status_code < 400 and isinstance(body, dict) and body.get("status"):
                found[key] = self.state_from(body)
        again = [h for h in hashes if h not in found]
        states = run_concurrently([partial(self._get_one, h) for h in again], max_workers)
        found.update(zip(again, states, strict=True))
        return [found[h] for h in hashes]

    def complete_tags(self, hash_: str, state: MemberState) -> None:
        """Fetch all tags of a member whose embedded list was truncated (more than 50 tags)."""
        items = self.client.paginate(
            f"{self.base}/members/{hash_}/tags", "tags", page_size=PAGE_SIZE
        )
        state.tags = {
            tag_key(str(t["name"])): str(t["name"])
            for t in items
            if owned(str(t["name"]), self.tag_prefix)
        }
        state.tags_complete = True

    # -- writes ----------------------------------------------------------------------------
    def batch_subscribe(
        self, members: list[dict[str, Any]], *, update_existing: bool, skip_merge_validation: bool
    ) -> dict[str, Any]:
        """``POST /lists/{id}`` with up to 500 members; returns Mailchimp's response: its
        ``errors`` and totals. The members written (``new_members``, ``updated_members``: a full
        member body each, ~31 MB of objects for ten calls in flight) are never read: the answer is
        parsed without them, and asked for without them (``exclude_fields``, which Mailchimp
        documents on its GETs; an API that ignores it on this POST costs only the bytes)."""
        params = {"exclude_fields": BATCH_SUBSCRIBE_UNREAD}
        if skip_merge_validation:
            params["skip_merge_validation"] = "true"
        body = {"members": members, "update_existing": update_existing}
        if any(m.get("tags") for m in members):
            self.tags_may_have_been_created()
        return self.client.post(self.base, body, params=params, decode=_batch_subscribe_answer) or {}

    def put_member(
        self, hash_: str, body: dict[str, Any], *, skip_merge_validation: bool
    ) -> dict[str, Any]:
        """Upsert one member (``PUT``)."""
        params = {"skip_merge_validation": "true"} if skip_merge_validation else None
        return self.client.put(f"{self.base}/members/{hash_}", body, params=params) or {}

    def post_member_tags(self, hash_: str, tags: list[dict[str, str]], *, is_syncing: bool) -> None:
        """Add/remove tags of one member (``active``/``inactive``)."""
        if any(t.get("status") == "active" for t in tags):
            self.tags_may_have_been_created()
        self.client.post(
            f"{self.base}/members/{hash_}/tags", {"tags": tags, "is_syncing": is_syncing}
        )

    def segments(self, *, refresh: bool = False) -> dict[str, int]:
        """Static segments (tags) of the audience: ``tag_key(name) -> id`` (read once, then cached)."""
        if self._segments is None or refresh:
            items = self.client.paginate(
                f"{self.base}/segments",
                "segments",
                {"type": "static", "fields": "segments.id,segments.name"},
            )
            found = {tag_key(str(s["name"])): int(s["id"]) for s in items}
            with self._tags_lock:
                self._segments = {**(self._segments or {}), **found}
                self._tags_fresh = True
        return self._segments

    def tags_may_have_been_created(self) -> None:
        """Note a write that may create tags by name (inline tags, member tag writes, /batches)."""
        self._tags_fresh = False

    def _remember_tag(self, name: str, tag_id: int) -> None:
        self.segments()
        with self._tags_lock:
            self._segments = {**(self._segments or {}), tag_key(name): tag_id}

    def forget_tag(self, tag_id: int) -> None:
        """Drop a tag id Mailchimp no longer knows (e.g. deleted during the run) from the cache."""
        with self._tags_lock:
            if self._segments is not None:
                self._segments = {k: v for k, v in self._segments.items() if v != tag_id}

    def find_tag(self, name: str) -> int | None:
        """Id of the existing tag ``name`` (matched as Mailchimp does: case-insensitively), or None.

        One ``tag-search`` read (a prefix search, so longer names sharing the prefix are skipped).
        """
        key = tag_key(name)
        for item in self.client.paginate(
            f"{self.base}/tag-search", "tags", {"name": name.strip()}, page_size=PAGE_SIZE
        ):
            if tag_key(str(item.get("name", ""))) == key:
                tag_id = int(item["id"])
                self._remember_tag(name, tag_id)
                return tag_id
        return None

    def resolve_tags(
        self, names: Iterable[str], create: Iterable[str], max_workers: int
    ) -> dict[str, int | None]:
        """Ids of the tags ``names`` (by ``tag_key``); those in ``create`` are created when missing.

        The cached tag list goes stale during a run (batch subscribe and member tag writes create
        tags inline; another run or a person may add one, in any case), so a tag missing from it is
        looked up before it is created (one ``tag-search`` each, or one fresh read of the list when
        that is cheaper), and a create that Mailchimp refuses because the tag exists after all is
        answered by looking it up again. None = the tag could not be resolved: the caller writes
        those members' tags per member, which creates or matches the tag by name.
        """
        wanted = {tag_key(n): n for n in names}
        to_create = {tag_key(n) for n in create}
        known = self.segments()
        missing = [k for k in wanted if k not in known]
        if missing and not self._tags_fresh:
            pages = len(known) // PAGE_SIZE + 1
            if len(missing) > pages:
                self.segments(refresh=True)
            else:
                run_concurrently([partial(self.find_tag, wanted[k]) for k in missing], max_workers)
        known = self.segments()
        absent = [k for k in wanted if k not in known and k in to_create]
        run_concurrently([partial(self._create_tag, wanted[k]) for k in absent], max_workers)
        known = self.segments()
        return {k: known.get(k) for k in wanted}

    def _create_tag(self, name: str) -> int | None:
        """Create the (empty) tag ``name``; if Mailchimp says it exists, find it instead."""
        try:
            created = (
                self.client.post(f"{self.base}/segments", {"name": name, "static_segment": []})
                or {}
            )
        except PermanentMailchimpError as exc:
            LOGGER.info("Tag not created (%s %s); looking it up", exc.status, exc.reason)
            return self.find_tag(name)
        tag_id = int(created["id"])
        self._remember_tag(name, tag_id)
        return tag_id

    def segment_id(self, name: str) -> int | None:
        """Id of the tag ``name``, creating it (empty) when missing; None when it cannot be had."""
        return self.resolve_tags([name], [name], 1)[tag_key(name)]

    def update_segment(self, segment_id: int, add: list[str], remove: list[str]) -> dict[str, Any]:
        """Add/remove up to 500 emails each to/from a tag."""
        body = {"members_to_add": add, "members_to_remove": remove}
        return self.client.post(f"{self.base}/segments/{segment_id}", body) or {}

    def patch_member(self, hash_: str, body: dict[str, Any]) -> dict[str, Any]:
        """Change fields of one existing member (``PATCH``)."""
        return self.client.patch(f"{self.base}/members/{hash_}", body) or {}

    def change_email(self, hash_: str, email: str) -> dict[str, Any]:
        """Move a member to a new address (``PATCH email_address``): same member, status, tags,
        history and ``unique_email_id``; Mailchimp refuses an address that is already a member."""
        return self.patch_member(hash_, {"email_address": email})

    def archive(self, hash_: str) -> None:
        """Archive a member (``DELETE``)."""
        self.client.delete(f"{self.base}/members/{hash_}")

    def delete_permanent(self, hash_: str) -> None:
        """Permanently delete a member (GDPR erasure; cannot be re-imported)."""
        self.client.post(f"{self.base}/members/{hash_}/actions/delete-permanent")


def email_hash(email: str) -> str:
    """Subscriber hash of an email (trim + lower + md5)."""
    return subscriber_hash(email)
