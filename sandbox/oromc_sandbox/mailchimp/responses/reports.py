"""`/reports` handlers and the sandbox's engagement control route.

Reports read the campaign event logs of `..engagement` (`EngagementState`) and `..campaigns`
(`CampaignEvents`, `Aggregates`): a page costs O(page). `POST /_sandbox/mailchimp/campaigns/{id}/engage`
(not Mailchimp) makes recipients of a sent campaign open, click or unsubscribe now.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..campaigns import (
    ACTIONS,
    CLICK,
    ENGAGEMENT_KINDS,
    HARD_BOUNCE,
    HOUR,
    MAX_CLICKS_PER_MEMBER,
    MAX_OPENS_PER_MEMBER,
    OPEN,
    REPORT_TYPE,
    SOFT_BOUNCE,
    UNSUB,
    Aggregates,
    Campaign,
    CampaignEvents,
    find_campaign,
    list_info,
    rates,
)
from ..common import (
    Ctx,
    collection_links,
    collection_page,
    links,
    mc_endpoint,
    paginate,
    parse_ts_param,
)
from ..engagement import EngagementState, engagement, engagement_of, unsub_reason
from ..exceptions import ResourceNotFoundError
from ..values import check_enum, format_epoch, parse_ts, short_id, subscriber_hash
from .campaigns import select_sent, sort_params

# --------------------------------------------------------------------------- report documents


def _campaign_for_report(ctx: Ctx) -> tuple[EngagementState, Campaign, CampaignEvents]:
    state = engagement(ctx)
    campaign = find_campaign(state, ctx.request.path_params["campaign_id"])
    if not campaign.is_sent or campaign.events is None:
        raise ResourceNotFoundError()
    return state, campaign, campaign.events


def _unsent_page(
    request: Request, ctx: Ctx, sub: str, key: str, extra: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """An empty page of `/reports/{id}/{sub}` when the campaign exists but was never sent.

    Clients that read every campaign's report collections work against real accounts with drafts
    (Airbyte's source-mailchimp `EmailActivity.stream_slices` requests email activity for every
    campaign of `/campaigns`, no status filter, and fails on HTTP errors), so the real API answers
    these with an empty collection, not 404. None for a sent campaign; an
    unknown id still raises 404.
    """
    campaign = find_campaign(engagement(ctx), ctx.request.path_params["campaign_id"])
    if campaign.is_sent and campaign.events is not None:
        return None
    return _report_page(request, ctx, campaign, sub, key, [], 0, extra=extra)


def _recipient(ctx: Ctx) -> tuple[EngagementState, Campaign, CampaignEvents, Rows, int]:
    """Report, rows and recipient index of a `/reports/{id}/.../{subscriber_hash}` URL."""
    state, campaign, events = _campaign_for_report(ctx)
    rows = Rows(state, campaign)
    return state, campaign, events, rows, rows.who_of(ctx.request.path_params["subscriber_hash"])


def _report_page(
    request: Request,
    ctx: Ctx,
    campaign: Campaign,
    sub: str,
    key: str,
    rows: list[dict[str, Any]],
    total: int,
    *,
    parent: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A page of `/reports/{id}/{sub}`: each row gets its `self` link, keyed by `email_id`."""
    path = f"/reports/{campaign.id}/{sub}"
    for row in rows:
        row["_links"] = links(request, ("self", f"{path}/{row['email_id']}"))
    ctx.items = len(rows)
    return {
        key: rows,
        "campaign_id": campaign.id,
        **(extra or {}),
        "total_items": total,
        "_links": collection_links(request, path, parent or f"/reports/{campaign.id}"),
    }


def _since(request: Request) -> float | None:
    value = parse_ts_param(request, "since")
    return value.timestamp() if value is not None else None


class Rows:
    """Per-recipient row helpers for one campaign (member data read at request time)."""

    def __init__(self, state: EngagementState, campaign: Campaign) -> None:
        self.store = state.store
        self.campaign = campaign
        self.list_name, self.active = list_info(state.store, campaign.list_id)

    def member(self, who: int) -> dict[str, Any] | None:
        rec: dict[str, Any] | None = self.store.get_member(
            self.campaign.list_id, self.campaign.recipients[who]
        )
        return rec

    def base(self, who: int) -> dict[str, Any]:
        c = self.campaign
        return {"campaign_id": c.id, "list_id": c.list_id, "list_is_active": self.active}

    def person(self, who: int) -> dict[str, Any]:
        """email_id, email_address, merge_fields, vip, contact_status of recipient `who`."""
        rec = self.member(who)
        return {
            "email_id": self.campaign.recipients[who],
            "email_address": rec["email_address"] if rec else self.campaign.emails[who],
            "merge_fields": dict(rec["merge_fields"]) if rec else {},
            "vip": bool(rec["vip"]) if rec else False,
            "contact_status": _contact_status(rec),
        }

    def contact(self, who: int) -> dict[str, Any]:
        """email_id, email_address, merge_fields, vip of recipient `who`."""
        person = self.person(who)
        del person["contact_status"]
        return person

    def who_of(self, key: str) -> int:
        """Recipient index for a subscriber hash or email in the path (404 when not a recipient)."""
        low = key.strip().lower()
        who = self.campaign.recipient_index(subscriber_hash(low) if "@" in low else low)
        if who is None:
            raise ResourceNotFoundError()
        return who


def _contact_status(rec: dict[str, Any] | None) -> str:
    if rec is None:
        return "deleted"
    status = str(rec["status"])
    return "non-subscribed" if status == "pending" else status


def _activity(campaign: Campaign, events: CampaignEvents, idx: list[int]) -> list[dict[str, Any]]:
    out = []
    for e in idx:
        kind = events.kind[e]
        if kind == UNSUB:
            continue
        entry: dict[str, Any] = {"action": ACTIONS[kind], "timestamp": format_epoch(events.ts[e])}
        if kind == CLICK:
            entry["url"] = campaign.urls[events.url[e]]
        elif kind in (HARD_BOUNCE, SOFT_BOUNCE):
            entry["type"] = "hard" if kind == HARD_BOUNCE else "soft"
        entry["ip"] = _ip(events.who[e], e)
        out.append(entry)
    return out


def _ip(who: int, e: int) -> str:
    return f"198.51.100.{(who * 31 + e) % 254 + 1}"


def report_doc(
    request: Request, state: EngagementState, campaign: Campaign, now: float
) -> dict[str, Any]:
    """The Campaign Report document (reference §10.2), consistent with the event log."""
    events = campaign.events
    assert events is not None
    agg = events.aggregates(now)
    open_rate, click_rate = rates(campaign, agg)
    list_name, active = list_info(state.store, campaign.list_id)
    send = campaign.send_time or 0.0
    totals = state.ecommerce.campaign_totals(campaign.id)
    sent = len(campaign.recipients)
    timeseries = [
        {
            "timestamp": format_epoch(send + h * HOUR),
            "emails_sent": sent if h == 0 else 0,
            "unique_opens": agg.first_open_hour[h],
            "recipients_clicks": agg.first_click_hour[h],
        }
        for h in range(24)
        if send + h * HOUR <= now
    ]
    cid = campaign.id
    return {
        "id": cid,
        "campaign_title": campaign.settings.get("title", ""),
        "type": REPORT_TYPE.get(campaign.type, campaign.type),
        "list_id": campaign.list_id,
        "list_is_active": active,
        "list_name": list_name,
        "subject_line": campaign.settings.get("subject_line", ""),
        "preview_text": campaign.settings.get("preview_text", ""),
        "emails_sent": sent,
        "abuse_reports": 0,
        "unsubscribed": agg.unsubscribed,
        "send_time": format_epoch(send),
        "rss_last_send": "",
        "bounces": {
            "hard_bounces": agg.hard_bounces,
            "soft_bounces": agg.soft_bounces,
            "syntax_errors": 0,
        },
        "forwards": {"forwards_count": 0, "forwards_opens": 0},
        "opens": {
            "opens_total": agg.opens_total,
            "proxy_excluded_opens": agg.opens_total,
            "unique_opens": agg.unique_opens,
            "proxy_excluded_unique_opens": agg.unique_opens,
            "open_rate": open_rate,
            "proxy_excluded_open_rate": open_rate,
            "last_open": format_epoch(agg.last_open) if agg.last_open else "",
        },
        "clicks": {
            "clicks_total": agg.clicks_total,
            "unique_clicks": agg.unique_clicks,
            "unique_subscriber_clicks": agg.unique_subscriber_clicks,
            "click_rate": click_rate,
            "last_click": format_epoch(agg.last_click) if agg.last_click else "",
        },
        "facebook_likes": {"recipient_likes": 0, "unique_likes": 0, "facebook_likes": 0},
        "industry_stats": {
            "type": "eCommerce",
            "open_rate": 0.153,
            "click_rate": 0.021,
            "bounce_rate": 0.004,
            "unopen_rate": 0.847,
            "unsub_rate": 0.002,
            "abuse_rate": 0.0001,
        },
        "list_stats": {
            "sub_rate": 0,
            "unsub_rate": round(agg.unsubscribed / sent, 4) if sent else 0,
            "open_rate": round(100 * open_rate, 2),
            "click_rate": round(100 * click_rate, 2),
        },
        "timewarp": [],
        "timeseries": timeseries,
        "share_report": {
            "share_url": f"https://{state.store.dc}.campaign-archive.com/report?id={cid}",
            "share_password": "",
        },
        "ecommerce": totals,
        "delivery_status": {
            "enabled": True,
            "can_cancel": False,
            "status": "delivered",
            "emails_sent": sent,
            "emails_canceled": 0,
        },
        "_links": links(
            request,
            ("parent", "/reports"),
            ("self", f"/reports/{cid}"),
            ("email-activity", f"/reports/{cid}/email-activity"),
            ("open-details", f"/reports/{cid}/open-details"),
            ("click-details", f"/reports/{cid}/click-details"),
            ("unsubscribed", f"/reports/{cid}/unsubscribed"),
            ("sent-to", f"/reports/{cid}/sent-to"),
            ("ecommerce-product-activity", f"/reports/{cid}/ecommerce-product-activity"),
        ),
    }


# --------------------------------------------------------------------------- report handlers


@mc_endpoint
async def get_reports(request: Request, ctx: Ctx) -> dict[str, Any]:
    state = engagement(ctx)
    sent = [c for c in state.campaigns.values() if c.is_sent and c.events is not None]
    sent = select_sent(request, sent, sort_allowed=("send_time",))
    now = state.read_now
    return collection_page(
        request, ctx, "reports", sent, lambda c: report_doc(request, state, c, now), "/reports"
    )


@mc_endpoint(paged=False)
async def get_report(request: Request, ctx: Ctx) -> dict[str, Any]:
    state, campaign, _ = _campaign_for_report(ctx)
    ctx.items = 1
    return report_doc(request, state, campaign, state.read_now)


def _activity_row(
    rows: Rows, campaign: Campaign, events: CampaignEvents, who: int, since: float | None, hi: int
) -> dict[str, Any]:
    person = rows.person(who)
    row = rows.base(who)
    row["email_id"] = person["email_id"]
    row["email_address"] = person["email_address"]
    row["activity"] = _activity(campaign, events, events.events_of(who, since, hi))
    return row


@mc_endpoint
async def get_email_activity(request: Request, ctx: Ctx) -> dict[str, Any]:
    if (unsent := _unsent_page(request, ctx, "email-activity", "emails")) is not None:
        return unsent
    state, campaign, events = _campaign_for_report(ctx)
    since = _since(request)
    hi = events.visible(state.read_now)
    if since is None:
        total = events.n
        whos: Sequence[int] = range(ctx.offset, min(total, ctx.offset + ctx.count))
    else:
        window = events.recipients_in_window(events.after(since), hi, ENGAGEMENT_KINDS)
        total = len(window)
        whos = window[ctx.offset : ctx.offset + ctx.count]
    rows = Rows(state, campaign)
    emails = [_activity_row(rows, campaign, events, who, since, hi) for who in whos]
    return _report_page(request, ctx, campaign, "email-activity", "emails", emails, total)


@mc_endpoint(paged=False)
async def get_email_activity_member(request: Request, ctx: Ctx) -> dict[str, Any]:
    state, campaign, events, rows, who = _recipient(ctx)
    row = _activity_row(
        rows, campaign, events, who, _since(request), events.visible(state.read_now)
    )
    row["_links"] = links(request, ("parent", f"/reports/{campaign.id}/email-activity"))
    ctx.items = 1
    return row


def _open_row(
    rows: Rows, events: CampaignEvents, who: int, since: float | None, hi: int
) -> dict[str, Any]:
    opens = [
        {"timestamp": format_epoch(events.ts[e])}
        for e in events.events_of(who, since, hi)
        if events.kind[e] == OPEN
    ]
    return {**rows.base(who), **rows.person(who), "opens_count": len(opens), "opens": opens}


@mc_endpoint
async def get_open_details(request: Request, ctx: Ctx) -> dict[str, Any]:
    if (
        unsent := _unsent_page(request, ctx, "open-details", "members", extra={"total_opens": 0})
    ) is not None:
        return unsent
    state, campaign, events = _campaign_for_report(ctx)
    since = _since(request)
    hi = events.visible(state.read_now)
    lo = 0 if since is None else events.after(since)
    whos = events.recipients_in_window(lo, hi, frozenset({OPEN}))
    total_opens = (
        sum(1 for e in range(lo, hi) if events.kind[e] == OPEN)
        if since is not None
        else events.aggregates(state.read_now).opens_total
    )
    field_, desc = sort_params(request, ("opens_count",))
    if field_ == "opens_count":
        counts = events.aggregates(state.read_now).open_count
        if since is None:
            whos = sorted(whos, key=lambda w: counts[w], reverse=desc)
        else:
            whos = sorted(whos, key=lambda w: len(events.events_of(w, since, hi)), reverse=desc)
    elif desc:
        whos = list(reversed(whos))
    rows = Rows(state, campaign)
    page = whos[ctx.offset : ctx.offset + ctx.count]
    members = [_open_row(rows, events, who, since, hi) for who in page]
    return _report_page(
        request,
        ctx,
        campaign,
        "open-details",
        "members",
        members,
        len(whos),
        extra={"total_opens": total_opens},
    )


@mc_endpoint(paged=False)
async def get_open_details_member(request: Request, ctx: Ctx) -> dict[str, Any]:
    state, campaign, events, rows, who = _recipient(ctx)
    row = _open_row(rows, events, who, None, events.visible(state.read_now))
    if not row["opens_count"]:
        raise ResourceNotFoundError()
    ctx.items = 1
    row["_links"] = links(request, ("parent", f"/reports/{campaign.id}/open-details"))
    return row


def link_id(campaign: Campaign, url_index: int) -> str:
    return short_id("link", campaign.id, url_index)


def _url_index(campaign: Campaign, link: str) -> int:
    for i in range(len(campaign.urls)):
        if link_id(campaign, i) == link:
            return i
    raise ResourceNotFoundError()


def _url_doc(request: Request, campaign: Campaign, agg: Aggregates, u: int) -> dict[str, Any]:
    lid = link_id(campaign, u)
    return {
        "id": lid,
        "url": campaign.urls[u],
        "total_clicks": agg.url_total[u],
        "click_percentage": agg.url_total[u] / agg.clicks_total if agg.clicks_total else 0,
        "unique_clicks": agg.url_unique[u],
        "unique_click_percentage": agg.url_unique[u] / agg.unique_clicks
        if agg.unique_clicks
        else 0,
        "last_click": format_epoch(agg.url_last[u]) if agg.url_last[u] else "",
        "ab_split": {
            "a": {"click_percentage_a": 0, "unique_click_percentage_a": 0},
            "b": {"click_percentage_b": 0, "unique_click_percentage_b": 0},
        },
        "campaign_id": campaign.id,
        "_links": links(
            request,
            ("self", f"/reports/{campaign.id}/click-details/{lid}"),
            ("members", f"/reports/{campaign.id}/click-details/{lid}/members"),
        ),
    }


@mc_endpoint
async def get_click_details(request: Request, ctx: Ctx) -> dict[str, Any]:
    if (unsent := _unsent_page(request, ctx, "click-details", "urls_clicked")) is not None:
        return unsent
    state, campaign, events = _campaign_for_report(ctx)
    agg = events.aggregates(state.read_now)
    order = list(range(len(campaign.urls)))
    field_, desc = sort_params(request, ("total_clicks", "unique_clicks"))
    if field_ == "total_clicks":
        order.sort(key=lambda u: agg.url_total[u], reverse=desc)
    elif field_ == "unique_clicks":
        order.sort(key=lambda u: agg.url_unique[u], reverse=desc)
    elif desc:
        order.reverse()
    page, total = paginate(order, ctx.count, ctx.offset)
    ctx.items = len(page)
    return {
        "urls_clicked": [_url_doc(request, campaign, agg, u) for u in page],
        "campaign_id": campaign.id,
        "total_items": total,
        "_links": collection_links(
            request, f"/reports/{campaign.id}/click-details", f"/reports/{campaign.id}"
        ),
    }


@mc_endpoint(paged=False)
async def get_click_detail(request: Request, ctx: Ctx) -> dict[str, Any]:
    state, campaign, events = _campaign_for_report(ctx)
    u = _url_index(campaign, request.path_params["link_id"])
    ctx.items = 1
    return _url_doc(request, campaign, events.aggregates(state.read_now), u)


def _clickers(events: CampaignEvents, u: int, hi: int) -> dict[int, int]:
    """recipient -> clicks on url `u` among visible events (recipient order)."""
    counts: dict[int, int] = {}
    for e in range(hi):
        if events.kind[e] == CLICK and events.url[e] == u:
            w = events.who[e]
            counts[w] = counts.get(w, 0) + 1
    return dict(sorted(counts.items()))


def _clicker_row(rows: Rows, campaign: Campaign, who: int, clicks: int, lid: str) -> dict[str, Any]:
    person = rows.person(who)
    status = person.pop("contact_status")
    return {
        **person,
        "clicks": clicks,
        "campaign_id": campaign.id,
        "url_id": lid,
        "list_id": campaign.list_id,
        "list_is_active": rows.active,
        "contact_status": status,
    }


@mc_endpoint
async def get_click_members(request: Request, ctx: Ctx) -> dict[str, Any]:
    state, campaign, events = _campaign_for_report(ctx)
    lid = request.path_params["link_id"]
    u = _url_index(campaign, lid)
    clickers = list(_clickers(events, u, events.visible(state.read_now)).items())
    page, total = paginate(clickers, ctx.count, ctx.offset)
    rows = Rows(state, campaign)
    members = [_clicker_row(rows, campaign, who, clicks, lid) for who, clicks in page]
    return _report_page(
        request,
        ctx,
        campaign,
        f"click-details/{lid}/members",
        "members",
        members,
        total,
        parent=f"/reports/{campaign.id}/click-details/{lid}",
    )


@mc_endpoint(paged=False)
async def get_click_member(request: Request, ctx: Ctx) -> dict[str, Any]:
    state, campaign, events = _campaign_for_report(ctx)
    lid = request.path_params["link_id"]
    u = _url_index(campaign, lid)
    rows = Rows(state, campaign)
    who = rows.who_of(request.path_params["subscriber_hash"])
    clicks = _clickers(events, u, events.visible(state.read_now)).get(who)
    if not clicks:
        raise ResourceNotFoundError()
    ctx.items = 1
    return _clicker_row(rows, campaign, who, clicks, lid)


def _unsub_row(rows: Rows, campaign: Campaign, e: int) -> dict[str, Any]:
    events = campaign.events
    assert events is not None
    who = events.who[e]
    return {
        **rows.contact(who),
        "timestamp": format_epoch(events.ts[e]),
        "reason": unsub_reason(campaign, e),
        **rows.base(who),
    }


@mc_endpoint
async def get_unsubscribed(request: Request, ctx: Ctx) -> dict[str, Any]:
    if (unsent := _unsent_page(request, ctx, "unsubscribed", "unsubscribes")) is not None:
        return unsent
    state, campaign, events = _campaign_for_report(ctx)
    unsubs = events.aggregates(state.read_now).unsub_events
    page, total = paginate(unsubs, ctx.count, ctx.offset)
    rows = Rows(state, campaign)
    out = [_unsub_row(rows, campaign, e) for e in page]
    return _report_page(request, ctx, campaign, "unsubscribed", "unsubscribes", out, total)


@mc_endpoint(paged=False)
async def get_unsubscribed_member(request: Request, ctx: Ctx) -> dict[str, Any]:
    state, campaign, events, rows, who = _recipient(ctx)
    for e in events.aggregates(state.read_now).unsub_events:
        if events.who[e] == who:
            ctx.items = 1
            return _unsub_row(rows, campaign, e)
    raise ResourceNotFoundError()


def _sent_row(
    rows: Rows, campaign: Campaign, events: CampaignEvents, who: int, hi: int
) -> dict[str, Any]:
    mine = events.events_of(who, None, hi)
    opens = [e for e in mine if events.kind[e] == OPEN]
    status = "sent"
    for e in mine:
        if events.kind[e] == HARD_BOUNCE:
            status = "hard"
        elif events.kind[e] == SOFT_BOUNCE and status == "sent":
            status = "soft"
    return {
        **rows.contact(who),
        "status": status,
        "open_count": len(opens),
        "last_open": format_epoch(events.ts[opens[-1]]) if opens else "",
        "absplit_group": "",
        "gmt_offset": 0,
        **rows.base(who),
    }


@mc_endpoint
async def get_sent_to(request: Request, ctx: Ctx) -> dict[str, Any]:
    if (unsent := _unsent_page(request, ctx, "sent-to", "sent_to")) is not None:
        return unsent
    state, campaign, events = _campaign_for_report(ctx)
    hi = events.visible(state.read_now)
    rows = Rows(state, campaign)
    whos = range(ctx.offset, min(events.n, ctx.offset + ctx.count))
    out = [_sent_row(rows, campaign, events, who, hi) for who in whos]
    return _report_page(request, ctx, campaign, "sent-to", "sent_to", out, events.n)


@mc_endpoint(paged=False)
async def get_sent_to_member(request: Request, ctx: Ctx) -> dict[str, Any]:
    state, campaign, events, rows, who = _recipient(ctx)
    ctx.items = 1
    return _sent_row(rows, campaign, events, who, events.visible(state.read_now))


@mc_endpoint
async def get_product_activity(request: Request, ctx: Ctx) -> dict[str, Any]:
    if (unsent := _unsent_page(request, ctx, "ecommerce-product-activity", "products")) is not None:
        return unsent
    state, campaign, _ = _campaign_for_report(ctx)
    products = state.ecommerce.product_activity(campaign.id)
    field_ = request.query_params.get("sort_field") or None
    if field_ is not None:
        check_enum(
            {"sort_field": field_}, "sort_field", ("title", "total_revenue", "total_purchased")
        )
        products.sort(key=lambda p: p[field_], reverse=field_ != "title")
    path = f"/reports/{campaign.id}"
    return collection_page(
        request, ctx, "products", products, lambda p: p, f"{path}/ecommerce-product-activity", path
    )


# --------------------------------------------------------------------------- control: inject engagement

ENGAGE_ACTIONS = {"open": OPEN, "click": CLICK, "unsub": UNSUB, "unsubscribe": UNSUB}


async def engage(request: Request) -> Response:
    """`POST /_sandbox/mailchimp/campaigns/{id}/engage` — make one recipient open/click/bounce/unsub.

    Body: `{"email_address" | "subscriber_hash", "action": open|click|bounce|unsub,
    "type": hard|soft (bounce), "url": <one of the campaign's urls> (click, default the first),
    "at": ISO time (default: now)}`. Not part of Mailchimp: real engagement comes from recipients.
    """
    store = request.app.state.sandbox.mailchimp
    state = engagement_of(store)
    state.sync()

    def bad(detail: str, status: int = 400) -> Response:
        return JSONResponse({"error": detail}, status_code=status)

    campaign = state.get(request.path_params["campaign_id"])
    if campaign is None or campaign.events is None:
        return bad("unknown or unsent campaign", 404)
    try:
        body = await request.json()
    except ValueError:
        return bad("body must be JSON")
    if not isinstance(body, dict):
        return bad("body must be a JSON object")
    key = str(body.get("subscriber_hash") or body.get("email_address") or "").strip().lower()
    who = campaign.recipient_index(subscriber_hash(key) if "@" in key else key)
    if who is None:
        return bad("not a recipient of this campaign", 404)
    action = str(body.get("action", ""))
    url = -1
    if action == "bounce":
        kind = HARD_BOUNCE if body.get("type", "hard") == "hard" else SOFT_BOUNCE
    elif action in ENGAGE_ACTIONS:
        kind = ENGAGE_ACTIONS[action]
    else:
        return bad("action must be open, click, bounce or unsub")
    if kind == CLICK:
        wanted = body.get("url") or campaign.urls[0]
        if wanted not in campaign.urls:
            return bad("url is not a link of this campaign")
        url = campaign.urls.index(wanted)
    now = state.read_now
    at = now
    if body.get("at"):
        try:
            parsed = parse_ts(str(body["at"]))
        except ValueError:
            return bad("at must be an ISO 8601 time")
        at = parsed.timestamp() if parsed else now
    agg = campaign.events.aggregates(now)
    if kind == OPEN and agg.open_count[who] >= MAX_OPENS_PER_MEMBER:
        return bad("open cap reached")
    if kind == CLICK and agg.click_count[who] >= MAX_CLICKS_PER_MEMBER:
        return bad("click cap reached")
    state.inject(campaign, who, kind, at, url)
    return JSONResponse(
        {
            "ok": True,
            "campaign_id": campaign.id,
            "subscriber_hash": campaign.recipients[who],
            "at": format_epoch(at),
        }
    )
