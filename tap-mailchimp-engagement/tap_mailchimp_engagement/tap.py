"""tap-mailchimp-engagement: configuration and stream wiring."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property
from typing import Any

from oromc_common.governor import DEFAULT_MAX_CONNECTIONS
from oromc_common.mailchimp import (
    MAILCHIMP_TIMEOUT_DETAIL,
    MailchimpConfigError,
    batch_wait_properties,
    connection_budget_properties,
    max_connections_property,
)
from oromc_common.output import GatheringWriter
from oromc_common.report import RunReport
from oromc_common.sdk_seams import SeamTap
from oromc_common.settings import (
    Renamed,
    connection_properties,
    page_size_property,
    rejects_path_property,
)
from singer_sdk import Stream
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError
from typing_extensions import override

from tap_mailchimp_engagement import streams
from tap_mailchimp_engagement.client import PAGE_SIZE, MailchimpContext, MailchimpRESTStream

STREAM_TYPES: list[type[Stream]] = [
    streams.ListsStream,
    streams.MergeFieldsStream,
    streams.SegmentsStream,
    streams.MembersStream,
    streams.MemberTagsStream,
    streams.MemberReconciliationStream,
    streams.MemberIdsStream,
    streams.ForgottenMembersStream,
    streams.CampaignsStream,
    streams.ReportsStream,
    streams.AutomationsStream,
    streams.AutomationEmailsStream,
    streams.EmailActivityStream,
    streams.UnsubscribesStream,
    streams.SentToStream,
    streams.AttributedOrdersStream,
]


class TapMailchimpEngagement(SeamTap):
    """Mailchimp members, consent and campaign engagement, incrementally."""

    name = "tap-mailchimp-engagement"
    message_writer_class = GatheringWriter
    renamed_settings = (Renamed("request_timeout_seconds", "request_timeout"),)

    config_jsonschema = th.PropertiesList(
        th.Property(
            "api_key",
            th.StringType,
            secret=True,
            title="API key",
            description="Mailchimp API key `<key>-<dc>`; the data center suffix selects the API host. "
            "Set this or `access_token`.",
        ),
        th.Property(
            "access_token",
            th.StringType,
            secret=True,
            title="OAuth access token",
            description="OAuth2 access token (the data center is looked up at login.mailchimp.com). "
            "Set this or `api_key`.",
        ),
        th.Property(
            "api_url",
            th.StringType,
            description="Override of the API base URL, e.g. the sandbox `http://127.0.0.1:8802/3.0`. "
            "HTTPS required except for a loopback host.",
        ),
        th.Property(
            "start_date",
            th.DateTimeType,
            description="Earliest `last_changed` for members and earliest campaign `send_time` read on the "
            "first run (later runs use the bookmarks).",
        ),
        th.Property(
            "list_ids",
            th.ArrayType(th.StringType),
            description="Audience ids to extract; all audiences when empty.",
        ),
        max_connections_property(DEFAULT_MAX_CONNECTIONS),
        *connection_budget_properties(),
        page_size_property(PAGE_SIZE, PAGE_SIZE, f"Items per page (`count`), 1..{PAGE_SIZE}."),
        th.Property(
            "member_window_days",
            th.NumberType,
            default=30,
            description="Width of one `since_last_changed`..`before_last_changed` window; the members "
            "bookmark advances after each completed window.",
        ),
        th.Property(
            "engagement_window_days",
            th.NumberType,
            default=30,
            description="Campaigns sent longer ago than this stop being polled for activity, unsubscribes, "
            "reports and orders (each campaign is still read once when first seen).",
        ),
        th.Property(
            "activity_lookback_minutes",
            th.NumberType,
            default=10,
            description="Trailing window re-read before each campaign's activity bookmark, because "
            "Mailchimp records activity late.",
        ),
        th.Property(
            "use_batches",
            th.StringType,
            default="auto",
            allowed_values=["auto", "always", "never"],
            description="Read email activity through `/batches`: `auto` when the campaigns read for the "
            "first time have at least `batch_threshold_emails` recipients.",
        ),
        th.Property(
            "batch_threshold_emails",
            th.IntegerType,
            default=20000,
            description="Recipients (sum of `emails_sent` of first-time campaigns) from which `auto` uses "
            "`/batches`.",
        ),
        th.Property(
            "batch_max_operations",
            th.IntegerType,
            default=1000,
            description="Page operations (of 1,000 recipients) per `/batches` job; more are split into jobs "
            "pipelined, at most two open. Results are read one operation at a time whatever the job's size.",
        ),
        *batch_wait_properties(
            poll="Wait between batch status polls after the first (grows by half each poll, up to "
            "30 s); the first poll comes when the job should be finished (from the last job's duration).",
            timeout="Give up waiting for a batch after this long; its id stays in state and the next "
            "run resumes it.",
        ),
        th.Property(
            "deletion_check",
            th.StringType,
            default="auto",
            allowed_values=["auto", "always", "never"],
            description="Permanent-deletion detection: `auto` emits the `member_ids` snapshot and the "
            "`forgotten_members` rows when the member counts show missing members (and sweeps once to "
            "build the baseline of Oro ids), `always` sweeps every run, `never` skips the counts.",
        ),
        th.Property(
            "identity_merge_field",
            th.StringType(max_length=10, pattern=r"^[A-Z0-9_]*$"),
            default="OROID",
            description="Audience merge field holding the Oro customer-user id (written by target-mailchimp). "
            "`forgotten_members` keeps the set of these ids to name the people Mailchimp deleted "
            "permanently; members without one (Mailchimp-only people) are never reported. Empty disables "
            "`forgotten_members`.",
        ),
        th.Property(
            "merge_tags",
            th.ArrayType(th.StringType(min_length=1, max_length=10, pattern=r"^[A-Z0-9_]+$")),
            default=[],
            description="Merge tags of the audience to declare in the `merge_fields` schema of `members`, "
            "`unsubscribes` and `sent_to` besides the standard ones (FNAME, LNAME, PHONE, BIRTHDAY, COMPANY, "
            "ADDRESS) and `identity_merge_field`: a flattening loader gets a column for each. Other tags "
            "come in `merge_fields_other` (one JSON column when flattened).",
        ),
        *connection_properties(
            request_timeout=120,
            max_tries=6,
            retried="429, body-less 403, 5xx, HTML 503 and connection resets",
            backoff_factor_seconds=1.0,
            timeout_detail=MAILCHIMP_TIMEOUT_DETAIL,
        ),
        rejects_path_property(),
    ).to_dict()

    @override
    def discover_streams(self) -> list[Stream]:
        return [stream_class(tap=self) for stream_class in STREAM_TYPES]

    @property
    @override
    def streams(self) -> dict[str, Stream]:
        """Streams in dependency order (the SDK sorts by name; members must precede reconciliation)."""
        return self.streams_in_order(STREAM_TYPES)

    @cached_property
    def report(self) -> RunReport:
        """The run summary and rejects report."""
        return RunReport(self.name, rejects_path=self.config.get("rejects_path"))

    @cached_property
    def mailchimp(self) -> MailchimpContext:
        """Shared client, clock and caches for every stream of this run."""
        try:
            return MailchimpContext(self.config, self.report, self._read_collection)
        except MailchimpConfigError as exc:  # errors= is what the SDK prints
            raise ConfigValidationError(str(exc), errors=[str(exc)]) from exc

    def _read_collection(self, stream_name: str) -> Iterable[dict[str, Any]]:
        """Every row of a REST stream's collection, through the stream's SDK request path."""
        stream = self.streams[stream_name]
        if not isinstance(stream, MailchimpRESTStream):
            msg = f"{stream_name} is not a REST stream"
            raise TypeError(msg)
        return stream.request_records(None)

    def finish_run(self) -> None:
        """Release connections and log the run summary (called once, after the last stream)."""
        if "mailchimp" in self.__dict__:
            self.mailchimp.close()
        self.report.log_summary(self.logger)
        self.report.close()


if __name__ == "__main__":
    TapMailchimpEngagement.cli()
