"""Seeding of the audience: the account, one list, its merge fields, tags and members.

Called once when the sandbox starts (`mailchimp.create_store`), never while serving. Members are
the Oro sandbox's customer users (a deterministic ~90 % share, at most `--max-audience-members`)
plus ~10 % Mailchimp-only people, with a realistic status mix, merge fields and tags.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from faker import Faker

from .values import short_id, subscriber_hash

if TYPE_CHECKING:
    from .store import Audience, MailchimpStore

DEFAULT_MERGE_FIELDS: list[dict[str, Any]] = [
    {"tag": "FNAME", "name": "First Name", "type": "text", "options": {"size": 25}},
    {"tag": "LNAME", "name": "Last Name", "type": "text", "options": {"size": 25}},
    {"tag": "ADDRESS", "name": "Address", "type": "address", "options": {"default_country": 164}},
    {
        "tag": "PHONE",
        "name": "Phone Number",
        "type": "phone",
        "options": {"phone_format": "International"},
    },
    {
        "tag": "BIRTHDAY",
        "name": "Birthday",
        "type": "birthday",
        "options": {"date_format": "MM/DD"},
    },
]
SEED_TAGS = [
    "Customer",
    "VIP",
    "Newsletter",
    "Wholesale",
    "Webinar 2026",
    "Trade Show",
    "Reorder",
    "Lead",
]
# (status, weight) for seeded members.
STATUS_MIX = [
    ("subscribed", 80),
    ("unsubscribed", 7),
    ("cleaned", 3),
    ("pending", 3),
    ("transactional", 4),
    ("archived", 3),
]
MAILCHIMP_ONLY_SHARE = 0.1
UNSUB_REASONS = [
    "N/A (Unsubscribed by an admin)",
    "I no longer want to receive these emails",
    "I never signed up for this mailing list",
    "The emails are inappropriate",
    "The emails are spam and should be reported",
]


def _oro_people(
    oro_store: Any, rng: random.Random, share: float, cap: int, declined: set[str] | None = None
) -> Iterator[tuple[str, str, str, str, dict[str, str] | None]]:
    """(email, first, last, phone, address) of a deterministic `share` of the Oro customer users.

    At most `cap` people (a uniform sample beyond that), so huge shops keep a bounded audience.
    The lower-cased addresses of those whose Oro marketing consent is false go into `declined`.
    """
    if oro_store is None:
        return
    tables = getattr(oro_store, "tables", None)
    if isinstance(tables, dict) and "customerusers" in tables:
        table = tables["customerusers"]
        ids = [rid for rid in table.ids() if rng.random() < share]
        if len(ids) > cap:
            ids = sorted(rng.sample(ids, cap))
        rows: Any = (table.get(rid) for rid in ids)
    else:
        users: Any = None
        for name in ("customer_users", "customerusers", "users"):
            users = getattr(oro_store, name, None)
            if users:
                break
        if not users:
            return
        rows = users.values() if isinstance(users, dict) else users
    for row in rows:
        if row is None:
            continue
        rec = row if isinstance(row, dict) else getattr(row, "__dict__", {})
        attrs = rec.get("attributes", rec)
        email = attrs.get("email")
        if not email:
            continue
        if declined is not None and attrs.get("marketing_consent") is False:
            declined.add(str(email).strip().lower())
        first = attrs.get("firstName") or attrs.get("first_name") or ""
        last = attrs.get("lastName") or attrs.get("last_name") or ""
        yield str(email), str(first), str(last), "", None


# Statuses of seeded members and their cumulative weights (a draw below `cum[i]` is `statuses[i]`).
_STATUSES = [s for s, _ in STATUS_MIX]
_CUMULATIVE = [sum(w for _, w in STATUS_MIX[: i + 1]) for i in range(len(STATUS_MIX))]
_DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "proton.me"]
Person = tuple[str, str, str, str, dict[str, str] | None]  # email, first, last, phone, address


@dataclass(frozen=True)
class _Pools:
    """Pools of Faker values, combined with the seeded RNG (Faker per row is far too slow)."""

    firsts: list[str]
    lasts: list[str]
    streets: list[str]
    cities: list[tuple[str, str, str]]
    phones: list[str]
    ips: list[str]

    @classmethod
    def make(cls, fake: Faker) -> _Pools:
        firsts = [fake.first_name() for _ in range(400)]
        lasts = [fake.last_name() for _ in range(400)]
        streets = [fake.street_address() for _ in range(300)]
        cities = [(fake.city(), fake.state_abbr(), fake.zipcode()) for _ in range(200)]
        phones = [fake.numerify("+1 ###-###-####") for _ in range(300)]
        ips = [fake.ipv4_public() for _ in range(200)]
        return cls(firsts, lasts, streets, cities, phones, ips)


def seed_audience(store: MailchimpStore, options: Any, clock: Any, oro_store: Any) -> None:
    """Create the account, the audience, its merge fields, tags and members."""
    seed = int(getattr(options, "seed", 42))
    rng = random.Random(seed * 7919 + 17)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    now = clock.now()
    now_ts = now.timestamp()
    two_years = 2 * 365 * 86400.0
    created = now - timedelta(days=2 * 365 + 30)
    store.account = _account_doc(store, seed, now, created)
    list_id = short_id("list", seed)
    _add_list(store, list_id, seed, created)
    aud = store.audiences[list_id]
    _add_merge_fields(aud, list_id)
    created_ts = created.timestamp()
    tag_segs = [
        store.new_segment(list_id, name, "static", created_ts + 86400 * i)
        for i, name in enumerate(SEED_TAGS)
    ]
    pools = _Pools.make(fake)
    people = _people(store, options, oro_store, rng, pools)
    # Sorted signup times so insertion order follows time (like a real audience's growth).
    times = sorted(float(int(now_ts - two_years * rng.random())) for _ in people)
    for person, signup in zip(people, times, strict=True):
        _add_member(store, list_id, person, signup, now_ts, rng, pools, tag_segs)
    for times_list in aud.status_times.values():
        times_list.sort()
    for seg in tag_segs:
        seg["updated_at"] = now_ts - 86400


def _account_doc(
    store: MailchimpStore, seed: int, now: datetime, created: datetime
) -> dict[str, Any]:
    return {
        "account_id": store.account_id,
        "login_id": str(1000 + seed),
        "account_name": "Oro Demo Shop",
        "email": "marketing@oro-demo-shop.example.com",
        "first_name": "Morgan",
        "last_name": "Marketer",
        "username": "orodemoshop",
        "avatar_url": "",
        "role": "owner",
        "member_since": created.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        "pricing_plan_type": "monthly",
        "first_payment": (created + timedelta(days=14)).strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        "account_timezone": "UTC",
        "account_industry": "eCommerce",
        "contact": {
            "company": "Oro Demo Shop",
            "addr1": "1 Market Street",
            "addr2": "",
            "city": "Los Angeles",
            "state": "CA",
            "zip": "90001",
            "country": "US",
        },
        "pro_enabled": False,
        "last_login": now.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        "industry_stats": {"open_rate": 0.2, "bounce_rate": 0.01, "click_rate": 0.025},
    }


def _add_list(store: MailchimpStore, list_id: str, seed: int, created: datetime) -> None:
    store.add_list(
        {
            "id": list_id,
            "web_id": 100000 + seed,
            "name": "Oro Demo Shop Customers",
            "contact": {
                "company": "Oro Demo Shop",
                "address1": "1 Market Street",
                "address2": "",
                "city": "Los Angeles",
                "state": "CA",
                "zip": "90001",
                "country": "US",
                "phone": "",
            },
            "permission_reminder": "You are receiving this email because you bought from Oro Demo Shop.",
            "use_archive_bar": True,
            "campaign_defaults": {
                "from_name": "Oro Demo Shop",
                "from_email": "news@oro-demo-shop.example.com",
                "subject": "",
                "language": "en",
            },
            "notify_on_subscribe": "",
            "notify_on_unsubscribe": "",
            "date_created": created.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
            "list_rating": 3,
            "email_type_option": False,
            "subscribe_url_short": f"http://eepurl.com/{list_id[:6]}",
            "subscribe_url_long": f"https://oro-demo-shop.{store.dc}.list-manage.com/subscribe?u={store.account_id}&id={list_id}",
            "beamer_address": f"us-{list_id}@inbound.mailchimp.com",
            "visibility": "prv",
            "double_optin": False,
            "has_welcome": False,
            "marketing_permissions": False,
            "modules": [],
            "_avg_sub_rate": 12,
            "_avg_unsub_rate": 1,
            "_target_sub_rate": 8,
        }
    )


def _add_merge_fields(aud: Audience, list_id: str) -> None:
    for i, spec in enumerate(DEFAULT_MERGE_FIELDS, start=1):
        aud.merge_fields[i] = {
            "merge_id": i,
            "tag": spec["tag"],
            "name": spec["name"],
            "type": spec["type"],
            "required": False,
            "default_value": "",
            "public": True,
            "display_order": i + 1,
            "options": dict(spec["options"]),
            "help_text": "",
            "list_id": list_id,
        }
    aud.next_merge_id = len(DEFAULT_MERGE_FIELDS) + 1


def _people(
    store: MailchimpStore, options: Any, oro_store: Any, rng: random.Random, pools: _Pools
) -> list[Person]:
    """Who is on the list: ~90 % of the Oro customer users, then Mailchimp-only people.

    Huge shops get a uniform sample: at most `max_audience_members` (`--max-audience-members`)
    people in all. The addresses whose Oro consent is declined go to `store.seed_declined`
    (unsubscribed once engagement is seeded).
    """
    people: list[Person] = []
    seen: set[str] = set()
    cap = int(getattr(options, "max_audience_members", 250_000))
    for person in _oro_people(oro_store, rng, 0.9, cap, store.seed_declined):
        key = person[0].strip().lower()
        if key not in seen:
            seen.add(key)
            people.append(person)
    target = int(getattr(options, "customers", 200))
    extra = max(int(target * MAILCHIMP_ONLY_SHARE), 5) if people else max(target, 5)
    extra = min(extra, cap - len(people))  # never more than `cap` members in all
    n = 0
    while extra > 0:
        first, last = pools.firsts[rng.randrange(400)], pools.lasts[rng.randrange(400)]
        email = f"{first.lower()}.{last.lower()}{n}@{_DOMAINS[rng.randrange(len(_DOMAINS))]}"
        n += 1
        if email in seen:
            continue
        seen.add(email)
        people.append((email, first, last, "", None))
        extra -= 1
    return people


def _add_member(
    store: MailchimpStore,
    list_id: str,
    person: Person,
    signup: float,
    now_ts: float,
    rng: random.Random,
    pools: _Pools,
    tag_segs: list[dict[str, Any]],
) -> None:
    """One seeded member: status, merge fields, history and tags (skipped if already there)."""
    email, first, last, phone, address = person
    r = rng.random() * _CUMULATIVE[-1]
    status = _STATUSES[next(i for i, c in enumerate(_CUMULATIVE) if r < c)]
    mf: dict[str, Any] = {}
    if first:
        mf["FNAME"] = first
    if last:
        mf["LNAME"] = last
    if phone or rng.random() < 0.4:
        mf["PHONE"] = phone or pools.phones[rng.randrange(300)]
    if address or rng.random() < 0.3:
        city, state, zip_ = pools.cities[rng.randrange(200)]
        mf["ADDRESS"] = address or {
            "addr1": pools.streets[rng.randrange(300)],
            "addr2": "",
            "city": city,
            "state": state,
            "zip": zip_,
            "country": "US",
        }
    if rng.random() < 0.25:
        mf["BIRTHDAY"] = f"{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}"
    stored_status = "subscribed" if status == "archived" else status
    changed = float(int(signup + rng.random() * max(now_ts - signup, 1.0) * 0.5))
    if store.get_member(list_id, subscriber_hash(email)) is not None:
        return
    rec = store.create_member(
        list_id,
        email,
        stored_status,
        signup,
        merge_fields=mf,
        source=rng.choice(["API - Generic", "Import", "Hosted Signup Form", "Admin Add"]),
        language="en",
        vip=rng.random() < 0.02,
        ip_signup=pools.ips[rng.randrange(200)] if rng.random() < 0.5 else "",
        ts_signup=signup if rng.random() < 0.5 else None,
        ip_opt=pools.ips[rng.randrange(200)],
        ts_opt=signup if status != "pending" and status != "transactional" else None,
        member_rating=rng.randint(1, 5),
    )
    rec["avg_open_rate"] = round(rng.random() * 0.6, 2)
    rec["avg_click_rate"] = round(rec["avg_open_rate"] * rng.random() * 0.4, 2)
    if status in ("unsubscribed", "cleaned", "archived"):
        store.set_member_status(
            list_id,
            rec["id"],
            status,
            changed,
            UNSUB_REASONS[rng.randrange(len(UNSUB_REASONS))] if status == "unsubscribed" else None,
        )
    rec["lc"] = changed
    k = rng.choices((0, 1, 2, 3), weights=(55, 25, 15, 5))[0]
    for seg in rng.sample(tag_segs, k):
        rec["tags"][seg["id"]] = max(changed - 3600 * rng.random(), signup)
        seg["members"].add(rec["id"])


def apply_oro_opt_outs(store: MailchimpStore, clock: Any) -> None:
    """Seeded members whose Oro marketing consent is declined are never left subscribed/pending:
    they are unsubscribed a day before the clock start, after the seeded campaigns were sent to
    them (so the rest of the seed, engagement and attributed orders included, stays as it was)."""
    when = clock.now().timestamp() - 86400
    for list_id in store.members:
        for rec in list(store.iter_members(list_id)):
            if (
                rec["status"] in ("subscribed", "pending")
                and rec["email_address"].lower() in store.seed_declined
            ):
                store.set_member_status(list_id, rec["id"], "unsubscribed", when, UNSUB_REASONS[1])
