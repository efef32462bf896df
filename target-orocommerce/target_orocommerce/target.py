"""target-orocommerce: Mailchimp contact changes, consent and engagement written into OroCommerce."""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from oromc_common.records import GatedTarget, PrivateLineReader
from oromc_common.report import RunReport
from oromc_common.settings import (
    Renamed,
    connection_properties,
    max_connections_property,
    page_size_property,
    rejects_path_property,
)
from singer_sdk import typing as th
from singer_sdk.sinks import Sink
from typing_extensions import override

from target_orocommerce.activities import ACTIVITY_TYPES
from target_orocommerce.client import (
    BACKOFF_FACTOR_SECONDS,
    DEFAULT_MAX_CONNECTIONS,
    MAX_CONNECTIONS,
)
from target_orocommerce.consent import CONSENT_SOURCES
from target_orocommerce.members import ARCHIVED_KEEP, ARCHIVED_WITHDRAW
from target_orocommerce.results import DEFAULT_FIELDS, FIGURES, field_map
from target_orocommerce.services import Services
from target_orocommerce.sinks import (
    ActivitySink,
    CampaignsSink,
    ConversionsSink,
    ForgottenMembersSink,
    IgnoredSink,
    MembersSink,
    ReportsSink,
)

#: Fields whose problems reject the whole record, besides the key properties and the schema's
#: ``required`` (e.g. ``members.last_changed``: without it the newer-wins rule cannot be applied).
#: ``merge_fields.<identity field>`` is added for ``members`` from the settings.
ESSENTIAL: dict[str, tuple[str, ...]] = {
    "members": ("email_address", "status", "last_changed", "timestamp_opt"),
    "unsubscribes": ("timestamp",),
    "ecommerce_orders": ("campaign_id",),
}
RECORD_KEYS: dict[str, tuple[str, ...]] = {
    "members": ("list_id", "id"),
    "forgotten_members": ("list_id", "oro_id"),
    "email_activity": ("campaign_id", "email_id"),
    "sent_to": ("campaign_id", "email_id"),
    "unsubscribes": ("campaign_id", "email_id"),
    "ecommerce_orders": ("store_id", "id"),
}

SINKS: dict[str, type[Sink]] = {
    "members": MembersSink,
    "forgotten_members": ForgottenMembersSink,
    "campaigns": CampaignsSink,
    "reports": ReportsSink,
    "email_activity": ActivitySink,
    "sent_to": ActivitySink,
    "unsubscribes": ActivitySink,
    "attributed_orders": ConversionsSink,
}


class TargetOroCommerce(GatedTarget):
    """Singer target writing tap-mailchimp-engagement streams into the Oro back-office API."""

    name = "target-orocommerce"
    message_reader_class = PrivateLineReader  # msgspec; a line that is not JSON is never logged
    # Sinks are drained one after the other in the order their streams first appeared, so campaigns
    # are written before the activities that point at them; concurrency lives inside the sinks.
    max_parallelism = 1
    renamed_settings = (
        Renamed("max_retries", "max_tries"),  # this target's max_retries already counted attempts
        Renamed("max_retry_wait", "backoff_max_seconds"),
        Renamed("max_concurrency", "max_connections"),
        Renamed("lookup_page_size", "page_size"),
        Renamed("ignore_tag_prefixes", "exclude_tag_prefixes"),
    )

    config_jsonschema = th.PropertiesList(
        th.Property("base_url", th.StringType, required=True, title="Oro site URL",
                    description="Root URL of the OroCommerce site, e.g. https://shop.example.com. "
                    "HTTPS required; http:// only for localhost/127.0.0.1."),
        th.Property("api_prefix", th.StringType, default="/admin/api",
                    description="Back-office API path prefix (Oro's web_backend_prefix + /api)."),
        th.Property("client_id", th.StringType, required=True,
                    description="Client id of the back-office OAuth application."),
        th.Property("client_secret", th.StringType, required=True, secret=True,
                    description="Client secret of the back-office OAuth application."),
        th.Property("grant_type", th.StringType, default="client_credentials",
                    allowed_values=["client_credentials", "password"],
                    description="OAuth2 grant: client_credentials (default) or password."),
        th.Property("username", th.StringType,
                    description="Back-office user name, only for grant_type=password."),
        th.Property("password", th.StringType, secret=True,
                    description="Back-office user password, only for grant_type=password."),
        th.Property("conflict_policy", th.StringType, default="newer_wins",
                    allowed_values=["newer_wins", "mailchimp_wins", "oro_wins"],
                    description="Who wins when a name/phone differs: newer_wins compares the member's "
                    "last_changed with the Oro record's updatedAt; mailchimp_wins always writes; "
                    "oro_wins never overwrites Oro values."),
        th.Property("sync_tags", th.BooleanType, default=True,
                    description="Mirror Mailchimp member tags as Oro tags on the customer user "
                    "(needs tagging enabled for Customer User in Oro)."),
        th.Property("tag_prefix", th.StringType, default="mc:",
                    description="Prefix of the Oro tags this connector owns: Mailchimp tag T becomes Oro "
                    "tag <prefix>T; only tags with this prefix are ever added or removed."),
        th.Property("exclude_tag_prefixes", th.ArrayType(th.StringType), default=["oro:"],
                    description="Mailchimp tags starting with one of these prefixes are not mirrored "
                    "(e.g. tags target-mailchimp pushed from Oro), so they never loop back."),
        th.Property("first_name_merge_field", th.StringType, default="FNAME",
                    description="Mailchimp merge field holding the first name."),
        th.Property("last_name_merge_field", th.StringType, default="LNAME",
                    description="Mailchimp merge field holding the last name."),
        th.Property("phone_merge_field", th.StringType, default="PHONE",
                    description="Mailchimp merge field holding the phone (written to the primary address)."),
        th.Property("marketing_list_ids", th.ArrayType(th.IntegerType), default=[],
                    description="Oro marketing list ids (lists of customer users) to unsubscribe "
                    "unsubscribed/cleaned members from, and re-subscribe re-subscribed members to "
                    "(old REST API)."),
        th.Property("create_missing_customer_users", th.BooleanType, default=False,
                    description="Create a customer user for a subscribed member with no match "
                    "(default: report it as rejected, create nothing)."),
        th.Property("new_customer_user_customer_id", th.StringType,
                    description="Customer (account) id new customer users belong to; required when "
                    "create_missing_customer_users is true."),
        th.Property("new_customer_user_role_id", th.StringType,
                    description="Customer user role id for created users; without it they are "
                    "created disabled."),
        th.Property("identity_merge_field", th.StringType(max_length=10, pattern=r"^[A-Z0-9_]*$"),
                    default="OROID",
                    description="Mailchimp merge field holding the Oro customer-user id (written by "
                    "target-mailchimp). A member carrying it is matched to that customer user before its "
                    "email is looked at; empty = match by email only."),
        th.Property("apply_email_changes", th.BooleanType, default=False,
                    description="A member found by its Oro id whose address differs from the Oro email: "
                    "false (default) = reported as an action, Oro unchanged (the Oro email is the login, and "
                    "a Mailchimp profile form must not change it); true = the Oro email is changed, when "
                    "Mailchimp's change is the newer and no other customer user has the address (else "
                    "reported)."),
        th.Property("archived_member_consent", th.StringType, default=ARCHIVED_WITHDRAW,
                    allowed_values=[ARCHIVED_WITHDRAW, ARCHIVED_KEEP],
                    description="What an archived Mailchimp member means for Oro. withdraw (default): an "
                    "opt-out (consent false, marketing lists unsubscribed, an unsubscribe activity), since "
                    "the merchant stopped emailing the person and nothing says they may be emailed again; "
                    "keep: nothing changes in Oro (archiving as housekeeping)."),
        th.Property("consent_source", th.StringType, default="none", allowed_values=list(CONSENT_SOURCES),
                    description="Where Oro keeps marketing consent, written back from Mailchimp: none; "
                    "customer_user_field (the boolean custom field consent_field, PATCH); consent_acceptances "
                    "(OroConsentBundle acceptances of consent_name exposed as consent_acceptance_resource: "
                    "created on a re-subscribe, deleted on an opt-out). Use the same as tap-orocommerce."),
        th.Property("consent_field", th.StringType, default="marketing_consent",
                    description="API name of the boolean custom field on CustomerUser holding marketing "
                    "consent (consent_source=customer_user_field)."),
        th.Property("consent_acceptance_resource", th.StringType, default="consentacceptances",
                    description="JSON:API type of OroConsentBundle's ConsentAcceptance as the api.yml "
                    "customization exposes it (consent_source=consent_acceptances)."),
        th.Property("consent_name", th.StringType, default="Email subscription",
                    description="Name (default localization) of the Oro consent that counts as marketing "
                    "consent (consent_source=consent_acceptances)."),
        th.Property("activity_granularity", th.StringType, default="first_per_action",
                    allowed_values=["first_per_action", "every_event"],
                    description="every_event: one marketing activity per open/click; first_per_action: "
                    "only the first open and first click per member and campaign."),
        th.Property("activity_types", th.ArrayType(th.StringType),
                    default=["send", "open", "click", "soft_bounce", "hard_bounce", "unsubscribe"],
                    description="Marketing activity types to write (send, open, click, soft_bounce, "
                    "hard_bounce, unsubscribe); leave out e.g. send to keep one record per recipient out "
                    "of Oro."),
        th.Property("batch_mode", th.StringType, default="auto",
                    allowed_values=["auto", "batch", "single"],
                    description="auto: Batch API (X-Mode: sync, <=100) where the resource allows it, "
                    "one request per record otherwise; single: never use the Batch API."),
        th.Property("conversion_mode", th.StringType, default="order_campaign",
                    allowed_values=["order_campaign", "off"],
                    description="order_campaign: link each attributed order to its campaign; off: ignore."),
        th.Property("conversion_order_relationship", th.StringType, default="campaign",
                    description="Name of the custom Order -> Campaign relation in Oro."),
        th.Property("conversion_order_match", th.StringType, default="id",
                    allowed_values=["id", "identifier"],
                    description="Oro order field equal to the Mailchimp e-commerce order id."),
        th.Property("campaign_results", th.BooleanType, default=False,
                    description="Write each Mailchimp campaign report's figures (sends, opens, unique opens, "
                    "clicks, bounces, unsubscribes, open and click rate, orders, revenue) to custom fields of the "
                    "Oro campaign, only those that changed. Needs the fields in Oro (Entity Management > Campaign, "
                    "see the README's 'Campaign results'); without them each report is rejected "
                    "(campaign_results_fields_missing). Off: reports only date send activities."),
        th.Property("campaign_results_fields",
                    th.ObjectType(*(th.Property(name, th.StringType(max_length=55),
                                                description=f"Oro field of the figure {name} (default "
                                                f"{DEFAULT_FIELDS[name]}); empty = not written.")
                                    for name in FIGURES), additional_properties=False),
                    description="Oro custom field (API name) of each figure, for campaign_results; a figure left "
                    "out keeps its default mc_<figure>, an empty name is not written."),
        max_connections_property(DEFAULT_MAX_CONNECTIONS, MAX_CONNECTIONS,
                                 "Most requests in flight at once (1-"
                                 f"{MAX_CONNECTIONS}): the ceiling of the adaptive concurrency, which "
                                 "starts at half of it, grows while Oro answers as fast as before and halves on "
                                 "a 503/429 or a doubled latency (Oro's worker pool is full)."),
        *connection_properties(
            request_timeout=60, max_tries=6, backoff_factor_seconds=BACKOFF_FACTOR_SECONDS,
            backoff_max_seconds=60, retried="429, 5xx and connection errors",
        ),
        page_size_property(500, 1000, "JSON:API page[size] of the dedupe lookups of marketing activities (1-1000)."),
        rejects_path_property("output/target-orocommerce.rejects.jsonl"),
        th.Property("state_after_each_state_message", th.BooleanType, default=True,
                    description="Drain every sink and emit state whenever the tap sends a new state "
                    "(finer resume points); false = only every 5 minutes and at the end (SDK default)."),
        th.Property("dry_run", th.BooleanType, default=False,
                    description="Read everything the run compares against and plan every write, but write "
                    "nothing to Oro (no state is emitted either, so the tap's bookmarks stay): the run summary "
                    "counts what would be done per action (`would_update_names`, `would_update_phone`, "
                    "`would_re-tag`, `would_withdraw_consent`, `would_unsubscribe_marketing_list`, "
                    "`would_create_unsubscribe_activity`, `would_create_marketing_activity`, "
                    "`would_link_order_campaign`, `would_change_email`, ...), and `dry_run_report_path` gets "
                    "the counts with a redacted sample of each."),
        th.Property("dry_run_report_path", th.StringType(min_length=1),
                    description="JSON file receiving the planned actions of the run (counts and a redacted "
                    "sample per action), in a dry run and in a real one; none when unset (the counts are in "
                    "the run summary)."),
    ).to_dict()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._services: Services | None = None
        self._services_lock = threading.Lock()
        self._run_end: _RunEnd | None = None
        cfg = self.config
        if cfg.get("create_missing_customer_users") and not cfg.get("new_customer_user_customer_id"):
            msg = "Setting 'new_customer_user_customer_id' is required when create_missing_customer_users is true."
            raise ValueError(msg)
        unknown = sorted(set(cfg.get("activity_types") or []) - set(ACTIVITY_TYPES))
        if unknown:
            msg = f"Setting 'activity_types' has unknown types {unknown}; known: {', '.join(ACTIVITY_TYPES)}."
            raise ValueError(msg)
        field_map(cfg.get("campaign_results_fields"))  # unknown figures: a clear error before any work
        if cfg.get("base_url"):
            from oromc_common.http import require_secure_url

            require_secure_url(str(cfg["base_url"]), "base_url")

    @property
    def services(self) -> Services:
        """The shared services, built on first use."""
        with self._services_lock:
            if self._services is None:
                self._services = Services(self.config)
                # A run that stops on an error still logs its summary: when this target is
                # released, or at the latest when the process exits.
                self._run_end = _RunEnd(self._services, self.logger)
                weakref.finalize(self, self._run_end, failed=True)
            return self._services

    # -- the record gate (oromc_common.records): schema problems answered per record or field --
    gate_read_counter = "read"

    @override
    def gate_report(self) -> RunReport:
        return self.services.report

    @override
    def gate_applies(self, stream: str) -> bool:
        return self.get_sink_class(stream) is not IgnoredSink

    @override
    def gate_essential(self, stream: str) -> Iterable[str]:
        fields = ESSENTIAL.get(stream, ())
        identity = self.config.get("identity_merge_field", "OROID")
        if stream == "members" and identity:
            fields = (*fields, f"merge_fields.{identity}")
        return fields

    @override
    def gate_record_key(
        self, stream: str, record: Mapping[str, Any], key_properties: Iterable[str], position: int
    ) -> str:
        names = RECORD_KEYS.get(stream)
        if names is None:
            return super().gate_record_key(stream, record, key_properties, position)
        key = "/".join(str(record.get(n)) for n in names)
        return key.replace("/", "/oro:", 1) if stream == "forgotten_members" else key

    @override
    def get_sink_class(self, stream_name: str) -> type[Sink]:
        if stream_name == "attributed_orders" and self.config.get("conversion_mode") == "off":
            return IgnoredSink
        return SINKS.get(stream_name, IgnoredSink)

    @override
    def on_state_received(self, previous: dict[str, Any] | None) -> None:
        if self.config.get("state_after_each_state_message", True) and self.latest_state != previous:
            # Everything before this STATE line is written to Oro before the state is emitted.
            self.drain_all()

    @override
    def write_state(self, state: dict[str, Any]) -> None:
        # Activities still being created behind, and queued member-status opt-outs, are written (or,
        # in a dry run, planned) before the state that covers them.
        if self._services is not None:
            self._services.activities.flush()
            self._services.members.flush_consent()
        if self.config.get("dry_run"):  # nothing was written: the tap's bookmarks must not move
            return
        super().write_state(state)

    @override
    def process_endofpipe(self) -> None:
        super().process_endofpipe()
        if self._services is not None:
            self._services.activities.flush()
            self._services.members.flush_consent()
            self._services.plan.finish(self.logger)
        self._finish(failed=False)

    def _finish(self, *, failed: bool) -> None:
        if self._run_end is not None:
            self._run_end(failed=failed)


class _RunEnd:
    """What a run does once when it ends, normally or not: log the summary, close the services.

    Holds no reference to the target, so a finalizer can call it after the target is gone.
    """

    def __init__(self, services: Services, logger: logging.Logger) -> None:
        self.services = services
        self.logger = logger
        self.done = False

    def __call__(self, *, failed: bool) -> None:
        if self.done:
            return
        self.done = True
        self.services.report.log_summary(self.logger)
        if failed:
            self.logger.error(
                "Run stopped before the end of input; state was emitted only for durable writes."
            )
        self.services.close()

if __name__ == "__main__":
    TargetOroCommerce.cli()
