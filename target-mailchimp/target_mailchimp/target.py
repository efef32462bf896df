"""target-mailchimp: keeps one Mailchimp audience in sync with a ``contacts`` stream."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import Any, ClassVar

from oromc_common.batches import BatchQueue
from oromc_common.dryrun import ActionPlan
from oromc_common.governor import DEFAULT_MAX_CONNECTIONS
from oromc_common.mailchimp import (
    MAILCHIMP_TIMEOUT_DETAIL,
    MailchimpClient,
    MailchimpConfigError,
    MailchimpError,
    batch_wait_properties,
    connection_budget,
    connection_budget_properties,
    max_connections_property,
)
from oromc_common.records import GatedTarget, PrivateLineReader
from oromc_common.report import RunReport
from oromc_common.settings import Renamed, connection_properties, rejects_path_property
from singer_sdk import typing as th
from singer_sdk.helpers.capabilities import CapabilitiesEnum, PluginCapabilities
from singer_sdk.sinks import Sink
from typing_extensions import override

from target_mailchimp.client import Audience, email_hash
from target_mailchimp.ecommerce import (
    DEFAULT_BATCH_THRESHOLD,
    DEFAULT_LOOKUP_UP_TO,
    RESOURCES,
    EcommerceSync,
    StoreSettings,
    store_person,
)
from target_mailchimp.mapping import (
    DEFAULT_EXCLUDE_TAG_PREFIXES,
    DEFAULT_MERGE_FIELDS,
    DEFAULT_TAG_FIELDS,
    DISABLED_USER_POLICIES,
    MERGE_FIELD_TYPES,
    ConsentPolicy,
    MergeFieldSpec,
)
from target_mailchimp.models import SyncSettings
from target_mailchimp.readahead import (
    MAX_KEPT_CONTACTS,
    PRECEDE_STATUSES,
    ContactsSpool,
    HeldStoreRecords,
    StorePerson,
)
from target_mailchimp.sinks import ECOMMERCE_WINDOW, ContactsSink, EcommerceSink, IgnoredStreamSink
from target_mailchimp.sync import ContactSync
from target_mailchimp.tags import TagWrites

STREAM = "contacts"
#: contacts fields whose problems reject the whole contact: leaving one out would change who the
#: person is or what they consented to (the other fields are left out alone, with a field reject)
CONTACTS_ESSENTIAL = (
    "email",
    "customer_user_id",
    "erase",
    "marketing_consent",
    "consent_changed_at",
    "enabled",
    "is_guest",
)
DEFAULT_IDENTITY_MERGE_FIELD = "OROID"

CONFIG_SCHEMA = th.PropertiesList(
    th.Property(
        "api_key",
        th.StringType,
        secret=True,
        description="Mailchimp API key '<key>-<dc>' (the data center is taken from the suffix). "
                    "Set this or access_token.",
    ),
    th.Property(
        "access_token",
        th.StringType,
        secret=True,
        description="Mailchimp OAuth access token (alternative to api_key); its data center is "
                    "read from the OAuth metadata endpoint unless api_url is set.",
    ),
    th.Property(
        "api_url",
        th.StringType,
        description="Override the API base URL (default https://<dc>.api.mailchimp.com/3.0). "
                    "HTTPS required except for a loopback host, e.g. the sandbox.",
    ),
    th.Property(
        "oauth_metadata_url",
        th.StringType,
        default="https://login.mailchimp.com/oauth2/metadata",
        description="Where an OAuth token's data center is looked up.",
    ),
    th.Property(
        "list_id",
        th.StringType,
        required=True,
        description="Id of the audience (list) to keep in sync.",
    ),
    th.Property(
        "contacts_stream",
        th.StringType,
        default=STREAM,
        description="Name of the input stream that carries contacts (other streams are counted and ignored).",
    ),
    th.Property(
        "status_if_new",
        th.StringType,
        default="transactional",
        allowed_values=["transactional", "pending", "subscribed"],
        description="Status of a person new to the audience whose record carries no recorded "
                    "consent (marketing_consent null). transactional (default): no marketing "
                    "email. subscribed: you assert you may market to everyone without a recorded "
                    "consent (see README, 'Consent'). Consent true -> subscribed (pending with "
                    "double_opt_in), false -> unsubscribed, a disabled user -> transactional, whatever this says.",
    ),
    th.Property(
        "double_opt_in",
        th.BooleanType,
        default=False,
        description="Every opt-in the target makes becomes 'pending': Mailchimp emails the person "
                    "to confirm, and only then subscribes them.",
    ),
    th.Property(
        "disabled_user_policy",
        th.StringType,
        default="archive",
        allowed_values=list(DISABLED_USER_POLICIES),
        description="What happens to a subscribed/pending member whose source user is disabled "
                    "(enabled=false, not a guest): archive (default: no more marketing, history "
                    "kept, not an opt-out the person never made), unsubscribe, or keep.",
    ),
    th.Property(
        "identity_merge_field",
        th.StringType(pattern="^[A-Z][A-Z0-9_]{0,9}$"),
        default=DEFAULT_IDENTITY_MERGE_FIELD,
        description="Merge tag that keeps the source id (customer_user_id) on the member, created "
                    "as a hidden text field if missing. Contacts are matched to members by it "
                    "before the email, so an address changed at the source moves the same member.",
    ),
    th.Property(
        "resubscribe_with_pending",
        th.BooleanType,
        default=False,
        description="When the source records a new explicit opt-in for someone unsubscribed in "
                    "Mailchimp, set them to 'pending' (Mailchimp sends a re-confirmation email). "
                    "Off: they stay unsubscribed.",
    ),
    th.Property(
        "merge_fields",
        th.ObjectType(additional_properties=th.StringType),
        default=DEFAULT_MERGE_FIELDS,
        description='Merge tag -> contact field, e.g. {"FNAME": "first_name", "COMPANY": '
                    '"customer_name"}. Email is always the member\'s address.',
    ),
    th.Property(
        "create_missing_merge_fields",
        th.BooleanType,
        default=False,
        description="Create mapped merge fields that the audience lacks (type from "
                    "merge_field_types, else inferred from the stream schema). Off: a missing "
                    "merge field fails the run at start.",
    ),
    th.Property(
        "merge_field_types",
        th.ObjectType(additional_properties=th.StringType(allowed_values=list(MERGE_FIELD_TYPES))),
        default={},
        description="Merge tag -> Mailchimp type (text, number, phone, date, address, ...) used "
                    "when creating missing merge fields.",
    ),
    th.Property(
        "skip_merge_validation",
        th.BooleanType,
        default=False,
        description="Send skip_merge_validation=true so members can be written even when the "
                    "audience has required merge fields the source lacks.",
    ),
    th.Property(
        "tag_prefix",
        th.StringType,
        default="oro:",
        description="Tags whose names start with this prefix are owned by the connector: added "
                    "and removed as segments change. Other tags are never touched.",
    ),
    th.Property(
        "tag_fields",
        th.ObjectType(additional_properties=th.StringType),
        default=DEFAULT_TAG_FIELDS,
        description='Contact field -> tag label: {"customer_group": "group"} makes '
                    '\'<prefix>group:<value>\'; list fields give one tag per item.',
    ),
    th.Property(
        "exclude_tag_prefixes",
        th.ArrayType(th.StringType),
        default=list(DEFAULT_EXCLUDE_TAG_PREFIXES),
        description="Items of list-valued tag fields (the source's tags) starting with one of "
                    "these prefixes (case-insensitive) become no Mailchimp tag: they belong to "
                    "another connector, e.g. 'mc:' tags that target-orocommerce mirrors from "
                    "Mailchimp into OroCommerce, which would otherwise come back as "
                    "'<prefix>tag:mc:...' (an echo). Members' existing owned tags made from such values are removed.",
    ),
    th.Property(
        "tag_rules",
        th.ArrayType(
            th.ObjectType(
                th.Property("tag", th.StringType, required=True),
                th.Property("field", th.StringType, required=True),
                th.Property("equals", th.AnyType()),
            )
        ),
        default=[],
        description='Extra owned tags: {"tag": "guest", "field": "is_guest", "equals": true} adds '
                    '\'<prefix>guest\' when the field equals the value.',
    ),
    th.Property(
        "tag_write_mode",
        th.StringType,
        default="auto",
        allowed_values=["auto", "member", "segment", "batches"],
        description="How tag changes are written: per member (carries is_syncing), per tag via "
                    "segments (500 members a call), via /batches (many members, carries "
                    "is_syncing), or auto (additions of members updated anyway ride in their batch "
                    "subscribe without is_syncing; the rest the cheaper direct way; beyond 50 calls "
                    "/batches, unless segment calls on the connections are faster than the job in "
                    "Mailchimp's queue).",
    ),
    th.Property(
        "is_syncing",
        th.BooleanType,
        default=False,
        description="Backfill mode: every tag write (also for new members) carries "
                    "is_syncing=true so tag-based automations do not fire for historic data, and the "
                    "e-commerce store is is_syncing for the whole run (without it: from the store's "
                    "creation or a /batches-sized drain to the end of the run).",
    ),
    th.Property(
        "erasure_mode",
        th.StringType,
        default="archive",
        allowed_values=["archive", "delete_permanent"],
        description="What a record with erase=true does: archive the member, or delete it "
                    "permanently (GDPR; cannot be re-imported).",
    ),
    th.Property(
        "audience_lookup",
        th.StringType,
        default="auto",
        allowed_values=["auto", "full", "per_member"],
        description="How the target learns what Mailchimp has: one paged read of the audience, "
                    "one GET per contact, or auto (fewer calls).",
    ),
    max_connections_property(DEFAULT_MAX_CONNECTIONS),
    *connection_budget_properties(),
    *connection_properties(
        request_timeout=120,
        max_tries=6,
        retried="429, 5xx, connection resets and timeouts",
        backoff_factor_seconds=1.0,
        timeout_detail=MAILCHIMP_TIMEOUT_DETAIL,
    ),
    th.Property(
        "store_id",
        th.StringType,
        description="E-commerce: id of the Mailchimp store fed by the ecommerce_* streams "
                    "(created for list_id if missing). Required only when those streams are sent.",
    ),
    th.Property(
        "store_name",
        th.StringType,
        default="OroCommerce",
        description="E-commerce: name of a store the target creates.",
    ),
    th.Property(
        "store_currency_code",
        th.StringType,
        default="USD",
        description="E-commerce: store currency (ISO 4217), also the default currency of orders and carts.",
    ),
    th.Property(
        "store_domain",
        th.StringType,
        description="E-commerce: shop domain of a store the target creates.",
    ),
    th.Property(
        "store_platform",
        th.StringType,
        description="E-commerce: platform name of a store the target creates.",
    ),
    th.Property(
        "ecommerce_batch_threshold",
        th.IntegerType(minimum=2, maximum=100_000),
        default=DEFAULT_BATCH_THRESHOLD,
        description="E-commerce: a drain with at least this many writes of one resource sends them as one "
                    "POST /batches (per-operation results read back; failures go to the rejects report); "
                    "fewer go as single calls when no batch is in flight. Above batch_size_rows, /batches "
                    "is never used. The default is where one batch (1 POST, a few status polls, 1 download) "
                    "costs fewer calls than single writes; a batch alone does not make the store "
                    "is_syncing (a drain of 50 writes, a backfill, does).",
    ),
    th.Property(
        "ecommerce_lookup_up_to",
        th.IntegerType(minimum=0, maximum=10_000),
        default=DEFAULT_LOOKUP_UP_TO,
        description="E-commerce: a stream whose run brings at most this many records has exactly those "
                    "records (and the products their order or cart lines name) looked up in the store "
                    "by id, as one /batches job of GETs (single GETs below ecommerce_batch_threshold), "
                    "instead of reading the store's whole collection (a call per 1,000 records it "
                    "holds); then only those that differ are written, as with the read. 0: always read "
                    "the collection.",
    ),
    th.Property(
        "ecommerce_blind_customer_writes",
        th.IntegerType(minimum=0, maximum=10_000),
        default=0,
        description="E-commerce: a run with at most this many store customers upserts them as one "
                    "/batches job without reading the store's customers first (fewer calls for a "
                    "trickle in a big store; unchanged customers are then written again; opt_in_status "
                    "stays false, which never changes a member's status). 0 (default): always compare "
                    "with the store, so a re-run with nothing changed writes nothing.",
    ),
    *batch_wait_properties(
        poll="Shortest wait between /batches status polls (e-commerce, tag and archive batches; "
        "grows by half each poll, up to 30 s, until the batches' progress gives a rate, then "
        "the remaining operations at that rate).",
        timeout="Stop the run when a /batches job has not finished after this long (state is not "
        "advanced; the next run waits for that batch before reading the store).",
    ),
    rejects_path_property("target-mailchimp-rejects.jsonl"),
    th.Property(
        "dry_run",
        th.BooleanType,
        default=False,
        description="Read the audience and plan every write, but write nothing (no state is emitted either): "
        "the run summary counts what would be done per action (`would_create`, `would_update`, "
        "`would_unsubscribe`, `would_archive`, `would_re-tag`, `would_erase`, ...), and "
        "`dry_run_report_path` gets the counts with a redacted sample of each. Covers the contacts stream; "
        "e-commerce streams are counted as `ignored`.",
    ),
    th.Property(
        "dry_run_report_path",
        th.StringType(min_length=1),
        description="JSON file receiving the planned actions of the run (counts and a redacted sample per "
        "action), in a dry run and in a real one; none when unset (the counts are in the run summary).",
    ),
).to_dict()


class TargetMailchimp(GatedTarget):
    """Singer target for one Mailchimp audience."""

    renamed_settings = (Renamed("retry_backoff_seconds", "backoff_factor_seconds"),)

    name = "target-mailchimp"
    config_jsonschema = CONFIG_SCHEMA
    default_sink_class = ContactsSink
    message_reader_class = PrivateLineReader
    # Records are checked field by field with reasons (rejects report), not JSON-Schema-validated.
    capabilities: ClassVar[list[CapabilitiesEnum]] = [
        PluginCapabilities.ABOUT,
        PluginCapabilities.STREAM_MAPS,
        PluginCapabilities.FLATTENING,
        PluginCapabilities.STRUCTURED_LOGGING,
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Validate settings and build the client (no network call yet)."""
        super().__init__(*args, **kwargs)
        cfg = self.config
        self.report = RunReport(self.name, rejects_path=cfg.get("rejects_path"))
        max_connections = int(cfg.get("max_connections") or DEFAULT_MAX_CONNECTIONS)  # bounded by the schema
        self.client = MailchimpClient(
            api_key=cfg.get("api_key"),
            access_token=cfg.get("access_token"),
            api_url=cfg.get("api_url"),
            oauth_metadata_url=cfg.get("oauth_metadata_url")
            or "https://login.mailchimp.com/oauth2/metadata",
            max_connections=max_connections,
            timeout=(10.0, float(cfg.get("request_timeout") or 120)),
            max_tries=int(cfg.get("max_tries") or 6),
            backoff_factor=float(cfg.get("backoff_factor_seconds") or 1.0),
            on_call=self.report.count_call,
            user_agent=f"{self.name}/0.1",
            connection_budget=connection_budget(cfg),
        )
        self.dry_run = bool(cfg.get("dry_run"))
        self.client.read_only = self.dry_run  # a write that slipped through the plan is refused, not sent
        self.plan = ActionPlan(
            self.name, self.report, dry_run=self.dry_run, path=cfg.get("dry_run_report_path")
        )
        self._sync: ContactSync | None = None
        self._ecommerce: EcommerceSync | None = None
        self._sync_lock = threading.Lock()
        self._schema: dict[str, Any] = {}
        self._last_emitted_state: dict[str, Any] | None = None
        # The account's /batches jobs not read yet (contacts' tags and archives, store writes):
        # Mailchimp runs them one at a time in submission order; the tap's state waits for them.
        self.batches = BatchQueue()
        # Read-ahead of a backfill (readahead.py): contacts windows kept, store records held.
        self._spool = ContactsSpool()
        self._held = HeldStoreRecords()
        self._reading_ahead = bool(cfg.get("store_id")) and not self.dry_run
        self._releasing = False
        self._first_window = True
        self._window_seconds = 0.0  # how long the last kept window took to write
        self._deferred_state: dict[str, Any] | None = None

    # -- the record gate (oromc_common.records): schema problems answered per record or field --
    @override
    def gate_report(self) -> RunReport:
        return self.report

    @override
    def gate_essential(self, stream: str) -> Iterable[str]:
        return CONTACTS_ESSENTIAL if stream == self.config.get("contacts_stream", STREAM) else ()

    @override
    def gate_applies(self, stream: str) -> bool:
        return self.get_sink_class(stream) is not IgnoredStreamSink

    @override
    def gate_record_key(
        self, stream: str, record: Mapping[str, Any], key_properties: Iterable[str], position: int
    ) -> str:
        if stream == self.config.get("contacts_stream", STREAM):
            email = record.get("email")
            hash_ = email_hash(email.strip()) if isinstance(email, str) and email.strip() else "none"
            return TagWrites.key_of(record, hash_)
        return super().gate_record_key(stream, record, key_properties, position)

    @override
    def get_sink_class(self, stream_name: str) -> type[Sink]:
        if stream_name == self.config.get("contacts_stream", STREAM):
            return ContactsSink
        if stream_name in RESOURCES and not self.dry_run:
            return EcommerceSink
        return IgnoredStreamSink

    @override
    def get_sink(
        self,
        stream_name: str,
        *,
        record: dict | None = None,
        schema: dict | None = None,
        key_properties: Sequence[str] | None = None,
    ) -> Sink:
        if schema is not None and stream_name == self.config.get("contacts_stream", STREAM):
            self._schema = schema
        return super().get_sink(
            stream_name, record=record, schema=schema, key_properties=key_properties
        )

    # -- the shared audience sync --------------------------------------------------------
    def contact_sync(self) -> ContactSync:
        """The audience sync, built on first use: checks access and merge fields (fails fast)."""
        with self._sync_lock:
            if self._sync is None:
                self._sync = self._build_sync()
                # a window's /batches jobs are read later: records keep flowing meanwhile
                self._sync.defer_batches = not self.dry_run
                if self._reading_ahead:  # one archive job after the store's (readahead.py)
                    self._sync.collect_archives()
            return self._sync

    def ecommerce_sync(self) -> EcommerceSync:
        """The store sync, built on first use (needs ``store_id``)."""
        with self._sync_lock:
            if self._ecommerce is None:
                store_id = self.config.get("store_id")
                if not store_id:
                    msg = "Setting 'store_id' is required to sync the ecommerce_* streams."
                    raise MailchimpConfigError(msg)
                settings = StoreSettings(
                    store_id=str(store_id),
                    list_id=str(self.config["list_id"]),
                    name=str(self.config.get("store_name") or "OroCommerce"),
                    currency_code=str(self.config.get("store_currency_code") or "USD"),
                    domain=self.config.get("store_domain"),
                    platform=self.config.get("store_platform"),
                    is_syncing=bool(self.config.get("is_syncing")),
                    batch_threshold=int(
                        self.config.get("ecommerce_batch_threshold") or DEFAULT_BATCH_THRESHOLD
                    ),
                    batch_poll_seconds=float(self.config.get("batch_poll_seconds") or 1),
                    batch_timeout_seconds=60 * float(self.config.get("batch_timeout_minutes") or 60),
                    blind_writes_up_to=int(self.config.get("ecommerce_blind_customer_writes") or 0),
                    lookup_up_to=int(
                        DEFAULT_LOOKUP_UP_TO
                        if self.config.get("ecommerce_lookup_up_to") is None
                        else self.config["ecommerce_lookup_up_to"]
                    ),
                )
                self._ecommerce = EcommerceSync(
                    self.client, settings, self.report, self.client.max_connections, self.batches
                )
                self._ecommerce.hold = self._hold
                self._ecommerce.on_wait = lambda deadline: self._write_kept(deadline=deadline, windows=1)
            return self._ecommerce

    def _create_merge_field(self, audience: Audience, tag: str, kind: str, name: str) -> MergeFieldSpec:
        self.plan.add(STREAM, "create_merge_field", tag, type=kind)
        if self.dry_run:  # planned only: the values are checked against the type it would get
            return MergeFieldSpec(tag=tag, type=kind)
        spec = audience.create_merge_field(tag, kind, name)
        self.logger.info("Created merge field %s (%s)", tag, kind)
        return spec

    def _build_sync(self) -> ContactSync:
        cfg = self.config
        mapping: dict[str, str] = dict(cfg.get("merge_fields") or {})
        identity = str(cfg.get("identity_merge_field") or DEFAULT_IDENTITY_MERGE_FIELD)
        if identity in mapping:
            msg = f"Setting 'identity_merge_field': '{identity}' is also mapped in merge_fields."
            raise MailchimpConfigError(msg)
        audience = Audience(
            self.client,
            str(cfg["list_id"]),
            mapping,
            str(cfg.get("tag_prefix") or ""),
            lookup_mode=str(cfg.get("audience_lookup") or "auto"),
            identity_tag=identity,
        )
        try:
            info = audience.check_access()
            specs = audience.merge_fields()
            for tag, source in mapping.items():
                if tag in specs:
                    continue
                if not cfg.get("create_missing_merge_fields"):
                    msg = (
                        f"Setting 'merge_fields': the audience has no merge field '{tag}' (mapped from '{source}'); "
                        "create it in Mailchimp or set create_missing_merge_fields=true."
                    )
                    raise MailchimpConfigError(msg)
                kind = (cfg.get("merge_field_types") or {}).get(tag) or self._infer_type(source)
                specs[tag] = self._create_merge_field(audience, tag, kind, source.replace("_", " ").title())
            if identity not in specs:  # the source id lives here: always created when missing
                specs[identity] = self._create_merge_field(audience, identity, "text", "Oro customer user id")
            elif specs[identity].public:
                # A public field is on the hosted signup and profile forms, where a subscriber could
                # edit the source id and so claim another customer's member: hide it.
                self.plan.add(STREAM, "hide_merge_field", identity)
                if not self.dry_run:
                    specs[identity] = audience.hide_merge_field(specs[identity])
                self.logger.info(
                    "Merge field %s (the source id) was public: now public=false (off the forms)",
                    identity,
                )
        except MailchimpError as exc:
            msg = f"Mailchimp refused the audience setup for list '{cfg['list_id']}': {exc}"
            raise MailchimpConfigError(msg) from exc
        self.logger.info(
            "Syncing into audience %s (about %d members)", info.get("id"), audience.estimated_size
        )
        settings = SyncSettings(
            consent=ConsentPolicy(
                status_if_new=str(cfg.get("status_if_new") or "transactional"),
                double_opt_in=bool(cfg.get("double_opt_in")),
                disabled_user_policy=str(cfg.get("disabled_user_policy") or "archive"),
                resubscribe_with_pending=bool(cfg.get("resubscribe_with_pending")),
            ),
            merge_fields=mapping,
            identity_merge_field=identity,
            tag_prefix=str(cfg.get("tag_prefix") or ""),
            tag_fields=dict(cfg.get("tag_fields") or {}),
            tag_rules=list(cfg.get("tag_rules") or []),
            exclude_tag_prefixes=[
                str(p)
                for p in (
                    cfg["exclude_tag_prefixes"]
                    if cfg.get("exclude_tag_prefixes") is not None
                    else DEFAULT_EXCLUDE_TAG_PREFIXES
                )
                if str(p).strip()
            ],
            erasure_mode=str(cfg.get("erasure_mode") or "archive"),
            is_syncing=bool(cfg.get("is_syncing")),
            tag_write_mode=str(cfg.get("tag_write_mode") or "auto"),
            skip_merge_validation=bool(cfg.get("skip_merge_validation")),
            max_connections=self.client.max_connections,
            batch_poll_seconds=float(cfg.get("batch_poll_seconds") or 1),
            batch_timeout_seconds=60 * float(cfg.get("batch_timeout_minutes") or 60),
        )
        return ContactSync(
            audience,
            {t: specs[t] for t in (*mapping, identity)},
            settings,
            self.report,
            stream=str(cfg.get("contacts_stream") or STREAM),
            plan=self.plan,
            batches=self.batches,
        )

    def _infer_type(self, source: str) -> str:
        prop = (self._schema.get("properties") or {}).get(source) or {}
        types = prop.get("type") or []
        types = [types] if isinstance(types, str) else list(types)
        if "phone" in source.lower():
            return "phone"
        if prop.get("format") in {"date", "date-time"}:
            return "date"
        if "number" in types or "integer" in types:
            return "number"
        if "object" in types:
            return "address"
        return "text"

    # -- drain order, windows and state (hooks of oromc_common.sdk_seams.SeamTarget) --------
    # ``Target.drain_all`` (final) drains the active sinks in parallel threads. Here the contacts
    # sink is drained first, then the e-commerce sinks one after the other in dependency order
    # (products, customers, orders, carts; their writes are serialised by a lock anyway), so every
    # contact of a window (its status, its link to the source id, a moved address) is written before
    # the store records that name the same people, and a cart never arrives before its customer.
    # tests/test_identity_consent.py checks the order.
    # With read-ahead (readahead.py) a contacts window may be kept instead (ContactsSink asks
    # ``keep_contacts``): a window after store records first writes the ones kept before it.
    @override
    def drain_sinks(self, sinks: list[Sink], parallelism: int) -> None:
        order = [self.config.get("contacts_stream", STREAM), *RESOURCES]
        ordered = sorted((s for s in sinks if s.stream_name in order), key=lambda s: order.index(s.stream_name))
        if any(s.stream_name == order[0] and s.current_size for s in ordered):
            if not self._reading_ahead:
                self._flush_readahead()  # kept contacts and held store records came before it
            if self._ecommerce is not None:
                self._ecommerce.settle()  # contacts (consent) are never written before a queued store write
                self._store_lookups_ride(ordered)
        try:
            super().drain_sinks(ordered, 1)
        finally:
            if self._sync is not None:
                self._sync.riders = None
        if any(s.stream_name in RESOURCES for s in ordered) and self._ecommerce is not None:
            # one per store drain, more while the store's queued jobs keep Mailchimp busy (with a
            # window to spare for the next store window) and while a store job is awaited
            self._write_kept(windows=1)
            self._write_kept(deadline=self._ecommerce.busy_until() - self._window_seconds)
            self._release_held()
        super().drain_sinks([s for s in sinks if s.stream_name not in order], parallelism)

    def _store_lookups_ride(self, sinks: list[Sink]) -> None:
        """The store records drained after this contacts window: their lookups (a trickle's) ride
        along the window's lookup job of members, if it makes one (``EcommerceSync.lookup_rider``)."""
        ecommerce, sync = self._ecommerce, self._sync
        pending = {
            s.stream_name: s.window_records
            for s in sinks
            if isinstance(s, EcommerceSink) and s.window_records
        }
        if ecommerce is not None and sync is not None and pending:
            sync.riders = partial(ecommerce.lookup_rider, pending)

    # -- read-ahead of a backfill (readahead.py) -------------------------------------------
    def keep_contacts(self, records: list[dict[str, Any]], hashes: set[str], *, full: bool) -> bool:
        """A contacts window about to be written: True when it is kept for later instead (a full one
        after the first window, or any once one is kept, while no store record has arrived). The
        first is written: it reads what the audience holds, which tells whose store records may
        go before their contacts (``_hold``)."""
        first, self._first_window = self._first_window, False
        if first or not records or not self._reading_ahead or not (full or len(self._spool)):
            return False
        self._spool.push(records, hashes)
        self.report.count(self.config.get("contacts_stream", STREAM), "windows_read_ahead")
        if self._spool.contacts > MAX_KEPT_CONTACTS:  # the read-ahead slides (readahead.py)
            self._write_window(self._spool.pop())
        return True

    def contacts_kept(self, record: Mapping[str, Any]) -> bool:
        """True when a kept window names the address of this contacts record."""
        email = record.get("email")
        return (
            bool(len(self._spool))
            and isinstance(email, str)
            and bool(email.strip())
            and self._spool.names(email_hash(email.strip()))
        )

    def store_record_arrived(self) -> None:
        """A store record arrived: the contacts before it are kept too (when some are), and the
        next ones are written as they come."""
        if not self._reading_ahead:
            return
        if len(self._spool):
            for sink in self.active_sinks():
                if sink.stream_name == self.config.get("contacts_stream", STREAM) and sink.current_size:
                    self.drain_one(sink)
        self._reading_ahead = False

    def _write_kept(self, *, deadline: float | None = None, windows: int | None = None) -> bool:
        """Write kept contacts windows, oldest first: up to ``windows``, and (``deadline``) only while
        one more should end before it (the first of a run always). True if any was written."""
        written = 0
        while len(self._spool) and not self._reading_ahead and (windows is None or written < windows):
            if deadline is not None and (
                time.monotonic() + self._window_seconds > deadline if self._window_seconds else written
            ):
                break
            self._write_window(self._spool.pop())
            written += 1
        return written > 0

    def _write_window(self, records: list[dict[str, Any]]) -> None:
        started = time.monotonic()
        self.contact_sync().process(records)
        self._window_seconds = time.monotonic() - started

    def _hold(self, stream: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The store records that may be written now; the others are held (readahead.py)."""
        if self._releasing or not (len(self._spool) or len(self._held)):
            return records
        members = self.contact_sync().audience.members
        ready: list[dict[str, Any]] = []
        held: list[tuple[dict[str, Any], StorePerson]] = []
        for record in records:
            person = store_person(stream, record)
            hash_ = person[1]
            state = None if hash_ is None else members.get(hash_)
            if self._held.holds(stream, str(record.get("id")), person) or (
                hash_ is not None and (state is None or state.status not in PRECEDE_STATUSES)
            ):
                held.append((record, person))
            else:
                ready.append(record)
        if held:
            self._held.hold(stream, held)
            self.report.count(stream, "held_until_contacts", len(held))
        return ready

    def _release_held(self) -> None:
        """Once no contacts window is kept: the held store records, stream by stream, then the state
        that waited for them."""
        if len(self._spool):
            return
        if len(self._held) and self._ecommerce is not None:
            self._releasing = True
            try:
                for stream, records in self._held.release(RESOURCES, ECOMMERCE_WINDOW):
                    self._ecommerce.process(stream, records)
                    # let the window go before the next is read back: the loop's name would keep
                    # it until then (two windows of up to ~10,000 orders at once, the re-run's peak)
                    del records
            finally:
                self._releasing = False
        if self._sync is not None:
            self._sync.flush_archives()  # queued after the store jobs naming their people
        self._emit_deferred_state()

    def _flush_readahead(self) -> None:
        """Every kept window and held record written (before a later contacts window; at the end)."""
        self._reading_ahead = False
        self._write_kept()
        self._release_held()

    def _readahead_pending(self) -> bool:
        """Contacts kept, store records held or archives collected: not written yet."""
        return bool(
            len(self._spool)
            or len(self._held)
            or (self._sync is not None and self._sync.archives_collected)
        )

    def _emit_deferred_state(self) -> None:
        if self._deferred_state is not None and not self._readahead_pending():
            state, self._deferred_state = self._deferred_state, None
            self.write_state(state)

    @override
    def on_record_processed(self) -> None:
        if any(getattr(s, "window_full", False) for s in self.active_sinks()):
            # Drain everything and emit the latest state: it is now durable in Mailchimp.
            self.drain_all()

    @override
    def on_state_received(self, previous: dict[str, Any] | None) -> None:
        # A state that arrives while nothing is pending covers only durable records: emit it now,
        # so a killed run replays at most the window after it.
        latest = self.latest_state
        if (
            latest
            and latest != self._last_emitted_state
            and all(s.current_size == 0 for s in self.active_sinks())
            and not self._readahead_pending()
        ):
            self.write_state(copy.deepcopy(latest))

    @override
    def write_state(self, state: dict[str, Any]) -> None:
        if self.dry_run:  # nothing was written: the tap's bookmarks must not move
            return
        if self._readahead_pending():  # covers records not written yet: emitted after them
            self._deferred_state = copy.deepcopy(state)
            return
        if state == self._last_emitted_state:
            return
        self._last_emitted_state = copy.deepcopy(state)
        # Batches still running (tags, archives of a contacts window; e-commerce): the state is
        # emitted once every batch submitted before it has finished and its results are read.
        self.batches.when_durable(partial(super().write_state, copy.deepcopy(state)))

    @override
    def process_endofpipe(self) -> None:
        super().process_endofpipe()
        self._flush_readahead()
        self.batches.settle()
        if self._ecommerce is not None:
            self._ecommerce.finish()
        self.plan.finish(self.logger)
        self.report.log_summary(self.logger)
        self.report.close()
        self.client.close()


if __name__ == "__main__":
    TargetMailchimp.cli()
