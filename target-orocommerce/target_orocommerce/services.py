"""Everything the sinks share during one run: the Oro client, caches, writers and the run report."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from oromc_common.dates import parse_utc
from oromc_common.dryrun import ActionPlan
from oromc_common.http import require_secure_url
from oromc_common.oro import OroOAuth2Authenticator
from oromc_common.report import RunReport

from target_orocommerce.activities import ActivityWriter
from target_orocommerce.campaigns import CampaignSync
from target_orocommerce.client import BACKOFF_FACTOR_SECONDS, DEFAULT_MAX_CONNECTIONS, OroWriter
from target_orocommerce.consent import consent_store
from target_orocommerce.conversions import ConversionSync
from target_orocommerce.lookups import CampaignDirectory, CustomerUserDirectory, TagDirectory
from target_orocommerce.members import MemberSettings, MemberSync
from target_orocommerce.results import CampaignResultsSync, field_map


class Services:
    """Built once per target run from the validated config."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        base_url = require_secure_url(str(config["base_url"]), "base_url")
        self.report = RunReport("target-orocommerce", rejects_path=config.get("rejects_path"))
        self.auth = OroOAuth2Authenticator(
            base_url=base_url,
            client_id=str(config["client_id"]),
            client_secret=str(config["client_secret"]),
            grant_type=str(config.get("grant_type") or "client_credentials"),
            username=config.get("username"),
            password=config.get("password"),
            timeout=float(config.get("request_timeout") or 60),
        )
        #: What the run does (or, with ``dry_run``, would do): counts per action, a redacted sample each.
        self.plan = ActionPlan(
            "target-orocommerce",
            self.report,
            dry_run=bool(config.get("dry_run", False)),
            path=config.get("dry_run_report_path"),
        )
        self.writer = OroWriter(
            base_url=base_url,
            api_prefix=str(config.get("api_prefix") or "/admin/api"),
            auth=self.auth,
            report=self.report,
            timeout=float(config.get("request_timeout") or 60),
            max_tries=int(config.get("max_tries") or 6),
            backoff_base=float(config.get("backoff_factor_seconds", BACKOFF_FACTOR_SECONDS)),
            max_retry_wait=float(config.get("backoff_max_seconds") or 60),
            max_concurrency=int(config.get("max_connections") or DEFAULT_MAX_CONNECTIONS),
            plan=self.plan,
        )
        batch_mode = str(config.get("batch_mode") or "auto")
        self.consent = consent_store(config, self.writer, batch_mode)
        self.customers = CustomerUserDirectory(self.writer, extra_fields=self.consent.extra_fields)
        self.tags = TagDirectory(self.writer)
        self.campaigns = CampaignDirectory(self.writer)
        self.activities = ActivityWriter(
            writer=self.writer,
            customers=self.customers,
            campaigns=self.campaigns,
            report=self.report,
            granularity=str(config.get("activity_granularity") or "first_per_action"),
            types=config.get("activity_types"),
            batch_mode=batch_mode,
            page_size=int(config.get("page_size") or 500),
        )
        self.member_settings = MemberSettings(
            conflict_policy=str(config.get("conflict_policy") or "newer_wins"),
            sync_tags=bool(config.get("sync_tags", True)),
            tag_prefix=str(config.get("tag_prefix") if config.get("tag_prefix") is not None else "mc:"),
            exclude_tag_prefixes=tuple(config.get("exclude_tag_prefixes") or ()),
            first_name_field=str(config.get("first_name_merge_field") or "FNAME"),
            last_name_field=str(config.get("last_name_merge_field") or "LNAME"),
            phone_field=str(config.get("phone_merge_field") or "PHONE"),
            marketing_list_ids=tuple(int(i) for i in config.get("marketing_list_ids") or ()),
            create_missing=bool(config.get("create_missing_customer_users", False)),
            new_user_customer_id=_str_or_none(config.get("new_customer_user_customer_id")),
            new_user_role_id=_str_or_none(config.get("new_customer_user_role_id")),
            identity_field=str(
                config.get("identity_merge_field") if config.get("identity_merge_field") is not None else "OROID"
            ),
            apply_email_changes=bool(config.get("apply_email_changes", False)),
            archived_consent=str(config.get("archived_member_consent") or "withdraw"),
        )
        self.members = MemberSync(
            writer=self.writer,
            customers=self.customers,
            tags=self.tags,
            activities=self.activities,
            report=self.report,
            settings=self.member_settings,
            consent=self.consent,
            batch_mode=batch_mode,
        )
        self.campaign_sync = CampaignSync(self.writer, self.campaigns, self.report)
        #: ``reports`` -> the campaign's results fields, when ``campaign_results`` is on.
        fields = field_map(config.get("campaign_results_fields"))
        self.campaign_results = (
            CampaignResultsSync(self.writer, self.campaigns, self.report, fields)
            if config.get("campaign_results")
            else None
        )
        self.conversions = ConversionSync(
            writer=self.writer,
            campaigns=self.campaigns,
            report=self.report,
            relationship=str(config.get("conversion_order_relationship") or "campaign"),
            match=str(config.get("conversion_order_match") or "id"),
            batch_mode=batch_mode,
        )
        self.conversions_enabled = str(config.get("conversion_mode") or "order_campaign") != "off"
        self._send_times: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def remember_send_time(self, campaign_id: str, when: datetime) -> None:
        """Record a campaign's send time (from ``campaigns``/``reports``) for ``send`` activities."""
        with self._lock:
            self._send_times[campaign_id] = when

    def send_times(self) -> dict[str, datetime]:
        """Known campaign send times."""
        with self._lock:
            return dict(self._send_times)

    def fill_send_times(self, codes: Iterable[Any]) -> None:
        """For campaigns not seen in this run, fall back to the Oro campaign's start date."""
        missing = [c for c in codes if isinstance(c, str) and c and c not in self.send_times()]
        if not missing:
            return
        for code, view in self.campaigns.resolve(missing).items():
            if view is not None and view.start_date:
                when = parse_utc(view.start_date[:10])
                if when is not None:
                    self.remember_send_time(code, when)

    def close(self) -> None:
        """Stop the background writes, release connections and the rejects file."""
        self.activities.close()
        self.writer.close()
        self.report.close()


def _str_or_none(value: Any) -> str | None:
    return None if value in (None, "") else str(value)
