"""Seeding of the e-commerce store: the sandbox shop, its catalogue, customers and orders.

Called once when the sandbox starts (`engagement_seed.seed_engagement`), never while serving.
With an Oro store next to the Mailchimp store (`store.oro_source`) the shop mirrors Oro's products
and recent orders (`OroMirror`), as if an earlier tap-orocommerce -> target-mailchimp sync had
pushed them; otherwise it has a small generated catalogue and orders from the clickers of the
seeded campaigns.
"""

from __future__ import annotations

import random
from typing import Any

from .models.ecommerce import (
    ADDRESS_KEYS,
    SEED_DOMAIN,
    EcommerceState,
    Shop,
    new_order,
    store_address,
)
from .values import format_epoch, subscriber_hash

SEED_STORE_ID = "sandbox-store"
ORO_ORDER_DAYS = 180  # Oro orders of the last 180 days are in the seeded store ...
MAX_ORO_ORDERS = 5000  # ... at most this many (memory bound for huge shops)
ATTRIBUTION_DAYS = 30  # an order this long after a click of a campaign is attributed to it
PRODUCT_WORDS = (
    ("Safety", "Work", "Heavy-duty", "Industrial", "Premium", "Compact"),
    ("gloves", "boots", "jacket", "helmet", "goggles", "toolbox", "drill", "ladder"),
)


def seed_store(
    ecommerce: EcommerceState, store: Any, list_id: str, now: float, rng: random.Random
) -> Shop:
    """The sandbox shop tied to the audience, with a small deterministic catalogue.

    With an Oro store to mirror (``store.oro_source``), the catalogue is Oro's products instead
    (ids = Oro product ids), as if tap-orocommerce -> target-mailchimp had already synced it.
    """
    created = float(int(now - 400 * 86400))
    doc = {
        "id": SEED_STORE_ID,
        "list_id": list_id,
        "name": "Sandbox B2B Shop",
        "platform": "OroCommerce",
        "domain": SEED_DOMAIN,
        "is_syncing": False,
        "email_address": "shop@example.com",
        "currency_code": "USD",
        "money_format": "$",
        "primary_locale": "en",
        "timezone": "UTC",
        "phone": "",
        "address": store_address(),
        "created_at": created,
        "updated_at": created,
    }
    shop = Shop(doc=doc)
    ecommerce.shops[SEED_STORE_ID] = shop
    oro = OroMirror.of(store)
    if oro is not None:
        for product in oro.products():
            shop.products[product["id"]] = {
                **product,
                "created_at": created,
                "updated_at": created,
            }
        return shop
    n = 0
    for adjective in PRODUCT_WORDS[0]:
        for noun in PRODUCT_WORDS[1]:
            if rng.random() < 0.5:
                continue
            n += 1
            pid = f"prod-{n:04d}"
            variants = [
                {
                    "id": f"{pid}-v{v + 1}",
                    "title": f"{adjective} {noun} size {('S', 'M', 'L')[v]}",
                    "url": f"https://{SEED_DOMAIN}/product/{pid}",
                    "sku": f"SKU-{n:04d}-{v + 1}",
                    "price": round(5 + rng.random() * 195, 2),
                    "inventory_quantity": int(rng.random() * 500),
                    "image_url": "",
                    "backorders": "false",
                    "visibility": "visible",
                    "created_at": created,
                    "updated_at": created,
                }
                for v in range(1 + int(rng.random() * 3))
            ]
            shop.products[pid] = {
                "id": pid,
                "title": f"{adjective} {noun}",
                "handle": f"{adjective}-{noun}".lower(),
                "url": f"https://{SEED_DOMAIN}/product/{pid}",
                "description": f"{adjective} {noun} for professionals.",
                "type": noun,
                "vendor": "Sandbox Supplies",
                "image_url": f"https://{SEED_DOMAIN}/media/{pid}.jpg",
                "variants": variants,
                "images": [],
                "published_at_foreign": format_epoch(created),
                "created_at": created,
                "updated_at": created,
            }
    return shop


def seed_orders(
    ecommerce: EcommerceState, state: Any, store: Any, now: float, rng: random.Random
) -> None:
    """Orders from clickers of sent campaigns (attributed) and some unattributed ones.

    With an Oro store to mirror, the orders are Oro's (see `seed_oro_orders`).
    """
    shop = ecommerce.shops.get(SEED_STORE_ID)
    if shop is None or not shop.products:
        return
    oro = OroMirror.of(store)
    if oro is not None:
        seed_oro_orders(state, store, shop, oro, now)
        return
    list_id = shop.doc["list_id"]
    products = list(shop.products.values())
    seq = 0
    for campaign in state.campaigns.values():
        events = campaign.events
        if events is None:
            continue
        hi = events.visible(now)
        seen: set[int] = set()
        for e in range(hi):
            if events.kind[e] != 1 or events.who[e] in seen:  # 1 == CLICK
                continue
            seen.add(events.who[e])
            if rng.random() >= 0.08:
                continue
            at = events.ts[e] + 600 + rng.random() * 36 * 3600
            if at > now:
                continue
            rec = store.get_member(list_id, campaign.recipients[events.who[e]])
            if rec is None:
                continue
            seq += 1
            _seed_order(shop, rec, f"ord-{seq:06d}", at, products, rng, campaign.id)
    members = [m for m in store.iter_members(list_id) if m["status"] == "subscribed"]
    extra = min(300, len(members) // 10)
    for _ in range(extra):
        rec = members[int(rng.random() * len(members))]
        seq += 1
        at = now - rng.random() * 180 * 86400
        _seed_order(shop, rec, f"ord-{seq:06d}", at, products, rng, "")


def _seed_order(
    shop: Shop,
    rec: dict[str, Any],
    order_id: str,
    at: float,
    products: list[dict[str, Any]],
    rng: random.Random,
    campaign_id: str,
) -> None:
    at = float(int(at))
    cid = "cust-" + rec["id"][:16]
    customer = shop.customers.get(cid)
    if customer is None:
        mf = rec.get("merge_fields") or {}
        customer = {
            "id": cid,
            "email_address": rec["email_address"],
            "opt_in_status": rec["status"] == "subscribed",
            "company": str(mf.get("COMPANY", "")),
            "first_name": str(mf.get("FNAME", "")),
            "last_name": str(mf.get("LNAME", "")),
            "address": dict.fromkeys(ADDRESS_KEYS, ""),
            "created_at": at,
            "updated_at": at,
        }
        shop.customers[cid] = customer
    lines = []
    total = 0.0
    for i in range(1 + int(rng.random() * 3)):
        product = products[int(rng.random() * len(products))]
        variant = product["variants"][int(rng.random() * len(product["variants"]))]
        qty = 1 + int(rng.random() * 4)
        total += qty * variant["price"]
        lines.append(
            {
                "id": f"{order_id}-l{i + 1}",
                "product_id": product["id"],
                "product_variant_id": variant["id"],
                "quantity": qty,
                "price": variant["price"],
                "discount": 0,
            }
        )
    order = new_order(order_id, cid, shop.doc["currency_code"], round(total, 2), lines, at)
    order["campaign_id"] = campaign_id
    order["financial_status"] = "paid"
    order["fulfillment_status"] = "shipped"
    order["processed_at_foreign"] = format_epoch(at)
    order["order_url"] = f"https://{SEED_DOMAIN}/customer/order/view/{order_id}"
    shop.orders[order_id] = order


def seed_oro_orders(state: Any, store: Any, shop: Shop, oro: OroMirror, now: float) -> None:
    """The Oro orders of the last ``ORO_ORDER_DAYS`` days placed by audience members (at most
    ``MAX_ORO_ORDERS``, newest first), with Oro's ids, customers, lines and totals, as an
    earlier sync would have pushed them. An order is attributed to a campaign when its buyer
    clicked that campaign at most ``ATTRIBUTION_DAYS`` before placing it (last click wins), so
    conversions can be matched back to Oro orders by id.
    """
    list_id = shop.doc["list_id"]
    clicks: dict[str, list[tuple[float, str]]] = {}
    for campaign in state.campaigns.values():
        events = campaign.events
        if events is None:
            continue
        for e in range(events.visible(now)):
            if events.kind[e] == 1:  # CLICK
                hash_ = campaign.recipients[events.who[e]]
                clicks.setdefault(hash_, []).append((events.ts[e], campaign.id))
    window = ATTRIBUTION_DAYS * 86400
    for order in oro.recent_orders(now - ORO_ORDER_DAYS * 86400, MAX_ORO_ORDERS):
        email = order.pop("_email")
        member = store.get_member(list_id, subscriber_hash(email))
        if member is None:
            continue
        created = order["created_at"]
        hits = [
            (ts, cid) for ts, cid in clicks.get(member["id"], ()) if ts <= created <= ts + window
        ]
        order["campaign_id"] = max(hits)[1] if hits else ""
        cid = order["customer_id"]
        if cid not in shop.customers:
            shop.customers[cid] = {
                **order.pop("_customer"),
                "email_address": email,
                "opt_in_status": member["status"] == "subscribed",
                "address": dict.fromkeys(ADDRESS_KEYS, ""),
                "created_at": created,
                "updated_at": created,
            }
        order.pop("_customer", None)
        shop.orders[order["id"]] = order


class OroMirror:
    """Read access to the Oro sandbox store, shaped the way tap-orocommerce emits it."""

    def __init__(self, oro_store: Any) -> None:
        self.tables: dict[str, Any] = oro_store.tables

    @classmethod
    def of(cls, store: Any) -> OroMirror | None:
        """The mirror of the Oro store this Mailchimp store was seeded next to (None if none)."""
        oro_store = getattr(store, "oro_source", None)
        tables = getattr(oro_store, "tables", None)
        if not isinstance(tables, dict) or "orders" not in tables or "products" not in tables:
            return None
        return cls(oro_store)

    def products(self) -> list[dict[str, Any]]:
        """Every Oro product as a Mailchimp product with one default variant (id = product id)."""
        out = []
        products = self.tables["products"]
        for pid in products.ids():
            rec = products.get(pid)
            if rec is None:
                continue
            title = str(rec.get("_name") or rec.get("sku"))
            out.append(
                {
                    "id": str(pid),
                    "title": title,
                    "handle": "",
                    "url": "",
                    "description": "",
                    "type": str(rec.get("productType") or ""),
                    "vendor": "",
                    "image_url": "",
                    "variants": [
                        {
                            "id": str(pid),
                            "title": title,
                            "url": "",
                            "sku": str(rec.get("sku") or ""),
                            "price": float(rec.get("_price") or 0),
                            "inventory_quantity": 0,
                            "image_url": "",
                            "backorders": "false",
                            "visibility": "visible",
                        }
                    ],
                    "images": [],
                    "published_at_foreign": format_epoch(rec.get("createdAt")),
                }
            )
        return out

    def recent_orders(self, since: float, limit: int) -> list[dict[str, Any]]:
        """Orders created at or after ``since`` (newest first, at most ``limit``), Mailchimp-shaped."""
        orders = self.tables["orders"]
        created = orders.cols["createdAt"]
        ids = sorted(
            (rid for rid in orders.ids() if created[rid - 1] >= since),
            key=lambda rid: (-created[rid - 1], rid),
        )[:limit]
        out = []
        for rid in ids:
            order = self._order(rid)
            if order is not None:
                out.append(order)
        return out

    def _order(self, rid: int) -> dict[str, Any] | None:
        rec = self.tables["orders"].get(rid)
        users = self.tables["customerusers"]
        uid = rec.get("customerUser") if rec else None
        user = users.get(uid) if isinstance(uid, int) else None
        if rec is None or user is None or not user.get("email"):
            return None
        lines = []
        items = self.tables["orderlineitems"]
        for iid in items.children("orders", rid):
            item = items.get(iid)
            if item is None or not item.get("product"):
                continue
            lines.append(
                {
                    "id": str(iid),
                    "product_id": str(item["product"]),
                    "product_variant_id": str(item["product"]),
                    "quantity": int(float(item.get("quantity") or 1)),
                    "price": float(item.get("value") or 0),
                    "discount": 0,
                }
            )
        if not lines:
            return None
        account = self.tables["customers"].get(rec.get("customer") or 0) or {}
        at = float(rec.get("createdAt") or 0)
        status = rec.get("internalStatus")
        shipping = rec.get("overriddenShippingCostAmount") or rec.get("estimatedShippingCostAmount")
        order = new_order(
            str(rid),
            str(uid),
            str(rec.get("currency") or "USD"),
            float(rec.get("totalValue") or 0),
            lines,
            at,
        )
        order.update(
            {
                "financial_status": {"closed": "paid", "cancelled": "cancelled"}.get(
                    str(status), "pending"
                ),
                "fulfillment_status": "shipped" if status == "closed" else "",
                "discount_total": float(rec.get("totalDiscountsAmount") or 0),
                "shipping_total": float(shipping or 0),
                "processed_at_foreign": format_epoch(at),
                "updated_at_foreign": format_epoch(rec.get("updatedAt")),
                "cancelled_at_foreign": format_epoch(rec.get("updatedAt"))
                if status == "cancelled"
                else "",
                "_email": str(user["email"]),
                "_customer": {
                    "id": str(uid),
                    "company": str(account.get("name") or ""),
                    "first_name": str(user.get("firstName") or ""),
                    "last_name": str(user.get("lastName") or ""),
                },
            }
        )
        return order
