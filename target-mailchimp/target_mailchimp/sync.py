"""The contacts sync: one batch window of records -> the fewest Mailchimp writes that make it true.

Per window: normalise and de-duplicate records, learn what Mailchimp has for them (``Audience.lookup``),
match each contact to its member (by the source id in the identity merge field first, then by email;
see the README, "Identity"), move members whose address changed at the source, diff, then write
concurrently through the governor: creates and updates with batch subscribe (500 per call, owned tag
additions inline), other tag changes per member or per tag (whichever costs fewer calls), archives
per member or, when many, as one ``/batches`` job, erasures per member.
Unchanged contacts cost no write. Per-record failures become rejects; only retry-exhausted or fatal
errors stop the run (so the window's state is never emitted).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from oromc_common.batches import BatchQueue, OperationResult, run_batch, submit_batch
from oromc_common.dryrun import ActionPlan
from oromc_common.governor import run_concurrently
from oromc_common.mailchimp import (
    ErrorKind,
    PermanentMailchimpError,
    classify_member_error,
    make_error,
)
from oromc_common.report import RunReport

from target_mailchimp.client import (
    BATCH_SUBSCRIBE_MAX,
    Audience,
    MemberState,
    email_hash,
)
from target_mailchimp.mapping import (
    ConsentDecision,
    MemberFacts,
    MergeFieldSpec,
    MergeValueError,
    coerce_merge_value,
    consent_change,
    desired_tags,
    is_valid_email,
    merge_values_equal,
    new_member_status,
    opt_in_times,
    tag_key,
)
from target_mailchimp.models import Contact, Rider, SyncSettings, TagDelta, Write
from target_mailchimp.pacing import BatchPace
from target_mailchimp.tags import (
    BATCHES_WHEN_DIRECT_CALLS_OVER,
    KIND,
    PENDING_WINDOWS,
    TagWrites,
    member_keys,
    person_keys,
)

LOGGER = logging.getLogger("target_mailchimp.sync")
EMAIL_CONFLICT = "email_conflict"
FORGOTTEN_EMAIL = "forgotten_email"  # the reason for "Forgotten Email Not Subscribed"
FORGOTTEN_NOT_RE_ADDED = "forgotten_not_re_added"
MAX_COLLECTED_ARCHIVES = 10_000
"""Archives collected across windows (:meth:`ContactSync.collect_archives`) submitted as one job
once this many are waiting: bounds what the run holds (a contact and a member state each)."""


def source_id(record: Mapping[str, Any]) -> str | None:
    """The source id (``customer_user_id``) a member is identified by, as text; None if absent."""
    value = record.get("customer_user_id")
    if value is None or isinstance(value, bool) or str(value).strip() == "":
        return None
    return str(value).strip()


def facts(state: MemberState, *, linked: bool = True) -> MemberFacts:
    """The parts of a member the consent rules look at."""
    return MemberFacts(
        status=state.status,
        timestamp_opt=state.timestamp_opt,
        timestamp_signup=state.timestamp_signup,
        last_changed=state.last_changed,
        linked=linked,
    )


@dataclass
class _Resolution:
    """What :meth:`ContactSync._resolve` decides for one window, and which member each identity claimed."""

    plan: list[tuple[Contact, MemberState | None, bool]] = field(default_factory=list)
    moves: list[tuple[Contact, str]] = field(default_factory=list)
    erasures: list[tuple[Contact, str, MemberState]] = field(default_factory=list)
    #: member hash -> the identity that claimed it
    taken: dict[str, str] = field(default_factory=dict)

    def claim(self, hash_: str, contact: Contact) -> bool:
        """False when another identity (source id, else address) already claimed this member."""
        identity = contact.oro_id or contact.hash
        return self.taken.setdefault(hash_, identity) == identity


class ContactSync(TagWrites):
    """Applies windows of ``contacts`` records to one audience."""

    def __init__(
        self,
        audience: Audience,
        specs: Mapping[str, MergeFieldSpec],
        settings: SyncSettings,
        report: RunReport,
        stream: str = "contacts",
        plan: ActionPlan | None = None,
        batches: BatchQueue | None = None,
    ) -> None:
        """``specs`` are the audience's merge fields for the mapped tags (and the identity tag);
        ``plan`` records the planned writes (and, in a dry run, stands in for them); ``batches``: the
        account's queue of ``/batches`` jobs not read yet, shared with the store sync (its own when
        not given)."""
        self.audience = audience
        self.specs = dict(specs)
        self.settings = settings
        self.report = report
        self.stream = stream
        self.workers = settings.max_connections
        self.identity = settings.identity_merge_field
        self._created_tag_deltas: list[TagDelta] = []
        #: hashes of the members whose inline tag additions batch subscribe applied (this window)
        self._inline_done: set[str] = set()
        self.pace = BatchPace(settings.batch_poll_seconds)
        self.defer_batches = False
        #: other GETs for the next lookup job of members, if a window makes one (``Rider``; the
        #: target's e-commerce store lookups of a trickle): called once, when the job is built
        self.riders: Callable[[], Rider | None] | None = None
        #: archives of disabled users collected across windows instead of run per window
        #: (:meth:`collect_archives`): submitted together by :meth:`flush_archives`
        self._collected: dict[str, tuple[Contact, MemberState]] | None = None
        self.batches = batches if batches is not None else BatchQueue()
        self.plan = (
            plan if plan is not None else ActionPlan("target-mailchimp", report, dry_run=False)
        )

    # -- preparation -----------------------------------------------------------------------
    def prepare(self, records: list[dict[str, Any]]) -> list[Contact]:
        """Normalise emails, reject malformed ones, merge duplicates, map merge values and tags.

        Records are the same contact when they carry the same source id (or, without one, the same
        address); an erase row with a source id needs no address.
        """
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        for record in records:
            raw = record.get("email")
            email = raw.strip() if isinstance(raw, str) else ""
            oro_id = source_id(record) if self.identity else None
            erase_by_id = record.get("erase") is True and oro_id is not None
            if erase_by_id:
                email = email if email and is_valid_email(email) else ""
            elif not email or not is_valid_email(email):
                hash_ = email_hash(email) if email else "none"
                self._reject(
                    self._key(record, hash_),
                    "invalid_email",
                    "email is missing or not a valid address",
                    "email",
                )
                continue
            if record.get("erase") is not True:
                self._drop_bad_merge_values(record, self._key(record, email_hash(email)))
            key = ("id", oro_id) if oro_id else ("email", email_hash(email))
            if key in merged:
                self._count("duplicates_merged")
                merged[key].update({k: v for k, v in record.items() if v is not None})
                merged[key]["email"] = email or merged[key]["email"]
            else:
                merged[key] = {**record, "email": email}
        contacts: list[Contact] = []
        for (kind, value), record in merged.items():
            email = record["email"]
            hash_ = email_hash(email) if email else ""
            contact = Contact(
                key=self._key(record, hash_ or "none"),
                email=email,
                hash=hash_,
                record=record,
                erase=record.get("erase") is True,
                oro_id=value if kind == "id" else None,
            )
            if not contact.erase:
                for tag, source in self.settings.merge_fields.items():
                    if source in record:  # bad values were dropped above
                        coerced = coerce_merge_value(self.specs[tag], source, record.get(source))
                        if coerced is not None:
                            contact.merge[tag] = coerced
                if self.identity and contact.oro_id:
                    contact.merge[self.identity] = contact.oro_id
                contact.tags = desired_tags(
                    record,
                    self.settings.tag_prefix,
                    self.settings.tag_fields,
                    self.settings.tag_rules,
                    self.settings.exclude_tag_prefixes,
                )
            contacts.append(contact)
        return contacts

    def _drop_bad_merge_values(self, record: dict[str, Any], key: str) -> None:
        """Leave out (and report as a field reject) every value that cannot fit its merge field; the
        contact, its status and its consent are still written. The record is changed in place, so a
        record seen twice (arrival check, then its window) is reported once."""
        for tag, source in self.settings.merge_fields.items():
            if source not in record:
                continue
            try:
                coerce_merge_value(self.specs[tag], source, record.get(source))
            except MergeValueError as exc:
                value = record.pop(source)
                self._reject_field(
                    key, "invalid_merge_value", source, value, f"{exc}; the field was left out"
                )

    # -- the window ------------------------------------------------------------------------
    def settle_if_unchanged(self, record: dict[str, Any], pending: set[str]) -> bool:
        """Fast path at record arrival, once the whole audience is known: a record that needs no
        write (and whose contact is not pending in the current window) is counted as unchanged (or
        rejected) right away, so windows fill only with contacts that need writes.

        Returns True when the record is settled and must not be added to the window.
        """
        if not self.audience.loaded or record.get("erase") is True:
            return False
        raw = record.get("email")
        hash_ = email_hash(raw.strip()) if isinstance(raw, str) and raw.strip() else ""
        if not hash_ or hash_ in pending or self.batches.touches(member_keys((hash_,))):
            return False
        state = self.audience.members.get(hash_)
        if state is None or state.status == "archived" or not state.tags_complete:
            return False
        oro_id = source_id(record) if self.identity else None
        if oro_id is not None and (
            state.oro_id != oro_id or self.audience.find_id(oro_id) != hash_
        ):
            return False  # a member to link, move or refuse: the window decides
        self._count("received")
        contacts = self.prepare([record])
        if not contacts:
            return True  # rejected (reason recorded by prepare)
        contact = contacts[0]
        decision = consent_change(record, facts(state), self.settings.consent)
        delta = TagDelta.of(contact, state)
        quiet = (
            decision.status is None
            and not decision.archive
            and not decision.blocked
            and not delta.add
            and not delta.remove
        )
        if quiet and not self._update(contact, state, None, force=False).item:
            self._count("unchanged")
            return True
        self._count("received", -1)
        return False

    def process(self, records: list[dict[str, Any]]) -> None:
        """Sync one window of records; returns when every write of the window is acknowledged."""
        self._count("received", len(records))
        # Earlier windows' /batches jobs stay queued at Mailchimp while this window is looked up and
        # written (so Mailchimp's queue never waits for it), except the ones that change one of its
        # members: their tags and statuses must be as those windows left them. At most
        # PENDING_WINDOWS stay unread (the oldest finished long ago: Mailchimp runs them in order).
        # The store's jobs queued meanwhile (a read-ahead backfill, readahead.py) do not count
        # towards that limit (reaching it still reads the store's jobs queued before ours first).
        while sum(job.kind == KIND for job in self.batches) >= PENDING_WINDOWS:
            self.batches.read_oldest()
        contacts = self.prepare(records)
        if not contacts:
            return
        states = self._lookup_window(contacts)
        plan, moves, erasures = self._resolve(contacts, states)
        for contact, _ in moves:
            self.plan.add(self.stream, "change_email", contact.key)
        if (
            self.plan.dry_run
        ):  # the moved members' further changes show once their address has moved
            self._count("dry_run_not_planned_after_email_change", len(moves))
        else:
            plan += self._run_moves(moves)
        incomplete = [(c.hash, s) for c, s, _ in plan if s is not None and not s.tags_complete]
        run_concurrently(
            [partial(self.audience.complete_tags, h, s) for h, s in incomplete], self.workers
        )
        writes: list[Write] = []
        archives: list[tuple[Contact, MemberState]] = []
        deltas: list[TagDelta] = []
        for contact, state, linked in plan:
            if state is None:
                writes.append(self._create(contact))
                continue
            if state.status == "archived":
                self._count("archived_skipped")  # archived members are never brought back
                continue
            decision = consent_change(
                contact.record, facts(state, linked=linked), self.settings.consent
            )
            self._note(decision)
            if decision.archive:
                archives.append((contact, state))
                continue
            update = self._update(contact, state, decision.status, force=False)
            delta = TagDelta.of(contact, state)
            if update.item:
                writes.append(update)
            if delta.add or delta.remove:
                deltas.append(delta)
            if not update.item and not (delta.add or delta.remove):
                self._count("unchanged")
        self._record_plan(writes, archives, deltas, erasures)
        if self.plan.dry_run:
            return
        self._created_tag_deltas = []
        self._inline_done = set()
        self._inline_tag_additions(writes, deltas)
        self._run_writes(writes)
        tag_deltas = self._tags_left(deltas) + self._created_tag_deltas
        archives = self._collect(archives)
        if (
            len(archives) > BATCHES_WHEN_DIRECT_CALLS_OVER
            and tag_deltas
            and self._tag_plan(tag_deltas)[0] == "batches"
            and {d.contact.hash for d in tag_deltas}.isdisjoint(c.hash for c, _ in archives)
        ):
            # both would be a /batches job: one job (Mailchimp runs an account's jobs one at a
            # time, each with ~2.5 s of queueing around its operations)
            self._tags_and_archives_by_batch(tag_deltas, archives)
        else:
            self._run_tags(tag_deltas)
            self._run_archives(archives)
        self._run_erasures(erasures)

    def _lookup_window(self, contacts: list[Contact]) -> dict[str, MemberState | None]:
        """The members at the window's addresses, once the jobs not read yet that change one of
        them (or a member found by its source id) have been read."""
        hashes = [c.hash for c in contacts if c.hash]
        if self._collected and self._names_collected(contacts):
            self._submit_collected()  # an archive collected for one of them goes first
        self.batches.settle(keys=member_keys(hashes))
        states = self.audience.lookup(hashes, self.workers, self._lookup_batch)
        if not self.audience.loaded and any(self._needs_index(c, states) for c in contacts):
            # Mailchimp cannot be searched by merge field: find members by their source id in one
            # read of the whole audience (see the README, "Identity", for when this happens).
            LOGGER.info("Reading the audience once to find members by their source id")
            self.audience.load_all(self.workers)
            states = {h: self.audience.members.get(h) for h in hashes}
        by_id = member_keys(
            h for c in contacts if c.oro_id is not None and (h := self.audience.find_id(c.oro_id))
        ) if self.audience.loaded and self.batches.pending else []
        if self.batches.touches(by_id):  # a member found by its source id (a moved address, an erasure)
            self.batches.settle(keys=by_id)
            states = {h: self.audience.members.get(h) for h in hashes}
        return states

    def _record_plan(
        self,
        writes: list[Write],
        archives: list[tuple[Contact, MemberState]],
        deltas: list[TagDelta],
        erasures: list[tuple[Contact, str, MemberState]],
    ) -> None:
        """One planned action per write (names and statuses only: no e-mail address, no value)."""
        for write in writes:
            fields = sorted(write.item.get("merge_fields") or {})
            status = write.item.get("status")
            if write.created:
                tags = len(write.item.get("tags") or [])
                self.plan.add(
                    self.stream,
                    "create",
                    write.contact.key,
                    status=status,
                    merge_fields=fields,
                    tags=tags,
                )
            elif status == "unsubscribed":
                self.plan.add(self.stream, "unsubscribe", write.contact.key, merge_fields=fields)
            else:
                self.plan.add(
                    self.stream, "update", write.contact.key, status=status, merge_fields=fields
                )
        for contact, state in archives:
            self.plan.add(self.stream, "archive", contact.key, status=state.status)
        for delta in deltas:
            self.plan.add(
                self.stream,
                "re-tag",
                delta.contact.key,
                add=sorted(delta.add),
                remove=sorted(delta.remove),
            )
        for contact, _, state in erasures:
            self.plan.add(
                self.stream,
                "erase",
                contact.key,
                status=state.status,
                mode=self.settings.erasure_mode,
            )

    def _lookup_batch(self, operations: list[dict[str, Any]]) -> Iterator[OperationResult]:
        """The members' lookup job (``_batch``) with the ``riders`` waiting for one: their results
        go to them once the job's results are read, the members' come back as without them."""
        ride, self.riders = self.riders, None
        rider = ride() if ride is not None else None
        if rider is None or not rider.operations:
            yield from self._batch(operations)
            return
        theirs = {str(op["operation_id"]) for op in rider.operations}
        results: list[OperationResult] = []
        for result in self._batch([*operations, *rider.operations]):
            if result.operation_id in theirs:
                results.append(result)
            else:
                yield result
        rider.apply(results)

    def _batch(self, operations: list[dict[str, Any]]) -> Iterator[OperationResult]:
        """One ``/batches`` job of ``operations`` with this run's poll settings: its results."""
        return run_batch(
            self.audience.client,
            operations,
            poll_seconds=self.settings.batch_poll_seconds,
            timeout_seconds=self.settings.batch_timeout_seconds,
            pace=self.pace,
        )

    def _needs_index(self, contact: Contact, states: Mapping[str, MemberState | None]) -> bool:
        """True when only the audience-wide source-id index can tell which member is the contact's:
        it has a source id and no member at its address already carries it. Not for an archived
        member at its address (not an erase row): archived members are never brought back, so
        nothing is written whichever member carries the id (an address change onto that archived
        member's address is then counted ``archived_skipped``, not rejected as ``email_conflict``)."""
        if contact.oro_id is None:
            return False
        state = states.get(contact.hash) if contact.hash else None
        if state is not None and state.status == "archived" and not contact.erase:
            return False
        return state is None or state.oro_id != contact.oro_id

    def _resolve(
        self, contacts: list[Contact], states: Mapping[str, MemberState | None]
    ) -> tuple[
        list[tuple[Contact, MemberState | None, bool]],
        list[tuple[Contact, str]],
        list[tuple[Contact, str, MemberState]],
    ]:
        """Each contact's member: ``(contact, state or None to create, linked)``, plus the members
        to move to a new address and the erasures. Conflicts are rejected here."""
        resolution = _Resolution()
        for contact in contacts:
            at_email = states.get(contact.hash) if contact.hash else None
            if contact.oro_id is None:  # no source id: the address is the identity
                self._resolve_by_address(resolution, contact, at_email)
            else:
                self._resolve_by_id(resolution, contact, contact.oro_id, at_email)
        return resolution.plan, resolution.moves, resolution.erasures

    def _resolve_by_address(
        self, resolution: _Resolution, contact: Contact, at_email: MemberState | None
    ) -> None:
        """A contact without a source id: its member is the one at its address (or a new one)."""
        if contact.erase:
            self._plan_erasure(contact, contact.hash if at_email else None, resolution.erasures)
        elif self._claim(resolution, contact.hash, contact):
            resolution.plan.append((contact, at_email, True))

    def _resolve_by_id(
        self, resolution: _Resolution, contact: Contact, oro_id: str, at_email: MemberState | None
    ) -> None:
        """A contact with a source id: the member carrying that id first, then the one at its address."""
        if self.audience.loaded:
            by_id = self.audience.find_id(oro_id)
        else:
            by_id = contact.hash if at_email is not None and at_email.oro_id == oro_id else None
        if contact.erase:
            if by_id is None and at_email is not None:
                self._count("erase_not_owned")  # a member without this source id: not ours
            self._plan_erasure(contact, by_id, resolution.erasures)
        elif by_id is not None and by_id != contact.hash:  # the address changed at the source
            if at_email is not None:
                self._conflict(contact, "the new address already belongs to another member")
            elif self._claim(resolution, by_id, contact) and self._claim(
                resolution, contact.hash, contact
            ):
                resolution.moves.append((contact, by_id))
        elif by_id is not None or at_email is None:  # its own member, or a new one
            if self._claim(resolution, contact.hash, contact):
                resolution.plan.append((contact, at_email, True))
        elif not at_email.oro_id:  # a member the source has not linked yet: link it
            if self._claim(resolution, contact.hash, contact):
                self._count("ids_linked")
                resolution.plan.append((contact, at_email, False))
        else:
            self._conflict(contact, "the address belongs to the member of another source id")

    def _claim(self, resolution: _Resolution, hash_: str, contact: Contact) -> bool:
        """Claim a member for the contact; a second identity claiming it in this window is a conflict."""
        if resolution.claim(hash_, contact):
            return True
        self._conflict(contact, "another contact of this window has the same address")
        return False

    def _conflict(self, contact: Contact, detail: str) -> None:
        self._reject(contact.key, EMAIL_CONFLICT, f"{detail}; nothing was merged", "email")

    def _plan_erasure(
        self, contact: Contact, hash_: str | None, erasures: list[tuple[Contact, str, MemberState]]
    ) -> None:
        state = self.audience.members.get(hash_) if hash_ else None
        archive = self.settings.erasure_mode == "archive"
        if state is None or (state.status == "archived" and archive):
            self._count("erase_noop")
            return
        if state.status == "cleaned" and archive:  # Mailchimp cannot archive a bounced member
            self._count("erase_not_archivable")
            return
        erasures.append((contact, str(hash_), state))

    def _note(self, decision: ConsentDecision) -> None:
        if decision.blocked:
            self._count("consent_blocked")
        if decision.counter:
            self._count(decision.counter)

    def _create(self, contact: Contact) -> Write:
        status = new_member_status(contact.record, self.settings.consent)
        item: dict[str, Any] = {
            "email_address": contact.email,
            "status": status,
            **opt_in_times(contact.record, status),
        }
        merge = {k: v for k, v in contact.merge.items() if v != ""}
        if merge:
            item["merge_fields"] = merge
        inline = bool(contact.tags) and not self.settings.is_syncing
        if inline:  # tags ride along for free; with is_syncing they go separately, flagged
            item["tags"] = sorted(contact.tags.values())
        new_state = MemberState(
            status=status,
            merge=merge,
            tags=dict(contact.tags) if inline else {},
            oro_id=contact.oro_id,
            timestamp_opt=item.get("timestamp_opt"),
            timestamp_signup=item.get("timestamp_signup"),
        )
        return Write(contact, item, created=True, new_state=new_state)

    def _update(
        self, contact: Contact, state: MemberState, status: str | None, *, force: bool
    ) -> Write:
        changed = {
            tag: value
            for tag, value in contact.merge.items()
            if not merge_values_equal(self.specs[tag], value, state.merge.get(tag))
        }
        times = opt_in_times(contact.record, status) if status else {}
        new_state = MemberState(
            status=status or state.status,
            merge={**state.merge, **changed},
            tags=state.tags,
            last_changed=state.last_changed,
            tags_complete=state.tags_complete,
            oro_id=contact.oro_id or state.oro_id,
            timestamp_opt=times.get("timestamp_opt", state.timestamp_opt),
            timestamp_signup=times.get("timestamp_signup", state.timestamp_signup),
        )
        if not changed and status is None and not force:
            return Write(contact, {}, created=False, new_state=new_state)
        # No status unless it changes: batch subscribe with update_existing keeps the member's status.
        item: dict[str, Any] = {"email_address": contact.email, **times}
        if status is not None:
            item["status"] = status
            self._count("consent_changes")
        if changed:
            item["merge_fields"] = changed
        return Write(contact, item, created=False, new_state=new_state)

    # -- address changes -------------------------------------------------------------------
    def _run_moves(
        self, moves: list[tuple[Contact, str]]
    ) -> list[tuple[Contact, MemberState | None, bool]]:
        """``PATCH email_address`` of members whose address changed at the source (before any other
        write of the window, which addresses them by their new address)."""

        def move(
            contact: Contact, old_hash: str
        ) -> tuple[Contact, MemberState | None, bool] | None:
            try:
                member = self.audience.change_email(old_hash, contact.email)
            except PermanentMailchimpError as exc:
                messages = " ".join(e.get("message", "") for e in exc.errors)
                if "email_address" in exc.error_fields and "already" in messages:
                    self._conflict(contact, "the new address already belongs to another member")
                else:
                    self._reject_error(contact, exc)
                return None
            old = self.audience.members.get(old_hash)
            self.audience.forget(old_hash)
            state = self.audience.state_from(member) if member.get("status") else old
            if state is not None:
                state.oro_id = state.oro_id or contact.oro_id
                if old is not None:
                    state.tags, state.tags_complete = old.tags, old.tags_complete
                self.audience.remember(contact.hash, state)
            self._count("email_changes")
            return contact, state, True

        done = run_concurrently([partial(move, c, h) for c, h in moves], self.workers)
        return [d for d in done if d is not None]

    # -- creates / updates -----------------------------------------------------------------
    def _inline_tag_additions(self, writes: list[Write], deltas: list[TagDelta]) -> None:
        """An existing member updated by batch subscribe anyway gets its owned tag additions in
        the same item (``tags`` without ``sync_tags`` adds them and keeps the member's other tags):
        no member tag write, no ``/batches`` operation. Only in ``auto`` without ``is_syncing``
        (batch subscribe cannot carry it). Removals still go as tag writes (``_tags_left``), as do
        the additions of a member whose item fails or is retried as a single ``PUT``."""
        if self.settings.is_syncing or self.settings.tag_write_mode != "auto":
            return
        by_hash = {d.contact.hash: d for d in deltas if d.add}
        for write in writes:
            delta = None if write.created else by_hash.get(write.contact.hash)
            if delta is not None and write.item:
                write.item["tags"] = sorted(delta.add)
                write.tags_inline = delta

    def _inline_tags_applied(self, write: Write) -> None:
        """Batch subscribe applied an item with inline tag additions: counted and remembered as a
        member tag write would be."""
        delta = write.tags_inline
        assert delta is not None
        self._tag_counts(delta.add, [])
        current = self.audience.members.get(write.contact.hash) or write.new_state
        current.tags = {**current.tags, **{tag_key(n): n for n in delta.add}}
        self.audience.remember(write.contact.hash, current)
        self._inline_done.add(write.contact.hash)

    def _tags_left(self, deltas: list[TagDelta]) -> list[TagDelta]:
        """The tag writes still to make once batch subscribe ran: all of a member's changes, or only
        its removals when its additions rode inline (from the member's tags as they are now)."""
        left: list[TagDelta] = []
        for delta in deltas:
            if delta.contact.hash not in self._inline_done:
                left.append(delta)
            elif delta.remove:
                state = self.audience.members.get(delta.contact.hash) or delta.state
                left.append(TagDelta(delta.contact, state, [], delta.remove))
        return left

    def _run_writes(self, writes: list[Write]) -> None:
        if not writes:
            return
        creates = [w for w in writes if w.created]
        updates = [w for w in writes if not w.created]
        chunks: list[tuple[list[Write], bool]] = [
            (group[i : i + BATCH_SUBSCRIBE_MAX], update_existing)
            for group, update_existing in ((creates, False), (updates, True))
            for i in range(0, len(group), BATCH_SUBSCRIBE_MAX)
        ]
        calls: list[Callable[[], list[Write]]] = [
            partial(self._subscribe_chunk, chunk, update_existing=upd) for chunk, upd in chunks
        ]
        retry: list[Write] = []
        for leftover in run_concurrently(calls, self.workers):
            retry += leftover
        self._run_puts(retry)

    def _subscribe_chunk(self, chunk: list[Write], *, update_existing: bool) -> list[Write]:
        """One batch-subscribe call; returns writes to retry as single PUTs."""
        try:
            response = self.audience.batch_subscribe(
                [w.item for w in chunk],
                update_existing=update_existing,
                skip_merge_validation=self.settings.skip_merge_validation,
            )
        except PermanentMailchimpError:
            return chunk  # the whole call was refused: let each member get its own answer
        failed: dict[str, dict[str, Any]] = {}
        for error in response.get("errors") or []:
            failed[email_hash(str(error.get("email_address", "")))] = error
        retry: list[Write] = []
        for write in chunk:
            error = failed.get(write.contact.hash)
            if error is None:
                self._applied(write)
                if write.tags_inline is not None:
                    self._inline_tags_applied(write)
                continue
            if write.tags_inline is not None and _about_tags(error):
                retry.append(write)  # the update again without its tags (a single PUT sends none)
                continue
            reason = classify_member_error(
                str(error.get("error", "")), error.get("error_code"), error.get("field")
            )
            if (
                reason == "member_exists"
            ):  # exists though we did not see it: upsert without a status
                write.existed = True
                retry.append(write)
                continue
            if reason == FORGOTTEN_EMAIL:
                self._not_re_added(write.contact)
                continue
            detail = " ".join(
                filter(None, [str(error.get("error", "")), str(error.get("field_message") or "")])
            )
            if reason == "invalid_merge_fields" and self._drop_refused_merge(
                write.contact, write.item, [str(error.get("field") or "")], detail
            ):
                retry.append(write)  # again without the refused value, as a single PUT
                continue
            self._reject(
                write.contact.key, reason, detail, self._record_field(error.get("field"), reason)
            )
        return retry

    def _drop_refused_merge(
        self, contact: Contact, item: dict[str, Any], fields: list[str], detail: str
    ) -> bool:
        """Take the merge values Mailchimp refused (``errors[].field``) out of a write, each reported
        as a field reject, so the member (and its status) is still written. False when the error
        names no merge value of the write."""
        merge = item.get("merge_fields") or {}
        dropped = False
        for name in fields:
            tag = name.removeprefix("merge_fields.")
            if tag in merge:
                del merge[tag]
                contact.merge.pop(tag, None)
                source = self.settings.merge_fields.get(tag, tag)
                self._reject_field(
                    contact.key,
                    "invalid_merge_value",
                    source,
                    contact.record.get(source),
                    f"Mailchimp refused {source} -> {tag}: {detail}; the field was left out",
                )
                dropped = True
        if dropped and not merge:
            item.pop("merge_fields", None)
        return dropped

    def _not_re_added(self, contact: Contact) -> None:
        """Mailchimp refused to re-add a person deleted permanently there ("forgotten", a GDPR
        erasure): the outcome the law asks for, not bad input. Counted, never worked around (only
        ``pending``, i.e. the person confirming a new opt-in, can bring them back)."""
        self._count(FORGOTTEN_NOT_RE_ADDED)
        LOGGER.info(
            "%s was deleted permanently in Mailchimp (forgotten) and is not re-added", contact.key
        )

    def _applied(self, write: Write) -> None:
        created = write.created and not write.existed
        self._count("created" if created else "updated")
        self.audience.remember(write.contact.hash, write.new_state)
        if created and write.contact.tags:
            if "tags" in write.item:
                self._tag_counts(list(write.contact.tags.values()), [])
            else:
                self._created_tag_deltas.append(TagDelta.of(write.contact, write.new_state))

    def _run_puts(self, writes: list[Write]) -> None:
        """Single upserts: members that already existed when we created them, whole-call refusals.

        A member created meanwhile by someone else (e.g. an e-commerce write made it
        ``transactional``) is upserted without a status and then linked by the consent rules, as
        if it were new, so the outcome does not depend on which write came first.
        """

        def put(write: Write) -> None:
            body = {k: v for k, v in write.item.items() if k != "tags"}
            if write.created:  # never change an existing member's status through a create
                body["status_if_new"] = body.pop("status")
                for key in ("timestamp_opt", "timestamp_signup"):
                    body.pop(key, None)
            member = self._put(write.contact, body)
            if member is None:
                return
            state = self.audience.state_from(member) if member.get("status") else write.new_state
            if write.created and write.existed and member.get("status"):
                decision = consent_change(
                    write.contact.record, facts(state, linked=False), self.settings.consent
                )
                self._note(decision)
                if decision.status is not None:
                    status_body = {
                        "email_address": write.contact.email,
                        "status": decision.status,
                        **opt_in_times(write.contact.record, decision.status),
                    }
                    member = self._put(write.contact, status_body)
                    if member is None:
                        return
                    state = self.audience.state_from(member)
            self._applied(Write(write.contact, write.item, created=False, new_state=state))
            if write.created:
                if not state.tags_complete:
                    self.audience.complete_tags(write.contact.hash, state)
                delta = TagDelta.of(write.contact, state)
                if delta.add or delta.remove:
                    self._tags_by_member([delta])

        run_concurrently([partial(put, w) for w in writes], self.workers)

    def _put(self, contact: Contact, body: dict[str, Any]) -> dict[str, Any] | None:
        """One ``PUT`` of a member; a refusal is rejected (None). Merge values Mailchimp refuses are
        left out (field rejects) and the member is written without them; a person Mailchimp forgot
        (GDPR erasure) is counted, never re-added."""
        while True:
            try:
                return self.audience.put_member(
                    contact.hash, body, skip_merge_validation=self.settings.skip_merge_validation
                )
            except PermanentMailchimpError as exc:
                detail = "; ".join(
                    filter(None, [exc.detail, *(e.get("message", "") for e in exc.errors)])
                )
                if exc.reason == "invalid_merge_fields" and self._drop_refused_merge(
                    contact, body, exc.error_fields, detail
                ):
                    continue
                if exc.reason == FORGOTTEN_EMAIL:
                    self._not_re_added(contact)
                else:
                    self._reject_error(contact, exc)
                return None

    # -- archives and erasure --------------------------------------------------------------
    def collect_archives(self) -> None:
        """From now on the archives of disabled users are collected across windows, not run per
        window, until :meth:`flush_archives`. A read-ahead backfill (``readahead.py``) does it: the
        store's jobs keep Mailchimp's queue busy, where each window's archive job would cost its ~2 s
        of queueing again; one job at the end also runs after every store job naming its people."""
        if self._collected is None:
            self._collected = {}

    @property
    def archives_collected(self) -> int:
        """Archives collected and not submitted yet (the tap's state waits for them)."""
        return len(self._collected or ())

    def flush_archives(self) -> None:
        """Submit the archives collected (one job, or single calls for a few) and stop collecting."""
        self._submit_collected()
        self._collected = None

    def _collect(
        self, archives: list[tuple[Contact, MemberState]]
    ) -> list[tuple[Contact, MemberState]]:
        """The window's archives to run now: none while they are collected."""
        if self._collected is None or not archives:
            return archives
        self._collected.update((c.hash, (c, st)) for c, st in archives)
        if len(self._collected) >= MAX_COLLECTED_ARCHIVES:
            self._submit_collected()
        return []

    def _submit_collected(self) -> None:
        if self._collected:
            archives, self._collected = list(self._collected.values()), {}
            self._run_archives(archives)

    def _names_collected(self, contacts: list[Contact]) -> bool:
        """True when one of ``contacts`` is a person whose archive is collected (by address or id)."""
        collected = self._collected or {}
        ids = {c.oro_id for c, _ in collected.values() if c.oro_id}
        return any(c.hash in collected or (c.oro_id is not None and c.oro_id in ids) for c in contacts)

    def _archived(self, contact: Contact, state: MemberState) -> None:
        state.status = "archived"
        self.audience.remember(contact.hash, state)

    def _archive_one(self, contact: Contact, state: MemberState) -> None:
        try:
            self.audience.archive(contact.hash)
        except PermanentMailchimpError as exc:
            self._reject_error(contact, exc)
            return
        self._archived(contact, state)

    def _run_archives(self, archives: list[tuple[Contact, MemberState]]) -> None:
        """Members archived because their source user is disabled (``disabled_user_policy``): one
        ``DELETE`` each, or one ``/batches`` job when they would take more than 50 calls."""
        if len(archives) > BATCHES_WHEN_DIRECT_CALLS_OVER:
            self._archives_by_batch(archives)  # runs after the store's jobs queued before it
            return
        self._settle_store_writes([(c, c.hash) for c, _ in archives])
        run_concurrently([partial(self._archive_one, c, st) for c, st in archives], self.workers)

    def _settle_store_writes(self, people: list[tuple[Contact, str | None]]) -> None:
        """Store jobs not read yet that name these people are awaited first: one that ran after the
        member is archived or erased would bring the address back (a read-ahead backfill queues
        store jobs ahead of the contacts kept; ``readahead.py``)."""
        keys = [k for contact, hash_ in people for k in person_keys(hash_, contact.oro_id)]
        if keys and self.batches.touches(keys):
            self.batches.settle(keys=keys)

    def _archive_batch(
        self, archives: list[tuple[Contact, MemberState]]
    ) -> tuple[list[dict[str, Any]], Callable[[Iterable[OperationResult]], None]]:
        """The ``DELETE`` operations of ``archives`` (operation id: the member's hash) and what applies
        their results: each result is parsed: a refusal is a reject, as for a single call; what has
        no final result (retryable, missing) is archived one call each."""
        by_hash = {c.hash: (c, st) for c, st in archives}
        ops = [
            {"method": "DELETE", "path": f"{self.audience.base}/members/{h}", "operation_id": h}
            for h in by_hash
        ]

        def apply(results: Iterable[OperationResult]) -> None:
            done: set[str] = set()
            for result in results:
                item = by_hash.get(result.operation_id)
                if item is None or result.operation_id in done:
                    continue
                if result.status_code < 400:
                    self._archived(*item)
                else:
                    error = make_error(result.status_code, result.body, "DELETE", "(batch) member")
                    if error.kind is not ErrorKind.PERMANENT:
                        continue  # sent again as a single call
                    self._reject_error(item[0], error)
                done.add(result.operation_id)
            left = [item for h, item in by_hash.items() if h not in done]
            run_concurrently([partial(self._archive_one, c, st) for c, st in left], self.workers)

        return ops, apply

    def _archives_by_batch(self, archives: list[tuple[Contact, MemberState]]) -> None:
        """One ``/batches`` job of ``DELETE`` operations, read now or later (``defer_batches``)."""
        ops, apply = self._archive_batch(archives)
        if not self.defer_batches:
            apply(self._batch(ops))
            return
        batch_id = submit_batch(self.audience.client, ops)
        self._read_later(
            batch_id,
            lambda: apply(self._wait_results(batch_id)),
            f"{len(ops)} member archives",
            frozenset(c.hash for c, _ in archives),
            len(ops),
        )

    def _tags_and_archives_by_batch(
        self, deltas: list[TagDelta], archives: list[tuple[Contact, MemberState]]
    ) -> None:
        """A window's member tag writes and archives (different members) as one ``/batches`` job, read
        now or later (``defer_batches``); each operation's result is applied as in its own job."""
        tag_ops = self._tag_operations(deltas)
        archive_ops, apply_archives = self._archive_batch(archives)
        archive_ids = {op["operation_id"] for op in archive_ops}
        batch_id = submit_batch(self.audience.client, tag_ops + archive_ops)

        def read() -> None:
            tag_results: list[OperationResult] = []
            archive_results: list[OperationResult] = []
            for result in self._wait_results(batch_id):
                (archive_results if result.operation_id in archive_ids else tag_results).append(result)
            self._apply_tag_results(tag_results, deltas)
            apply_archives(archive_results)

        what = f"{len(tag_ops)} member tag writes, {len(archive_ops)} member archives"
        if self.defer_batches:
            members = frozenset(d.contact.hash for d in deltas) | archive_ids
            self._read_later(batch_id, read, what, members, len(tag_ops) + len(archive_ops))
        else:
            read()

    def _run_erasures(self, erasures: list[tuple[Contact, str, MemberState]]) -> None:
        def erase(contact: Contact, hash_: str, state: MemberState) -> None:
            try:
                if self.settings.erasure_mode == "delete_permanent":
                    self.audience.delete_permanent(hash_)
                elif (
                    state.status == "pending"
                ):  # cannot be archived: no confirmation may subscribe them
                    member = self.audience.patch_member(hash_, {"status": "unsubscribed"})
                    state = self.audience.state_from(member) if member.get("status") else state
                else:
                    self.audience.archive(hash_)
                    state.status = "archived"
            except PermanentMailchimpError as exc:
                self._reject_error(contact, exc)
                return
            self._count("erased")
            if self.settings.erasure_mode == "delete_permanent":
                self.audience.forget(hash_)
            else:
                self.audience.remember(hash_, state)

        self._settle_store_writes([(c, h) for c, h, _ in erasures])
        run_concurrently([partial(erase, c, h, st) for c, h, st in erasures], self.workers)


def _about_tags(error: Mapping[str, Any]) -> bool:
    """True when a batch-subscribe ``errors[]`` item is about the tags it carried (its field, or its
    message names them): the member's update must not fail because of inline tags."""
    field_name = str(error.get("field") or "").lower()
    text = f"{error.get('error', '')} {error.get('field_message') or ''}".lower()
    return field_name.startswith("tag") or re.search(r"\btags?\b", text) is not None
