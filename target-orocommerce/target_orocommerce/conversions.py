"""Conversions: Mailchimp ``attributed_orders`` attributed to a campaign -> the Oro order.

Where it lands: the Oro **order** gets a to-one relationship to the Oro **campaign** that mirrors
the Mailchimp campaign (a custom "Campaign" relation on Order, created once in Entity Management;
Oro exposes custom fields in the back-office API automatically). An Oro user then sees, on each
order, which email campaign brought it, and can report revenue per campaign with Oro's report
builder. The marketing-activity enum is immutable in Oro and has no "conversion" type, so
conversions are deliberately *not* faked as clicks.

The Mailchimp order is matched to the Oro order by id (``conversion_order_match = id``, the id
target-mailchimp uses for the orders it pushes) or by the order ``identifier``. An order that
already points at the campaign is not written again. When the instance has no such relation,
every conversion is rejected with a message that says how to add it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from oromc_common.keys import record_key
from oromc_common.oro import OroClientError, build_filters, relationship_id
from oromc_common.report import RunReport

from target_orocommerce.bulk import BulkUpdater, Update
from target_orocommerce.client import OroWriter
from target_orocommerce.lookups import CampaignDirectory


class ConversionError(ValueError):
    """An ``attributed_orders`` record that cannot be used; ``field`` names the culprit."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class Conversion:
    """An order attributed to a Mailchimp campaign."""

    record_key: str
    order_id: str
    campaign_code: str


ORDER_KEY = ("store_id", "id")  # names an ``attributed_orders`` record in rejects: ``<store>/<order id>``


def parse_conversion(record: Mapping[str, Any], key: str | None = None) -> Conversion | None:
    """The conversion in an ``attributed_orders`` record (None when not attributed to a campaign).

    ``key``: the record's name in rejects (default: ``<store>/<order id>``).
    """
    campaign = record.get("campaign_id")
    if campaign in (None, ""):
        return None
    if not isinstance(campaign, str):
        raise ConversionError("campaign_id is not a string", "campaign_id")
    order_id = record.get("id")
    if not isinstance(order_id, str) or not order_id:
        raise ConversionError("missing order id", "id")
    return Conversion(key if key is not None else record_key(record, ORDER_KEY), order_id, campaign)


class ConversionSync:
    """Points Oro orders at the campaign that converted them."""

    def __init__(
        self,
        *,
        writer: OroWriter,
        campaigns: CampaignDirectory,
        report: RunReport,
        relationship: str = "campaign",
        match: str = "id",
        batch_mode: str = "auto",
    ) -> None:
        self.writer = writer
        self.campaigns = campaigns
        self.report = report
        self.relationship = relationship
        self.match = match
        self.orders = BulkUpdater(writer, "orders", batch_mode=batch_mode)

    def _load_orders(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        field = "id" if self.match == "id" else "identifier"
        for start in range(0, len(keys), 50):
            chunk = keys[start : start + 50]
            if field == "id":
                chunk = [k for k in chunk if k.isdigit()]
                if not chunk:
                    continue
            params = build_filters({field: chunk})
            params["page[size]"] = "100"
            for order in self.writer.iter_resources("orders", params):
                key = str(order.get("id")) if field == "id" else str((order.get("attributes") or {}).get("identifier"))
                found[key] = order
        return found

    def process(self, stream: str, conversions: list[Conversion]) -> None:
        """Apply one batch of conversions."""
        if not conversions:
            return
        orders = self._load_orders(list(dict.fromkeys(c.order_id for c in conversions)))
        updates = []
        for conv in conversions:
            order = orders.get(conv.order_id)
            if order is None:
                self.report.reject(stream, conv.record_key, "no_oro_order", "no Oro order with "
                                                                            f"{self.match} = this order id", "id")
                continue
            if self.relationship not in (order.get("relationships") or {}):
                self.report.reject(
                    stream,
                    conv.record_key,
                    "order_campaign_field_missing",
                    f"Oro orders have no '{self.relationship}' relation: add a many-to-one relation "
                    f"'{self.relationship}' from Order to Campaign in Entity Management (or set "
                    "conversion_order_relationship / conversion_mode=off)",
                    f"relationships.{self.relationship}",
                )
                continue
            try:
                campaign = self.campaigns.ensure(conv.campaign_code)
            except OroClientError as exc:
                self.report.reject(stream, conv.record_key, f"oro_{exc.status}", str(exc), "campaign_id")
                continue
            if relationship_id(order, self.relationship) == campaign.id:
                self.report.count(stream, "unchanged")
                continue
            rel = {self.relationship: {"data": {"type": "campaigns", "id": campaign.id}}}
            updates.append(Update(conv, str(order["id"]), {}, rel))
            self.writer.plan.add(stream, "link_order_campaign", conv.record_key, order=str(order["id"]),
                                 campaign=conv.campaign_code)

        def reject(conv: Any, detail: str, pointer: str | None) -> None:
            self.report.reject(stream, conv.record_key, "oro_validation", detail, pointer)

        landed = self.orders.update(updates, reject)
        self.report.count(stream, "updated", len(landed))
