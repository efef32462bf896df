"""`/automations` handlers (OpenAPI `getAutomations`, `getAutomationsId`, `…Emails…`, `…Queue…`,
`postAutomationsIdActions…`). The rules live in `automations.py`; this module only renders them."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from ..automations import Automation, AutomationEmail, QueueEntry
from ..campaigns import Campaign, list_info
from ..common import Ctx, collection_page, links, mc_endpoint, parse_ts_param
from ..engagement import EngagementState, engagement
from ..exceptions import FieldError, ResourceNotFoundError
from ..values import check_enum, format_epoch, require_keys, require_object, subscriber_hash

AUTOMATION_STATUSES = ("save", "paused", "sending")
WEEK = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]
ACTION_TEXT = {
    "signup": "after subscribing to the list",
    "ecomm_abandoned_cart": "after abandoning a cart",
    "api": "after being added by the API",
}


def _summary(campaigns: list[Campaign], now: float) -> dict[str, Any]:
    """`report_summary` over the campaigns of automation emails (rates over delivered)."""
    opens = unique = clicks = subscriber = delivered = 0
    for campaign in campaigns:
        if campaign.events is None:
            continue
        agg = campaign.events.aggregates(now)
        opens += agg.opens_total
        unique += agg.unique_opens
        clicks += agg.clicks_total
        subscriber += agg.unique_subscriber_clicks
        delivered += len(campaign.recipients) - agg.hard_bounces - agg.soft_bounces
    return {
        "opens": opens,
        "unique_opens": unique,
        "open_rate": unique / delivered if delivered else 0.0,
        "clicks": clicks,
        "subscriber_clicks": subscriber,
        "click_rate": subscriber / delivered if delivered else 0.0,
    }


def _trigger(auto: Automation) -> dict[str, Any]:
    return {
        "workflow_type": auto.workflow_type,
        "workflow_title": auto.title,
        "runtime": {"days": WEEK, "hours": {"type": "send_asap"}},
        "workflow_emails_count": len(auto.emails),
    }


def _campaigns(state: EngagementState, auto: Automation) -> list[Campaign]:
    return [c for e in auto.emails if (c := state.campaigns.get(e.id)) is not None]


def automation_doc(request: Request, state: EngagementState, auto: Automation) -> dict[str, Any]:
    """The Automation document (OpenAPI `getAutomationsId` 200)."""
    campaigns = _campaigns(state, auto)
    list_name, active = list_info(state.store, auto.list_id)
    tracking = campaigns[0].tracking if campaigns else {}
    recipients: dict[str, Any] = {
        "list_id": auto.list_id,
        "list_is_active": active,
        "list_name": list_name,
        "segment_opts": {"match": "all", "conditions": []},
    }
    if auto.store_id:
        recipients["store_id"] = auto.store_id
    path = f"/automations/{auto.id}"
    return {
        "id": auto.id,
        "create_time": format_epoch(auto.create_time),
        "start_time": format_epoch(auto.start_time),
        "status": auto.status,
        "emails_sent": sum(len(c.recipients) for c in campaigns),
        "recipients": recipients,
        "settings": {
            "title": auto.title,
            "from_name": auto.settings.get("from_name", ""),
            "reply_to": auto.settings.get("reply_to", ""),
            "use_conversation": False,
            "to_name": auto.settings.get("to_name", ""),
            "authenticate": True,
            "auto_footer": False,
            "inline_css": False,
        },
        "tracking": tracking,
        "trigger_settings": _trigger(auto),
        "report_summary": _summary(campaigns, state.read_now),
        "_links": links(
            request,
            ("parent", "/automations"),
            ("self", path),
            ("start-all-emails", path + "/actions/start-all-emails", "POST"),
            ("pause-all-emails", path + "/actions/pause-all-emails", "POST"),
            ("emails", path + "/emails"),
        ),
    }


def email_doc(
    request: Request, state: EngagementState, auto: Automation, email: AutomationEmail
) -> dict[str, Any]:
    """The Automation Email document (OpenAPI `getAutomationsIdEmailsId` 200)."""
    campaign = state.campaigns.get(email.id)
    assert campaign is not None
    list_name, active = list_info(state.store, auto.list_id)
    settings = campaign.settings
    audience = state.store.audiences.get(auto.list_id)
    action = ACTION_TEXT.get(email.action, email.action)
    unit = email.delay_type if email.delay_amount == 1 else email.delay_type + "s"
    full = f"{email.delay_amount} {unit} {action}" if email.delay_type != "now" else action
    path = f"/automations/{auto.id}/emails/{email.id}"
    return {
        "id": email.id,
        "web_id": campaign.web_id,
        "workflow_id": auto.id,
        "position": email.position,
        "delay": {
            "amount": email.delay_amount,
            "type": email.delay_type,
            "direction": "after",
            "action": email.action,
            "action_description": action,
            "full_description": full,
        },
        "create_time": format_epoch(campaign.create_time),
        "start_time": format_epoch(auto.start_time),
        "archive_url": f"http://eepurl.com/{email.id[:6]}",
        "status": email.status,
        "emails_sent": len(campaign.recipients),
        "send_time": format_epoch(campaign.send_time) if campaign.send_time is not None else "",
        "content_type": campaign.content_type,
        "needs_block_refresh": False,
        "has_logo_merge_tag": False,
        "recipients": {
            "list_id": auto.list_id,
            "list_is_active": active,
            "list_name": list_name,
            "segment_text": "",
            "recipient_count": audience.counts["subscribed"] if audience is not None else 0,
            "segment_opts": {"match": "all", "conditions": []},
        },
        "settings": {
            "subject_line": settings.get("subject_line", ""),
            "preview_text": settings.get("preview_text", ""),
            "title": settings.get("title", ""),
            "from_name": settings.get("from_name", ""),
            "reply_to": settings.get("reply_to", ""),
            "authenticate": True,
            "auto_footer": False,
            "inline_css": False,
            "auto_tweet": False,
            "auto_fb_post": [],
            "fb_comments": True,
            "template_id": 0,
            "drag_and_drop": True,
        },
        "tracking": campaign.tracking,
        "trigger_settings": _trigger(auto),
        "report_summary": _summary([campaign], state.read_now),
        "_links": links(
            request,
            ("parent", f"/automations/{auto.id}/emails"),
            ("self", path),
            ("queue", path + "/queue"),
            ("pause", path + "/actions/pause", "POST"),
            ("start", path + "/actions/start", "POST"),
        ),
    }


def queue_doc(
    request: Request,
    state: EngagementState,
    auto: Automation,
    email: AutomationEmail,
    e: QueueEntry,
) -> dict[str, Any]:
    _, active = list_info(state.store, auto.list_id)
    path = f"/automations/{auto.id}/emails/{email.id}/queue"
    return {
        "id": e.member_hash,
        "workflow_id": auto.id,
        "email_id": email.id,
        "list_id": auto.list_id,
        "list_is_active": active,
        "email_address": e.email,
        "next_send": format_epoch(e.next_send),
        "_links": links(request, ("parent", path), ("self", f"{path}/{e.member_hash}")),
    }


# --------------------------------------------------------------------------- lookups


def _automation(ctx: Ctx) -> tuple[EngagementState, Automation]:
    state = engagement(ctx)
    auto = state.automations.automations.get(ctx.request.path_params["workflow_id"])
    if auto is None:
        raise ResourceNotFoundError()
    return state, auto


def _email(ctx: Ctx) -> tuple[EngagementState, Automation, AutomationEmail]:
    state, auto = _automation(ctx)
    eid = ctx.request.path_params["workflow_email_id"]
    for email in auto.emails:
        if email.id == eid:
            return state, auto, email
    raise ResourceNotFoundError()


def _time_filter(request: Request, items: list[Automation]) -> list[Automation]:
    for name, attr, before in (
        ("before_create_time", "create_time", True),
        ("since_create_time", "create_time", False),
        ("before_start_time", "start_time", True),
        ("since_start_time", "start_time", False),
    ):
        value = parse_ts_param(request, name)
        if value is None:
            continue
        ts = value.timestamp()
        items = [a for a in items if (getattr(a, attr) <= ts if before else getattr(a, attr) > ts)]
    return items


# --------------------------------------------------------------------------- handlers


@mc_endpoint
async def get_automations(request: Request, ctx: Ctx) -> dict[str, Any]:
    state = engagement(ctx)
    status = request.query_params.get("status")
    items = list(state.automations.automations.values())
    if status:
        check_enum({"status": status}, "status", AUTOMATION_STATUSES)
        items = [a for a in items if a.status == status]
    items = _time_filter(request, items)
    return collection_page(
        request,
        ctx,
        "automations",
        items,
        lambda a: automation_doc(request, state, a),
        "/automations",
    )


@mc_endpoint(paged=False)
async def get_automation(request: Request, ctx: Ctx) -> dict[str, Any]:
    state, auto = _automation(ctx)
    ctx.items = 1
    return automation_doc(request, state, auto)


@mc_endpoint(paged=False)
async def start_all(request: Request, ctx: Ctx) -> None:
    _, auto = _automation(ctx)
    auto.status = "sending"
    for email in auto.emails:
        email.status = "sending"


@mc_endpoint(paged=False)
async def pause_all(request: Request, ctx: Ctx) -> None:
    _, auto = _automation(ctx)
    auto.status = "paused"
    for email in auto.emails:
        email.status = "paused"


@mc_endpoint
async def get_emails(request: Request, ctx: Ctx) -> dict[str, Any]:
    state, auto = _automation(ctx)
    return collection_page(
        request,
        ctx,
        "emails",
        auto.emails,
        lambda e: email_doc(request, state, auto, e),
        f"/automations/{auto.id}/emails",
        f"/automations/{auto.id}",
    )


@mc_endpoint(paged=False)
async def get_email(request: Request, ctx: Ctx) -> dict[str, Any]:
    state, auto, email = _email(ctx)
    ctx.items = 1
    return email_doc(request, state, auto, email)


@mc_endpoint(paged=False)
async def start_email(request: Request, ctx: Ctx) -> None:
    _, auto, email = _email(ctx)
    email.status = "sending"
    auto.status = "sending"


@mc_endpoint(paged=False)
async def pause_email(request: Request, ctx: Ctx) -> None:
    _, auto, email = _email(ctx)
    email.status = "paused"
    if all(e.status == "paused" for e in auto.emails):
        auto.status = "paused"


@mc_endpoint
async def get_queue(request: Request, ctx: Ctx) -> dict[str, Any]:
    state, auto, email = _email(ctx)
    entries = sorted(email.queue.values(), key=lambda e: (e.next_send, e.key))
    path = f"/automations/{auto.id}/emails/{email.id}/queue"
    return collection_page(
        request,
        ctx,
        "queue",
        entries,
        lambda e: queue_doc(request, state, auto, email, e),
        path,
        f"/automations/{auto.id}/emails/{email.id}",
        ("POST",),
        head={"workflow_id": auto.id, "email_id": email.id},
    )


@mc_endpoint(paged=False)
async def get_queue_member(request: Request, ctx: Ctx) -> dict[str, Any]:
    state, auto, email = _email(ctx)
    key = str(request.path_params["subscriber_hash"]).strip().lower()
    hash_ = subscriber_hash(key) if "@" in key else key
    for entry in email.queue.values():
        if entry.member_hash == hash_:
            ctx.items = 1
            return queue_doc(request, state, auto, email, entry)
    raise ResourceNotFoundError()


@mc_endpoint(paged=False)
async def post_queue(request: Request, ctx: Ctx) -> dict[str, Any]:
    """Add a subscribed member to the email's queue: sent after the email's delay, once.

    **Decision:** unknown or not-subscribed addresses -> 400 Invalid Resource (the error is not
    documented; automations only email subscribed members)."""
    state, auto, email = _email(ctx)
    body = require_object(ctx.json)
    require_keys(body, ("email_address",))
    address = str(body["email_address"]).strip()
    rec = state.store.get_member(auto.list_id, subscriber_hash(address.lower()))
    if rec is None or rec["status"] != "subscribed":
        raise FieldError("email_address", "The subscriber is not subscribed to the list.")
    entry = state.automations.queue_member(auto, email, rec, state.read_now)
    ctx.items = 1
    return queue_doc(request, state, auto, email, entry)
