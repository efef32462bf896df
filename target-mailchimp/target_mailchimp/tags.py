"""Tag writes for the contacts sync: per member, per tag (segments) or through ``/batches``.

Per member (``POST /members/{hash}/tags``, one call each) carries ``is_syncing``; per tag
(``POST /segments/{id}`` with ``members_to_add/remove``) packs 500 members a call but cannot carry
``is_syncing``; ``/batches`` carries ``is_syncing`` for any number of members in about six calls (submit,
polls, download) at the price of the batch queue's latency. ``auto`` picks the cheaper direct way
(per member or per tag; per member when ``is_syncing``) and, when that would still need more than 50
calls, ``/batches`` unless (without ``is_syncing``) the segment calls spread over the workers take less
time than the job would spend in Mailchimp's one-job-at-a-time queue (its own ~2.5 s + 5 ms per
operation, plus the jobs queued before it).
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from typing import Any

from oromc_common.batches import (
    BatchQueue,
    OperationResult,
    iter_results,
    submit_batch,
    wait_for_batch,
)
from oromc_common.governor import run_concurrently
from oromc_common.mailchimp import (
    ErrorKind,
    MailchimpError,
    PermanentMailchimpError,
    make_error,
    redact_pii,
)
from oromc_common.report import RunReport

from target_mailchimp.client import SEGMENT_MEMBERS_MAX, Audience, email_hash
from target_mailchimp.mapping import tag_key
from target_mailchimp.models import Contact, SyncSettings, TagDelta
from target_mailchimp.pacing import BatchPace

BATCHES_WHEN_DIRECT_CALLS_OVER = 50
#: Time estimates that choose between segment calls and a ``/batches`` job (``auto``): a
#: ``POST /segments/{id}`` call costs about 0.3 s plus 3 ms per member sent; a job spends about
#: 2.5 s in Mailchimp's queue (pending, preprocessing, start, finalizing) plus 5 ms per operation (or
#: the rate measured by ``BatchPace``), and waits for the jobs submitted before it.
SEGMENT_CALL_SECONDS = 0.3
SEGMENT_MEMBER_SECONDS = 0.003
BATCH_JOB_SECONDS = 2.5
BATCH_OPERATION_SECONDS = 0.005
#: Contacts windows whose ``/batches`` jobs may stay unread: the job of the window before keeps
#: Mailchimp's queue busy while a window is looked up and written.
PENDING_WINDOWS = 2
#: Mailchimp refusals that are about the address itself (named ``email`` in rejects without a field).
EMAIL_REASONS = frozenset(
    {"invalid_email", "fake_email", "compliance_state", "forgotten_email", "signup_throttled", "member_exists"}
)
LOGGER = logging.getLogger("target_mailchimp.tags")


#: The kind of the contacts sync's jobs in the target's :class:`BatchQueue`.
KIND = "contacts"


def member_keys(hashes: Iterable[str]) -> list[str]:
    """How members are named in the :class:`BatchQueue` (``member:<subscriber hash>``)."""
    return [f"member:{h}" for h in hashes]


def person_keys(hash_: str | None, customer_id: str | None) -> list[str]:
    """How a person is named in the :class:`BatchQueue` by a job that writes their store records:
    their address (``store-person:<hash>``; not ``member:``, which a contacts window's lookup waits
    for) and their store customer (``customers:<id>``, as the store's own customer writes are named)."""
    return [*([f"store-person:{hash_}"] if hash_ else []), *([f"customers:{customer_id}"] if customer_id else [])]


class TagWrites:
    """Mixin of ``ContactSync``: report helpers and the tag-writing strategies.

    With ``defer_batches`` (the target sets it) a window's ``/batches`` jobs (tags, archives) are
    submitted and queued in ``batches`` (the target's :class:`BatchQueue`), their results read later
    (before a window that changes one of their members is looked up, once two windows' jobs are
    unread, and at the end of the run) instead of waiting for them inside the window: the target goes
    on reading records (and the tap on reading Oro) while Mailchimp runs them. The tap's state waits
    for them (``BatchQueue.when_durable``).
    """

    audience: Audience
    settings: SyncSettings
    report: RunReport
    stream: str
    workers: int
    pace: BatchPace
    defer_batches: bool
    batches: BatchQueue

    # -- helpers ---------------------------------------------------------------------------
    def _count(self, what: str, n: int = 1) -> None:
        if n:
            self.report.count(self.stream, what, n)

    def _reject(self, key: str, reason: str, detail: str, field_name: str | None = None) -> None:
        self.report.reject(self.stream, key, reason, redact_pii(detail), field_name)

    def _reject_field(self, key: str, reason: str, field_name: str, value: Any, detail: str) -> None:
        """One field of a contact left out (the rest is written): a field reject."""
        self.report.reject_field(self.stream, key, reason, field_name, value, redact_pii(detail))

    def _record_field(self, mailchimp_field: str | None, reason: str = "") -> str | None:
        """The contact field a Mailchimp error names (``errors[].field``, or the batch-subscribe
        error's ``field``): a merge tag becomes the contact field mapped to it (``PHONE`` -> ``phone``),
        ``email_address`` becomes ``email``. Without a field, an error about the address names
        ``email``."""
        name = (mailchimp_field or "").strip()
        if name.startswith("merge_fields."):
            name = name.removeprefix("merge_fields.")
        if not name:
            return "email" if reason in EMAIL_REASONS else None
        if name == "email_address":
            return "email"
        return self.settings.merge_fields.get(name) or self.settings.merge_fields.get(name.upper()) or name

    def _reject_error(self, contact: Contact, exc: MailchimpError) -> None:
        fields = exc.error_fields
        detail = "; ".join(
            filter(None, [exc.title, exc.detail, *(e.get("message", "") for e in exc.errors)])
        )
        self._reject(contact.key, exc.reason, detail, self._record_field(fields[0] if fields else None, exc.reason))

    @staticmethod
    def _key(record: Mapping[str, Any], hash_: str) -> str:
        return TagWrites.key_of(record, hash_)

    @staticmethod
    def key_of(record: Mapping[str, Any], hash_: str) -> str:
        """How a contact is named in the rejects report (its source id, else its subscriber hash)."""
        for name in ("customer_user_id", "id", "customer_id"):
            if record.get(name) not in (None, ""):
                return f"{name}={record[name]}"
        return f"subscriber_hash={hash_}"

    # -- tags ------------------------------------------------------------------------------
    def _run_tags(self, deltas: list[TagDelta]) -> None:
        if not deltas:
            return
        mode, by_tag_add, by_tag_remove = self._tag_plan(deltas)
        if mode == "segment":
            self._tags_by_segment(deltas, by_tag_add, by_tag_remove)
        elif mode == "batches":
            self._tags_by_batches(deltas)
        else:
            self._tags_by_member(deltas)

    def _tag_plan(
        self, deltas: list[TagDelta]
    ) -> tuple[str, dict[str, list[Contact]], dict[str, list[Contact]]]:
        """How the tag changes of ``deltas`` are written (``member``, ``segment`` or ``batches``) and
        the members to add to / remove from each tag."""
        by_tag_add: dict[str, list[Contact]] = defaultdict(list)
        by_tag_remove: dict[str, list[Contact]] = defaultdict(list)
        for delta in deltas:
            for name in delta.add:
                by_tag_add[name].append(delta.contact)
            for name in delta.remove:
                by_tag_remove[name].append(delta.contact)
        mode = self.settings.tag_write_mode
        if mode == "auto":
            segment_calls = sum(
                max(
                    math.ceil(len(by_tag_add.get(t, [])) / SEGMENT_MEMBERS_MAX),
                    math.ceil(len(by_tag_remove.get(t, [])) / SEGMENT_MEMBERS_MAX),
                )
                for t in {*by_tag_add, *by_tag_remove}
            )
            # Per member (1 call each) carries is_syncing; per tag (segments) packs 500 members a call
            # but cannot carry is_syncing; /batches carries is_syncing for many members in ~4 calls
            # (submit, polls, download) at the price of >= 2.5 s queueing.
            costs = {"member": len(deltas)}
            if not self.settings.is_syncing:
                costs["segment"] = segment_calls + 1
            mode = min(costs, key=lambda m: costs[m])
            # /batches takes ~6 calls but queues (seconds to minutes): worth it only when direct
            # writes would need many calls (measured in bench/bench_target_mailchimp.py) and, for
            # segment calls, would take longer than the job's time in the queue.
            if costs[mode] > BATCHES_WHEN_DIRECT_CALLS_OVER:
                faster = "segment" in costs and self._segment_seconds(
                    by_tag_add, by_tag_remove
                ) < self._batch_seconds(len(deltas))
                mode = "segment" if faster else "batches"
        return mode, by_tag_add, by_tag_remove

    def _segment_seconds(
        self, by_tag_add: Mapping[str, list[Contact]], by_tag_remove: Mapping[str, list[Contact]]
    ) -> float:
        """About how long the segment calls of these tag changes take on the workers (their summed
        time spread over the workers, at least the longest call)."""
        total = longest = 0.0
        for name in {*by_tag_add, *by_tag_remove}:
            a, r = len(by_tag_add.get(name, [])), len(by_tag_remove.get(name, []))
            for i in range(0, max(a, r), SEGMENT_MEMBERS_MAX):
                members = min(max(a - i, 0), SEGMENT_MEMBERS_MAX) + min(max(r - i, 0), SEGMENT_MEMBERS_MAX)
                seconds = SEGMENT_CALL_SECONDS + SEGMENT_MEMBER_SECONDS * members
                total += seconds
                longest = max(longest, seconds)
        return max(total / max(self.workers, 1), longest)

    def _batch_seconds(self, operations: int) -> float:
        """About how long a ``/batches`` job of ``operations`` submitted now takes to finish: the jobs
        queued before it (what is left of them) and its own time in Mailchimp's queue."""
        per_operation = 1.0 / self.pace.rate if self.pace.rate else BATCH_OPERATION_SECONDS
        now = time.monotonic()
        ahead = 0.0
        for job in self.batches if self.defer_batches else ():
            # Mailchimp runs them one after the other: a job starts once submitted and the one
            # before it is done
            start = max(ahead, job.submitted)
            ahead = max(start + BATCH_JOB_SECONDS + per_operation * job.operations, now)
        return (ahead - now if ahead else 0.0) + BATCH_JOB_SECONDS + per_operation * operations

    def _tag_operations(self, deltas: list[TagDelta]) -> list[dict[str, Any]]:
        """The ``/batches`` operations of member tag writes (operation id: the member's hash)."""
        self.audience.tags_may_have_been_created()
        return [
            {
                "method": "POST",
                "path": f"{self.audience.base}/members/{d.contact.hash}/tags",
                "operation_id": d.contact.hash,
                "body": {"tags": _tag_body(d), "is_syncing": self.settings.is_syncing},
            }
            for d in deltas
        ]

    def _tags_by_batches(self, deltas: list[TagDelta]) -> None:
        """Member tag writes as one ``/batches`` job per window; failed operations are retried
        directly (retryable) or rejected (permanent). Read now, or later when deferred."""
        ops = self._tag_operations(deltas)
        batch_id = submit_batch(self.audience.client, ops)
        self._read_later(
            batch_id,
            partial(self._read_tags, batch_id, deltas),
            f"{len(ops)} member tag writes",
            frozenset(d.contact.hash for d in deltas),
            len(ops),
        )

    def _read_later(
        self,
        batch_id: str,
        read: Callable[[], None],
        what: str,
        members: frozenset[str] = frozenset(),
        operations: int = 0,
    ) -> None:
        """Read a submitted batch now, or later when batches are deferred (``members``: the hashes of
        the members it changes; ``operations``: how many it holds)."""
        if not self.defer_batches:
            read()
            return
        LOGGER.info("Submitted batch %s: %s", batch_id, what)
        self.batches.add(batch_id, read, kind=KIND, keys=member_keys(members), operations=operations)

    @property
    def batches_pending(self) -> bool:
        """True while a submitted batch's results are not read yet."""
        return self.batches.pending

    def _wait_results(self, batch_id: str) -> Iterator[OperationResult]:
        """Wait for a submitted batch and stream its per-operation results."""
        client = self.audience.client
        doc = wait_for_batch(
            client,
            batch_id,
            poll_seconds=self.settings.batch_poll_seconds,
            timeout_seconds=self.settings.batch_timeout_seconds,
            pace=self.pace,
        )
        yield from iter_results(client, str(doc.get("response_body_url") or ""))

    def _read_tags(self, batch_id: str, deltas: list[TagDelta]) -> None:
        self._apply_tag_results(self._wait_results(batch_id), deltas)

    def _apply_tag_results(self, results: Iterable[OperationResult], deltas: list[TagDelta]) -> None:
        """The per-operation results of member tag writes: applied, rejected (permanent) or written
        again directly (retryable, or no result)."""
        by_id = {d.contact.hash: d for d in deltas}
        retry: list[TagDelta] = []
        seen: set[str] = set()
        for result in results:
            delta = by_id.get(result.operation_id)
            if delta is None:
                continue
            seen.add(delta.contact.hash)
            if result.status_code < 400:
                self._tag_applied(delta)
                continue
            error = make_error(result.status_code, result.body, "POST", "(batch) member tags")
            if error.kind is ErrorKind.PERMANENT:
                self._reject_error(delta.contact, error)
            else:
                retry.append(delta)
        retry += [d for d in deltas if d.contact.hash not in seen]  # no result: directly
        self._tags_by_member(retry)

    def _tag_applied(self, delta: TagDelta) -> None:
        self._tag_counts(delta.add, delta.remove)
        tags = dict(delta.state.tags)
        for name in delta.add:
            tags[tag_key(name)] = name
        for name in delta.remove:
            tags.pop(tag_key(name), None)
        current = self.audience.members.get(delta.contact.hash) or delta.state
        current.tags = tags
        self.audience.members[delta.contact.hash] = current

    def _tags_by_member(self, deltas: list[TagDelta]) -> None:
        def one(delta: TagDelta) -> None:
            try:
                self.audience.post_member_tags(
                    delta.contact.hash, _tag_body(delta), is_syncing=self.settings.is_syncing
                )
            except PermanentMailchimpError as exc:
                self._reject_error(delta.contact, exc)
                return
            self._tag_applied(delta)

        run_concurrently([partial(one, d) for d in deltas], self.workers)

    def _tag_counts(self, add: list[str], remove: list[str]) -> None:
        if add:
            self._count("tagged")
            self._count("tags_added", len(add))
        if remove:
            self._count("untagged")
            self._count("tags_removed", len(remove))

    def _tags_by_segment(
        self,
        deltas: list[TagDelta],
        by_tag_add: dict[str, list[Contact]],
        by_tag_remove: dict[str, list[Contact]],
    ) -> None:
        """Per tag: ``members_to_add/remove`` (500 a call). Tags are matched by ``tag_key`` (as
        Mailchimp matches names); an existing tag is reused whatever its case or whoever created it.
        Members whose tags cannot be resolved to a segment, or whose segment call Mailchimp refuses
        (e.g. the tag was deleted meanwhile), are written per member instead."""
        ids = self.audience.resolve_tags([*by_tag_add, *by_tag_remove], by_tag_add, self.workers)
        unresolved = {key for key, seg_id in ids.items() if seg_id is None}
        fallback = [d for d in deltas if any(tag_key(n) in unresolved for n in (*d.add, *d.remove))]
        routed = {id(d) for d in fallback}
        direct = [d for d in deltas if id(d) not in routed]
        adds: dict[int, list[str]] = defaultdict(list)
        removes: dict[int, list[str]] = defaultdict(list)
        for delta in direct:
            for name in delta.add:
                adds[_resolved(ids, name)].append(delta.contact.email)
            for name in delta.remove:
                removes[_resolved(ids, name)].append(delta.contact.email)
        calls: list[Callable[[], tuple[int, dict[str, Any] | None]]] = []
        for seg_id in sorted({*adds, *removes}):
            a_all, r_all = adds.get(seg_id, []), removes.get(seg_id, [])
            for i in range(0, max(len(a_all), len(r_all)), SEGMENT_MEMBERS_MAX):
                a, r = a_all[i : i + SEGMENT_MEMBERS_MAX], r_all[i : i + SEGMENT_MEMBERS_MAX]
                calls.append(partial(self._segment_call, seg_id, a, r))
        failed: dict[str, str] = {}
        refused: set[int] = set()
        for seg_id, response in run_concurrently(calls, self.workers):
            if response is None:
                refused.add(seg_id)
                continue
            for error in response.get("errors") or []:
                for email in error.get("email_addresses") or []:
                    failed[email_hash(str(email))] = str(error.get("error", ""))
        for delta in direct:
            if any(_resolved(ids, n) in refused for n in (*delta.add, *delta.remove)):
                fallback.append(delta)
            elif delta.contact.hash in failed:
                self._reject(delta.contact.key, "tag_update_failed", failed[delta.contact.hash])
            else:
                self._tag_applied(delta)
        if fallback:
            LOGGER.info("Writing the tags of %d member(s) per member instead", len(fallback))
        self._tags_by_member(fallback)

    def _segment_call(
        self, seg_id: int, add: list[str], remove: list[str]
    ) -> tuple[int, dict[str, Any] | None]:
        """One segment update; ``None`` when Mailchimp refuses the whole call (the tag is forgotten)."""
        try:
            return seg_id, self.audience.update_segment(seg_id, add, remove)
        except PermanentMailchimpError as exc:
            LOGGER.info("Tag update refused (%s %s)", exc.status, exc.reason)
            self.audience.forget_tag(seg_id)
            return seg_id, None


def _resolved(ids: Mapping[str, int | None], name: str) -> int:
    seg_id = ids[tag_key(name)]
    assert seg_id is not None  # deltas with unresolved tags were routed per member
    return seg_id


def _tag_body(delta: TagDelta) -> list[dict[str, str]]:
    return [{"name": n, "status": "active"} for n in delta.add] + [
        {"name": n, "status": "inactive"} for n in delta.remove
    ]
