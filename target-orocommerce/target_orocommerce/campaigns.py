"""Mailchimp ``campaigns`` -> Oro ``campaigns`` (``code`` = Mailchimp campaign id).

Automation emails (welcome, abandoned cart, ...) are campaigns of ``type`` ``automation`` in Mailchimp's
API, each with its own id: each becomes **one Oro campaign per automation email** (not one per
workflow), so its opens, clicks and conversions stay apart from the workflow's other emails, exactly
as Mailchimp reports them; the description says it is an automation email.

Existing campaigns are looked up with one ``filter[code]=a,b,...`` call per 50 campaigns; only
campaigns whose name, description or start date differ are written (PATCH), new ones are created
with ``meta.upsert: ["code"]`` (so a retried create can never duplicate a campaign).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from oromc_common.oro import OroClientError
from oromc_common.report import RunReport

from target_orocommerce.client import OroWriter, all_error_details
from target_orocommerce.lookups import CAMPAIGN_CODE_RE, CAMPAIGN_NAME_MAX, CampaignDirectory


def campaign_attributes(record: Mapping[str, Any]) -> dict[str, Any]:
    """Oro campaign attributes for a Mailchimp campaign record."""
    settings = record.get("settings") or {}
    if not isinstance(settings, Mapping):
        settings = {}
    title = str(settings.get("title") or "").strip()
    subject = str(settings.get("subject_line") or "").strip()
    name = (title or subject or f"Mailchimp campaign {record.get('id')}")[:CAMPAIGN_NAME_MAX]
    attrs: dict[str, Any] = {"name": name}
    automation = record.get("type") == "automation"
    if subject:
        prefix = "Mailchimp automation email. " if automation else ""
        attrs["description"] = f"{prefix}Mailchimp subject: {subject}"
    elif automation:
        attrs["description"] = "Mailchimp automation email."
    send_time = record.get("send_time")
    if isinstance(send_time, datetime):
        attrs["startDate"] = send_time.date().isoformat()
    elif isinstance(send_time, str) and len(send_time) >= 10:
        attrs["startDate"] = send_time[:10]
    return attrs


class CampaignSync:
    """Upserts campaign records, writing only what changed."""

    def __init__(self, writer: OroWriter, campaigns: CampaignDirectory, report: RunReport) -> None:
        self.writer = writer
        self.campaigns = campaigns
        self.report = report

    def process(self, stream: str, records: list[dict[str, Any]]) -> None:
        """Apply one batch of ``campaigns`` records."""
        valid: dict[str, dict[str, Any]] = {}
        for record in records:
            code = record.get("id")
            if not isinstance(code, str) or not CAMPAIGN_CODE_RE.match(code):
                self.report.reject(
                    stream,
                    str(code),
                    "invalid_record",
                    "campaign id must be 1-20 characters of [a-zA-Z0-9_-] to serve as the Oro campaign code",
                    "id",
                )
                continue
            valid[code] = campaign_attributes(record)
        self.campaigns.resolve(valid)
        tasks = [functools.partial(self.campaigns.upsert, c, a) for c, a in valid.items()]
        for code, result in zip(valid, self.writer.run_parallel(tasks), strict=True):
            if isinstance(result, OroClientError):
                pointer = None
                for error in result.errors:
                    source = error.get("source")
                    if isinstance(source, Mapping) and source.get("pointer"):
                        pointer = str(source["pointer"])
                        break
                self.report.reject(stream, code, f"oro_{result.status}", all_error_details(result), pointer)
            elif isinstance(result, BaseException):
                raise result
            else:
                self.report.count(stream, result[1])
