"""Mailchimp ``members`` -> Oro customer users: names, phone, owned tags and consent.

Per batch of members the target

1. looks the customer users up by email (one filtered list call per 50 emails, cached);
2. decides, per field, whether Mailchimp's value should be written (conflict policy) and whether it
   differs from Oro's (unchanged values are never written, so nothing echoes back to Mailchimp);
3. writes names with the Batch API (``PATCH /customerusers`` + ``X-Mode: sync``), phones with the
   Batch API on the primary address, owned tags through the ``tags`` relationship, consent as an
   ``unsubscribe`` marketing activity and, when marketing lists are configured, through the old
   REST marketing-list (un)subscribe endpoints.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests
from oromc_common.oro import (
    OroClientError,
    build_filters,
    format_oro_datetime,
    parse_oro_datetime,
    relationship_id,
)
from oromc_common.report import RunReport

from target_orocommerce.activities import ActivityIntent, ActivityWriter, Unsubscribe
from target_orocommerce.bulk import BulkUpdater, Update
from target_orocommerce.client import SYNC_BATCH_LIMIT, OroWriter, all_error_details
from target_orocommerce.lookups import (
    TAG_NAME_MAX,
    CustomerUserDirectory,
    CustomerUserView,
    TagDirectory,
    normalize_email,
)

STATUSES = {"subscribed", "unsubscribed", "cleaned", "pending", "transactional", "archived"}
OPTED_OUT = {"unsubscribed", "cleaned"}
NEWER_WINS, MAILCHIMP_WINS, ORO_WINS = "newer_wins", "mailchimp_wins", "oro_wins"
_PHONE_CHARS = re.compile(r"[^\d+]")


def phone_digits(value: Any) -> str:
    """Comparable form of a phone number: digits and ``+`` only."""
    return _PHONE_CHARS.sub("", str(value or ""))


def _utc(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    if isinstance(value, str) and value:
        try:
            return parse_oro_datetime(value)
        except ValueError:
            return None
    return None


@dataclass
class MemberSettings:
    """The target settings members need."""

    conflict_policy: str = NEWER_WINS
    sync_tags: bool = True
    tag_prefix: str = "mc:"
    ignore_tag_prefixes: tuple[str, ...] = ()
    first_name_field: str = "FNAME"
    last_name_field: str = "LNAME"
    phone_field: str = "PHONE"
    marketing_list_ids: tuple[int, ...] = ()
    create_missing: bool = False
    new_user_customer_id: str | None = None
    new_user_role_id: str | None = None


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
    user: CustomerUserView | None = None
    wrote: set[str] = field(default_factory=set)


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


def parse_member(record: Mapping[str, Any], settings: MemberSettings) -> MemberRow:
    """Validate and parse one ``members`` record."""
    email = normalize_email(record.get("email_address"))
    key = f"{record.get('list_id')}/{record.get('id')}"
    if email is None:
        raise MemberError("missing or invalid email_address", "email_address")
    status = record.get("status")
    if status not in STATUSES:
        raise MemberError(f"unknown status {status!r}", "status")
    merge = record.get("merge_fields") or {}
    if not isinstance(merge, Mapping):
        raise MemberError("merge_fields is not an object", "merge_fields")

    def text(name: str) -> str | None:
        value = merge.get(name)
        if value is None or isinstance(value, Mapping):
            return None
        value = str(value).strip()
        return value or None

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
    return MemberRow(
        record_key=key,
        email=email,
        email_id=str(record.get("id") or ""),
        list_id=record.get("list_id"),
        status=str(status),
        first_name=text(settings.first_name_field),
        last_name=text(settings.last_name_field),
        phone=text(settings.phone_field),
        tags=tags,
        tags_complete=complete,
        last_changed=_utc(record.get("last_changed")),
        opted_in_at=_utc(record.get("timestamp_opt")),
    )


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
        batch_mode: str = "auto",
        stream: str = "members",
    ) -> None:
        self.writer = writer
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
        oldest = datetime.min.replace(tzinfo=UTC)
        for row in rows:
            old = latest.get(row.email)
            if old is not None:
                # The same person twice in one batch (e.g. two audiences): the newest change wins.
                self.report.count(self.stream, "superseded_in_batch")
                if (row.last_changed or oldest) < (old.last_changed or oldest):
                    continue
            latest[row.email] = row
        members = list(latest.values())
        users = self.customers.resolve(m.email for m in members)
        missing: list[MemberRow] = []
        for member in members:
            member.user = users.get(member.email)
            if member.user is None:
                missing.append(member)
        if missing:
            self._handle_missing(missing)
        matched = [m for m in members if m.user is not None]
        self._write_names(matched)
        self._write_phones(matched)
        self._write_tags(matched)
        self._write_consent(matched)
        for member in matched:
            self.report.count(self.stream, "updated" if member.wrote else "unchanged")

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

            def landed(m: MemberRow = member) -> bool:
                self.customers.forget(m.email)
                return self.customers.resolve([m.email])[m.email] is not None

            try:
                response = self.writer.call("POST", "customerusers", body=body, verify=landed)
            except OroClientError as exc:
                self._reject_oro(member, exc)
                continue
            if isinstance(response, requests.Response):
                self.customers.remember(CustomerUserView.from_resource(response.json()["data"]))
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
            updates.append(Update(member, user.id, changes))
        landed = self.users.update(updates, self._reject_update)
        for update in landed:
            member = update.context
            assert member.user is not None
            member.user.first_name = update.attributes.get("firstName", member.user.first_name)
            member.user.last_name = update.attributes.get("lastName", member.user.last_name)
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
            if not self._mailchimp_may_write(member, _utc(attrs.get("updatedAt"))):
                self.report.count(self.stream, "conflict_kept_oro")
                continue
            updates.append(Update(member, str(address["id"]), {"phone": member.phone}))
        for update in self.addresses.update(updates, self._reject_update):
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
        if not self.settings.sync_tags:
            return
        tasks = []
        for member in members:
            user = member.user
            if user is None or member.tags is None:
                continue
            if user.tag_ids is None:
                if not self._warned_tags:
                    self._warned_tags = True
                    self.report.count(self.stream, "tags_not_enabled_in_oro")
                continue
            desired: dict[str, str] = {}
            for tag in member.tags:
                if any(tag.lower().startswith(p.lower()) for p in self.settings.ignore_tag_prefixes):
                    continue
                name = f"{self.settings.tag_prefix}{tag}"
                if len(name) > TAG_NAME_MAX:
                    self.report.count(self.stream, "tags_skipped_name_too_long")
                    continue
                desired[name.lower()] = name
            current: dict[str, str] = {}
            for tag_id in user.tag_ids:
                owned = self.tags.name_of(tag_id)
                if owned and self._owned(owned):
                    current[owned.lower()] = tag_id
            add = [desired[n] for n in desired if n not in current]
            remove = [current[n] for n in current if n not in desired] if member.tags_complete else []
            if add or remove:
                tasks.append((member, add, remove))
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

    def _apply_tags(self, member: MemberRow, add: list[str], remove: list[str]) -> None:
        user = member.user
        assert user is not None
        assert user.tag_ids is not None
        path = f"customerusers/{user.id}/relationships/tags"
        if add:
            self.writer.call("POST", path, body={"data": [{"type": "tags", "id": i} for i in add]})
            user.tag_ids = list(dict.fromkeys([*user.tag_ids, *add]))
            self.report.count(self.stream, "tags_added", len(add))
        if remove:
            self.writer.call("DELETE", path, body={"data": [{"type": "tags", "id": i} for i in remove]})
            user.tag_ids = [t for t in user.tag_ids if t not in remove]
            self.report.count(self.stream, "tags_removed", len(remove))
        member.wrote.add("tags")

    # -- consent --------------------------------------------------------------------------
    def _write_consent(self, members: list[MemberRow]) -> None:
        """Opt-outs and re-subscribes; nothing at all for opt-outs Oro already records.

        An opt-out is new when Oro holds no unsubscribe activity of ours dated at or after the
        member's latest opt-in (``timestamp_opt``). For a new one the marketing-list unsubscribe is
        sent now and the ``unsubscribe`` activity (the anchor: it means "lists done") is queued
        until :meth:`flush_consent`, which runs before the next state message: by then a campaign
        report row for the same opt-out, read later in the same run, has written the activity
        *with* its campaign, and the member-status one is skipped.
        """
        ledger = self.activities.ledger
        fresh: list[MemberRow] = []
        for member in members:
            if member.user is None or member.status not in OPTED_OUT:
                continue
            if ledger.opt_out_recorded(member.user.id, member.opted_in_at):
                self.report.count(self.stream, "opt_out_already_in_oro")
                continue
            fresh.append(member)
        if self.settings.marketing_list_ids:
            failed = self._lists_for([(m, m.user.id) for m in fresh if m.user], "unsubscribe")
            fresh = [m for m in fresh if m.record_key not in failed]
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
                    email=member.email,
                    email_id=member.email_id or "",
                    campaign_code=None,
                    list_id=member.list_id,
                    action_date=member.last_changed,
                    extra={"status": member.status},
                    opted_in_at=member.opted_in_at,
                )
            )

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
        """Reverse *our* opt-outs for members whose opt-in is newer, once.

        Only opt-outs this connector wrote are reversed (an unsubscribe made in Oro is never undone
        from Mailchimp), a member that never opted out costs no call, and after the list calls the
        latest unsubscribe activity's ``details`` get ``resubscribed_at`` (the anchor), so the same
        re-subscribe is not sent again when the member is read again.
        """
        ledger = self.activities.ledger
        todo: list[tuple[MemberRow, Unsubscribe]] = []
        for member in subscribed:
            assert member.user is not None
            ours = ledger.unsubscribes_of(member.user.id)
            opted_in = member.opted_in_at or member.last_changed
            if not ours or opted_in is None:
                continue
            latest = max(ours, key=lambda u: u.when)
            done = max((u.resubscribed_at for u in ours if u.resubscribed_at), default=None)
            if opted_in > latest.when and (done is None or opted_in > done):
                todo.append((member, latest))
        if not todo:
            return
        failed = self._lists_for([(m, m.user.id) for m, _ in todo if m.user], "subscribe")
        for member, latest in todo:
            if member.record_key in failed:
                continue
            self._mark_resubscribed(member, latest)

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
        response = self.writer.call(
            "POST",
            path,
            headers={"Accept": "application/json", "Content-Type": "application/json"},
            ok_statuses=(expected_noop,),
        )
        return getattr(response, "status_code", 200) < 300

    # -- rejects --------------------------------------------------------------------------
    def _reject_update(self, member: Any, detail: str, pointer: str | None) -> None:
        self.report.reject(self.stream, member.record_key, "oro_validation", detail, pointer)

    def _reject_oro(self, member: Any, exc: OroClientError) -> None:
        pointer = None
        for error in exc.errors:
            source = error.get("source")
            if isinstance(source, Mapping) and source.get("pointer"):
                pointer = str(source["pointer"])
                break
        stream = getattr(member, "stream", self.stream)
        self.report.reject(stream, member.record_key, f"oro_{exc.status}", all_error_details(exc), pointer)
