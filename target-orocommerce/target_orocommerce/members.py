"""Mailchimp ``members`` -> Oro customer users: names, phone, owned tags and consent.

Per batch of members the target

1. looks the customer users up by email (one filtered list call per 50 emails, cached);
2. decides, per field, whether Mailchimp's value should be written (conflict policy) and whether it
   differs from Oro's (unchanged values are never written, so nothing echoes back to Mailchimp);
3. writes names with the Batch API (``PATCH /customerusers`` + ``X-Mode: sync``), phones with the
   Batch API on the primary address, owned tags through the ``tags`` relationship, consent as an
   ``unsubscribe`` marketing activity, in the configured consent source (:mod:`.consent`) and, when
   marketing lists are configured, through the old REST marketing-list (un)subscribe endpoints.

Identity: a member carrying the Oro customer-user id in the identity merge field (``OROID``, written
by target-mailchimp) is that customer user, whatever its address; the email is only the fallback
(members without the field, or whose id no longer exists). An address that differs between the two is
an email change made in Mailchimp: reported, and applied only with ``apply_email_changes``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests
from oromc_common.dates import parse_utc
from oromc_common.emails import email_key
from oromc_common.keys import record_key
from oromc_common.oro import (
    OroClientError,
    build_filters,
    format_oro_datetime,
    relationship_id,
)
from oromc_common.report import RunReport

from target_orocommerce.activities import ActivityIntent, ActivityWriter, Unsubscribe
from target_orocommerce.bulk import BulkUpdater, Update
from target_orocommerce.client import SYNC_BATCH_LIMIT, OroWriter, all_error_details
from target_orocommerce.consent import ConsentStore, ConsentWrite
from target_orocommerce.lookups import (
    TAG_NAME_MAX,
    CustomerUserDirectory,
    CustomerUserView,
    TagDirectory,
)

STATUSES = {"subscribed", "unsubscribed", "cleaned", "pending", "transactional", "archived"}
OPTED_OUT = {"unsubscribed", "cleaned"}
ARCHIVED_WITHDRAW, ARCHIVED_KEEP = "withdraw", "keep"
FORGOTTEN = "forgotten"  # the status recorded for a member Mailchimp deleted permanently
NEWER_WINS, MAILCHIMP_WINS, ORO_WINS = "newer_wins", "mailchimp_wins", "oro_wins"
_PHONE_CHARS = re.compile(r"[^\d+]")

MEMBER_KEY = ("list_id", "id")  # names a ``members`` record in rejects: ``<list>/<subscriber hash>``


def phone_digits(value: Any) -> str:
    """Comparable form of a phone number: digits and ``+`` only."""
    return _PHONE_CHARS.sub("", str(value or ""))


@dataclass
class MemberSettings:
    """The target settings members need."""

    conflict_policy: str = NEWER_WINS
    sync_tags: bool = True
    tag_prefix: str = "mc:"
    exclude_tag_prefixes: tuple[str, ...] = ()
    first_name_field: str = "FNAME"
    last_name_field: str = "LNAME"
    phone_field: str = "PHONE"
    marketing_list_ids: tuple[int, ...] = ()
    create_missing: bool = False
    new_user_customer_id: str | None = None
    new_user_role_id: str | None = None
    identity_field: str = "OROID"
    apply_email_changes: bool = False
    archived_consent: str = ARCHIVED_WITHDRAW

    @property
    def opted_out(self) -> frozenset[str]:
        """Member statuses that are an opt-out for Oro (``archived`` per ``archived_member_consent``)."""
        if self.archived_consent == ARCHIVED_WITHDRAW:
            return frozenset({*OPTED_OUT, "archived"})
        return frozenset(OPTED_OUT)


@dataclass
class MemberRow:
    """A parsed ``members`` record."""

    record_key: str
    email: str
    email_id: str
    list_id: str | None
    status: str
    first_name: str | None
    last_name: str | None
    phone: str | None
    tags: list[str] | None
    tags_complete: bool
    last_changed: datetime | None
    opted_in_at: datetime | None = None
    oro_id: str | None = None  # the identity merge field's value (an Oro customer-user id)
    user: CustomerUserView | None = None
    wrote: set[str] = field(default_factory=set)
    stream: str = "members"
    #: merge values left out because they cannot be used: (field, what is wrong, value)
    field_problems: list[tuple[str, str, Any]] = field(default_factory=list)


@dataclass
class ForgottenRow:
    """A ``forgotten_members`` record: Mailchimp deleted the member carrying this Oro id permanently."""

    record_key: str
    list_id: str | None
    oro_id: str
    detected_at: datetime
    previous_sweep_at: datetime | None = None
    user: CustomerUserView | None = None
    wrote: set[str] = field(default_factory=set)
    stream: str = "forgotten_members"


def parse_forgotten(record: Mapping[str, Any], key: str | None = None) -> ForgottenRow:
    """Validate and parse one ``forgotten_members`` record (``key``: its name in rejects and actions)."""
    oro_id = str(record.get("oro_id") or "").strip()
    if key is None:
        key = forgotten_key(record)
    if not oro_id.isdigit():
        raise MemberError("oro_id must be an Oro customer-user id (digits)", "oro_id")
    detected = parse_utc(record.get("detected_at"))
    if detected is None:
        raise MemberError("missing or invalid detected_at", "detected_at")
    return ForgottenRow(
        record_key=key,
        list_id=record.get("list_id"),
        oro_id=oro_id,
        detected_at=detected,
        previous_sweep_at=parse_utc(record.get("previous_sweep_at")),
    )


@dataclass
class _ReportOptOut:
    """An opt-out first seen as a campaign report row (for marketing-list calls and rejects)."""

    record_key: str
    stream: str


class MemberError(ValueError):
    """A member record that cannot be used; ``field`` names the culprit."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def forgotten_key(record: Mapping[str, Any], **where: Any) -> str:
    """``<list>/oro:<id>`` of a ``forgotten_members`` record (see :func:`oromc_common.keys.record_key`)."""
    oro_id = str(record.get("oro_id") or "").strip()
    if oro_id and record.get("list_id"):
        return f"{record['list_id']}/oro:{oro_id}"
    return record_key(record, (), **where)


def parse_member(record: Mapping[str, Any], settings: MemberSettings, key: str | None = None) -> MemberRow:
    """Validate and parse one ``members`` record (``key``: its name in rejects and actions)."""
    email = email_key(record.get("email_address"))
    if key is None:
        key = record_key(record, MEMBER_KEY)
    if email is None:
        raise MemberError("missing or invalid email_address", "email_address")
    status = record.get("status")
    if status not in STATUSES:
        raise MemberError(f"unknown status {status!r}", "status")
    merge = record.get("merge_fields") or {}
    if not isinstance(merge, Mapping):
        raise MemberError("merge_fields is not an object", "merge_fields")
    other = record.get("merge_fields_other")  # the tap's undeclared tags (a configured name may be there)
    if isinstance(other, Mapping):
        merge = {**other, **merge}

    problems: list[tuple[str, str, Any]] = []

    def text(name: str) -> str | None:
        """A merge value as text; any other JSON type is left out (a field problem), never
        converted (Mailchimp's text, phone and identity merge values are strings)."""
        value = merge.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            kind = "an object" if isinstance(value, Mapping) else f"a {type(value).__name__}"
            problems.append((f"merge_fields.{name}", f"expected a string, got {kind}", value))
            return None
        return value.strip() or None

    tags: list[str] | None = None
    raw_tags = record.get("tags")
    if isinstance(raw_tags, list):
        tags = []
        for tag in raw_tags:
            name = tag.get("name") if isinstance(tag, Mapping) else tag
            if isinstance(name, str) and name.strip():
                tags.append(name.strip())
    tags_count = record.get("tags_count")
    complete = tags is not None and (not isinstance(tags_count, int) or tags_count <= len(tags))
    oro_id = text(settings.identity_field) if settings.identity_field else None
    if problems:  # the identity decides who the person is: a bad one rejects the record
        raise MemberError(f"the identity merge field is not text: {problems[0][1]}", problems[0][0])
    if oro_id is not None and not oro_id.isdigit():
        raise MemberError(
            f"the identity merge field must hold an Oro customer-user id (digits), got {len(oro_id)} other characters",
            f"merge_fields.{settings.identity_field}",
        )
    first_name = text(settings.first_name_field)
    last_name = text(settings.last_name_field)
    phone = text(settings.phone_field)
    return MemberRow(
        record_key=key,
        email=email,
        email_id=str(record.get("id") or ""),
        list_id=record.get("list_id"),
        status=str(status),
        first_name=first_name,
        last_name=last_name,
        phone=phone,
        field_problems=problems,
        tags=tags,
        tags_complete=complete,
        last_changed=parse_utc(record.get("last_changed")),
        opted_in_at=parse_utc(record.get("timestamp_opt")),
        oro_id=oro_id,
    )


def _older(row: MemberRow, than: MemberRow) -> bool:
    oldest = datetime.min.replace(tzinfo=UTC)
    return (row.last_changed or oldest) < (than.last_changed or oldest)


class MemberSync:
    """Applies batches of parsed members to Oro."""

    STREAM = "members"

    def __init__(
        self,
        *,
        writer: OroWriter,
        customers: CustomerUserDirectory,
        tags: TagDirectory,
        activities: ActivityWriter,
        report: RunReport,
        settings: MemberSettings,
        consent: ConsentStore | None = None,
        batch_mode: str = "auto",
        stream: str = "members",
    ) -> None:
        self.writer = writer
        self.consent = consent or ConsentStore()
        self.customers = customers
        self.tags = tags
        self.activities = activities
        self.report = report
        self.settings = settings
        self.stream = stream
        self.users = BulkUpdater(writer, "customerusers", batch_mode=batch_mode)
        self.addresses = BulkUpdater(writer, "customeruseraddresses", batch_mode=batch_mode)
        self._warned_tags = False
        self._pending: list[ActivityIntent] = []
        self._listed: set[tuple[str, str]] = set()  # (action, customer user id) done this run
        activities.before_opt_outs = self.opt_outs_from_reports

    # -- entry point ----------------------------------------------------------------------
    def process(self, rows: Sequence[MemberRow]) -> None:
        """Apply one batch of members."""
        latest: dict[str, MemberRow] = {}
        for row in rows:
            old = latest.get(row.email)
            if old is not None:
                # The same person twice in one batch (e.g. two audiences): the newest change wins.
                self.report.count(self.stream, "superseded_in_batch")
                if _older(row, old):
                    continue
            latest[row.email] = row
        members = self._match(list(latest.values()))
        missing = [m for m in members if m.user is None]
        if missing:
            self._handle_missing(missing)
        matched = [m for m in members if m.user is not None]
        self._email_changes(matched)
        self._write_names(matched)
        self._write_phones(matched)
        self._write_tags(matched)
        self._write_consent(matched)
        for member in matched:
            self.report.count(self.stream, "updated" if member.wrote else "unchanged")

    # -- identity ---------------------------------------------------------------------------
    def _match(self, members: list[MemberRow]) -> list[MemberRow]:
        """Find each member's customer user: by the identity merge field first, then by email.

        Two members of the batch that are the same customer user (e.g. an old and a new address that
        both carry its id) are one person: the newest change wins.
        """
        ids = [m.oro_id for m in members if m.oro_id]
        by_id = self.customers.resolve_ids(ids) if ids else {}
        for member in members:
            if member.oro_id:
                member.user = by_id.get(member.oro_id)
                if member.user is not None:
                    self.report.count(self.stream, "matched_by_identity")
                else:
                    # Not (any more) in Oro: the address is the only other way to find the person.
                    self.report.count(self.stream, "identity_not_in_oro_matched_by_email")
        by_email = self.customers.resolve(m.email for m in members if m.user is None)
        for member in members:
            if member.user is None:
                member.user = by_email.get(member.email)
        chosen: dict[str, MemberRow] = {}
        out: list[MemberRow] = []
        for member in members:
            if member.user is None:
                out.append(member)
                continue
            old = chosen.get(member.user.id)
            if old is not None:
                self.report.count(self.stream, "superseded_same_customer_user")
                if _older(member, old):
                    continue
                out.remove(old)
            chosen[member.user.id] = member
            out.append(member)
        return out

    def _email_changes(self, members: list[MemberRow]) -> None:
        """Members found by their Oro id whose address differs from the Oro email (the login).

        Reported as an action; applied (``PATCH`` of the email) only with ``apply_email_changes``, only
        when Mailchimp's change is newer than the Oro record (else the address probably changed in Oro
        and the next audience sync carries it to Mailchimp) and only when no other customer user has
        the new address (a conflict is reported, nothing merged).
        """
        changed = [m for m in members if m.user is not None and m.oro_id and m.email != m.user.email]
        if not changed:
            return
        if not self.settings.apply_email_changes:
            for member in changed:
                assert member.user is not None
                self._action(
                    member,
                    "email_changed_in_mailchimp",
                    f"the Mailchimp address differs from the email (login) of Oro customer user {member.user.id}; "
                    "not applied (apply_email_changes is off). Change the email in Oro if the person asked "
                    "for it; otherwise the next audience sync puts the Oro email back on the member.",
                )
            return
        owners = self.customers.resolve(m.email for m in changed)
        updates = []
        for member in changed:
            user = member.user
            assert user is not None
            other = owners.get(member.email)
            if other is not None and other.id != user.id:
                self._action(
                    member,
                    "email_change_conflict",
                    f"the new Mailchimp address of customer user {user.id} is already the email of customer "
                    f"user {other.id} in Oro; nothing changed, nothing merged. Decide which record keeps the "
                    "address.",
                )
                continue
            if user.updated_at is not None and (member.last_changed is None or member.last_changed < user.updated_at):
                self._action(
                    member,
                    "email_change_not_applied_oro_newer",
                    f"the Mailchimp address differs from the email of customer user {user.id}, but the Oro "
                    "record changed after the member: the Oro email is kept (the next audience sync carries "
                    "it to Mailchimp).",
                )
                continue
            updates.append(Update(member, user.id, {"email": member.email}))
            self._plan(member, "change_email", customer_user=user.id)
        for update in self.users.update(updates, self._reject_update):
            member = update.context
            assert member.user is not None
            self.customers.forget(member.user.email)
            member.user.email = member.email
            self.customers.remember(member.user)
            member.wrote.add("email")
            self.report.count(self.stream, "emails_updated")

    def _plan(self, row: Any, action: str, **what: Any) -> None:
        """One planned write for ``row`` (ids, field and tag names; never an e-mail or a value)."""
        self.writer.plan.add(getattr(row, "stream", self.stream), action, row.record_key, **what)

    def _action(self, member: MemberRow, reason: str, detail: str) -> None:
        self.report.action(member.stream, member.record_key, reason, detail, "email_address")

    # -- missing customer users -----------------------------------------------------------
    def _handle_missing(self, missing: list[MemberRow]) -> None:
        s = self.settings
        if not s.create_missing:
            for member in missing:
                self.report.reject(
                    self.stream,
                    member.record_key,
                    "no_customer_user",
                    "no Oro customer user has this email address (set create_missing_customer_users to create one)",
                    "email_address",
                )
            return
        creatable = []
        for member in missing:
            if member.status in OPTED_OUT:
                self.report.count(self.stream, "not_created_opted_out")
                continue
            if not (member.first_name and member.last_name):
                self.report.reject(
                    self.stream,
                    member.record_key,
                    "cannot_create",
                    "creating a customer user needs first and last name (merge fields)",
                    f"merge_fields.{s.first_name_field if not member.first_name else s.last_name_field}",
                )
                continue
            creatable.append(member)
        for start in range(0, len(creatable), SYNC_BATCH_LIMIT):
            self._create_users(creatable[start : start + SYNC_BATCH_LIMIT])

    def _create_users(self, members: list[MemberRow]) -> None:
        s = self.settings

        def item(m: MemberRow) -> dict[str, Any]:
            rels: dict[str, Any] = {"customer": {"data": {"type": "customers", "id": s.new_user_customer_id}}}
            attrs: dict[str, Any] = {"email": m.email, "firstName": m.first_name, "lastName": m.last_name}
            if s.new_user_role_id:
                rels["userRoles"] = {"data": [{"type": "customeruserroles", "id": s.new_user_role_id}]}
            else:
                attrs["enabled"] = False
            return {"type": "customerusers", "attributes": attrs, "relationships": rels}

        for member in members:
            body = {"data": item(member)}
            self._plan(member, "create_customer_user", enabled=bool(s.new_user_role_id))
            if self.writer.dry_run:  # no customer user yet: what would follow for it is not planned
                self.report.count(self.stream, "dry_run_not_planned_after_create")
                continue

            def landed(m: MemberRow = member) -> bool:
                self.customers.forget(m.email)
                return self.customers.resolve([m.email])[m.email] is not None

            try:
                response = self.writer.call("POST", "customerusers", body=body, verify=landed)
            except OroClientError as exc:
                self._reject_oro(member, exc)
                continue
            if isinstance(response, requests.Response):
                self.customers.remember(
                    CustomerUserView.from_resource(response.json()["data"], self.customers.extra_fields)
                )
            member.user = self.customers.resolve([member.email])[member.email]
            member.wrote.add("created")
            self.report.count(self.stream, "created")

    # -- names ----------------------------------------------------------------------------
    def _mailchimp_may_write(self, member: MemberRow, oro_updated: datetime | None) -> bool:
        policy = self.settings.conflict_policy
        if policy == MAILCHIMP_WINS:
            return True
        if policy == ORO_WINS:
            return False
        if oro_updated is None or member.last_changed is None:
            return True
        return member.last_changed >= oro_updated

    def _write_names(self, members: list[MemberRow]) -> None:
        updates = []
        for member in members:
            user = member.user
            assert user is not None
            changes: dict[str, str] = {}
            if member.first_name and member.first_name != (user.first_name or ""):
                changes["firstName"] = member.first_name
            if member.last_name and member.last_name != (user.last_name or ""):
                changes["lastName"] = member.last_name
            if not changes:
                continue
            if "created" in member.wrote:
                continue
            if not self._mailchimp_may_write(member, user.updated_at):
                self.report.count(self.stream, "conflict_kept_oro")
                continue
            updates.append(Update(member, user.id, changes, optional=frozenset(changes)))
            self._plan(member, "update_names", customer_user=user.id, fields=sorted(changes))
        landed = self.users.update(updates, self._reject_update, self._drop_field)
        for update in landed:
            member = update.context
            assert member.user is not None
            member.user.first_name = update.attributes.get("firstName", member.user.first_name)
            member.user.last_name = update.attributes.get("lastName", member.user.last_name)
            self.customers.store(member.user)
            member.wrote.add("name")
            self.report.count(self.stream, "names_updated")

    # -- phone ----------------------------------------------------------------------------
    def _write_phones(self, members: list[MemberRow]) -> None:
        wanted = [m for m in members if m.phone and m.user is not None]
        if not wanted:
            return
        primaries = self._primary_addresses([m.user.id for m in wanted if m.user])
        updates = []
        for member in wanted:
            assert member.user is not None
            address = primaries.get(member.user.id)
            if address is None:
                self.report.count(self.stream, "phone_skipped_no_primary_address")
                continue
            attrs = address.get("attributes") or {}
            if phone_digits(attrs.get("phone")) == phone_digits(member.phone):
                continue
            if not self._mailchimp_may_write(member, parse_utc(attrs.get("updatedAt"))):
                self.report.count(self.stream, "conflict_kept_oro")
                continue
            updates.append(Update(member, str(address["id"]), {"phone": member.phone}, optional=frozenset({"phone"})))
            self._plan(member, "update_phone", customer_user=member.user.id, address=str(address["id"]))
        for update in self.addresses.update(updates, self._reject_update, self._drop_field):
            update.context.wrote.add("phone")
            self.report.count(self.stream, "phones_updated")

    def _primary_addresses(self, user_ids: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        chunk_size = 50
        for start in range(0, len(user_ids), chunk_size):
            chunk = user_ids[start : start + chunk_size]
            params = build_filters({"customerUser": chunk})
            params["page[size]"] = "200"
            for address in self.writer.iter_resources("customeruseraddresses", params):
                owner = relationship_id(address, "customerUser")
                if owner is None or not (address.get("attributes") or {}).get("primary"):
                    continue
                found.setdefault(owner, address)
        return found

    # -- tags -----------------------------------------------------------------------------
    def _owned(self, name: str) -> bool:
        return name.lower().startswith(self.settings.tag_prefix.lower())

    def _write_tags(self, members: list[MemberRow]) -> None:
        """One owned-tag diff per member, then one fan-out of the changes."""
        if not self.settings.sync_tags:
            return
        tasks = [task for task in map(self._tag_task, members) if task is not None]
        if not tasks:
            return
        # Create missing tags first (serially: names are unique per organization).
        add_ids = {n: self.tags.find_or_create(n) for _, add, _ in tasks for n in add}
        results = self.writer.run_parallel(
            [functools.partial(self._apply_tags, m, [add_ids[n] for n in a], r) for m, a, r in tasks]
        )
        for (member, _, _), result in zip(tasks, results, strict=True):
            if isinstance(result, OroClientError):
                self._reject_oro(member, result)
            elif isinstance(result, BaseException):
                raise result

    def _tag_task(self, member: MemberRow) -> tuple[MemberRow, list[str], list[str]] | None:
        """One member's owned-tag diff ``(member, names to add, tag ids to remove)``, planned;
        None when nothing changes."""
        user = member.user
        if user is None or member.tags is None:
            return None
        if user.tag_ids is None:
            if not self._warned_tags:
                self._warned_tags = True
                self.report.count(self.stream, "tags_not_enabled_in_oro")
            return None
        desired = self._desired_tags(member.tags)
        current: dict[str, str] = {}
        for tag_id in user.tag_ids:
            owned = self.tags.name_of(tag_id)
            if owned and self._owned(owned):
                current[owned.lower()] = tag_id
        add = [desired[n] for n in desired if n not in current]
        remove = [current[n] for n in current if n not in desired] if member.tags_complete else []
        if not add and not remove:
            return None
        self._plan(member, "re-tag", customer_user=user.id, add=sorted(add),
                   remove=sorted(self.tags.name_of(t) or t for t in remove))
        return member, add, remove

    def _desired_tags(self, tags: Iterable[str]) -> dict[str, str]:
        """The Oro tag names (by lower-case name) a member's Mailchimp tags map to, minus excluded ones."""
        desired: dict[str, str] = {}
        for tag in tags:
            if any(tag.lower().startswith(p.lower()) for p in self.settings.exclude_tag_prefixes):
                continue
            name = f"{self.settings.tag_prefix}{tag}"
            if len(name) > TAG_NAME_MAX:
                self.report.count(self.stream, "tags_skipped_name_too_long")
                continue
            desired[name.lower()] = name
        return desired

    def _apply_tags(self, member: MemberRow, add: list[str], remove: list[str]) -> None:
        user = member.user
        assert user is not None
        assert user.tag_ids is not None
        path = f"customerusers/{user.id}/relationships/tags"
        if add:
            if not self.writer.dry_run:
                self.writer.call("POST", path, body={"data": [{"type": "tags", "id": i} for i in add]})
            user.tag_ids = list(dict.fromkeys([*user.tag_ids, *add]))
            self.report.count(self.stream, "tags_added", len(add))
        if remove:
            if not self.writer.dry_run:
                self.writer.call("DELETE", path, body={"data": [{"type": "tags", "id": i} for i in remove]})
            user.tag_ids = [t for t in user.tag_ids if t not in remove]
            self.report.count(self.stream, "tags_removed", len(remove))
        self.customers.store(user)
        member.wrote.add("tags")

    # -- consent --------------------------------------------------------------------------
    def _write_consent(self, members: list[MemberRow]) -> None:
        """Opt-outs and re-subscribes; nothing at all for opt-outs Oro already records.

        An opt-out is new when Oro holds no unsubscribe activity of ours dated at or after the
        member's latest opt-in (``timestamp_opt``). For a new one the marketing-list unsubscribe is
        sent now and the ``unsubscribe`` activity (the anchor: it means "lists done") is queued
        until :meth:`flush_consent`, which runs before the next state message: by then a campaign
        report row for the same opt-out, read later in the same run, has written the activity
        *with* its campaign, and the member-status one is skipped. The consent source is set to false
        first (see :meth:`_record_consent`).
        """
        ledger = self.activities.ledger
        opted_out = self.settings.opted_out
        if self.consent.writable:
            relevant = opted_out | {"subscribed"}
            self.consent.prepare([m.user for m in members if m.user is not None and m.status in relevant])
        fresh: list[MemberRow] = []
        withdraw: list[MemberRow] = []
        for member in members:
            if member.user is None or member.status not in opted_out:
                continue
            if member.status == "archived" and not member.user.enabled:
                # target-mailchimp archives the members of disabled users: the account's state, not
                # the person's choice, so no opt-out is recorded (re-enabled, the person is as before).
                self.report.count(self.stream, "archived_disabled_user_not_an_opt_out")
                continue
            if ledger.opt_out_recorded(member.user.id, member.opted_in_at):
                self.report.count(self.stream, "opt_out_already_in_oro")
                if self._oro_consent_needs_withdrawal(member, fresh=False):
                    withdraw.append(member)
                continue
            fresh.append(member)
            if self._oro_consent_needs_withdrawal(member, fresh=True):
                withdraw.append(member)
        failed = self._record_consent([(m, m.user, False) for m in withdraw if m.user])
        fresh = [m for m in fresh if m.record_key not in failed]
        if self.settings.marketing_list_ids:
            failed = self._lists_for([(m, m.user.id) for m in fresh if m.user], "unsubscribe")
            fresh = [m for m in fresh if m.record_key not in failed]
        if self.settings.marketing_list_ids or self.consent.writable:
            self._resubscribe([m for m in members if m.user is not None and m.status == "subscribed"])
        for member in fresh:
            if member.last_changed is None:
                continue
            member.wrote.add("opt_out")
            self._pending.append(
                ActivityIntent(
                    stream=self.stream,
                    record_key=member.record_key,
                    type="unsubscribe",
                    email=member.email if member.user is None else member.user.email,
                    email_id=member.email_id or "",
                    campaign_code=None,
                    list_id=member.list_id,
                    action_date=member.last_changed,
                    extra={"status": member.status},
                    opted_in_at=member.opted_in_at,
                )
            )

    def _oro_consent_needs_withdrawal(self, member: MemberRow, *, fresh: bool) -> bool:
        """Should the consent source be set to false for this opted-out member?

        Yes when it is not false already, except when Oro says true *after* an opt-out this connector
        recorded earlier (the person said yes again in Oro: the newer choice stands, and Mailchimp
        will not re-subscribe them without a new opt-in there).
        """
        if not self.consent.writable or member.user is None:
            return False
        current = self.consent.value(member.user)
        if current.given is False:
            return False
        if current.given is True and not fresh:
            recorded = [u.when for u in self.activities.ledger.unsubscribes_of(member.user.id)]
            if recorded and current.changed_at is not None and current.changed_at > max(recorded):
                self.report.count(self.stream, "consent_kept_oro_newer")
                return False
        return True

    def _record_consent(self, items: Sequence[ConsentWrite]) -> set[str]:
        """Write consent values into the consent source; record keys that failed (rejected)."""
        if not items:
            return set()
        for row, user, value in items:
            self._plan(row, "give_consent" if value else "withdraw_consent", customer_user=user.id)
        landed = self.consent.write(items, lambda item, detail, pointer: self._reject_update(item[0], detail, pointer))
        done = {id(item[0]) for item in landed}
        for member, user, value in landed:
            self.customers.store(user)  # the consent field's new value, for later answers
            member.wrote.add("consent")
            self.report.count(getattr(member, "stream", self.stream), "consent_given" if value else "consent_withdrawn")
        return {item[0].record_key for item in items if id(item[0]) not in done}

    # -- permanently deleted ("forgotten") members -------------------------------------------
    def forget(self, rows: Sequence[ForgottenRow]) -> None:
        """Members Mailchimp deleted permanently: an opt-out in Oro, and a GDPR request to act on.

        The customer user (found by id) gets what an unsubscribe gets (consent source false, the
        marketing lists, one ``unsubscribe`` activity with ``status: forgotten``, unless an opt-out of
        ours not followed by a re-subscribe is already there), and the run reports an action
        ``gdpr_erasure_request`` naming it: only the merchant can decide whether Oro must erase it too.
        A customer user that no longer exists needs nothing (``already_deleted_in_oro``).
        """
        stream = "forgotten_members"
        users = self.customers.resolve_ids([r.oro_id for r in rows])
        present: list[ForgottenRow] = []
        for row in rows:
            row.user = users.get(row.oro_id)
            if row.user is None:
                self.report.count(stream, "already_deleted_in_oro")
            else:
                present.append(row)
        if not present:
            return
        if self.consent.writable:
            self.consent.prepare([r.user for r in present if r.user])
            withdraw = [(r, r.user, False) for r in present if r.user and self.consent.value(r.user).given is not False]
            self._record_consent(withdraw)
        ledger = self.activities.ledger
        fresh: list[tuple[ForgottenRow, datetime | None]] = []
        for row in present:
            assert row.user is not None
            ours = ledger.unsubscribes_of(row.user.id)
            since = max((u.resubscribed_at for u in ours if u.resubscribed_at), default=None)
            if ours and ledger.opt_out_recorded(row.user.id, since):
                self.report.count(stream, "opt_out_already_in_oro")
            else:
                fresh.append((row, since))
        if self.settings.marketing_list_ids:
            failed = self._lists_for([(r, r.user.id) for r, _ in fresh if r.user], "unsubscribe")
            fresh = [(r, since) for r, since in fresh if r.record_key not in failed]
        for row, since in fresh:
            assert row.user is not None
            row.wrote.add("opt_out")
            self._pending.append(
                ActivityIntent(
                    stream=stream,
                    record_key=row.record_key,
                    type="unsubscribe",
                    email=row.user.email,
                    email_id=hashlib.md5(row.user.email.encode(), usedforsecurity=False).hexdigest(),
                    campaign_code=None,
                    list_id=row.list_id,
                    action_date=row.detected_at,
                    extra={"status": FORGOTTEN},
                    opted_in_at=since,
                )
            )
        for row in present:
            assert row.user is not None
            done = []
            if "consent" in row.wrote:
                done.append("marketing consent set to false")
            elif self.consent.writable:
                done.append("marketing consent was false already")
            if "opt_out" in row.wrote:
                done.append("an unsubscribe activity recorded")
                if self.settings.marketing_list_ids:
                    done.append("unsubscribed from the marketing lists")
            window = (
                f"between {format_oro_datetime(row.previous_sweep_at)} and {format_oro_datetime(row.detected_at)}"
                if row.previous_sweep_at
                else f"before {format_oro_datetime(row.detected_at)}"
            )
            self.report.action(
                stream,
                row.record_key,
                "gdpr_erasure_request",
                f"Mailchimp deleted the member of Oro customer user {row.user.id} permanently (GDPR 'forget', "
                f"{window}). Oro still holds customer user {row.user.id}: if the person asked for erasure, "
                "delete or anonymize it in Oro (keep what the law requires, e.g. orders); otherwise record "
                f"why it is kept. {'A dry run: would be done here' if self.writer.dry_run else 'Done here'}: "
                f"{', '.join(done) or 'nothing (no consent source configured)'}.",
                "oro_id",
            )
            self.report.count(stream, "updated" if row.wrote else "unchanged")

    def flush_consent(self) -> None:
        """Create the queued member-status ``unsubscribe`` activities (before state is emitted)."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        outcome = self.activities.write(pending)
        if outcome.created:
            self.report.count(self.stream, "unsubscribe_activities_created", outcome.created)
        if outcome.duplicates:
            self.report.count(self.stream, "opt_out_recorded_by_campaign_report", outcome.duplicates)

    def opt_outs_from_reports(self, items: list[tuple[ActivityIntent, str]]) -> set[int]:
        """Marketing lists for new opt-outs about to become activities; the failed indexes.

        Report rows (``unsubscribes``) get their list calls here; member-status opt-outs had theirs
        when the member was read (each customer user's lists are called once per run).
        """
        if not self.settings.marketing_list_ids:
            return set()
        rows = [_ReportOptOut(i.record_key, i.stream) for i, _ in items]
        failed = self._lists_for([(r, uid) for r, (_, uid) in zip(rows, items, strict=True)], "unsubscribe")
        return {n for n, r in enumerate(rows) if r.record_key in failed}

    def _resubscribe(self, subscribed: list[MemberRow]) -> None:
        """A Mailchimp opt-in newer than Oro's opt-out: consent true and the lists back, once.

        Marketing lists: only opt-outs this connector wrote are reversed (an unsubscribe made in Oro is
        never undone from Mailchimp), a member that never opted out costs no call, and after the list
        calls the latest unsubscribe activity's ``details`` get ``resubscribed_at`` (the anchor), so the
        same re-subscribe is not sent again when the member is read again.

        Consent source: set to true only when Oro holds an explicit ``false`` older than the opt-in:
        a custom field that is ``false`` with ``updatedAt`` before the member's ``timestamp_opt``, or
        (acceptances, which keep no decline) an opt-out this connector recorded before the opt-in and
        not yet reversed (the same anchor). "Never recorded" (``null``, no acceptance and no opt-out of
        ours) is never turned into consent: Mailchimp's ``subscribed`` alone is not proof of it.
        """
        ledger = self.activities.ledger
        lists: list[tuple[MemberRow, Unsubscribe]] = []
        consent: list[tuple[MemberRow, Unsubscribe | None]] = []
        for member in subscribed:
            assert member.user is not None
            ours = ledger.unsubscribes_of(member.user.id)
            opted_in = member.opted_in_at or member.last_changed
            latest = max(ours, key=lambda u: u.when) if ours else None
            done = max((u.resubscribed_at for u in ours if u.resubscribed_at), default=None)
            reverses_ours = (
                latest is not None
                and opted_in is not None
                and opted_in > latest.when
                and (done is None or opted_in > done)
            )
            if reverses_ours and self.settings.marketing_list_ids:
                assert latest is not None
                lists.append((member, latest))
            if self.consent.writable and self._oro_consent_may_be_given(member, reverses_ours):
                consent.append((member, latest if reverses_ours else None))
        failed = self._record_consent([(m, m.user, True) for m, _ in consent if m.user])
        if lists:
            failed |= self._lists_for([(m, m.user.id) for m, _ in lists if m.user], "subscribe")
        anchors = {id(m): (m, u) for m, u in [*lists, *consent] if u is not None}
        for member, latest in anchors.values():
            if member.record_key not in failed:
                self._mark_resubscribed(member, latest)

    def _oro_consent_may_be_given(self, member: MemberRow, reverses_ours: bool) -> bool:
        assert member.user is not None
        current = self.consent.value(member.user)
        if current.given is not False:
            return False  # already true, or never recorded (not turned into consent)
        opted_in = member.opted_in_at
        if current.explicit:
            if opted_in is None or (current.changed_at is not None and opted_in <= current.changed_at):
                self.report.count(self.stream, "consent_kept_oro_newer")
                return False
            return True
        return reverses_ours

    def _mark_resubscribed(self, member: MemberRow, latest: Unsubscribe) -> None:
        opted_in = member.opted_in_at or member.last_changed
        assert opted_in is not None
        latest.resubscribed_at = opted_in
        if latest.activity_id is None or latest.payload is None:
            self.report.count(self.stream, "resubscribe_anchor_missing")
            return
        latest.payload["resubscribed_at"] = format_oro_datetime(opted_in)
        details = json.dumps(latest.payload, sort_keys=True, separators=(",", ":"))
        body = {"data": {"type": "marketingactivities", "id": latest.activity_id, "attributes": {"details": details}}}
        self._plan(member, "mark_resubscribed", activity=latest.activity_id)
        if self.writer.dry_run:
            return
        try:
            self.writer.call("PATCH", f"marketingactivities/{latest.activity_id}", body=body)
        except OroClientError as exc:
            self._reject_oro(member, exc)

    def _lists_for(self, rows: Sequence[tuple[Any, str]], action: str) -> set[str]:
        """(Un)subscribe customer users in every configured list once per run; failed record keys."""
        tasks: list[tuple[Any, str, str, int]] = []
        for row, user_id in rows:
            if (action, user_id) in self._listed:
                continue
            self._listed.add((action, user_id))
            tasks.extend((row, action, user_id, lid) for lid in self.settings.marketing_list_ids)
        for row, action_, user_id, list_id in tasks:
            self._plan(row, f"{action_}_marketing_list", customer_user=user_id, marketing_list=list_id)
        failed = self._marketing_lists(tasks)
        for row, action_, user_id, _ in tasks:
            if row.record_key in failed:
                self._listed.discard((action_, user_id))  # not done: a later sighting tries again
        return failed

    def _marketing_lists(self, tasks: list[tuple[Any, str, str, int]]) -> set[str]:
        results = self.writer.run_parallel([functools.partial(self._marketing_list, *t) for t in tasks])
        failed: set[str] = set()
        for (row, action, _, _), result in zip(tasks, results, strict=True):
            stream = getattr(row, "stream", self.stream)
            if isinstance(result, OroClientError):
                failed.add(row.record_key)
                self._reject_oro(row, result)
            elif isinstance(result, BaseException):
                raise result
            elif result:
                if isinstance(row, MemberRow):
                    row.wrote.add(action)
                self.report.count(stream, f"marketing_list_{action}d")
            else:
                self.report.count(stream, f"marketing_list_already_{action}d")
        return failed

    def _marketing_list(self, row: Any, action: str, user_id: str, list_id: int) -> bool:
        """Old REST (un)subscribe; returns True when it changed something."""
        path = f"rest/latest/marketinglist/{list_id}/{action}/{user_id}"
        # unsubscribe: 400 = already unsubscribed; subscribe: 404 = not unsubscribed (some versions).
        expected_noop = 400 if action == "unsubscribe" else 404
        if self.writer.dry_run:
            return True
        response = self.writer.call(
            "POST",
            path,
            headers={"Accept": "application/json", "Content-Type": "application/json"},
            ok_statuses=(expected_noop,),
        )
        return getattr(response, "status_code", 200) < 300

    # -- rejects --------------------------------------------------------------------------
    def _reject_update(self, member: Any, detail: str, pointer: str | None) -> None:
        stream = getattr(member, "stream", self.stream)
        self.report.reject(stream, member.record_key, "oro_validation", detail, pointer)

    def _drop_field(self, member: Any, detail: str, pointer: str, value: Any) -> None:
        """Oro refused one optional attribute of a member's update: the rest is written without it."""
        stream = getattr(member, "stream", self.stream)
        self.report.reject_field(
            stream, member.record_key, "oro_validation", pointer, value, f"{detail}; the field was left out"
        )

    def _reject_oro(self, member: Any, exc: OroClientError) -> None:
        pointer = None
        for error in exc.errors:
            source = error.get("source")
            if isinstance(source, Mapping) and source.get("pointer"):
                pointer = str(source["pointer"])
                break
        stream = getattr(member, "stream", self.stream)
        self.report.reject(stream, member.record_key, f"oro_{exc.status}", all_error_details(exc), pointer)
