"""Stream classes: audiences, members, campaigns, reports and engagement."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from oromc_common import idsets
from oromc_common.dates import parse_utc
from oromc_common.mailchimp import PermanentMailchimpError
from oromc_common.sdk_seams import write_record, write_schema
from singer_sdk.helpers.conform import TypeConformanceLevel
from typing_extensions import override

from tap_mailchimp_engagement import identity, schemas
from tap_mailchimp_engagement.client import (
    ChangeDetectedStream,
    MailchimpContext,
    MailchimpRESTStream,
    MailchimpStream,
    format_ts,
    is_not_found,
)
from tap_mailchimp_engagement.engagement import ActivityReader, flatten_activity

if TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

ONE_SECOND = timedelta(seconds=1)
TIE_MARGIN = 10  # re-read this many rows of a same-second group to survive rows leaving the window


# -- audiences ---------------------------------------------------------------------------------


class ListsStream(ChangeDetectedStream, MailchimpRESTStream):
    """Audiences (read once per run, shared with the streams that go through every audience)."""

    name = "lists"
    primary_keys: ClassVar[list[str]] = ["id"]
    schema = schemas.LISTS
    path = "/lists"
    items_key = "lists"
    url_params: ClassVar[dict[str, str]] = {"exclude_fields": "lists._links,_links"}

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        yield from (dict(row) for row in self.mc.lists())


class MergeFieldsStream(ChangeDetectedStream, MailchimpRESTStream):
    """Audience fields (merge fields) of every audience."""

    name = "merge_fields"
    primary_keys: ClassVar[list[str]] = ["list_id", "merge_id"]
    schema = schemas.MERGE_FIELDS
    path = "/lists/{list_id}/merge-fields"
    items_key = "merge_fields"
    url_params: ClassVar[dict[str, str]] = {"exclude_fields": "merge_fields._links,_links"}

    @property
    @override
    def partitions(self) -> list[dict[str, Any]]:
        return [{"list_id": audience["id"]} for audience in self.mc.lists()]


class SegmentsStream(ChangeDetectedStream, MailchimpRESTStream):
    """Saved segments and tags (static segments) of every audience."""

    name = "segments"
    primary_keys: ClassVar[list[str]] = ["list_id", "id"]
    schema = schemas.SEGMENTS
    path = "/lists/{list_id}/segments"
    items_key = "segments"
    url_params: ClassVar[dict[str, str]] = {"exclude_fields": "segments._links,_links"}

    @property
    @override
    def partitions(self) -> list[dict[str, Any]]:
        return [{"list_id": audience["id"]} for audience in self.mc.lists()]


# -- members -----------------------------------------------------------------------------------


class MembersStream(MailchimpStream):
    """Members by windows of ``last_changed``; ``member_tags`` rows are written alongside.

    State (``bookmarks.members``): ``lists.<list_id>.since`` = the end of the last completed window.
    """

    name = "members"
    primary_keys: ClassVar[list[str]] = ["list_id", "id"]
    replication_key = "last_changed"
    is_sorted = False
    schema = schemas.MEMBERS

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        for audience in self.mc.lists():
            yield from self._sync_list(audience["id"])

    # -- one audience ------------------------------------------------------------------------
    def _sync_list(self, list_id: str) -> Iterator[dict[str, Any]]:
        path = f"/lists/{list_id}/members"
        bookmark = self.bucket("lists").setdefault(list_id, {})
        previous = parse_utc(bookmark.get("since"))
        cutoff = self.mc.now()
        newest = member_edge(self.mc, path, "DESC")
        if newest is not None and newest > cutoff:
            cutoff = newest  # the server clock is ahead of ours: never leave its present behind
        # `last_changed` has whole seconds: a change later in the cut-off's own second would get a
        # stamp equal to the cut-off and fall between this run and the next (strict `since`).
        cutoff -= ONE_SECOND
        since = previous or parse_utc(self.config.get("start_date"))
        if since is None:
            oldest = member_edge(self.mc, path, "ASC")
            since = (oldest - ONE_SECOND) if oldest else cutoff
        run = self.mc.member_run(list_id)
        run["previous_cutoff"] = previous
        tracker = self._identity_tracker()
        window = timedelta(days=float(self.config.get("member_window_days") or 30))
        lo = since
        while lo < cutoff:
            hi = min(lo + window, cutoff)
            archived_in_main: set[str] = set()
            for row in scan_members(self.mc, path, lo, hi, None):
                if row.get("status") == "archived":
                    archived_in_main.add(row["id"])
                yield self._member(list_id, row, run)
            for row in scan_members(self.mc, path, lo, hi, "archived"):
                if row["id"] not in archived_in_main:
                    yield self._member(list_id, row, run)
            if tracker is not None:
                tracker.remember(list_id, run.pop("identities", None))
            bookmark["since"] = format_ts(hi)
            self.flush_state()  # the window is complete: its rows are already written
            lo = hi
        run["cutoff"] = cutoff

    def _identity_tracker(self) -> ForgottenMembersStream | None:
        """The stream that keeps the audience's Oro ids, when it is selected and enabled."""
        stream = self.tap.streams.get("forgotten_members")
        if isinstance(stream, ForgottenMembersStream) and stream.selected and stream.enabled:
            return stream
        return None

    def _member(self, list_id: str, row: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
        row = {**row, "list_id": list_id}
        self.report.count(self.name, "read")
        previous = run.get("previous_cutoff")
        joined = [
            t for t in (parse_utc(row.get("timestamp_signup")), parse_utc(row.get("timestamp_opt"))) if t
        ]
        if previous is not None and joined and min(joined) > previous:
            run["new"] = run.get("new", 0) + 1
        oro_id = identity.identity_value(row, self.mc.identity_merge_field)
        if oro_id is not None:
            run.setdefault("identities", idsets.BitMap()).add(oro_id)
        return row

    @override
    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        row = super().post_process(row, context) or row
        tags_stream = self.tap.streams.get("member_tags")
        if isinstance(tags_stream, MemberTagsStream) and tags_stream.selected:
            tags_stream.write_for_member(row)
        return row


# -- member scans (shared by the members stream and the id sweeps) ------------------------------


def member_edge(mc: MailchimpContext, path: str, direction: str) -> datetime | None:
    """Oldest/newest ``last_changed`` in the audience (archived members included)."""
    edges = []
    for status in (None, "archived"):
        params: dict[str, Any] = {
            "count": 1,
            "sort_field": "last_changed",
            "sort_dir": direction,
            "fields": "members.last_changed,total_items",
        }
        if status:
            params["status"] = status
        rows = mc.get(path, params).get("members") or []
        if rows:
            value = parse_utc(rows[0].get("last_changed"))
            if value is not None:
                edges.append(value)
    if not edges:
        return None
    return max(edges) if direction == "DESC" else min(edges)


def scan_members(
    mc: MailchimpContext,
    path: str,
    lo: datetime,
    hi: datetime | None,
    status: str | None,
    fields: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Members with ``lo < last_changed <= hi`` (no upper bound when ``hi`` is None), ascending.

    Keyset pages: each asks for ``since_last_changed`` = one second before the last ``last_changed``
    read (strictly greater-than) and skips, by ``offset``, the rows of that overlap already read (minus
    a small margin; duplicates are dropped by id). Unlike plain offset paging, members that change or
    are deleted while we page cannot shift unread rows out of reach, and offsets stay small.
    ``fields`` (which must include ``members.id`` and ``members.last_changed``) trims the rows.
    """
    base = {"sort_field": "last_changed", "sort_dir": "ASC"}
    if hi is not None:
        base["before_last_changed"] = format_ts(hi)
    if fields:
        base["fields"] = fields
    else:
        base["exclude_fields"] = "members._links,_links"
    if status:
        base["status"] = status
    size = mc.page_size
    full_margin = min(TIE_MARGIN, size // 4)
    margin = full_margin
    cursor = lo
    overlap: dict[str, datetime] = {}  # rows read with last_changed > cursor
    while True:
        offset = max(0, len(overlap) - margin)
        params = {**base, "since_last_changed": format_ts(cursor)}
        rows, _ = mc.page(path, "members", offset, params)
        fresh = 0
        for row in rows:
            rid = str(row.get("id"))
            if rid in overlap:
                continue
            fresh += 1
            changed = parse_utc(row.get("last_changed"))
            if changed is not None:
                overlap[rid] = changed
            yield row
        if len(rows) < size:
            return
        last = parse_utc(rows[-1].get("last_changed"))
        if last is None:
            return
        if fresh == 0:
            if margin == 0:
                return  # defensive: nothing new even without re-reading the overlap
            margin = 0
            continue
        margin = full_margin
        cursor = last - ONE_SECOND
        overlap = {rid: ts for rid, ts in overlap.items() if ts > cursor}


def sweep_members(mc: MailchimpContext, list_id: str) -> Iterator[dict[str, Any]]:
    """Every member that exists now (archived included): id, status and the identity merge field.

    Per status (the plain listing, then ``status=archived``) a keyset scan up to the run cut-off, then
    one for whatever changed after it (a member that changes mid-sweep leaves the first scan and is
    caught by the second). A deletion during the sweep shifts no unread row. The Oro ids seen are kept
    for the run (``member_run(list_id)["swept_identities"]``), so a second consumer of the same sweep
    does not read the audience again. A member may come twice (changed while swept); every member that
    exists throughout the sweep comes at least once.
    """
    path = f"/lists/{list_id}/members"
    merge = mc.identity_merge_field
    fields = "members.id,members.status,members.last_changed"
    if merge:
        fields += f",members.merge_fields.{merge}"
    cutoff = mc.now()
    oldest = member_edge(mc, path, "ASC")
    start = (oldest - ONE_SECOND) if oldest is not None and oldest <= cutoff else cutoff - ONE_SECOND
    seen = idsets.BitMap()
    for status in (None, "archived"):
        for lo, hi in ((start, cutoff), (cutoff - ONE_SECOND, None)):
            for row in scan_members(mc, path, lo, hi, status, fields):
                if status is None and row.get("status") == "archived":
                    continue  # counted by the archived pass
                oro_id = identity.identity_value(row, merge)
                if oro_id is not None:
                    seen.add(oro_id)
                yield row
    mc.member_run(list_id)["swept_identities"] = seen


class MemberTagsStream(MailchimpStream):
    """All tags of each member emitted by ``members`` (written during the members scan)."""

    name = "member_tags"
    primary_keys: ClassVar[list[str]] = ["list_id", "member_id", "tag_id"]
    schema = schemas.MEMBER_TAGS
    _schema_written = False

    def write_for_member(self, member: dict[str, Any]) -> None:
        """Write the member's complete tag set right after the member row."""
        if not self._schema_written:
            write_schema(self)
            self._schema_written = True
        for row in self._tags_of(member):
            write_record(self, row)
            self.report.count(self.name, "emitted")

    def _tags_of(self, member: dict[str, Any]) -> Iterator[dict[str, Any]]:
        list_id, member_id = member["list_id"], member["id"]
        tags = member.get("tags") or []
        count = member.get("tags_count")
        base = {"list_id": list_id, "member_id": member_id, "member_last_changed": member.get("last_changed")}
        if not isinstance(count, int) or count <= len(tags):
            for tag in tags:
                yield {**base, "tag_id": tag.get("id"), "name": tag.get("name"), "date_added": None}
            return
        path = f"/lists/{list_id}/members/{member_id}/tags"
        try:
            for tag in self.mc.paginate(path, "tags", {"exclude_fields": "_links"}):
                yield {
                    **base,
                    "tag_id": tag.get("id"),
                    "name": tag.get("name"),
                    "date_added": tag.get("date_added") or None,
                }
        except PermanentMailchimpError as exc:
            if not is_not_found(exc):
                raise
            self.warn_missing("tags of a member deleted meanwhile", exc)

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        members = self.tap.streams.get("members")
        if members is None or not members.selected:
            self.logger.warning("member_tags is written during the members scan: select 'members' too.")
        return iter(())


class MemberReconciliationStream(MailchimpStream):
    """Per audience and run: member counts now vs. before, to detect permanent deletions."""

    name = "member_reconciliation"
    primary_keys: ClassVar[list[str]] = ["list_id", "checked_at"]
    schema = schemas.MEMBER_RECONCILIATION

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        mode = self.config.get("deletion_check", "auto")
        if mode == "never":
            return
        totals = self.bucket("totals")
        pending = self.bucket("pending_sweeps")
        for audience in self.mc.lists():
            list_id = audience["id"]
            path = f"/lists/{list_id}/members"
            archived = self.mc.count(path, "members", {"status": "archived"})
            total = self.mc.count(path, "members") + archived
            run = self.mc.member_run(list_id)
            checked_at = run.get("cutoff") or self.mc.now()
            previous = totals.get(list_id)
            new = int(run.get("new", 0))
            missing = None
            if isinstance(previous, int):
                missing = max(0, previous + new - total)
            sweep = mode == "always" or bool(missing)
            if sweep:
                ids = self.tap.streams.get("member_ids")
                if ids is not None and ids.selected:  # a snapshot is owed only to a selected stream
                    pending[list_id] = format_ts(checked_at)
                forgotten = self.tap.streams.get("forgotten_members")
                if isinstance(forgotten, ForgottenMembersStream) and forgotten.selected:
                    forgotten.owe_sweep(list_id)
                self.logger.warning(
                    "Audience %s: %s member(s) missing since the last run; an id sweep follows.",
                    list_id,
                    missing if missing is not None else "?",
                )
            totals[list_id] = total
            if previous == total and not sweep:
                continue  # nothing changed: a re-run emits nothing new
            yield {
                "list_id": list_id,
                "checked_at": format_ts(checked_at),
                "total_members": total,
                "archived_members": archived,
                "previous_total": previous if isinstance(previous, int) else None,
                "new_members": new,
                "missing_members": missing,
                "id_sweep": sweep,
            }


class MemberIdsStream(MailchimpStream):
    """Complete id snapshot of an audience, written only when the reconciliation asks for it."""

    name = "member_ids"
    primary_keys: ClassVar[list[str]] = ["list_id", "id"]
    schema = schemas.MEMBER_IDS

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        recon = self.tap.streams.get("member_reconciliation")
        if not isinstance(recon, MemberReconciliationStream):
            return
        pending = recon.bucket("pending_sweeps")
        for list_id, sweep_at in list(pending.items()):
            for row in sweep_members(self.mc, list_id):
                yield {"list_id": list_id, "id": row["id"], "status": row.get("status"), "sweep_at": sweep_at}
            del pending[list_id]
            recon.flush_state()


class ForgottenMembersStream(MailchimpStream):
    """Members that were permanently deleted ("forgotten"), named by the Oro id they carried.

    State (``bookmarks.forgotten_members.lists.<list_id>``): ``oro_ids`` = the set of identity values
    (Oro customer-user ids) carried by the audience's members, as of the last sweep plus every member
    the ``members`` stream read since (see :mod:`tap_mailchimp_engagement.identity`); ``baseline_at`` =
    time of the last complete sweep; ``pending`` = a sweep is owed (set by ``member_reconciliation``
    when members are missing, kept until the sweep completes, so a killed run sweeps again).

    A sweep (``deletion_check``: ``auto`` when members are missing or no baseline exists yet; ``always``
    every run) reads every member's id and identity merge field; each id in ``oro_ids`` that no member
    carries any more is emitted once, then ``oro_ids`` becomes what the sweep saw.
    """

    name = "forgotten_members"
    primary_keys: ClassVar[list[str]] = ["list_id", "oro_id", "detected_at"]
    schema = schemas.FORGOTTEN_MEMBERS

    @property
    def enabled(self) -> bool:
        """False when ``deletion_check`` is ``never`` or no identity merge field is configured."""
        return self.config.get("deletion_check", "auto") != "never" and bool(self.mc.identity_merge_field)

    def _entry(self, list_id: str) -> dict[str, Any]:
        entry: dict[str, Any] = self.bucket("lists").setdefault(list_id, {})
        return entry

    def owe_sweep(self, list_id: str) -> None:
        """Record that the next pass over this audience must sweep (members are missing)."""
        if self.enabled:
            self._entry(list_id)["pending"] = True

    def remember(self, list_id: str, ids: idsets.BitMap | None) -> None:
        """Add the Oro ids the members stream just read (called before its state is flushed)."""
        if not ids:
            return
        entry = self._entry(list_id)
        known = idsets.decode(entry.get("oro_ids"), identity.state_key(list_id))
        if ids.issubset(known):
            return
        entry["oro_ids"] = idsets.encode(known | ids)

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        if not self.enabled:
            return
        mode = self.config.get("deletion_check", "auto")
        recon = self.tap.streams.get("member_reconciliation")
        counted = recon is not None and recon.selected
        if mode == "auto" and not counted:
            self.logger.warning(
                "forgotten_members: member_reconciliation is not selected, so there are no counts to "
                "tell when members are missing; sweeping every audience every run."
            )
        for audience in self.mc.lists():
            list_id = audience["id"]
            entry = self._entry(list_id)
            known = idsets.decode(entry.get("oro_ids"), identity.state_key(list_id))
            baseline = parse_utc(entry.get("baseline_at"))
            if not (mode == "always" or not counted or entry.get("pending") or baseline is None):
                continue
            run = self.mc.member_run(list_id)
            present = run.get("swept_identities")
            if present is None:
                for _ in sweep_members(self.mc, list_id):
                    pass
                present = run["swept_identities"]
            detected_at = format_ts(run.get("cutoff") or self.mc.now())
            if baseline is not None:
                for oro_id in known - present:
                    self.report.count(self.name, "emitted")
                    yield {
                        "list_id": list_id,
                        "oro_id": str(oro_id),
                        "identity_merge_field": self.mc.identity_merge_field,
                        "detected_at": detected_at,
                        "previous_sweep_at": format_ts(baseline),
                    }
            else:
                self.report.count(self.name, "baseline_sweeps")
            entry["oro_ids"] = idsets.encode(present)
            entry["baseline_at"] = detected_at
            entry.pop("pending", None)
            self.flush_state()


# -- campaigns and reports -------------------------------------------------------------------


class CampaignsStream(ChangeDetectedStream, MailchimpRESTStream):
    """Campaigns (all statuses; read once per run, shared with the engagement streams)."""

    name = "campaigns"
    primary_keys: ClassVar[list[str]] = ["id"]
    schema = schemas.CAMPAIGNS
    path = "/campaigns"
    items_key = "campaigns"
    url_params: ClassVar[dict[str, str]] = {
        "exclude_fields": "campaigns._links,_links",
        "sort_field": "create_time",
        "sort_dir": "ASC",
    }

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        yield from (dict(row) for row in self.mc.campaigns())


class ReportsStream(ChangeDetectedStream):
    """Campaign reports of campaigns inside the engagement window."""

    name = "reports"
    primary_keys: ClassVar[list[str]] = ["id"]
    schema = schemas.REPORTS

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        polled = self.bucket("polled")
        chosen = self.mc.engagement_campaigns(polled)
        if not chosen:
            return
        wanted = {row["id"] for row in chosen}
        oldest = min(parse_utc(row.get("send_time")) or self.mc.now() for row in chosen)
        # Not in the schema (by design: social and send-time-optimisation details), so not requested.
        params = {
            "exclude_fields": "reports._links,reports.timeseries,reports.facebook_likes,"
            "reports.timewarp,reports.share_report,_links",
            "since_send_time": format_ts(oldest - ONE_SECOND),
        }
        for row in self.mc.paginate("/reports", "reports", params):
            if row.get("id") in wanted:
                polled[row["id"]] = True
                yield row


class AutomationsStream(ChangeDetectedStream, MailchimpRESTStream):
    """Classic automation workflows (`GET /automations`; read once per run, shared with their emails)."""

    name = "automations"
    primary_keys: ClassVar[list[str]] = ["id"]
    schema = schemas.AUTOMATIONS
    path = "/automations"
    items_key = "automations"
    url_params: ClassVar[dict[str, str]] = {"exclude_fields": "automations._links,_links"}

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        yield from (dict(row) for row in self.mc.automations())


class AutomationEmailsStream(ChangeDetectedStream, MailchimpRESTStream):
    """The emails of every workflow (`GET /automations/{id}/emails`); each is also a campaign."""

    name = "automation_emails"
    primary_keys: ClassVar[list[str]] = ["workflow_id", "id"]
    schema = schemas.AUTOMATION_EMAILS
    path = "/automations/{workflow_id}/emails"
    items_key = "emails"
    url_params: ClassVar[dict[str, str]] = {
        "exclude_fields": "emails._links,emails.tracking,emails.recipients,_links"
    }

    @property
    @override
    def partitions(self) -> list[dict[str, Any]]:
        return [{"workflow_id": automation["id"]} for automation in self.mc.automations()]

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        wid = (context or {}).get("workflow_id")
        try:
            rows = list(super().get_records(context))
        except PermanentMailchimpError as exc:
            if not is_not_found(exc):
                raise
            self.warn_missing(f"emails of automation {wid} (deleted)", exc)
            return
        yield from rows

    @override
    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        # The row's own workflow_id wins; the partition's only fills a missing one.
        workflow = {"workflow_id": row.get("workflow_id") or (context or {}).get("workflow_id")}
        return super().post_process({**row, **workflow}, workflow)


# -- per-recipient engagement ------------------------------------------------------------------


class EmailActivityStream(MailchimpStream):
    """One row per open/click/bounce, per campaign with ``since`` and a trailing re-read window.

    State (``bookmarks.email_activity``): ``campaigns.<id>`` = newest activity timestamp read ("" when the
    campaign had none yet); ``batch`` = the ``/batches`` job being waited for or read, ``next_batch`` = the
    one submitted as soon as ``batch`` finished (jobs are pipelined), if any.
    """

    name = "email_activity"
    primary_keys: ClassVar[list[str]] = ["event_id"]
    replication_key = "timestamp"
    is_sorted = False
    schema = schemas.EMAIL_ACTIVITY
    # Rows are built by ``flatten_activity`` with exactly the schema's columns, from JSON strings,
    # booleans and nulls, so the SDK's per-record type conformance (19% of the CPU of a /batches run
    # of 80,556 rows, py-spy) has nothing to change and is skipped, as tap-orocommerce does.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        reader = ActivityReader(self)
        yield from reader.read()

    @override
    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        return row  # rows are built by flatten_activity, already clean


class UnsubscribesStream(MailchimpRESTStream):
    """Campaign unsubscribes with reason; per-campaign bookmark on ``timestamp``.

    One partition per campaign inside the engagement window; an unsubscribe list is small (a fraction of
    the recipients), so its pages are read one after another.
    """

    name = "unsubscribes"
    primary_keys: ClassVar[list[str]] = ["campaign_id", "email_id"]
    schema = schemas.UNSUBSCRIBES
    path = "/reports/{campaign_id}/unsubscribed"
    items_key = "unsubscribes"
    url_params: ClassVar[dict[str, str]] = {"exclude_fields": "unsubscribes._links,_links"}

    @property
    @override
    def partitions(self) -> list[dict[str, Any]]:
        return [{"campaign_id": c["id"]} for c in self.mc.engagement_campaigns(self.bucket("campaigns"))]

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        if not context:
            return
        cid = context["campaign_id"]
        marks = self.bucket("campaigns")
        lookback = timedelta(minutes=float(self.config.get("activity_lookback_minutes", 10)))
        mark = parse_utc(marks.get(cid))
        floor = mark - lookback if mark else None
        newest = mark
        try:
            rows = list(super().get_records(context))
        except PermanentMailchimpError as exc:
            if not is_not_found(exc):
                raise
            self.warn_missing(f"unsubscribes of campaign {cid} (deleted)", exc)
            return
        for row in rows:
            when = parse_utc(row.get("timestamp"))
            if floor is not None and when is not None and when <= floor:
                continue
            if when is not None and (newest is None or when > newest):
                newest = when
            yield {**row, "campaign_id": cid, "reason": row.get("reason") or None}
        marks[cid] = format_ts(newest) if newest else ""
        self.flush_state()


class SentToStream(MailchimpStream):
    """Recipients of each campaign with delivery status; read once after sending finished."""

    name = "sent_to"
    primary_keys: ClassVar[list[str]] = ["campaign_id", "email_id"]
    schema = schemas.SENT_TO

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        done = self.bucket("campaigns")
        todo = [
            c for c in self.mc.engagement_campaigns(done) if c.get("status") == "sent" and c["id"] not in done
        ]
        params = {"exclude_fields": "sent_to._links,_links"}
        for campaign in todo:
            cid = campaign["id"]
            try:
                for row in self.mc.paginate(f"/reports/{cid}/sent-to", "sent_to", params):
                    yield {
                        **row,
                        "campaign_id": cid,
                        "send_time": campaign.get("send_time"),
                        "absplit_group": row.get("absplit_group") or None,
                    }
            except PermanentMailchimpError as exc:
                if not is_not_found(exc):
                    raise
                self.warn_missing(f"sent-to of campaign {cid} (deleted)", exc)
            done[cid] = True
            self.flush_state()


class AttributedOrdersStream(ChangeDetectedStream):
    """Orders attributed to campaigns inside the engagement window (conversions)."""

    name = "attributed_orders"
    primary_keys: ClassVar[list[str]] = ["store_id", "id"]
    schema = schemas.ATTRIBUTED_ORDERS

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        polled = self.bucket("polled")
        campaigns = self.mc.engagement_campaigns(polled)
        calls = [(lambda cid=c["id"]: self._orders(cid)) for c in campaigns]
        for cid, rows in self.mc.pool.stream(calls):
            yield from rows
            polled[cid] = True

    def _orders(self, cid: str) -> tuple[str, list[dict[str, Any]]]:
        # Addresses, promos and tracking are not in the schema (a conversion needs none of them;
        # addresses are personal data), so they are not requested.
        params = {
            "campaign_id": cid,
            "exclude_fields": "orders._links,orders.lines._links,orders.shipping_address,"
            "orders.billing_address,orders.promos,orders.tracking_number,orders.tracking_carrier,"
            "orders.tracking_url,_links",
        }
        try:
            return cid, list(self.mc.paginate("/ecommerce/orders", "orders", params))
        except PermanentMailchimpError as exc:
            if not is_not_found(exc):
                raise
            self.warn_missing(f"orders of campaign {cid}", exc)
            return cid, []


__all__ = [
    "AttributedOrdersStream",
    "AutomationEmailsStream",
    "AutomationsStream",
    "CampaignsStream",
    "EmailActivityStream",
    "ForgottenMembersStream",
    "ListsStream",
    "MemberIdsStream",
    "MemberReconciliationStream",
    "MemberTagsStream",
    "MembersStream",
    "MergeFieldsStream",
    "ReportsStream",
    "SegmentsStream",
    "SentToStream",
    "UnsubscribesStream",
    "flatten_activity",
]
