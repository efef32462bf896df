"""tap-orocommerce: the OroCommerce back-office JSON:API as Singer streams."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from oromc_common.fanout import BoundedPool
from oromc_common.http import InsecureURLError, require_secure_url
from oromc_common.oro import OroOAuth2Authenticator, format_oro_datetime, oro_error_message
from oromc_common.report import RunReport
from oromc_common.sdk_seams import SeamTap, reset_state_manager
from oromc_common.settings import (
    Renamed,
    connection_properties,
    max_connections_property,
    page_size_property,
    rejects_path_property,
    retries_to_tries,
)
from singer_sdk import Stream
from singer_sdk import typing as th
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.exceptions import ConfigValidationError
from typing_extensions import override

from tap_orocommerce.client import MODE_SCAN, MODE_SEEK, OroStream, server_now
from tap_orocommerce.consent import CONSENT_SOURCES
from tap_orocommerce.contacts import ContactsStream
from tap_orocommerce.deletions import DELETION_CHECKS
from tap_orocommerce.ecommerce import ecommerce_stream_classes
from tap_orocommerce.streams import (
    CustomerUsersStream,
    ShoppingListsStream,
    TagsStream,
    stream_classes,
)

FILTER_MODES = ("auto", "server", "client")
#: Most requests in flight at once (setting ``max_connections``): default and schema bound.
DEFAULT_MAX_CONNECTIONS = 4
MAX_CONNECTIONS = 32


class TapOroCommerce(SeamTap):
    """Singer tap for the OroCommerce back-office API (``<base_url>/admin/api``)."""

    name = "tap-orocommerce"
    message_writer_class = MsgSpecWriter
    renamed_settings = (
        Renamed("max_retries", "max_tries", retries_to_tries, "which counts the first attempt: max_retries + 1"),
        Renamed("backoff_base_seconds", "backoff_factor_seconds"),
        Renamed("rejects_file", "rejects_path"),
    )

    config_jsonschema = th.PropertiesList(
        th.Property("base_url", th.StringType(nullable=False), required=True,
                    description="Site root of the Oro instance, e.g. https://shop.example.com. "
                                "https:// is required; plain http:// is accepted only for a "
                                "loopback host (127.0.0.1, localhost)."),
        th.Property("api_prefix", th.StringType(), default="/admin/api",
                    description="Path of the back-office JSON:API under base_url."),
        th.Property("storefront_url", th.StringType(max_length=2048, pattern=r"^https?://[^\s]+$"),
                    description="Storefront root the links sent to Mailchimp start with (cart "
                                "checkout_url, product url), e.g. https://shop.example.com or a "
                                "website's own URL; default: base_url."),
        th.Property("price_list_id", th.IntegerType(minimum=1),
                    description="Id of the Oro price list whose prices ecommerce_products carry "
                                "(PricingBundle productprices; the API user needs View on price "
                                "lists); unset: no price. A price change alone does not re-send a "
                                "product (Oro prices have no updatedAt)."),
        th.Property("price_currency", th.StringType(pattern=r"^[A-Z]{3}$"), default="USD",
                    description="Currency (ISO 4217) of the price list prices sent as product price; "
                                "the Mailchimp store's currency."),
        th.Property("product_images", th.BooleanType(), default=True,
                    description="Send each product's main image as ecommerce_products.image_url: one "
                                "productimages request (files and image types included) per page of "
                                "products; the API user needs View on products. Off: image_url is null."),
        th.Property("client_id", th.StringType(nullable=False), required=True,
                    description="Client id of the back-office OAuth application."),
        th.Property("client_secret", th.StringType(nullable=False), required=True, secret=True,
                    description="Client secret of the back-office OAuth application."),
        th.Property("grant_type", th.StringType(), default="client_credentials",
                    allowed_values=["client_credentials", "password"],
                    description="OAuth2 grant: client_credentials (default) or password."),
        th.Property("username", th.StringType(),
                    description="Back-office user name (password grant only)."),
        th.Property("password", th.StringType(), secret=True,
                    description="Back-office user password (password grant only)."),
        th.Property("start_date", th.DateTimeType(),
                    description="Earliest updatedAt to extract on the first run (ISO 8601)."),
        page_size_property(500, 1000, "JSON:API page[size] per request (1-1000)."),
        max_connections_property(
            DEFAULT_MAX_CONNECTIONS, MAX_CONNECTIONS,
            f"Most requests in flight at once (1-{MAX_CONNECTIONS}). Above 1, whole listings (the "
            "contacts lookups, the scans of customer users) are read by id ranges in parallel, "
            "their rows still emitted in id order; 1 reads one page after the other.",
        ),
        *connection_properties(
            request_timeout=60, max_tries=9, backoff_factor_seconds=0.5, backoff_max_seconds=60,
            retried="429, 5xx, connection resets, timeouts or a malformed page",
        ),
        th.Property("token_refresh_margin_seconds", th.IntegerType(), default=60,
                    description="Refresh the OAuth token this many seconds before it expires."),
        th.Property("customer_user_filter", th.StringType(), default="auto",
                    allowed_values=list(FILTER_MODES),
                    description="How to find changed rows of resources whose updatedAt filter "
                                "may be disabled (customer users, addresses): auto (probe once, "
                                "fall back on the documented 400), server, or client (scan)."),
        th.Property("consent_source", th.StringType(), default="none",
                    allowed_values=list(CONSENT_SOURCES),
                    description="Where Oro keeps marketing consent, carried in contacts."
                                "marketing_consent: none (no source: null), customer_user_field (a "
                                "boolean custom field on customer users, consent_field) or "
                                "consent_acceptances (OroConsentBundle acceptances of the consent "
                                "consent_name, exposed by an api.yml as consent_acceptance_resource)."),
        th.Property("consent_field", th.StringType(), default="marketing_consent",
                    description="API name of the boolean custom field on CustomerUser that holds "
                                "marketing consent (consent_source=customer_user_field); Oro exposes "
                                "a custom field under the name given in Entity Management."),
        th.Property("consent_acceptance_resource", th.StringType(), default="consentacceptances",
                    description="JSON:API type of OroConsentBundle's ConsentAcceptance as the api.yml "
                                "customization exposes it (consent_source=consent_acceptances)."),
        th.Property("consent_name", th.StringType(), default="Email subscription",
                    description="Name (default localization) of the Oro consent that counts as "
                                "marketing consent (consent_source=consent_acceptances); Oro's demo "
                                "data calls it 'Email subscription'."),
        th.Property("deletion_check", th.StringType(), default="auto",
                    allowed_values=list(DELETION_CHECKS),
                    description="auto: at the end of every complete contacts scan, customer users "
                                "emitted before and now gone from Oro are emitted once as erase rows "
                                "(no extra request: the scan reads every id anyway); never: no erase rows."),
        th.Property("contact_order_stats", th.BooleanType(), default=False,
                    description="Fill the purchase-history fields of contacts (orders_count, "
                                "total_spent in price_currency, average_order_value, first_order_date, "
                                "last_order_date; cancelled and refunded orders left out): every order "
                                "is read once per run "
                                "(the API user needs View on orders) and a new or changed order "
                                "re-emits its buyer's contact. Off: those fields are null."),
        th.Property("contact_last_product", th.BooleanType(), default=False,
                    description="With contact_order_stats: fill contacts.last_product (product name of "
                                "the first line of the buyer's latest order) from one more pass over "
                                "every order line item per run (the API user needs View on orders)."),
        th.Property("refunded_order_statuses", th.ArrayType(th.StringType(min_length=1)),
                    default=["refunded"],
                    description="Oro order status ids that mean the order was refunded: an order whose "
                                "external status (status, an option the merchant defines under "
                                "'Enable External Status Management') or internal status "
                                "(internalStatus) is one of these is sent to Mailchimp with "
                                "financial_status refunded and left out of its buyer's purchase "
                                "history. Stock Oro has no refunded status."),
        th.Property("state_every_records", th.IntegerType(), default=1000,
                    description="Emit a STATE message every this many records, so a killed run "
                                "resumes close to where it stopped."),
        th.Property("streams", th.ArrayType(th.StringType()),
                    description="Stream names to extract (default: all). Catalog selection "
                                "(meltano select) applies on top."),
        rejects_path_property(),
        th.Property("user_agent", th.StringType(), default="tap-orocommerce",
                    description="User-Agent header sent to Oro."),
    ).to_dict()  # fmt: skip

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.run_started_at: str | None = None
        self._prepared = False
        super().__init__(*args, **kwargs)
        # base_url is required to sync (the SDK's config validation says so); discovery needs no
        # connection, so `--discover` and `meltano select --list` work without any config.
        if self.config.get("base_url"):
            try:
                self.api_url  # noqa: B018 - validate the URL at startup
            except InsecureURLError as exc:
                raise ConfigValidationError(str(exc), errors=[str(exc)]) from exc
        if self.config.get("grant_type") == "password" and not (
            self.config.get("username") and self.config.get("password")
        ):
            msg = "Settings 'username' and 'password' are required with grant_type=password."
            raise ConfigValidationError(msg, errors=[msg])

    # -- shared clients ---------------------------------------------------------------------

    @cached_property
    def api_url(self) -> str:
        """``base_url`` + ``api_prefix`` (validated: https, or http to loopback only)."""
        base = require_secure_url(str(self.config["base_url"]), "base_url")
        prefix = "/" + str(self.config.get("api_prefix") or "/admin/api").strip("/")
        return base + prefix

    @cached_property
    def authenticator(self) -> OroOAuth2Authenticator:
        """One token for every stream (cached per token URL + client id in the process)."""
        return OroOAuth2Authenticator(
            base_url=require_secure_url(str(self.config["base_url"]), "base_url"),
            client_id=str(self.config["client_id"]),
            client_secret=str(self.config["client_secret"]),
            grant_type=str(self.config.get("grant_type") or "client_credentials"),
            username=self.config.get("username"),
            password=self.config.get("password"),
            refresh_margin=float(self.config.get("token_refresh_margin_seconds", 60)),
            timeout=float(self.config.get("request_timeout", 60)),
            user_agent=self.user_agent_string,
        )

    @property
    def max_connections(self) -> int:
        """Most requests in flight at once (setting ``max_connections``)."""
        return max(1, int(self.config.get("max_connections") or DEFAULT_MAX_CONNECTIONS))

    @cached_property
    def read_pool(self) -> BoundedPool:
        """The threads that read id ranges (``max_connections``), started on first use."""
        return BoundedPool(self.max_connections, name="oro-read")

    @cached_property
    def connection_slots(self) -> threading.BoundedSemaphore:
        """Held by every request attempt while it is in flight: at most ``max_connections``."""
        return threading.BoundedSemaphore(self.max_connections)

    @property
    def user_agent_string(self) -> str:
        """User-Agent for every request."""
        return str(self.config.get("user_agent") or "tap-orocommerce")

    @cached_property
    def report(self) -> RunReport:
        """Counters, API calls and rejects of this run."""
        return RunReport(self.name, rejects_path=self.config.get("rejects_path"))

    # -- streams ----------------------------------------------------------------------------

    @override
    def discover_streams(self) -> list[OroStream]:
        wanted = set(self.config.get("streams") or [])
        streams: list[OroStream] = [cls(self) for cls in stream_classes()]
        streams.append(ContactsStream(self))
        streams.extend(cls(self) for cls in ecommerce_stream_classes())
        if wanted:
            unknown = wanted - {s.name for s in streams}
            if unknown:
                msg = f"Setting 'streams' names unknown streams: {', '.join(sorted(unknown))}"
                raise ConfigValidationError(msg, errors=[msg])
            streams = [s for s in streams if s.name in wanted]
        return streams

    @property
    @override
    def streams(self) -> dict[str, Stream]:
        """Streams in discovery order, which is also the order they sync in (the SDK sorts them by
        name): the contacts, then the store's products, customers, orders and carts, the order a
        Mailchimp store is best filled in (an order's products exist before it; no placeholder
        product waits for the orders' ``/batches`` job)."""
        return self.streams_in_order([*stream_classes(), ContactsStream, *ecommerce_stream_classes()])

    @override
    def before_sync_all(self) -> None:
        self.ensure_prepared()

    @override
    def after_sync_all(self) -> None:
        # The run summary is logged after the last stream, also when a stream failed.
        self.report.log_summary(self.logger)
        self.report.close()
        self.read_pool.close()

    # -- capability probes (one request each, before any stream runs) ------------------------

    def ensure_prepared(self) -> None:
        """Run the capability probes once, before the first stream syncs.

        Called from ``sync_all`` and from every stream's first sync hook, so that the SDK's
        dry-run/``--test`` paths (which call ``Stream.sync`` directly) get the same modes.
        """
        if not self._prepared:
            self._prepared = True
            self.prepare_run()

    def prepare_run(self) -> None:
        """Probe what this Oro instance offers and set each selected stream's reading mode."""
        active = [s for s in self.streams.values() if isinstance(s, OroStream) and s.selected]
        if not active:
            return
        probe = active[0]
        first = probe.fetch("customerusers", {"page[size]": 1})
        self.run_started_at = server_now(first) or format_oro_datetime(datetime.now(UTC))
        doc = first._oro_doc  # type: ignore[attr-defined]
        tagging = bool(doc["data"]) and "tags" in (doc["data"][0].get("relationships") or {})
        self.logger.info(
            "Run window upper bound (server time): %s; customer-user tagging %s",
            self.run_started_at,
            "enabled" if tagging else "disabled",
        )
        sample = doc["data"][0] if doc["data"] else None
        for stream in active:
            stream.mode = stream.default_mode
            stream.skip_reason = None
            if isinstance(stream, ContactsStream):
                stream.tagging = tagging
                stream.consent.check(stream, sample)
            elif isinstance(stream, CustomerUsersStream) and not tagging:
                stream.disable_column("tag_ids")
            elif isinstance(stream, TagsStream) and not tagging:
                stream.skip_reason = (
                    "tagging is not enabled for customer users in this Oro instance "
                    "(customerusers has no 'tags' relationship); enable Tags for the "
                    "CustomerUser entity in Entity Management to extract them"
                )
            if stream.optional and not stream.skip_reason:
                self._probe_exists(stream)
            if (
                stream.default_mode == MODE_SEEK
                and stream.replication_key
                and not stream.skip_reason
            ):
                self._probe_filter(stream)
            reset_state_manager(stream)  # is_sorted may have changed with the mode
            if stream.skip_reason:
                self.logger.warning(
                    "Stream '%s' will be skipped: %s", stream.name, stream.skip_reason
                )

    def _probe_exists(self, stream: OroStream) -> None:
        response = stream.fetch(stream.resource, {"page[size]": 1}, accept=(400, 403, 404, 405))
        if response.status_code == 200:
            return
        detail = oro_error_message(response, secrets=self.authenticator.secrets)
        if stream.resource == ShoppingListsStream.resource:
            stream.skip_reason = (
                f"the back-office API does not expose shopping lists ({detail}). Stock "
                "OroCommerce serves them only in the storefront API; expose ShoppingList in a "
                "custom api.yml (with an updatedAt filter) to enable this stream"
            )
        else:
            stream.skip_reason = f"resource '{stream.resource}' is not available ({detail})"

    def _probe_filter(self, stream: OroStream) -> None:
        setting = str(self.config.get("customer_user_filter") or "auto")
        if stream.resource in {"customerusers", "customeruseraddresses"} and setting != "auto":
            stream.mode = MODE_SEEK if setting == "server" else MODE_SCAN
            return
        response = stream.fetch(
            stream.resource,
            {
                "filter[updatedAt][gte]": "2000-01-01T00:00:00Z",
                "sort": "updatedAt,id",
                "page[size]": 1,
                f"fields[{stream.resource}]": "updatedAt",
            },
            accept=(400,),
        )
        if response.status_code == 400:
            detail = oro_error_message(response, secrets=self.authenticator.secrets)
            self.logger.info(
                "Stream '%s': Oro does not filter/sort %s by updatedAt (%s); falling back to a "
                "scan by id with a client-side updatedAt filter.",
                stream.name,
                stream.resource,
                detail,
            )
            stream.mode = MODE_SCAN
        else:
            stream.mode = MODE_SEEK


if __name__ == "__main__":
    TapOroCommerce.cli()
