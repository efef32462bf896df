"""The contacts sync: one batch window of records -> the fewest Mailchimp writes that make it true.

Per window: normalise and de-duplicate records, learn what Mailchimp has for them (``Audience.lookup``),
diff, then write concurrently through the governor: creates and updates with batch subscribe (500 per
call), tag changes per member or per tag (whichever costs fewer calls), erasures per member. Unchanged
contacts cost no write. Per-record failures become rejects; only retry-exhausted or fatal errors stop
the run (so the window's state is never emitted).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from oromc_common.governor import run_concurrently
from oromc_common.mailchimp import (
    PermanentMailchimpError,
    classify_member_error,
)
from oromc_common.report import RunReport

from target_mailchimp.client import (
    BATCH_SUBSCRIBE_MAX,
    Audience,
    MemberState,
    email_hash,
)
from target_mailchimp.mapping import (
    MergeFieldSpec,
    MergeValueError,
    coerce_merge_value,
    consent_change,
    desired_tags,
    is_valid_email,
    merge_values_equal,
    new_member_status,
)
from target_mailchimp.models import Contact, SyncSettings, TagDelta, Write
from target_mailchimp.tags import TagWrites

LOGGER = logging.getLogger("target_mailchimp.sync")


class ContactSync(TagWrites):
    """Applies windows of ``contacts`` records to one audience."""

    def __init__(
        self,
        audience: Audience,
        specs: Mapping[str, MergeFieldSpec],
        settings: SyncSettings,
        report: RunReport,
        stream: str = "contacts",
    ) -> None:
        """``specs`` are the audience's merge fields for the mapped tags."""
        self.audience = audience
        self.specs = dict(specs)
        self.settings = settings
        self.report = report
        self.stream = stream
        self.workers = settings.max_connections
        self._created_tag_deltas: list[TagDelta] = []

    # -- preparation -----------------------------------------------------------------------
    def prepare(self, records: list[dict[str, Any]]) -> dict[str, Contact]:
        """Normalise emails, reject malformed ones, merge duplicates, map merge values and tags."""
        merged: dict[str, dict[str, Any]] = {}
        for record in records:
            raw = record.get("email")
            email = raw.strip() if isinstance(raw, str) else ""
            hash_ = email_hash(email) if email else ""
            if not email or not is_valid_email(email):
                self._reject(
                    self._key(record, hash_ or "none"),
                    "invalid_email",
                    "email is missing or not a valid address",
                    "email",
                )
                continue
            if hash_ in merged:
                self._count("duplicates_merged")
                merged[hash_].update({k: v for k, v in record.items() if v is not None})
            else:
                merged[hash_] = {**record, "email": email}
        contacts: dict[str, Contact] = {}
        for hash_, record in merged.items():
            contact = Contact(
                key=self._key(record, hash_),
                email=record["email"],
                hash=hash_,
                record=record,
                erase=record.get("erase") is True,
            )
            try:
                for tag, source in self.settings.merge_fields.items():
                    if source not in record:
                        continue
                    coerced = coerce_merge_value(self.specs[tag], source, record.get(source))
                    if coerced is not None:
                        contact.merge[tag] = coerced
            except MergeValueError as exc:
                self._reject(contact.key, "invalid_merge_value", str(exc), exc.source_field)
                continue
            contact.tags = desired_tags(
                record,
                self.settings.tag_prefix,
                self.settings.tag_fields,
                self.settings.tag_rules,
                self.settings.exclude_tag_prefixes,
            )
            contacts[hash_] = contact
        return contacts

    # -- the window ------------------------------------------------------------------------
    def settle_if_unchanged(self, record: dict[str, Any], pending: set[str]) -> bool:
        """Fast path at record arrival, once the whole audience is known: a record that needs no
        write (and whose contact is not pending in the current window) is counted as unchanged (or
        rejected) right away, so windows fill only with contacts that need writes.

        Returns True when the record is settled and must not be added to the window.
        """
        if not self.audience.loaded:
            return False
        raw = record.get("email")
        hash_ = email_hash(raw.strip()) if isinstance(raw, str) and raw.strip() else ""
        if not hash_ or hash_ in pending:
            return False
        state = self.audience.members.get(hash_)
        if (
            state is None
            or state.status == "archived"
            or not state.tags_complete
            or record.get("erase") is True
        ):
            return False
        self._count("received")
        contacts = self.prepare([record])
        contact = contacts.get(hash_)
        if contact is None:
            return True  # rejected (reason recorded by prepare)
        decision = consent_change(
            record,
            state.status,
            state.last_changed,
            resubscribe_with_pending=self.settings.resubscribe_with_pending,
        )
        delta = TagDelta.of(contact, state)
        quiet = (
            decision.status is None and not decision.blocked and not delta.add and not delta.remove
        )
        if quiet and not self._update(contact, state, None, force=False).item:
            self._count("unchanged")
            return True
        self._count("received", -1)
        return False

    def process(self, records: list[dict[str, Any]]) -> None:
        """Sync one window of records; returns when every write of the window is acknowledged."""
        self._count("received", len(records))
        contacts = self.prepare(records)
        if not contacts:
            return
        states = self.audience.lookup(list(contacts), self.workers)
        incomplete = [(h, s) for h, s in states.items() if s is not None and not s.tags_complete]
        run_concurrently(
            [partial(self.audience.complete_tags, h, s) for h, s in incomplete], self.workers
        )
        writes: list[Write] = []
        single_puts: list[Write] = []
        erasures: list[tuple[Contact, MemberState]] = []
        deltas: list[TagDelta] = []
        for hash_, contact in contacts.items():
            state = states.get(hash_)
            if contact.erase:
                if state is None or (
                    state.status == "archived" and self.settings.erasure_mode == "archive"
                ):
                    self._count("erase_noop")
                else:
                    erasures.append((contact, state))
                continue
            if state is None:
                writes.append(self._create(contact))
                continue
            decision = consent_change(
                contact.record,
                state.status,
                state.last_changed,
                resubscribe_with_pending=self.settings.resubscribe_with_pending,
            )
            if decision.blocked:
                self._count("consent_blocked")
            if state.status == "archived":
                if decision.status is None:
                    self._count("archived_skipped")
                else:
                    single_puts.append(self._update(contact, state, decision.status, force=True))
                continue
            update = self._update(contact, state, decision.status, force=False)
            delta = TagDelta.of(contact, state)
            if update.item:
                writes.append(update)
            if delta.add or delta.remove:
                deltas.append(delta)
            if not update.item and not (delta.add or delta.remove):
                self._count("unchanged")
        self._created_tag_deltas = []
        self._run_writes(writes)
        self._run_puts(single_puts)
        self._run_tags(deltas + self._created_tag_deltas)
        self._run_erasures(erasures)

    def _create(self, contact: Contact) -> Write:
        status = new_member_status(contact.record, self.settings.status_if_new)
        item: dict[str, Any] = {"email_address": contact.email, "status": status}
        merge = {k: v for k, v in contact.merge.items() if v != ""}
        if merge:
            item["merge_fields"] = merge
        inline = bool(contact.tags) and not self.settings.is_syncing
        if inline:  # tags ride along for free; with is_syncing they go separately, flagged
            item["tags"] = sorted(contact.tags.values())
        new_state = MemberState(
            status=status, merge=merge, tags=dict(contact.tags) if inline else {}
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
        new_state = MemberState(
            status=status or state.status,
            merge={**state.merge, **changed},
            tags=state.tags,
            last_changed=state.last_changed,
            tags_complete=state.tags_complete,
        )
        if not changed and status is None and not force:
            return Write(contact, {}, created=False, new_state=new_state)
        # No status unless it changes: batch subscribe with update_existing keeps the member's status.
        item: dict[str, Any] = {"email_address": contact.email}
        if status is not None:
            item["status"] = status
        if changed:
            item["merge_fields"] = changed
        if status is not None:
            self._count("consent_changes")
        return Write(contact, item, created=False, new_state=new_state)

    # -- creates / updates -----------------------------------------------------------------
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
            detail = " ".join(
                filter(None, [str(error.get("error", "")), str(error.get("field_message") or "")])
            )
            self._reject(write.contact.key, reason, detail, error.get("field") or None)
        return retry

    def _applied(self, write: Write) -> None:
        created = write.created and not write.existed
        self._count("created" if created else "updated")
        self.audience.members[write.contact.hash] = write.new_state
        if created and write.contact.tags:
            if "tags" in write.item:
                self._tag_counts(list(write.contact.tags.values()), [])
            else:
                self._created_tag_deltas.append(TagDelta.of(write.contact, write.new_state))

    def _run_puts(self, writes: list[Write]) -> None:
        """Single upserts: members that already existed, archived members, whole-call refusals."""

        def put(write: Write) -> None:
            body = {k: v for k, v in write.item.items() if k != "tags"}
            if write.created:  # never change an existing member's status through a create
                body["status_if_new"] = body.pop("status")
            try:
                member = self.audience.put_member(
                    write.contact.hash,
                    body,
                    skip_merge_validation=self.settings.skip_merge_validation,
                )
            except PermanentMailchimpError as exc:
                self._reject_error(write.contact, exc)
                return
            state = self.audience.state_from(member) if member.get("status") else write.new_state
            self._applied(Write(write.contact, write.item, created=False, new_state=state))
            if write.created:
                if not state.tags_complete:
                    self.audience.complete_tags(write.contact.hash, state)
                delta = TagDelta.of(write.contact, state)
                if delta.add or delta.remove:
                    self._tags_by_member([delta])

        run_concurrently([partial(put, w) for w in writes], self.workers)

    # -- erasure ---------------------------------------------------------------------------
    def _run_erasures(self, erasures: list[tuple[Contact, MemberState]]) -> None:
        def erase(contact: Contact, state: MemberState) -> None:
            try:
                if self.settings.erasure_mode == "delete_permanent":
                    self.audience.delete_permanent(contact.hash)
                else:
                    self.audience.archive(contact.hash)
            except PermanentMailchimpError as exc:
                self._reject_error(contact, exc)
                return
            self._count("erased")
            if self.settings.erasure_mode == "delete_permanent":
                self.audience.members.pop(contact.hash, None)
            else:
                state.status = "archived"
                self.audience.members[contact.hash] = state

        run_concurrently([partial(erase, c, st) for c, st in erasures], self.workers)
