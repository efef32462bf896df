"""Pools of realistic values, built once per seed with Faker and combined with fast seeded RNGs.

Faker is slow (tens of microseconds per value), so the seed data never calls it per record:
pools of names, companies, streets, ... are drawn once, and each record picks from them with a
deterministic ``random.Random`` keyed by (seed, table, id).
"""

from __future__ import annotations

import functools
import random
import unicodedata
from dataclasses import dataclass

from faker import Faker

# (locale, weight): mostly US English, with European and Asian names so unicode is common.
_LOCALES = (("en_US", 60), ("de_DE", 10), ("fr_FR", 8), ("es_ES", 6), ("pl_PL", 6), ("ja_JP", 5), ("zh_CN", 5))
_POOL = 400  # names per locale

COUNTRIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("US", ("US-CA", "US-NY", "US-TX", "US-IL", "US-WA", "US-FL")),
    ("DE", ("DE-BE", "DE-BY", "DE-HH", "DE-NW")),
    ("FR", ("FR-75", "FR-69", "FR-13")),
    ("GB", ("GB-LND", "GB-MAN")),
    ("CA", ("CA-ON", "CA-QC", "CA-BC")),
)
EMAIL_DOMAINS = (
    "example.com", "example.org", "example.net", "mail.example.com", "shop.example.org",
    "corp.example.net", "buyers.example.com",
)
GROUP_NAMES = (
    "Non-Authenticated Visitors", "Wholesale Accounts", "Partners", "All Customers",
    "VIP Accounts", "Distributors", "Schools & Universities", "Healthcare",
)
TAG_NAMES = (
    "VIP", "Newsletter", "Trade show 2025", "Churn risk", "Early adopter", "Reseller",
    "Key account", "Needs follow-up", "Black Friday buyer", "Sample requested",
    "Loyalty: gold", "Loyalty: silver", "Über-Kunde", "顧客A",
)
CAMPAIGNS = (
    ("Spring sale 2025", "spring_sale_2025", "2025-03-01", "2025-04-15", "5000.0000"),
    ("Back to school", "back-to-school-25", "2025-08-01", "2025-09-15", "2500.0000"),
    ("Black Friday", "bf_2025", "2025-11-20", "2025-12-01", "12000.0000"),
    ("Customer newsletter", "newsletter", None, None, None),
)
UNITS = ("item", "set", "kg", "piece", "hour")
SHIPPING = (("flat_rate_1", "primary"), ("fixed_product_2", "primary"), ("ups_3", "01"))


def ascii_slug(text: str) -> str:
    """Lower-case ASCII letters of ``text`` (for e-mail local parts); empty if none."""
    norm = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in norm.lower() if ch.isalnum())


@dataclass(frozen=True)
class Pools:
    """Value pools. Names are ``(display, ascii_slug)`` pairs."""

    first_names: tuple[tuple[str, str], ...]
    last_names: tuple[tuple[str, str], ...]
    long_names: tuple[str, ...]
    companies: tuple[str, ...]
    streets: tuple[str, ...]
    cities: tuple[str, ...]
    postcodes: tuple[str, ...]
    phones: tuple[str, ...]
    product_words: tuple[str, ...]
    notes: tuple[str, ...]


@functools.lru_cache(maxsize=4)
def build_pools(seed: int) -> Pools:
    """Build the pools for ``seed`` (cached: a reset with the same seed reuses them)."""
    rng = random.Random(seed)
    first: list[tuple[str, str]] = []
    last: list[tuple[str, str]] = []
    for locale, weight in _LOCALES:
        fake = Faker(locale)
        fake.seed_instance(seed)
        n = max(20, _POOL * weight // 60)
        for _ in range(n):
            f, la = fake.first_name(), fake.last_name()
            first.append((f, ascii_slug(f) or "user"))
            last.append((la, ascii_slug(la) or "customer"))
    fake = Faker("en_US")
    fake.seed_instance(seed)
    long_names = tuple(
        " ".join(fake.last_name() for _ in range(rng.randint(12, 30)))[:255] for _ in range(20)
    )
    companies = tuple(dict.fromkeys(fake.company() for _ in range(3000)))
    return Pools(
        first_names=tuple(first),
        last_names=tuple(last),
        long_names=long_names,
        companies=companies,
        streets=tuple(fake.street_address() for _ in range(1500)),
        cities=tuple(fake.city() for _ in range(500)),
        postcodes=tuple(fake.postcode() for _ in range(800)),
        phones=tuple(fake.numerify("+1-###-###-####") for _ in range(2000)),
        product_words=tuple(dict.fromkeys(w.capitalize() for w in fake.words(600))),
        notes=tuple(fake.sentence(nb_words=10) for _ in range(200)),
    )
