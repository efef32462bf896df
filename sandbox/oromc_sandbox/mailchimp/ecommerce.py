"""E-commerce API: stores, customers, products (+ variants), orders (+ lines), carts.

The names the engagement half uses, gathered from where they live:
- `models/ecommerce.py`: state (`Shop`, `EcommerceState`: stores, attribution, report totals) and
  rules (validation, create/update/upsert, the customers' audience opt-in rules), no HTTP;
- `responses/ecommerce.py`: the handlers (parse -> model -> render) and `routes()`;
- `ecommerce_seed.py`: the seeded store, run once at start-up.

`EcommerceState` here adds the seed entry points `engagement.seed_engagement` calls
(`seed_store`, `seed_orders`); once the engagement half calls `ecommerce_seed` itself, this module
can re-export the model's class unchanged.
"""

from __future__ import annotations

import random
from typing import Any

from . import ecommerce_seed
from .models import ecommerce as model
from .models.ecommerce import Shop
from .responses.ecommerce import routes

__all__ = ["EcommerceState", "Shop", "routes"]


class EcommerceState(model.EcommerceState):
    """The account's stores, plus the seed entry points `engagement.seed_engagement` calls."""

    def seed_store(self, store: Any, list_id: str, now: float, rng: random.Random) -> Shop:
        return ecommerce_seed.seed_store(self, store, list_id, now, rng)

    def seed_orders(self, state: Any, store: Any, now: float, rng: random.Random) -> None:
        ecommerce_seed.seed_orders(self, state, store, now, rng)
