"""`/campaigns` handlers: parse the request, call the campaign rules (`..campaigns`), render.

The Campaign document (reference §10.1) and the campaign/report list filters (`select_sent`) live here
too; `reports.py` reuses them.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from ..campaigns import (
    CAMPAIGN_STATUSES,
    FILTER_TYPES,
    Campaign,
    create_campaign,
    find_campaign,
    list_info,
    rates,
    remove_campaign,
    send_draft,
    update_campaign,
)
from ..common import Ctx, collection_page, links, mc_endpoint, parse_ts_param
from ..engagement import EngagementState, engagement
from ..values import check_enum, format_epoch, require_object, short_id, subscriber_hash


def campaign_doc(
    request: Request, state: EngagementState, campaign: Campaign, now: float
) -> dict[str, Any]:
    """The Campaign document (reference §10.1)."""
    store = state.store
    list_name, active = list_info(store, campaign.list_id)
    cid = campaign.id
    sent = campaign.is_sent
    if sent:
        recipient_count = len(campaign.recipients)
    elif campaign.list_id in store.audiences:
        segment = state.segment_members(campaign)
        audience = store.audiences[campaign.list_id]
        recipient_count = audience.counts["subscribed"] if segment is None else len(segment)
    else:
        recipient_count = 0
    doc: dict[str, Any] = {
        "id": cid,
        "web_id": campaign.web_id,
        "parent_campaign_id": "",
        "type": campaign.type,
        "create_time": format_epoch(campaign.create_time),
        "archive_url": f"http://eepurl.com/{short_id('eepurl', cid, length=6)}",
        "long_archive_url": f"https://{store.dc}.campaign-archive.com/?u={store.account_id}&id={cid}",
        "status": campaign.status,
        "emails_sent": len(campaign.recipients) if sent else 0,
        "send_time": format_epoch(campaign.send_time) if campaign.send_time is not None else "",
        "content_type": campaign.content_type,
        "needs_block_refresh": False,
        "resendable": sent,
        "recipients": {
            "list_id": campaign.list_id,
            "list_is_active": active,
            "list_name": list_name,
            "segment_text": "",
            "recipient_count": recipient_count,
            "segment_opts": {"match": "all", "conditions": [], **campaign.segment_opts},
        },
        "settings": campaign.settings,
        "tracking": campaign.tracking,
        "delivery_status": {"enabled": False},
    }
    if campaign.social_card:
        doc["social_card"] = campaign.social_card
    if sent and campaign.events is not None:
        agg = campaign.events.aggregates(now)
        open_rate, click_rate = rates(campaign, agg)
        totals = state.ecommerce.campaign_totals(cid)
        doc["report_summary"] = {
            "opens": agg.opens_total,
            "unique_opens": agg.unique_opens,
            "open_rate": open_rate,
            "clicks": agg.clicks_total,
            "subscriber_clicks": agg.unique_subscriber_clicks,
            "click_rate": click_rate,
            "ecommerce": {
                "total_orders": totals["total_orders"],
                "total_spent": totals["total_spent"],
                "total_revenue": totals["total_revenue"],
            },
        }
        doc["delivery_status"] = {
            "enabled": True,
            "can_cancel": False,
            "status": "delivered",
            "emails_sent": len(campaign.recipients),
            "emails_canceled": 0,
        }
    path = f"/campaigns/{cid}"
    doc["_links"] = links(
        request,
        ("parent", "/campaigns"),
        ("self", path),
        ("delete", path, "DELETE"),
        ("update", path, "PATCH"),
        ("send", path + "/actions/send", "POST"),
        ("content", path + "/content"),
    )
    return doc


def _ts_filter(request: Request, name: str) -> float | None:
    value = parse_ts_param(request, name)
    return value.timestamp() if value is not None else None


def sort_params(request: Request, allowed: tuple[str, ...]) -> tuple[str | None, bool]:
    field_ = request.query_params.get("sort_field") or None
    direction = request.query_params.get("sort_dir") or "ASC"
    if field_ is not None:
        check_enum({"sort_field": field_}, "sort_field", allowed)
    check_enum({"sort_dir": direction}, "sort_dir", ("ASC", "DESC"))
    return field_, direction == "DESC"


def select_sent(
    request: Request, campaigns: list[Campaign], *, sort_allowed: tuple[str, ...]
) -> list[Campaign]:
    """Apply the shared campaign/report filters: type, send/create time windows, sort."""
    q = request.query_params
    type_ = q.get("type")
    if type_:
        check_enum({"type": type_}, "type", FILTER_TYPES)
        campaigns = [c for c in campaigns if c.type == type_]
    since_send = _ts_filter(request, "since_send_time")
    before_send = _ts_filter(request, "before_send_time")
    if since_send is not None:
        campaigns = [c for c in campaigns if c.send_time is not None and c.send_time > since_send]
    if before_send is not None:
        campaigns = [c for c in campaigns if c.send_time is not None and c.send_time <= before_send]
    field_, desc = sort_params(request, sort_allowed)
    if field_ == "create_time":
        campaigns = sorted(campaigns, key=lambda c: c.create_time, reverse=desc)
    elif field_ == "send_time":
        campaigns = sorted(campaigns, key=lambda c: c.send_time or 0.0, reverse=desc)
    elif desc:
        campaigns = list(reversed(campaigns))
    return campaigns


@mc_endpoint
async def get_campaigns(request: Request, ctx: Ctx) -> dict[str, Any]:
    state = engagement(ctx)
    now = state.read_now
    q = request.query_params
    campaigns = list(state.campaigns.values())
    status = q.get("status")
    if status:
        check_enum({"status": status}, "status", CAMPAIGN_STATUSES)
        campaigns = [c for c in campaigns if c.status == status]
    list_id = q.get("list_id")
    if list_id:
        campaigns = [c for c in campaigns if c.list_id == list_id]
    since_create = _ts_filter(request, "since_create_time")
    before_create = _ts_filter(request, "before_create_time")
    if since_create is not None:
        campaigns = [c for c in campaigns if c.create_time > since_create]
    if before_create is not None:
        campaigns = [c for c in campaigns if c.create_time <= before_create]
    member_id = q.get("member_id")
    if member_id:
        key = member_id.strip().lower()
        hash_ = subscriber_hash(key) if "@" in key else key
        campaigns = [c for c in campaigns if c.recipient_index(hash_) is not None]
    campaigns = select_sent(request, campaigns, sort_allowed=("create_time", "send_time"))
    return collection_page(
        request,
        ctx,
        "campaigns",
        campaigns,
        lambda c: campaign_doc(request, state, c, now),
        "/campaigns",
        None,
        ("POST",),
    )


@mc_endpoint(paged=False)
async def get_campaign(request: Request, ctx: Ctx) -> dict[str, Any]:
    state = engagement(ctx)
    campaign = find_campaign(state, request.path_params["campaign_id"])
    ctx.items = 1
    return campaign_doc(request, state, campaign, state.read_now)


@mc_endpoint(paged=False)
async def post_campaigns(request: Request, ctx: Ctx) -> dict[str, Any]:
    state = engagement(ctx)
    campaign = create_campaign(state, ctx.store, require_object(ctx.json))
    ctx.items = 1
    return campaign_doc(request, state, campaign, state.read_now)


@mc_endpoint(paged=False)
async def patch_campaign(request: Request, ctx: Ctx) -> dict[str, Any]:
    state = engagement(ctx)
    campaign = find_campaign(state, request.path_params["campaign_id"])
    update_campaign(ctx.store, campaign, require_object(ctx.json))
    ctx.items = 1
    return campaign_doc(request, state, campaign, state.read_now)


@mc_endpoint(paged=False)
async def delete_campaign(request: Request, ctx: Ctx) -> None:
    state = engagement(ctx)
    remove_campaign(state, find_campaign(state, request.path_params["campaign_id"]))
    ctx.items = 1


@mc_endpoint(paged=False)
async def send_campaign(request: Request, ctx: Ctx) -> None:
    state = engagement(ctx)
    campaign = find_campaign(state, request.path_params["campaign_id"])
    send_draft(state, ctx.store, campaign)
    ctx.items = len(campaign.recipients)
