"""Classic automations: the rules (triggers, queue, sends) behind `/automations` (see README).

The sandbox account has two classic automations, switched on at the clock start:
- a **welcome series** (`welcomeSeries`): one email, `delay` 1 day after `signup`, to every member
  of the audience who becomes `subscribed` after the automation started;
- an **abandoned cart** (`abandonedCart`): one email, `delay` 1 hour after `ecomm_abandoned_cart`,
  for every cart of the e-commerce store last updated after the automation started whose customer
  is a subscribed member of the store's audience, once the cart is older than the delay. A cart
  removed (or converted: an order of the same customer placed after the cart's last update) before
  that sends nothing; one send per cart.

Each automation email is also a campaign (`type: "automation"`, `status: "sending"`, the same id)
in `EngagementState.campaigns`, so `/campaigns`, `/reports` and their email activity show it like
any campaign: a recipient is appended when their email is sent, with engagement generated for that
recipient from that moment (opens, clicks, soft bounces; no hard bounces or unsubscribes, so member
statuses keep changing only through campaigns). An order placed without `campaign_id` by a customer
who clicked an abandoned-cart email within `ATTRIBUTION_DAYS` is attributed to that email (the
`mc_cid` the email's checkout link carries).

Sends happen in `EngagementState.sync()`: triggers seen since the last sync are queued with their
due time, due entries whose condition still holds are sent at that time (the sandbox clock moves;
nothing runs in the background). HTTP handlers are in `automation_api.py`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .campaigns import (
    CLICK,
    DAY,
    HOUR,
    Campaign,
    CampaignEvents,
    EngagementProfile,
    generate_events,
)
from .values import short_id, subscriber_hash

if TYPE_CHECKING:
    from .engagement import EngagementState
    from .models.ecommerce import Shop

WELCOME = "welcomeSeries"
ABANDONED_CART = "abandonedCart"
DELAY_SECONDS = {"now": 0.0, "hour": HOUR, "day": DAY, "week": 7 * DAY}
ATTRIBUTION_DAYS = 30
CART_LINK_PATHS = ("/checkout/resume", "/catalog/new")
WELCOME_LINK_PATHS = ("/", "/catalog/new", "/account")
# Engagement of automation emails: no hard bounce or unsubscribe (see the module docstring).
WELCOME_PROFILE = EngagementProfile(hard_bounce=0.0, unsub_given_open=0.0, open_rate=0.5)
CART_PROFILE = EngagementProfile(
    hard_bounce=0.0, unsub_given_open=0.0, open_rate=0.45, click_given_open=0.4
)


@dataclass
class QueueEntry:
    """One member waiting for an automation email (`GET …/queue`)."""

    member_hash: str
    email: str
    next_send: float
    key: str  # what was sent: the member hash (welcome) or the cart id (abandoned cart)
    cart_updated_at: float | None = None

    def dump(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class AutomationEmail:
    """One email of a workflow; its sends and engagement live in the campaign of the same id."""

    id: str
    workflow_id: str
    position: int
    action: str  # delay.action: signup | ecomm_abandoned_cart | api
    delay_amount: int
    delay_type: str  # now | hour | day | week
    status: str = "sending"
    queue: dict[str, QueueEntry] = field(default_factory=dict)  # key -> entry
    done: set[str] = field(default_factory=set)  # keys sent or dropped (one send per key)
    # No entry of `queue` is due before this (entries go in through `enqueue`): a sync before it
    # need not look at the queue (issue 16: that look was O(queue) on every request).
    earliest: float = field(default=math.inf, compare=False, repr=False)

    def enqueue(self, entry: QueueEntry) -> None:
        """Put ``entry`` in the queue (in place of one with its key)."""
        self.queue[entry.key] = entry
        self.earliest = min(self.earliest, entry.next_send)

    @property
    def delay_seconds(self) -> float:
        return self.delay_amount * DELAY_SECONDS[self.delay_type]

    def dump(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "workflow_id": self.workflow_id,
            "position": self.position,
            "action": self.action,
            "delay_amount": self.delay_amount,
            "delay_type": self.delay_type,
            "status": self.status,
            "queue": [e.dump() for e in self.queue.values()],
            "done": sorted(self.done),
        }

    @classmethod
    def load(cls, data: dict[str, Any]) -> AutomationEmail:
        email = cls(
            id=data["id"],
            workflow_id=data["workflow_id"],
            position=int(data["position"]),
            action=data["action"],
            delay_amount=int(data["delay_amount"]),
            delay_type=data["delay_type"],
            status=data["status"],
            done=set(data["done"]),
        )
        for raw in data["queue"]:
            email.enqueue(QueueEntry(**raw))
        return email


@dataclass
class Automation:
    """A classic automation workflow."""

    id: str
    workflow_type: str
    title: str
    list_id: str
    store_id: str
    create_time: float
    start_time: float
    settings: dict[str, Any]
    status: str = "sending"
    emails: list[AutomationEmail] = field(default_factory=list)

    def dump(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "emails"}
        data["emails"] = [e.dump() for e in self.emails]
        return data

    @classmethod
    def load(cls, data: dict[str, Any]) -> Automation:
        fields_ = {k: v for k, v in data.items() if k != "emails"}
        auto = cls(**fields_)
        auto.emails = [AutomationEmail.load(e) for e in data["emails"]]
        return auto


class AutomationState:
    """The account's automations; `run()` is called by `EngagementState.sync()`."""

    def __init__(self) -> None:
        self.automations: dict[str, Automation] = {}
        self.signups: list[tuple[str, str]] = []  # (list id, hash) subscribed since the last run
        # Per abandoned-cart email, not persisted: the shop it last looked at, the shop's cart write
        # number then, and the carts it passed over for want of a customer address (looked at again).
        self._cart_scans: dict[str, tuple[Shop, int, set[str]]] = {}

    def note_subscribe(self, list_id: str, member_hash: str) -> None:
        """Store hook: a member became `subscribed` (O(1); examined at the next run)."""
        if self.automations:
            self.signups.append((list_id, member_hash))

    def dump(self) -> dict[str, Any]:
        return {
            "automations": [a.dump() for a in self.automations.values()],
            "signups": [list(s) for s in self.signups],
        }

    @classmethod
    def load(cls, data: dict[str, Any] | None) -> AutomationState:
        state = cls()
        for raw in (data or {}).get("automations", []):
            auto = Automation.load(raw)
            state.automations[auto.id] = auto
        state.signups = [(str(a), str(b)) for a, b in (data or {}).get("signups", [])]
        return state

    def find_email(self, email_id: str) -> tuple[Automation, AutomationEmail] | None:
        for auto in self.automations.values():
            for email in auto.emails:
                if email.id == email_id:
                    return auto, email
        return None

    # ------------------------------------------------------------------ creation

    def add(
        self,
        engagement: EngagementState,
        *,
        workflow_type: str,
        title: str,
        list_id: str,
        store_id: str,
        at: float,
        start_time: float,
        settings: dict[str, Any],
        email_title: str,
        subject: str,
        action: str,
        delay: tuple[int, str],
        link_paths: tuple[str, ...],
    ) -> Automation:
        """A started one-email workflow whose email is an `automation` campaign."""
        wid = short_id("automation", engagement.seed, workflow_type, length=10)
        campaign = engagement.new_campaign(
            "automation",
            list_id,
            at,
            {
                **settings,
                "title": f"{title}: {email_title}",
                "subject_line": subject,
            },
        )
        campaign.status = "sending"
        domain = engagement.ecommerce.domain()
        campaign.urls = [f"https://{domain}{p}?utm_campaign={campaign.id}" for p in link_paths]
        auto = Automation(
            id=wid,
            workflow_type=workflow_type,
            title=title,
            list_id=list_id,
            store_id=store_id,
            create_time=float(int(at)),
            start_time=float(int(start_time)),
            settings={
                k: settings[k] for k in ("from_name", "reply_to", "to_name") if k in settings
            },
        )
        auto.emails.append(
            AutomationEmail(
                id=campaign.id,
                workflow_id=wid,
                position=1,
                action=action,
                delay_amount=delay[0],
                delay_type=delay[1],
            )
        )
        self.automations[wid] = auto
        return auto

    # ------------------------------------------------------------------ running

    def run(self, engagement: EngagementState, since: float, until: float) -> None:
        """Queue the triggers seen since the last run, then send what is due by `until`."""
        signups, self.signups = self.signups, []
        for auto in self.automations.values():
            if auto.status != "sending" or until < auto.start_time:
                continue
            if auto.workflow_type == WELCOME:
                self._queue_signups(engagement, auto, signups, since)
            elif auto.workflow_type == ABANDONED_CART:
                self._scan_carts(engagement, auto, since)
            for email in auto.emails:
                if email.status == "sending":
                    self._send_due(engagement, auto, email, until)

    def _queue_signups(
        self,
        engagement: EngagementState,
        auto: Automation,
        signups: list[tuple[str, str]],
        since: float,
    ) -> None:
        """Queue the members who became subscribed since the last run (store hook, not a scan)."""
        store = engagement.store
        for email in auto.emails:
            if email.action != "signup":
                continue
            for list_id, key in signups:
                rec = store.get_member(list_id, key) if list_id == auto.list_id else None
                opt = rec.get("ts_opt") if rec is not None else None
                if (
                    rec is None
                    or rec["status"] != "subscribed"
                    or opt is None
                    or opt < auto.start_time
                    or key in email.done
                    or key in email.queue
                ):
                    continue
                due = max(float(opt) + email.delay_seconds, since)
                email.enqueue(QueueEntry(key, rec["email_address"], due, key))

    def _carts_to_scan(self, shop: Shop, email: AutomationEmail) -> list[dict[str, Any]]:
        """The carts that may have become due for ``email`` since its last look, in store order.

        The first look (and the first after the store object changed: a reload, a new store) takes
        every cart; later ones take the carts written since (`Shop.cart_written`) and those passed
        over for want of a customer address, which is all a look can newly queue: the others were
        older than the automation, sent, or queued at their current `updated_at` (issue 16: looking
        at every cart on every request was a fifth of the sandbox's CPU in a large backfill).
        """
        last = self._cart_scans.get(email.id)
        if last is None or last[0] is not shop:
            shop.number_carts()
            carts = list(shop.carts.values())
        else:
            carts = shop.in_cart_order([*shop.carts_written_after(last[1]), *last[2]])
        self._cart_scans[email.id] = (shop, shop.cart_writes, set())
        return carts

    def _scan_carts(self, engagement: EngagementState, auto: Automation, since: float) -> None:
        shop = engagement.ecommerce.shops.get(auto.store_id)
        if shop is None:
            return
        for email in auto.emails:
            if email.action != "ecomm_abandoned_cart":
                continue
            carts = self._carts_to_scan(shop, email)
            no_address = self._cart_scans[email.id][2]
            for cart in carts:
                key = str(cart["id"])
                updated = float(cart.get("updated_at") or 0.0)
                if updated < auto.start_time or key in email.done:
                    continue
                queued = email.queue.get(key)
                if queued is not None and queued.cart_updated_at == updated:
                    continue
                customer = shop.customers.get(cart["customer_id"]) or {}
                address = str(customer.get("email_address") or "")
                if not address:
                    no_address.add(key)
                    continue
                due = max(updated + email.delay_seconds, since)
                email.enqueue(
                    QueueEntry(subscriber_hash(address), address, due, key, cart_updated_at=updated)
                )

    @staticmethod
    def _still_wanted(engagement: EngagementState, auto: Automation, e: QueueEntry) -> bool:
        """Whether the queued send still applies: member subscribed, cart there and not converted."""
        rec = engagement.store.get_member(auto.list_id, e.member_hash)
        if rec is None or rec["status"] != "subscribed":
            return False
        if e.cart_updated_at is None:
            return True
        shop = engagement.ecommerce.shops.get(auto.store_id)
        cart = shop.carts.get(e.key) if shop is not None else None
        if shop is None or cart is None:
            return False  # removed (or emptied and deleted) before the delay: nothing is sent
        return not _converted(shop, cart["customer_id"], e.cart_updated_at)

    def _send_due(
        self, engagement: EngagementState, auto: Automation, email: AutomationEmail, until: float
    ) -> None:
        if until < email.earliest:
            return
        due = sorted(
            (e for e in email.queue.values() if e.next_send <= until), key=lambda e: e.next_send
        )
        email.earliest = min(
            (e.next_send for e in email.queue.values() if e.next_send > until), default=math.inf
        )
        if not due:
            return
        campaign = engagement.campaigns.get(email.id)
        sends: list[tuple[str, str, float]] = []
        for entry in due:
            del email.queue[entry.key]
            email.done.add(entry.key)
            if campaign is not None and self._still_wanted(engagement, auto, entry):
                sends.append((entry.member_hash, entry.email, float(int(entry.next_send))))
        if campaign is not None and sends:
            profile = CART_PROFILE if auto.workflow_type == ABANDONED_CART else WELCOME_PROFILE
            append_recipients(engagement.seed, campaign, sends, profile)

    # ------------------------------------------------------------------ queue (API)

    def queue_member(
        self, auto: Automation, email: AutomationEmail, rec: dict[str, Any], now: float
    ) -> QueueEntry:
        """`POST …/queue`: the member gets the email after its delay (once)."""
        key = rec["id"]
        entry = email.queue.get(key)
        if entry is None:
            entry = QueueEntry(key, rec["email_address"], now + email.delay_seconds, key)
            email.enqueue(entry)
        return entry

    # ------------------------------------------------------------------ attribution

    def attribute(
        self, engagement: EngagementState, shop: Shop, customer_id: str, now: float
    ) -> str:
        """The abandoned-cart email the customer clicked last within `ATTRIBUTION_DAYS` ("" if none)."""
        customer = shop.customers.get(customer_id) or {}
        address = str(customer.get("email_address") or "")
        if not address:
            return ""
        hash_ = subscriber_hash(address)
        best = (0.0, "")
        for auto in self.automations.values():
            if auto.workflow_type != ABANDONED_CART or auto.store_id != shop.doc["id"]:
                continue
            for email in auto.emails:
                campaign = engagement.campaigns.get(email.id)
                events = campaign.events if campaign is not None else None
                who = campaign.recipient_index(hash_) if campaign is not None else None
                if events is None or who is None:
                    continue
                for e in events.events_of(who, now - ATTRIBUTION_DAYS * DAY, events.visible(now)):
                    if events.kind[e] == CLICK and events.ts[e] > best[0]:
                        best = (events.ts[e], email.id)
        return best[1]


def _converted(shop: Shop, customer_id: str, since: float) -> bool:
    """Whether the customer placed an order after `since` (the cart became an order); reads the
    customer's own orders (`OrderTable.of_customer`), not the store's."""
    return any(
        float(o.get("created_at") or 0.0) >= since for o in shop.orders.of_customer(customer_id)
    )


def append_recipients(
    seed: int,
    campaign: Campaign,
    sends: list[tuple[str, str, float]],
    profile: EngagementProfile,
) -> None:
    """Send an automation email to more members: (hash, email, time) each, engagement from then."""
    events = campaign.events
    rows: list[tuple[float, int, int, int]] = []
    if events is not None:
        rows = list(zip(events.ts, events.who, events.kind, events.url, strict=True))
    start = len(campaign.recipients)
    for offset, (hash_, address, at) in enumerate(sends):
        rng = random.Random(f"{seed}:{campaign.id}:{hash_}:{int(at)}")
        one = generate_events(1, len(campaign.urls), at, rng, profile)
        rows.extend(
            (one.ts[i], start + offset, one.kind[i], one.url[i]) for i in range(len(one.ts))
        )
        campaign.recipients.append(hash_)
        campaign.emails.append(address)
    first = sends[0][2]
    if campaign.send_time is None or first < campaign.send_time:
        campaign.send_time = first
    if events is None:
        events = CampaignEvents(0, len(campaign.urls), campaign.send_time or first)
        campaign.events = events
    events.n = len(campaign.recipients)
    events.send_time = campaign.send_time or first
    events.load(rows)


def seed_automations(engagement: EngagementState, list_id: str, now: float) -> AutomationState:
    """The welcome series and the abandoned-cart automation, started at `now` (the clock start)."""
    state = engagement.automations
    list_doc = engagement.store.lists[list_id]
    defaults = list_doc.get("campaign_defaults") or {}
    settings = {
        "from_name": defaults.get("from_name") or "Sandbox Shop",
        "reply_to": defaults.get("from_email") or "news@shop.example.com",
        "to_name": "*|FNAME|*",
    }
    created = now - 40 * DAY
    state.add(
        engagement,
        workflow_type=WELCOME,
        title="Welcome series",
        list_id=list_id,
        store_id="",
        at=created,
        start_time=now,
        settings=settings,
        email_title="Welcome",
        subject="Welcome to our shop",
        action="signup",
        delay=(1, "day"),
        link_paths=WELCOME_LINK_PATHS,
    )
    shop_id = next(
        (
            sid
            for sid, shop in engagement.ecommerce.shops.items()
            if shop.doc.get("list_id") == list_id
        ),
        "",
    )
    if shop_id:
        state.add(
            engagement,
            workflow_type=ABANDONED_CART,
            title="Abandoned cart",
            list_id=list_id,
            store_id=shop_id,
            at=created,
            start_time=now,
            settings=settings,
            email_title="You left something in your cart",
            subject="You left something in your cart",
            action="ecomm_abandoned_cart",
            delay=(1, "hour"),
            link_paths=CART_LINK_PATHS,
        )
    return state
