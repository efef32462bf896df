"""Engagement over time (model, no HTTP): the account's campaigns and their event timelines.

`EngagementState` lives in `MailchimpStore.engagement`. Sending a campaign generates its events
(deterministic from the sandbox seed and the campaign id); `sync()` applies what the clock has
reached since the last call — hard bounces clean the member, unsubscribes unsubscribe them, with
`last_changed` at the event time. `MailchimpStore.sync_engagement()` calls it before every API
request (and `engagement(ctx)`, the handlers' accessor, calls it too), so no read sees a stale member
or report. Seeding is `engagement_seed.py`; the handlers are `responses/campaigns.py`,
`responses/reports.py`, `responses/automations.py` and `responses/ecommerce.py`.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from datetime import datetime
from typing import Any

from .automations import AutomationState
from .campaigns import (
    ACTIONS,
    CLICK,
    HARD_BOUNCE,
    SOFT_BOUNCE,
    UNSUB,
    UNSUB_REASONS,
    Campaign,
    EngagementProfile,
    generate_events,
)
from .models.ecommerce import EcommerceState
from .values import format_epoch, short_id

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
        self.ecommerce = EcommerceState()
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
        state.ecommerce = EcommerceState.load(data["ecommerce"])
        state.automations = AutomationState.load(data.get("automations"))
        return state


def unsub_reason(campaign: Campaign, e: int) -> str:
    """Deterministic reason for the unsubscribe event `e`."""
    events = campaign.events
    assert events is not None
    return UNSUB_REASONS[(events.who[e] * 7 + int(events.ts[e])) % len(UNSUB_REASONS)]


def engagement(ctx: Any) -> EngagementState:
    """The engagement state of a handler's store (`ctx.store`) with every due event applied."""
    state = engagement_of(ctx.store)
    state.sync()
    return state


def engagement_of(store: Any) -> EngagementState:
    """The store's engagement state (created empty when the store was built without seeding)."""
    state = store.engagement
    if not isinstance(state, EngagementState):
        state = attach(store, EngagementState(store, int(getattr(store.options, "seed", 42))))
    return state


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
    return attach(store, state)


def attach(store: Any, state: EngagementState) -> EngagementState:
    """Install `state` as the store's engagement and contribute campaign stats to list stats."""
    store.engagement = state
    store.list_stats_hooks.append(state.list_stats)
    store.subscribe_hooks.append(state.automations.note_subscribe)
    return state
