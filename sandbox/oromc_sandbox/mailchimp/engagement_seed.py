"""Seeding the engagement side: sent campaigns with engagement, one still arriving, a draft, the
e-commerce store and orders, the automations. Deterministic from the sandbox seed; serving never
calls this (a loaded dump or an unseeded store starts from `engagement.engagement_of`)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from .automations import seed_automations
from .campaigns import (
    DAY,
    HARD_BOUNCE,
    HOUR,
    OPEN,
    UNSUB,
    Campaign,
    EngagementProfile,
    new_settings,
)
from .ecommerce_seed import seed_orders, seed_store
from .engagement import EngagementState, attach

SEEDED_CAMPAIGNS = (
    # (days before now, title, subject, open rate)
    (118, "Spring catalogue", "Our spring catalogue is here", 0.34),
    (89, "Trade prices update", "New trade prices from next month", 0.29),
    (61, "Summer clearance", "Summer clearance: up to 40% off", 0.38),
    (33, "New in: workwear", "New in: workwear for your team", 0.31),
    (15, "Autumn restock", "Autumn restock reminder", 0.27),
)


RECENT_HOURS = 6  # the seeded campaign whose engagement keeps arriving


def seed_engagement(store: Any, options: Any, clock: Any) -> EngagementState:
    """Sent campaigns with visible engagement, one still arriving, a draft, an e-commerce store.

    Deterministic from `options.seed`; scales with the audience (every subscribed member receives
    each campaign).
    """
    seed = int(getattr(options, "seed", 42))
    state = attach(store, EngagementState(store, seed))
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
    seed_store(state.ecommerce, store, list_id, now, rng)
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
    seed_orders(state.ecommerce, state, store, now, rng)
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
