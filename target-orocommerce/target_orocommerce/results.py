"""Campaign results: a Mailchimp campaign report's figures -> custom fields of the Oro campaign.

Stock Oro has no place for them: the ``campaigns`` resource holds name, code, description, dates,
budget and report period; Oro's own per-recipient ``EmailCampaignStatistics`` (and the counters of
its Mailchimp bundle's campaign entity) are not API resources. So an admin adds a set of custom
fields to Campaign in Entity Management (``mc_emails_sent`` ... ``mc_revenue``, see the README);
Oro exposes custom fields in the back-office API automatically, and shows them on the campaign's
page. With ``campaign_results`` on, each ``reports`` record updates those fields of the campaign
whose ``code`` is the Mailchimp campaign id, writing only the fields whose value differs from what
Oro holds (``PATCH``; nothing when all agree). An instance without the fields gets every report
rejected with reason ``campaign_results_fields_missing`` and the instruction.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from oromc_common.oro import OroClientError
from oromc_common.report import RunReport

from target_orocommerce.client import PLANNED_ID, OroWriter, all_error_details
from target_orocommerce.lookups import (
    CAMPAIGN_CODE_RE,
    CAMPAIGN_NAME_MAX,
    CampaignDirectory,
    CampaignView,
)


def _get(path: str) -> Callable[[Mapping[str, Any]], Any]:
    def read(record: Mapping[str, Any]) -> Any:
        value: Any = record
        for part in path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        return None if isinstance(value, bool) else value

    return read


def _bounces(record: Mapping[str, Any]) -> int | None:
    bounces = record.get("bounces")
    if not isinstance(bounces, Mapping):
        return None
    counts = [bounces.get(k) for k in ("hard_bounces", "soft_bounces")]
    return sum(c for c in counts if isinstance(c, int)) if any(isinstance(c, int) for c in counts) else None


#: Figure -> how it is read from a ``reports`` record (Mailchimp's Campaign Report).
FIGURES: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "emails_sent": _get("emails_sent"),
    "opens": _get("opens.opens_total"),
    "unique_opens": _get("opens.unique_opens"),
    "clicks": _get("clicks.clicks_total"),
    "bounces": _bounces,  # hard + soft
    "unsubscribes": _get("unsubscribed"),
    "open_rate": _get("opens.open_rate"),  # fraction 0-1, of delivered emails
    "click_rate": _get("clicks.click_rate"),
    "orders": _get("ecommerce.total_orders"),
    "revenue": _get("ecommerce.total_revenue"),
}
#: Default Oro field (API name of the custom field) of each figure.
DEFAULT_FIELDS: dict[str, str] = {name: f"mc_{name}" for name in FIGURES}


def field_map(configured: Mapping[str, Any] | None) -> dict[str, str]:
    """Figure -> Oro field from ``campaign_results_fields``; an empty name leaves that figure out."""
    unknown = sorted(set(configured or {}) - set(FIGURES))
    if unknown:
        msg = f"Setting 'campaign_results_fields' has unknown figures {unknown}; known: {', '.join(FIGURES)}."
        raise ValueError(msg)
    merged = {**DEFAULT_FIELDS, **(configured or {})}
    return {figure: str(name) for figure, name in merged.items() if name}


def report_figures(record: Mapping[str, Any], fields: Mapping[str, str]) -> dict[str, Any]:
    """Oro field -> value for one report (figures the report lacks are left out, never zeroed)."""
    values: dict[str, Any] = {}
    for figure, oro_field in fields.items():
        value = FIGURES[figure](record)
        if isinstance(value, Decimal):
            value = float(value)
        if isinstance(value, int | float):
            values[oro_field] = round(float(value), 4) if figure == "revenue" else value
    return values


class CampaignResultsSync:
    """Writes report figures onto the Oro campaigns, only what changed."""

    def __init__(
        self, writer: OroWriter, campaigns: CampaignDirectory, report: RunReport, fields: Mapping[str, str]
    ) -> None:
        self.writer = writer
        self.campaigns = campaigns
        self.report = report
        self.fields = dict(fields)

    def missing_fields(self, view: CampaignView) -> list[str]:
        """The configured Oro fields the campaign does not have (none on an instance set up for them).

        A campaign a dry run only planned to create has no attributes to tell: its fields are assumed.
        """
        if view.id.startswith(PLANNED_ID):
            return []
        return [f for f in self.fields.values() if f not in view.attributes]

    def _apply(self, stream: str, code: str, record: Mapping[str, Any]) -> str:
        figures = report_figures(record, self.fields)
        view = self.campaigns.resolve([code])[code]
        if view is None:  # the report came before its campaign: create it, named like CampaignSync does
            title = str(record.get("campaign_title") or record.get("subject_line") or "").strip()
            view, _ = self.campaigns.upsert(code, {"name": (title or f"Mailchimp campaign {code}")[:CAMPAIGN_NAME_MAX]})
        missing = self.missing_fields(view)
        if missing:
            return "missing:" + ",".join(missing)
        _, outcome = self.campaigns.upsert(code, figures, plan_as=(stream, "update_campaign_results"))
        return outcome

    def process(self, stream: str, records: list[dict[str, Any]]) -> None:
        """Apply one batch of ``reports`` records."""
        latest: dict[str, dict[str, Any]] = {}
        for record in records:
            code = record.get("id")
            if not isinstance(code, str) or not CAMPAIGN_CODE_RE.match(code):
                self.report.reject(stream, str(code), "invalid_record",
                                   "report id must be 1-20 characters of [a-zA-Z0-9_-] (the Oro campaign code)", "id")
                continue
            latest[code] = record  # a report read twice in one batch: its newest figures win
        self.campaigns.resolve(latest)
        tasks = [functools.partial(self._apply, stream, code, record) for code, record in latest.items()]
        for code, result in zip(latest, self.writer.run_parallel(tasks), strict=True):
            if isinstance(result, OroClientError):
                self.report.reject(stream, code, f"oro_{result.status}", all_error_details(result), None)
            elif isinstance(result, BaseException):
                raise result
            elif result.startswith("missing:"):
                names = result.removeprefix("missing:")
                self.report.reject(
                    stream, code, "campaign_results_fields_missing",
                    f"Oro campaigns have no custom field(s) {names}: add them to Campaign in Entity Management "
                    "(see target-orocommerce README, 'Campaign results'), or set campaign_results_fields / "
                    "campaign_results=false",
                    "attributes." + names.split(",")[0],
                )
            else:
                self.report.count(stream, result)
