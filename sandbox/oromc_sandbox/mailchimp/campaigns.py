"""Campaigns and their engagement timeline (the data model behind `/campaigns` and `/reports`).

A sent campaign keeps its recipients (member hashes and emails, in send order) and a compact,
time-sorted event log (`CampaignEvents`: parallel arrays of timestamp, recipient index, action and
url). Events are generated once, deterministically, when the campaign is sent; an event is visible
once the sandbox clock has passed its timestamp, so engagement keeps arriving as the clock moves.
Aggregates (report counters, per-recipient open/click counts) are folded incrementally as the
visible prefix grows, so a report or a page of email activity costs O(page), not O(campaign).
"""

from __future__ import annotations

import random
from array import array
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .exceptions import CampaignNotReadyError, FieldError, InvalidActionError, ResourceNotFoundError
from .values import check_enum, check_type, require_keys

if TYPE_CHECKING:
    from .engagement import EngagementState

# Event actions (stored as one signed byte each).
OPEN = 0
CLICK = 1
HARD_BOUNCE = 2
SOFT_BOUNCE = 3
UNSUB = 4
ENGAGEMENT_KINDS = frozenset({OPEN, CLICK, HARD_BOUNCE, SOFT_BOUNCE})  # what email-activity shows
ACTIONS = {
    OPEN: "open",
    CLICK: "click",
    HARD_BOUNCE: "bounce",
    SOFT_BOUNCE: "bounce",
    UNSUB: "unsub",
}

MAX_OPENS_PER_MEMBER = 1000  # Mailchimp keeps at most 1,000 opens and 1,000 clicks per member
MAX_CLICKS_PER_MEMBER = 1000

UNSUB_REASONS = (
    "I no longer want to receive these emails",
    "I never signed up for this mailing list",
    "The emails are inappropriate",
    "The emails are spam and should be reported",
    "Other",
    "N/A (Unsubscribed by an admin)",
)

CAMPAIGN_TYPES = ("regular", "plaintext", "absplit", "rss", "variate")
# `type` filter of GET /campaigns and /reports: the creatable types plus the emails of automations.
FILTER_TYPES = (*CAMPAIGN_TYPES, "automation")
CAMPAIGN_STATUSES = ("save", "paused", "schedule", "sending", "sent")
REPORT_TYPE = {
    "automation": "automation",
    "regular": "regular",
    "plaintext": "plain-text",
    "absplit": "ab_split",
    "rss": "rss",
    "variate": "variate",
}

HOUR = 3600.0
DAY = 86400.0


@dataclass
class EngagementProfile:
    """Rates that shape a campaign's generated engagement (fractions of recipients)."""

    hard_bounce: float = 0.004
    soft_bounce: float = 0.008
    open_rate: float = 0.32
    repeat_open: float = 0.35  # chance of each further open
    click_given_open: float = 0.22
    unsub_given_open: float = 0.012
    first_open_mean_s: float = 10 * HOUR
    max_delay_s: float = 12 * DAY


@dataclass
class Aggregates:
    """Counters over the visible prefix of a campaign's events (folded incrementally)."""

    upto: int = 0
    opens_total: int = 0
    unique_opens: int = 0
    last_open: float = 0.0
    clicks_total: int = 0
    unique_clicks: int = 0  # distinct (recipient, url) pairs
    unique_subscriber_clicks: int = 0
    last_click: float = 0.0
    hard_bounces: int = 0
    soft_bounces: int = 0
    unsubscribed: int = 0
    open_count: array = field(default_factory=lambda: array("i"))
    click_count: array = field(default_factory=lambda: array("i"))
    bounce: bytearray = field(default_factory=bytearray)  # 0 none, 1 hard, 2 soft
    url_total: list[int] = field(default_factory=list)
    url_unique: list[int] = field(default_factory=list)
    url_last: list[float] = field(default_factory=list)
    url_pairs: set[int] = field(default_factory=set)
    first_open_hour: list[int] = field(default_factory=lambda: [0] * 24)
    first_click_hour: list[int] = field(default_factory=lambda: [0] * 24)
    unsub_events: list[int] = field(default_factory=list)


class CampaignEvents:
    """A campaign's engagement log: parallel arrays sorted by time, plus a per-recipient index."""

    def __init__(self, n_recipients: int, n_urls: int, send_time: float) -> None:
        self.n = n_recipients
        self.n_urls = n_urls
        self.send_time = send_time
        self.ts = array("d")
        self.who = array("i")
        self.kind = array("b")
        self.url = array("b")
        # CSR index by recipient: events of recipient r are order[start[r]:start[r+1]] (time order).
        self.start = array("i")
        self.order = array("i")
        self.status_events: list[int] = []  # event indices of hard bounces and unsubscribes
        self._agg = Aggregates()
        self._windows: dict[tuple[int, int, frozenset[int]], list[int]] = {}

    # ------------------------------------------------------------------ building

    def load(self, rows: list[tuple[float, int, int, int]]) -> None:
        """Replace the log with `rows` of (timestamp, recipient, action, url index or -1)."""
        rows.sort()
        self.ts = array("d", [r[0] for r in rows])
        self.who = array("i", [r[1] for r in rows])
        self.kind = array("b", [r[2] for r in rows])
        self.url = array("b", [r[3] for r in rows])
        self._reindex()

    def append(self, ts: float, who: int, kind: int, url: int = -1) -> int:
        """Add one event (kept in time order); returns its index."""
        pos = bisect_right(self.ts, ts)
        self.ts.insert(pos, ts)
        self.who.insert(pos, who)
        self.kind.insert(pos, kind)
        self.url.insert(pos, url)
        self._reindex()
        return pos

    def _reindex(self) -> None:
        counts = [0] * (self.n + 1)
        for w in self.who:
            counts[w + 1] += 1
        for i in range(self.n):
            counts[i + 1] += counts[i]
        self.start = array("i", counts)
        fill = list(counts[:-1]) if self.n else []
        order = [0] * len(self.who)
        for idx, w in enumerate(self.who):
            order[fill[w]] = idx
            fill[w] += 1
        self.order = array("i", order)
        kinds = self.kind
        self.status_events = [i for i in range(len(kinds)) if kinds[i] in (HARD_BOUNCE, UNSUB)]
        self._agg = Aggregates()
        self._windows.clear()

    def dump(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "n_urls": self.n_urls,
            "send_time": self.send_time,
            "rows": [list(r) for r in zip(self.ts, self.who, self.kind, self.url, strict=True)],
        }

    @classmethod
    def from_dump(cls, data: dict[str, Any]) -> CampaignEvents:
        events = cls(int(data["n"]), int(data["n_urls"]), float(data["send_time"]))
        events.load([(float(t), int(w), int(k), int(u)) for t, w, k, u in data["rows"]])
        return events

    # ------------------------------------------------------------------ reading

    def visible(self, now: float) -> int:
        """Number of events whose time has come (the visible prefix is events[:visible])."""
        return bisect_right(self.ts, now)

    def after(self, since: float) -> int:
        """Index of the first event strictly after `since`."""
        return bisect_right(self.ts, since)

    def events_of(self, who: int, lo_ts: float | None, hi: int) -> list[int]:
        """Event indices of recipient `who` visible (< hi) and strictly after `lo_ts`."""
        ts = self.ts
        return [
            e
            for e in self.order[self.start[who] : self.start[who + 1]]
            if e < hi and (lo_ts is None or ts[e] > lo_ts)
        ]

    def recipients_in_window(self, lo: int, hi: int, kinds: frozenset[int]) -> list[int]:
        """Sorted distinct recipients with an event of `kinds` in events[lo:hi] (cached)."""
        key = (lo, hi, kinds)
        cached = self._windows.get(key)
        if cached is None:
            who, kind = self.who, self.kind
            cached = sorted({who[e] for e in range(lo, hi) if kind[e] in kinds})
            if len(self._windows) > 32:
                self._windows.clear()
            self._windows[key] = cached
        return cached

    def aggregates(self, now: float) -> Aggregates:
        """Counters over the events visible at `now` (folded forward from the last call)."""
        hi = self.visible(now)
        agg = self._agg
        if hi < agg.upto or not agg.open_count:
            agg = Aggregates(
                open_count=array("i", bytes(4 * self.n)),
                click_count=array("i", bytes(4 * self.n)),
                bounce=bytearray(self.n),
                url_total=[0] * self.n_urls,
                url_unique=[0] * self.n_urls,
                url_last=[0.0] * self.n_urls,
            )
            self._agg = agg
        send = self.send_time
        for e in range(agg.upto, hi):
            kind = self.kind[e]
            who = self.who[e]
            ts = self.ts[e]
            if kind == OPEN:
                agg.opens_total += 1
                agg.last_open = max(agg.last_open, ts)
                if agg.open_count[who] == 0:
                    agg.unique_opens += 1
                    hour = int((ts - send) // HOUR)
                    if 0 <= hour < 24:
                        agg.first_open_hour[hour] += 1
                agg.open_count[who] += 1
            elif kind == CLICK:
                u = self.url[e]
                agg.clicks_total += 1
                agg.last_click = max(agg.last_click, ts)
                if agg.click_count[who] == 0:
                    agg.unique_subscriber_clicks += 1
                    hour = int((ts - send) // HOUR)
                    if 0 <= hour < 24:
                        agg.first_click_hour[hour] += 1
                agg.click_count[who] += 1
                if 0 <= u < self.n_urls:
                    agg.url_total[u] += 1
                    agg.url_last[u] = max(agg.url_last[u], ts)
                    pair = who * self.n_urls + u
                    if pair not in agg.url_pairs:
                        agg.url_pairs.add(pair)
                        agg.url_unique[u] += 1
                        agg.unique_clicks += 1
            elif kind == HARD_BOUNCE:
                agg.hard_bounces += 1
                agg.bounce[who] = 1
            elif kind == SOFT_BOUNCE:
                agg.soft_bounces += 1
                if agg.bounce[who] == 0:
                    agg.bounce[who] = 2
            elif kind == UNSUB:
                agg.unsubscribed += 1
                agg.unsub_events.append(e)
        agg.upto = hi
        return agg


def generate_events(
    n_recipients: int,
    n_urls: int,
    send_time: float,
    rng: random.Random,
    profile: EngagementProfile,
) -> CampaignEvents:
    """Deterministic engagement for a campaign sent to `n_recipients` at `send_time`."""
    rows: list[tuple[float, int, int, int]] = []
    add = rows.append
    rand = rng.random
    expo = rng.expovariate
    p_hard = profile.hard_bounce
    p_soft = p_hard + profile.soft_bounce
    p_open = profile.open_rate
    open_rate_param = 1.0 / profile.first_open_mean_s
    limit = send_time + profile.max_delay_s
    for who in range(n_recipients):
        u = rand()
        if u < p_hard:
            add((float(int(send_time + 30 + rand() * 1800)), who, HARD_BOUNCE, -1))
            continue
        if u < p_soft:
            add((float(int(send_time + 60 + rand() * 7200)), who, SOFT_BOUNCE, -1))
            continue
        if rand() >= p_open:
            continue
        first = send_time + 60 + expo(open_rate_param)
        if first > limit:
            continue
        add((float(int(first)), who, OPEN, -1))
        t = first
        opens = 1
        while rand() < profile.repeat_open and opens < MAX_OPENS_PER_MEMBER:
            t += expo(1.0 / (18 * HOUR))
            if t > limit:
                break
            add((float(int(t)), who, OPEN, -1))
            opens += 1
        if n_urls and rand() < profile.click_given_open:
            ct = first + 5 + expo(1.0 / 300)
            add((float(int(ct)), who, CLICK, int(rand() * n_urls)))
            if rand() < 0.3:
                ct += 10 + expo(1.0 / 600)
                add((float(int(ct)), who, CLICK, int(rand() * n_urls)))
        if rand() < profile.unsub_given_open:
            add((float(int(first + 20 + expo(1.0 / 900))), who, UNSUB, -1))
    events = CampaignEvents(n_recipients, n_urls, send_time)
    events.load(rows)
    return events


@dataclass
class Campaign:
    """A campaign: settings as sent by the client plus what sending produced."""

    id: str
    web_id: int
    type: str
    list_id: str
    create_time: float
    settings: dict[str, Any]
    tracking: dict[str, Any]
    content_type: str = "template"
    segment_opts: dict[str, Any] = field(default_factory=dict)
    social_card: dict[str, Any] = field(default_factory=dict)
    status: str = "save"
    send_time: float | None = None
    urls: list[str] = field(default_factory=list)
    recipients: list[str] = field(default_factory=list)  # member hashes, send order
    emails: list[str] = field(default_factory=list)  # addresses at send time
    events: CampaignEvents | None = None
    profile: EngagementProfile = field(default_factory=EngagementProfile)
    _index: dict[str, int] | None = None

    def recipient_index(self, member_hash: str) -> int | None:
        """Position of a member in this campaign's recipients (None when not sent to them)."""
        if self._index is None or len(self._index) != len(self.recipients):
            self._index = {h: i for i, h in enumerate(self.recipients)}
        return self._index.get(member_hash)

    @property
    def is_sent(self) -> bool:
        """Sent, or an automation email that has been sent to someone (it keeps `sending`)."""
        return self.status == "sent" or (self.type == "automation" and self.events is not None)

    def dump(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "web_id": self.web_id,
            "type": self.type,
            "list_id": self.list_id,
            "create_time": self.create_time,
            "settings": self.settings,
            "tracking": self.tracking,
            "content_type": self.content_type,
            "segment_opts": self.segment_opts,
            "social_card": self.social_card,
            "status": self.status,
            "send_time": self.send_time,
            "urls": self.urls,
            "recipients": self.recipients,
            "emails": self.emails,
            "events": self.events.dump() if self.events is not None else None,
        }

    @classmethod
    def from_dump(cls, data: dict[str, Any]) -> Campaign:
        events = data.get("events")
        return cls(
            id=data["id"],
            web_id=int(data["web_id"]),
            type=data["type"],
            list_id=data["list_id"],
            create_time=float(data["create_time"]),
            settings=dict(data["settings"]),
            tracking=dict(data["tracking"]),
            content_type=data.get("content_type", "template"),
            segment_opts=dict(data.get("segment_opts") or {}),
            social_card=dict(data.get("social_card") or {}),
            status=data["status"],
            send_time=data.get("send_time"),
            urls=list(data.get("urls") or []),
            recipients=list(data.get("recipients") or []),
            emails=list(data.get("emails") or []),
            events=CampaignEvents.from_dump(events) if events else None,
        )


# =========================================================================== rules


def find_campaign(state: EngagementState, campaign_id: str) -> Campaign:
    campaign = state.get(campaign_id)
    if campaign is None:
        raise ResourceNotFoundError()
    return campaign


def list_info(store: Any, list_id: str) -> tuple[str, bool]:
    """(list name, list_is_active) of a campaign's audience (deleted audiences are inactive)."""
    doc = store.lists.get(list_id)
    if doc is None:
        return "", False
    return str(doc.get("name", "")), True


def rates(campaign: Campaign, agg: Aggregates) -> tuple[float, float]:
    """(open_rate, click_rate) as fractions of delivered emails (sent minus bounces)."""
    delivered = len(campaign.recipients) - agg.hard_bounces - agg.soft_bounces
    if delivered <= 0:
        return 0.0, 0.0
    return agg.unique_opens / delivered, agg.unique_subscriber_clicks / delivered


def merge_settings(campaign: Campaign, body: dict[str, Any]) -> None:
    for key in ("settings", "tracking", "social_card"):
        if key in body:
            check_type(body, key, "object")
            getattr(campaign, key).update(body[key])
    if "recipients" in body:
        check_type(body, "recipients", "object")
        segment_opts = body["recipients"].get("segment_opts")
        if isinstance(segment_opts, dict):
            campaign.segment_opts = segment_opts


def check_list(store: Any, body: dict[str, Any], required: bool) -> str | None:
    recipients = body.get("recipients")
    if recipients is None:
        if required:
            raise FieldError("recipients.list_id", "This value should not be blank.")
        return None
    check_type(body, "recipients", "object")
    list_id = recipients.get("list_id")
    if not isinstance(list_id, str) or not list_id:
        raise FieldError("recipients.list_id", "Required fields were not provided: list_id")
    if list_id not in store.lists:
        raise FieldError("recipients.list_id", "The requested list does not exist.")
    return list_id


def new_settings(
    *,
    title: str,
    subject_line: str,
    from_name: str,
    reply_to: str,
    to_name: str,
    drag_and_drop: bool,
) -> dict[str, Any]:
    """A new campaign's full `settings` document (the rest at Mailchimp's defaults)."""
    return {
        "subject_line": subject_line,
        "preview_text": "",
        "title": title,
        "from_name": from_name,
        "reply_to": reply_to,
        "use_conversation": False,
        "to_name": to_name,
        "folder_id": "",
        "authenticate": True,
        "auto_footer": False,
        "inline_css": False,
        "auto_tweet": False,
        "auto_fb_post": [],
        "fb_comments": True,
        "timewarp": False,
        "template_id": 0,
        "drag_and_drop": drag_and_drop,
    }


def create_campaign(state: EngagementState, store: Any, body: dict[str, Any]) -> Campaign:
    """`POST /campaigns`: a draft (`save`) campaign; settings default from the audience's."""
    require_keys(body, ("type",))
    check_enum(body, "type", CAMPAIGN_TYPES)
    list_id = check_list(store, body, required=False) or ""
    content_type = body.get("content_type", "template")
    check_enum(
        {"content_type": content_type}, "content_type", ("template", "multichannel", "html", "url")
    )
    defaults = (store.lists.get(list_id) or {}).get("campaign_defaults") or {}
    settings = new_settings(
        title="",
        subject_line="",
        from_name=defaults.get("from_name", ""),
        reply_to=defaults.get("from_email", ""),
        to_name="",
        drag_and_drop=False,
    )
    campaign = state.new_campaign(body["type"], list_id, state.now(), settings)
    campaign.content_type = content_type
    merge_settings(campaign, body)
    return campaign


def update_campaign(store: Any, campaign: Campaign, body: dict[str, Any]) -> None:
    """`PATCH /campaigns/{id}`: only drafts change."""
    if campaign.status != "save":
        raise InvalidActionError("A campaign that has been sent cannot be updated.")
    list_id = check_list(store, body, required=False)
    if list_id is not None:
        campaign.list_id = list_id
    merge_settings(campaign, body)


def remove_campaign(state: EngagementState, campaign: Campaign) -> None:
    if campaign.type == "automation":
        raise InvalidActionError("An automation email cannot be deleted.")
    del state.campaigns[campaign.id]


def send_draft(state: EngagementState, store: Any, campaign: Campaign) -> None:
    """Send a draft now: needs an existing audience, subject, sender and a known saved segment."""
    if campaign.status != "save":
        raise InvalidActionError("This campaign has already been sent and cannot be sent again.")
    settings = campaign.settings
    missing = [k for k in ("subject_line", "from_name", "reply_to") if not settings.get(k)]
    sid = campaign.segment_opts.get("saved_segment_id")
    audience = store.audiences.get(campaign.list_id)
    bad_segment = bool(sid) and (
        audience is None or not isinstance(sid, int) or sid not in audience.segments
    )
    if not campaign.list_id or campaign.list_id not in store.lists or missing or bad_segment:
        raise CampaignNotReadyError()
    state.send(campaign, state.read_now)
