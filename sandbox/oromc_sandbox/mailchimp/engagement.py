"""Engagement over time: the account's campaigns, their event timelines, seeding and routes.

`EngagementState` lives in `MailchimpStore.engagement`. Sending a campaign generates its events
(deterministic from the sandbox seed and the campaign id); `sync()` applies what the clock has
reached since the last call — hard bounces clean the member, unsubscribes unsubscribe them, with
`last_changed` at the event time. `MailchimpStore.sync_engagement()` calls it before every API
request (and the handlers here call it too), so no read sees a stale member or report.
Campaign handlers live in `campaigns.py`, report handlers below, e-commerce in `ecommerce.py`.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from . import ecommerce
from .automations import AutomationState, seed_automations
from .campaigns import (
    ACTIONS,
    CLICK,
    DAY,
    ENGAGEMENT_KINDS,
    HARD_BOUNCE,
    HOUR,
    MAX_CLICKS_PER_MEMBER,
    MAX_OPENS_PER_MEMBER,
    OPEN,
    REPORT_TYPE,
    SOFT_BOUNCE,
    UNSUB,
    UNSUB_REASONS,
    Aggregates,
    Campaign,
    CampaignEvents,
    EngagementProfile,
    engagement,
    find_campaign,
    generate_events,
    list_info,
    new_settings,
    rates,
    select_sent,
    sort_params,
)
from .common import (
    Ctx,
    check_enum,
    collection_links,
    collection_page,
    format_epoch,
    links,
    mc_endpoint,
    paginate,
    parse_ts,
    parse_ts_param,
    short_id,
    subscriber_hash,
)
from .exceptions import ResourceNotFoundError

SEEDED_CAMPAIGNS = (
    # (days before now, title, subject, open rate)
    (118, "Spring catalogue", "Our spring catalogue is here", 0.34),
    (89, "Trade prices update", "New trade prices from next month", 0.29),
    (61, "Summer clearance", "Summer clearance: up to 40% off", 0.38),
    (33, "New in: workwear", "New in: workwear for your team", 0.31),
    (15, "Autumn restock", "Autumn restock reminder", 0.27),
)
RECENT_HOURS = 6  # the seeded campaign whose engagement keeps arriving
LINK_PATHS = ("/", "/catalog/new", "/catalog/sale", "/account/orders", "/contact")


class EngagementState:
    """Campaigns of the account plus the e-commerce state; applies due events lazily."""

    def __init__(self, store: Any, seed: int) -> None:
        self.store = store
        self.seed = seed
        self.campaigns: dict[str, Campaign] = {}
        self.applied_until: float = 0.0  # events up to here have been applied to members
        self.read_now: float = 0.0  # the clock at the last sync: what reads treat as "now"
        self.record_activity = True
        self.next_web_id = 4_000_001
        self.ecommerce = ecommerce.EcommerceState()
        self.automations = AutomationState()

    # ------------------------------------------------------------------ clock

    def now(self) -> float:
        now: datetime = self.store.clock.now()
        return now.timestamp()

    def sync(self, now: float | None = None) -> float:
        """Apply every event due up to `now` (default: the sandbox clock); returns `now`."""
        until = self.now() if now is None else now
        self.read_now = until
        if until <= self.applied_until:
            return until
        since = self.applied_until
        self.automations.run(self, since, until)
        for campaign in self.campaigns.values():
            events = campaign.events
            if events is None:
                continue
            lo = events.after(since)
            hi = events.visible(until)
            if lo >= hi:
                continue
            if self.record_activity:
                self._record(campaign, lo, hi)
            status = events.status_events
            for pos in range(bisect_left(status, lo), bisect_left(status, hi)):
                self._apply_status(campaign, status[pos])
        self.applied_until = until
        return until

    def _apply_status(self, campaign: Campaign, e: int) -> None:
        events = campaign.events
        assert events is not None
        hash_ = campaign.recipients[events.who[e]]
        rec = self.store.get_member(campaign.list_id, hash_)
        if rec is None or rec["status"] != "subscribed":
            return
        if events.kind[e] == HARD_BOUNCE:
            self.store.set_member_status(
                campaign.list_id,
                hash_,
                "cleaned",
                events.ts[e],
                reason="hard bounce",
                source="bounce",
            )
        else:
            self.store.set_member_status(
                campaign.list_id,
                hash_,
                "unsubscribed",
                events.ts[e],
                reason=unsub_reason(campaign, e),
                source="user",
            )

    def _record(self, campaign: Campaign, lo: int, hi: int) -> None:
        events = campaign.events
        assert events is not None
        title = campaign.settings.get("title") or campaign.settings.get("subject_line") or ""
        for e in range(lo, hi):
            kind = events.kind[e]
            entry: dict[str, Any] = {
                "action": ACTIONS[kind],
                "timestamp": format_epoch(events.ts[e]),
                "campaign_id": campaign.id,
                "title": title,
            }
            if kind == CLICK:
                entry["url"] = campaign.urls[events.url[e]]
            elif kind in (HARD_BOUNCE, SOFT_BOUNCE):
                entry["type"] = "hard" if kind == HARD_BOUNCE else "soft"
            self.store.add_member_activity(
                campaign.list_id, campaign.recipients[events.who[e]], entry
            )

    # ------------------------------------------------------------------ campaigns

    def new_campaign(
        self, type_: str, list_id: str, at: float, settings: dict[str, Any]
    ) -> Campaign:
        """Create a draft (`status: save`)."""
        cid = short_id("campaign", self.seed, self.next_web_id)
        campaign = Campaign(
            id=cid,
            web_id=self.next_web_id,
            type=type_,
            list_id=list_id,
            create_time=float(int(at)),
            settings=settings,
            tracking={
                "opens": True,
                "html_clicks": True,
                "text_clicks": False,
                "goal_tracking": False,
                "ecomm360": True,
                "google_analytics": "",
                "clicktale": "",
                "salesforce": {"campaign": False, "notes": False},
                "capsule": {"notes": False},
            },
        )
        self.next_web_id += 1
        self.campaigns[cid] = campaign
        return campaign

    def get(self, campaign_id: str) -> Campaign | None:
        return self.campaigns.get(campaign_id)

    def send(self, campaign: Campaign, at: float, profile: EngagementProfile | None = None) -> None:
        """Send to the audience's subscribed members at `at` and schedule the engagement."""
        segment = self.segment_members(campaign)
        recipients = [
            (m["id"], m["email_address"])
            for m in self.store.iter_members(campaign.list_id)
            if m["status"] == "subscribed" and (segment is None or m["id"] in segment)
        ]
        campaign.recipients = [r[0] for r in recipients]
        campaign.emails = [r[1] for r in recipients]
        campaign.status = "sent"
        campaign.send_time = float(int(at))
        if not campaign.urls:
            domain = self.ecommerce.domain()
            campaign.urls = [
                f"https://{domain}{p}?utm_campaign={campaign.id}" for p in LINK_PATHS[:4]
            ]
        if profile is not None:
            campaign.profile = profile
        rng = random.Random(f"{self.seed}:{campaign.id}")
        campaign.events = generate_events(
            len(campaign.recipients), len(campaign.urls), campaign.send_time, rng, campaign.profile
        )

    def segment_members(self, campaign: Campaign) -> set[str] | None:
        """Member hashes of the campaign's static segment (tag); None = the whole audience.

        Saved segments with conditions are not evaluated: they send to the whole audience.
        """
        sid = campaign.segment_opts.get("saved_segment_id")
        if not sid:
            return None
        audience = self.store.audiences.get(campaign.list_id)
        segment = audience.segments.get(int(sid)) if audience is not None else None
        if segment is None or segment.get("type") != "static":
            return None
        members: set[str] = segment["members"]
        return members

    def inject(self, campaign: Campaign, who: int, kind: int, at: float, url: int = -1) -> None:
        """Add one event (control route). A future event is applied by the `sync()` that reaches
        it; one at or before the last sync is applied at once (with its own timestamp)."""
        events = campaign.events
        assert events is not None
        e = events.append(float(int(at)), who, kind, url)
        if events.ts[e] <= self.applied_until:
            if self.record_activity:
                self._record(campaign, e, e + 1)
            if kind in (HARD_BOUNCE, UNSUB):
                self._apply_status(campaign, e)

    def list_stats(self, list_id: str) -> dict[str, Any]:
        """Hook for the audience's `stats`: campaign counts and average rates (percentages).

        Campaigns only: automation emails (always `sending`) are not counted."""
        sent = [c for c in self.campaigns.values() if c.status == "sent" and c.list_id == list_id]
        if not sent:
            return {}
        now = self.now()
        opens = clicks = delivered = 0
        for c in sent:
            assert c.events is not None
            agg = c.events.aggregates(now)
            delivered += len(c.recipients) - agg.hard_bounces - agg.soft_bounces
            opens += agg.unique_opens
            clicks += agg.unique_subscriber_clicks
        last = max(c.send_time or 0.0 for c in sent)
        return {
            "campaign_count": len(sent),
            "campaign_last_sent": format_epoch(last),
            "open_rate": round(100.0 * opens / delivered, 2) if delivered else 0,
            "click_rate": round(100.0 * clicks / delivered, 2) if delivered else 0,
        }

    # ------------------------------------------------------------------ persistence

    def dump(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "applied_until": self.applied_until,
            "next_web_id": self.next_web_id,
            "campaigns": [c.dump() for c in self.campaigns.values()],
            "ecommerce": self.ecommerce.dump(),
            "automations": self.automations.dump(),
        }

    @classmethod
    def load(cls, store: Any, data: dict[str, Any]) -> EngagementState:
        state = cls(store, int(data["seed"]))
        state.applied_until = float(data["applied_until"])
        state.next_web_id = int(data["next_web_id"])
        for raw in data["campaigns"]:
            campaign = Campaign.from_dump(raw)
            state.campaigns[campaign.id] = campaign
        state.ecommerce = ecommerce.EcommerceState.load(data["ecommerce"])
        state.automations = AutomationState.load(data.get("automations"))
        return state


def unsub_reason(campaign: Campaign, e: int) -> str:
    """Deterministic reason for the unsubscribe event `e`."""
    events = campaign.events
    assert events is not None
    return UNSUB_REASONS[(events.who[e] * 7 + int(events.ts[e])) % len(UNSUB_REASONS)]


def engagement_of(store: Any) -> EngagementState:
    """The store's engagement state (created empty when the store was built without seeding)."""
    state = store.engagement
    if not isinstance(state, EngagementState):
        state = _attach(store, EngagementState(store, int(getattr(store.options, "seed", 42))))
    return state


# --------------------------------------------------------------------------- seeding


def seed_engagement(store: Any, options: Any, clock: Any) -> EngagementState:
    """Sent campaigns with visible engagement, one still arriving, a draft, an e-commerce store.

    Deterministic from `options.seed`; scales with the audience (every subscribed member receives
    each campaign).
    """
    seed = int(getattr(options, "seed", 42))
    state = _attach(store, EngagementState(store, seed))
    if not store.lists:
        return state
    list_id = store.default_list_id()
    now_dt: datetime = clock.now()
    now = now_dt.timestamp()
    state.record_activity = False
    state.applied_until = 0.0
    rng = random.Random(f"engagement:{seed}")
    list_doc = store.lists[list_id]
    defaults = list_doc.get("campaign_defaults") or {}
    state.ecommerce.seed_store(store, list_id, now, rng)
    for days, title, subject, open_rate in SEEDED_CAMPAIGNS:
        send_dt = (now_dt - timedelta(days=days)).replace(
            hour=9, minute=30, second=0, microsecond=0
        )
        _seed_one(state, list_id, defaults, title, subject, send_dt.timestamp(), open_rate, rng)
    recent_at = float(int(now - RECENT_HOURS * HOUR))
    recent = _seed_one(
        state, list_id, defaults, "Weekly deals", "This week's deals for you", recent_at, 0.33, rng
    )
    _ensure_late_status_events(state, recent, now)
    state.new_campaign(
        "regular",
        list_id,
        now - DAY,
        _settings(defaults, "Holiday preview (draft)", "A first look at our holiday range"),
    )
    state.sync(now)
    state.record_activity = True
    state.ecommerce.seed_orders(state, store, now, rng)
    seed_automations(state, list_id, now)
    return state


def _settings(defaults: dict[str, Any], title: str, subject: str) -> dict[str, Any]:
    return new_settings(
        title=title,
        subject_line=subject,
        from_name=defaults.get("from_name") or "Sandbox Shop",
        reply_to=defaults.get("from_email") or "news@shop.example.com",
        to_name="*|FNAME|*",
        drag_and_drop=True,
    )


def _seed_one(
    state: EngagementState,
    list_id: str,
    defaults: dict[str, Any],
    title: str,
    subject: str,
    send_at: float,
    open_rate: float,
    rng: random.Random,
) -> Campaign:
    # Statuses as they were at send time: apply earlier campaigns' events up to now.
    state.sync(send_at)
    campaign = state.new_campaign(
        "regular", list_id, send_at - 2 * DAY, _settings(defaults, title, subject)
    )
    profile = EngagementProfile(open_rate=open_rate, click_given_open=0.18 + rng.random() * 0.1)
    state.send(campaign, send_at, profile)
    return campaign


def _ensure_late_status_events(state: EngagementState, campaign: Campaign, now: float) -> None:
    """Make sure the still-arriving campaign has a hard bounce and an unsubscribe in the next day.

    Small audiences would otherwise often get none, and consumers' tests want to see member
    statuses change as the clock moves. The chosen recipients are deterministic.
    """
    events = campaign.events
    if events is None or events.n < 4:
        return
    future = range(events.visible(now), events.visible(now + DAY))
    kinds = {events.kind[e] for e in future}
    busy = set(events.who)
    quiet = [w for w in range(events.n) if w not in busy]
    if len(quiet) < 2:
        return
    if HARD_BOUNCE not in kinds:
        state.inject(campaign, quiet[len(quiet) // 3], HARD_BOUNCE, now + 2 * HOUR)
    if UNSUB not in kinds:
        who = quiet[(2 * len(quiet)) // 3]
        state.inject(campaign, who, OPEN, now + 20 * HOUR)
        state.inject(campaign, who, UNSUB, now + 20 * HOUR + 45)


# --------------------------------------------------------------------------- loading


def load_engagement(
    store: Any, data: dict[str, Any] | None, options: Any, clock: Any
) -> EngagementState:
    """Restore the engagement saved in a store dump (an empty state when there is none)."""
    del options, clock
    state = (
        EngagementState.load(store, data)
        if data
        else EngagementState(store, int(store.options.seed))
    )
    return _attach(store, state)


def _attach(store: Any, state: EngagementState) -> EngagementState:
    """Install `state` as the store's engagement and contribute campaign stats to list stats."""
    store.engagement = state
    store.list_stats_hooks.append(state.list_stats)
    store.subscribe_hooks.append(state.automations.note_subscribe)
    return state


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


# "METHOD /route/template" -> (base_ms, per_item_ms); merged into the Mailchimp LATENCY_PROFILE.
# Estimates (Mailchimp publishes none): report reads are heavier than member reads, email-activity
# pages cost per row; e-commerce writes are moderately slow.
ENGAGEMENT_LATENCY: dict[str, tuple[float, float]] = {
    "GET /3.0/campaigns": (220.0, 3.0),
    "GET /3.0/campaigns/{campaign_id}": (170.0, 0.0),
    "POST /3.0/campaigns": (350.0, 0.0),
    "PATCH /3.0/campaigns/{campaign_id}": (300.0, 0.0),
    "DELETE /3.0/campaigns/{campaign_id}": (300.0, 0.0),
    "POST /3.0/campaigns/{campaign_id}/actions/send": (600.0, 0.0),
    "GET /3.0/reports": (300.0, 5.0),
    "GET /3.0/reports/{campaign_id}": (250.0, 0.0),
    "GET /3.0/reports/{campaign_id}/email-activity": (300.0, 0.8),
    "GET /3.0/reports/{campaign_id}/email-activity/{subscriber_hash}": (180.0, 0.0),
    "GET /3.0/reports/{campaign_id}/open-details": (280.0, 0.6),
    "GET /3.0/reports/{campaign_id}/click-details": (220.0, 1.0),
    "GET /3.0/reports/{campaign_id}/click-details/{link_id}/members": (250.0, 0.5),
    "GET /3.0/reports/{campaign_id}/unsubscribed": (220.0, 0.5),
    "GET /3.0/reports/{campaign_id}/sent-to": (280.0, 0.6),
    "GET /3.0/reports/{campaign_id}/ecommerce-product-activity": (250.0, 1.0),
    "GET /3.0/ecommerce/stores": (180.0, 1.0),
    "GET /3.0/ecommerce/orders": (260.0, 1.5),
    "GET /3.0/ecommerce/stores/{store_id}/orders": (250.0, 1.5),
    "POST /3.0/ecommerce/stores/{store_id}/orders": (320.0, 0.0),
    "GET /3.0/ecommerce/stores/{store_id}/customers": (220.0, 1.0),
    "PUT /3.0/ecommerce/stores/{store_id}/customers/{customer_id}": (280.0, 0.0),
    "GET /3.0/ecommerce/stores/{store_id}/products": (220.0, 1.5),
    "POST /3.0/ecommerce/stores/{store_id}/products": (300.0, 0.0),
    "GET /3.0/ecommerce/stores/{store_id}/carts": (220.0, 1.0),
    "POST /3.0/ecommerce/stores/{store_id}/carts": (300.0, 0.0),
    "GET /3.0/automations": (200.0, 3.0),
    "GET /3.0/automations/{workflow_id}/emails": (200.0, 3.0),
    "POST /3.0/automations/{workflow_id}/emails/{workflow_email_id}/queue": (280.0, 0.0),
}
LATENCY_PROFILE = ENGAGEMENT_LATENCY
