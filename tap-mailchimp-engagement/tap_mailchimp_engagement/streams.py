"""Stream classes: audiences, members, campaigns, reports and engagement."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from oromc_common.mailchimp import PermanentMailchimpError
from typing_extensions import override

from tap_mailchimp_engagement import schemas
from tap_mailchimp_engagement.client import (
    ChangeDetectedStream,
    MailchimpStream,
    format_ts,
    is_not_found,
    ordered_prefetch,
    parse_ts,
)
from tap_mailchimp_engagement.engagement import ActivityReader, flatten_activity

if TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

ONE_SECOND = timedelta(seconds=1)
TIE_MARGIN = 10  # re-read this many rows of a same-second group to survive rows leaving the window


# -- audiences ---------------------------------------------------------------------------------


class ListsStream(ChangeDetectedStream):
    """Audiences."""

    name = "lists"
    primary_keys: ClassVar[list[str]] = ["id"]
    schema = schemas.LISTS

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        yield from (dict(row) for row in self.mc.lists())


class MergeFieldsStream(ChangeDetectedStream):
    """Audience fields (merge fields) of every audience."""

    name = "merge_fields"
    primary_keys: ClassVar[list[str]] = ["list_id", "merge_id"]
    schema = schemas.MERGE_FIELDS

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        for audience in self.mc.lists():
            list_id = audience["id"]
            params = {"exclude_fields": "merge_fields._links,_links"}
            for row in self.mc.paginate(f"/lists/{list_id}/merge-fields", "merge_fields", params):
                yield {**row, "list_id": list_id}


class SegmentsStream(ChangeDetectedStream):
    """Saved segments and tags (static segments) of every audience."""

    name = "segments"
    primary_keys: ClassVar[list[str]] = ["list_id", "id"]
    schema = schemas.SEGMENTS

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        for audience in self.mc.lists():
            list_id = audience["id"]
            params = {"exclude_fields": "segments._links,_links"}
            for row in self.mc.paginate(f"/lists/{list_id}/segments", "segments", params):
                yield {**row, "list_id": list_id}


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
        previous = parse_ts(bookmark.get("since"))
        cutoff = self.mc.now()
        newest = self._edge(path, "DESC")
        if newest is not None and newest > cutoff:
            cutoff = newest  # the server clock is ahead of ours: never leave its present behind
        # `last_changed` has whole seconds: a change later in the cut-off's own second would get a
        # stamp equal to the cut-off and fall between this run and the next (strict `since`).
        cutoff -= ONE_SECOND
        since = previous or parse_ts(self.config.get("start_date"))
        if since is None:
            oldest = self._edge(path, "ASC")
            since = (oldest - ONE_SECOND) if oldest else cutoff
        run = self.mc.member_run(list_id)
        run["previous_cutoff"] = previous
        window = timedelta(days=float(self.config.get("member_window_days") or 30))
        lo = since
        while lo < cutoff:
            hi = min(lo + window, cutoff)
            archived_in_main: set[str] = set()
            for row in self._scan(path, lo, hi, None):
                if row.get("status") == "archived":
                    archived_in_main.add(row["id"])
                yield self._member(list_id, row, run)
            for row in self._scan(path, lo, hi, "archived"):
                if row["id"] not in archived_in_main:
                    yield self._member(list_id, row, run)
            bookmark["since"] = format_ts(hi)
            self.flush_state()  # the window is complete: its rows are already written
            lo = hi
        run["cutoff"] = cutoff

    def _edge(self, path: str, direction: str) -> datetime | None:
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
            rows = self.mc.get(path, params).get("members") or []
            if rows:
                value = parse_ts(rows[0].get("last_changed"))
                if value is not None:
                    edges.append(value)
        if not edges:
            return None
        return max(edges) if direction == "DESC" else min(edges)

    def _scan(
        self, path: str, lo: datetime, hi: datetime, status: str | None
    ) -> Iterator[dict[str, Any]]:
        """Members with ``lo < last_changed <= hi``, ascending, by keyset pages.

        Each page asks for ``since_last_changed`` = one second before the last ``last_changed`` read
        (strictly greater-than) and skips, by ``offset``, the rows of that overlap already read (minus a
        small margin; duplicates are dropped by id). Unlike plain offset paging, members that change while
        we page (and so leave the window) cannot shift unread rows out of reach, and offsets stay small.
        """
        base = {
            "before_last_changed": format_ts(hi),
            "sort_field": "last_changed",
            "sort_dir": "ASC",
            "exclude_fields": "members._links,_links",
        }
        if status:
            base["status"] = status
        size = self.mc.page_size
        full_margin = min(TIE_MARGIN, size // 4)
        margin = full_margin
        cursor = lo
        overlap: dict[str, datetime] = {}  # rows read with last_changed > cursor
        while True:
            offset = max(0, len(overlap) - margin)
            params = {**base, "since_last_changed": format_ts(cursor)}
            rows, _ = self.mc.page(path, "members", offset, params)
            fresh = 0
            for row in rows:
                rid = str(row.get("id"))
                if rid in overlap:
                    continue
                fresh += 1
                changed = parse_ts(row.get("last_changed"))
                if changed is not None:
                    overlap[rid] = changed
                yield row
            if len(rows) < size:
                return
            last = parse_ts(rows[-1].get("last_changed"))
            if last is None:
                return
            if fresh == 0:
                if margin == 0:
                    return  # defensive: nothing new even without re-reading the overlap
                margin = 0
                continue
            margin = full_margin
            cursor = last - ONE_SECOND
            overlap = {rid: ts for rid, ts in overlap.items() if ts >= cursor}

    def _member(self, list_id: str, row: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
        row = {**row, "list_id": list_id}
        self.report.count(self.name, "read")
        previous = run.get("previous_cutoff")
        joined = [
            t for t in (parse_ts(row.get("timestamp_signup")), parse_ts(row.get("timestamp_opt"))) if t
        ]
        if previous is not None and joined and min(joined) > previous:
            run["new"] = run.get("new", 0) + 1
        return row

    @override
    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        row = super().post_process(row, context) or row
        tags_stream = self._tap.streams.get("member_tags")
        if isinstance(tags_stream, MemberTagsStream) and tags_stream.selected:
            tags_stream.write_for_member(row)
        return row


class MemberTagsStream(MailchimpStream):
    """All tags of each member emitted by ``members`` (written during the members scan)."""

    name = "member_tags"
    primary_keys: ClassVar[list[str]] = ["list_id", "member_id", "tag_id"]
    schema = schemas.MEMBER_TAGS
    _schema_written = False

    def write_for_member(self, member: dict[str, Any]) -> None:
        """Write the member's complete tag set right after the member row."""
        if not self._schema_written:
            self._write_schema_message()
            self._schema_written = True
        for row in self._tags_of(member):
            self._write_record_message(row)
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
        members = self._tap.streams.get("members")
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
                pending[list_id] = format_ts(checked_at)
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
        recon = self._tap.streams.get("member_reconciliation")
        if not isinstance(recon, MemberReconciliationStream):
            return
        pending = recon.bucket("pending_sweeps")
        for list_id, sweep_at in list(pending.items()):
            path = f"/lists/{list_id}/members"
            fields = "members.id,members.status"
            for status in (None, "archived"):
                params: dict[str, Any] = {"fields": fields}
                if status:
                    params["status"] = status
                for row in self.mc.paginate(path, "members", params):
                    if status is None and row.get("status") == "archived":
                        continue  # counted by the archived pass
                    yield {"list_id": list_id, "id": row["id"], "status": row.get("status"), "sweep_at": sweep_at}
            del pending[list_id]
            recon.flush_state()


# -- campaigns and reports -------------------------------------------------------------------


class CampaignsStream(ChangeDetectedStream):
    """Campaigns (all statuses)."""

    name = "campaigns"
    primary_keys: ClassVar[list[str]] = ["id"]
    schema = schemas.CAMPAIGNS

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
        oldest = min(parse_ts(row.get("send_time")) or self.mc.now() for row in chosen)
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


# -- per-recipient engagement ------------------------------------------------------------------


class EmailActivityStream(MailchimpStream):
    """One row per open/click/bounce, per campaign with ``since`` and a trailing re-read window.

    State (``bookmarks.email_activity``): ``campaigns.<id>`` = newest activity timestamp read ("" when the
    campaign had none yet); ``batch`` = the in-flight ``/batches`` job, if any.
    """

    name = "email_activity"
    primary_keys: ClassVar[list[str]] = ["campaign_id", "email_id", "action", "timestamp", "url"]
    replication_key = "timestamp"
    is_sorted = False
    schema = schemas.EMAIL_ACTIVITY

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        reader = ActivityReader(self)
        yield from reader.read()

    @override
    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        return row  # rows are built by flatten_activity, already clean


class UnsubscribesStream(MailchimpStream):
    """Campaign unsubscribes with reason; per-campaign bookmark on ``timestamp``."""

    name = "unsubscribes"
    primary_keys: ClassVar[list[str]] = ["campaign_id", "email_id"]
    schema = schemas.UNSUBSCRIBES

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        marks = self.bucket("campaigns")
        lookback = timedelta(minutes=float(self.config.get("activity_lookback_minutes", 10)))
        for campaign in self.mc.engagement_campaigns(marks):
            cid = campaign["id"]
            mark = parse_ts(marks.get(cid))
            floor = mark - lookback if mark else None
            newest = mark
            try:
                rows = list(
                    self.mc.paginate(
                        f"/reports/{cid}/unsubscribed",
                        "unsubscribes",
                        {"exclude_fields": "unsubscribes._links,_links"},
                    )
                )
            except PermanentMailchimpError as exc:
                if not is_not_found(exc):
                    raise
                self.warn_missing(f"unsubscribes of campaign {cid} (deleted)", exc)
                continue
            for row in rows:
                when = parse_ts(row.get("timestamp"))
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
                    yield {**row, "campaign_id": cid, "absplit_group": row.get("absplit_group") or None}
            except PermanentMailchimpError as exc:
                if not is_not_found(exc):
                    raise
                self.warn_missing(f"sent-to of campaign {cid} (deleted)", exc)
            done[cid] = True
            self.flush_state()


class EcommerceOrdersStream(ChangeDetectedStream):
    """Orders attributed to campaigns inside the engagement window (conversions)."""

    name = "ecommerce_orders"
    primary_keys: ClassVar[list[str]] = ["store_id", "id"]
    schema = schemas.ECOMMERCE_ORDERS

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        polled = self.bucket("polled")
        campaigns = self.mc.engagement_campaigns(polled)
        calls = [(lambda cid=c["id"]: self._orders(cid)) for c in campaigns]
        for cid, rows in ordered_prefetch(calls, self.mc.pool, self.mc.workers * 2):
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
    "CampaignsStream",
    "EcommerceOrdersStream",
    "EmailActivityStream",
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
