"""E-commerce state and rules: stores, customers, products (+ variants), orders (+ lines), carts.

No HTTP here: the handlers in `responses/ecommerce.py` parse a request, call these, and render.
Resources are kept as plain dicts per store, in insertion order, with float timestamps (formatted
only when rendered). Orders carrying a `campaign_id` are attributed to that campaign and feed its
report (`ecommerce` totals, `ecommerce-product-activity`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Self

from ..common import ApiError

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
ADDRESS_KEYS = (
    "address1",
    "address2",
    "city",
    "province",
    "province_code",
    "postal_code",
    "country",
    "country_code",
)
STORE_KEYS = (
    "name",
    "platform",
    "domain",
    "is_syncing",
    "email_address",
    "currency_code",
    "money_format",
    "primary_locale",
    "timezone",
    "phone",
    "address",
)
CUSTOMER_KEYS = ("email_address", "opt_in_status", "company", "first_name", "last_name", "address")
PRODUCT_KEYS = (
    "title",
    "handle",
    "url",
    "description",
    "type",
    "vendor",
    "image_url",
    "images",
    "published_at_foreign",
)
VARIANT_KEYS = (
    "title",
    "url",
    "sku",
    "price",
    "inventory_quantity",
    "image_url",
    "backorders",
    "visibility",
)
ORDER_KEYS = (
    "campaign_id",
    "landing_site",
    "financial_status",
    "fulfillment_status",
    "currency_code",
    "order_total",
    "order_url",
    "discount_total",
    "tax_total",
    "shipping_total",
    "tracking_code",
    "processed_at_foreign",
    "cancelled_at_foreign",
    "updated_at_foreign",
    "shipping_address",
    "billing_address",
    "promos",
    "outreach",
    "tracking_number",
    "tracking_carrier",
    "tracking_url",
)
CART_KEYS = ("campaign_id", "checkout_url", "currency_code", "order_total", "tax_total")
LINE_KEYS = ("product_id", "product_variant_id", "quantity", "price", "discount")
SEED_DOMAIN = "shop.example.com"  # the seeded store's domain; links of a store-less account use it


def duplicate_error(kind: str) -> ApiError:
    """400 for a create whose id is taken (`kind` = store, customer, product, order ...)."""
    return ApiError.of(
        "InvalidResource", f"A {kind} with the provided ID already exists in the account."
    )


@dataclass
class Shop:
    """One e-commerce store and everything in it."""

    doc: dict[str, Any]
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    carts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def dump(self) -> dict[str, Any]:
        return {
            "doc": self.doc,
            "customers": list(self.customers.values()),
            "products": list(self.products.values()),
            "orders": list(self.orders.values()),
            "carts": list(self.carts.values()),
        }

    @classmethod
    def load(cls, data: dict[str, Any]) -> Shop:
        return cls(
            doc=data["doc"],
            customers={c["id"]: c for c in data["customers"]},
            products={p["id"]: p for p in data["products"]},
            orders={o["id"]: o for o in data["orders"]},
            carts={c["id"]: c for c in data["carts"]},
        )


class EcommerceState:
    """All stores of the account."""

    def __init__(self) -> None:
        self.shops: dict[str, Shop] = {}

    def domain(self) -> str:
        for shop in self.shops.values():
            if shop.doc.get("domain"):
                return str(shop.doc["domain"])
        return SEED_DOMAIN

    def dump(self) -> dict[str, Any]:
        return {"shops": [s.dump() for s in self.shops.values()]}

    @classmethod
    def load(cls, data: dict[str, Any]) -> Self:
        state = cls()
        for raw in data.get("shops", []):
            shop = Shop.load(raw)
            state.shops[shop.doc["id"]] = shop
        return state

    # ------------------------------------------------------------------ attribution

    def attributed(self, campaign_id: str) -> list[tuple[Shop, dict[str, Any]]]:
        return [
            (shop, order)
            for shop in self.shops.values()
            for order in shop.orders.values()
            if order.get("campaign_id") == campaign_id
        ]

    def campaign_totals(self, campaign_id: str) -> dict[str, Any]:
        """Report `ecommerce{}`: orders, spent (all attributed) and revenue (not cancelled/refunded)."""
        orders = self.attributed(campaign_id)
        spent = sum(float(o.get("order_total") or 0) for _, o in orders)
        revenue = sum(float(o.get("order_total") or 0) for _, o in orders if not is_voided(o))
        currency = orders[0][1].get("currency_code") if orders else self._currency()
        return {
            "total_orders": len(orders),
            "total_spent": round(spent, 2),
            "total_revenue": round(revenue, 2),
            "currency_code": currency,
        }

    def _currency(self) -> str:
        for shop in self.shops.values():
            return str(shop.doc.get("currency_code", "USD"))
        return "USD"

    def product_activity(self, campaign_id: str) -> list[dict[str, Any]]:
        """Per product: revenue and units from the campaign's attributed (non-voided) orders."""
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for shop, order in self.attributed(campaign_id):
            if is_voided(order):
                continue
            for line in order.get("lines", []):
                product = shop.products.get(line["product_id"], {})
                variant = find_variant(product, line["product_variant_id"]) or {}
                key = (shop.doc["id"], line["product_id"])
                row = out.setdefault(
                    key,
                    {
                        "title": product.get("title", ""),
                        "sku": variant.get("sku", ""),
                        "image_url": product.get("image_url", ""),
                        "total_revenue": 0.0,
                        "total_purchased": 0.0,
                        "currency_code": order.get("currency_code", "USD"),
                        "recommendation_total": 0,
                        "recommendation_purchased": 0,
                    },
                )
                qty = float(line.get("quantity") or 0)
                row["total_revenue"] = round(
                    row["total_revenue"]
                    + qty * float(line.get("price") or 0)
                    - float(line.get("discount") or 0),
                    2,
                )
                row["total_purchased"] += qty
        return list(out.values())

    # ------------------------------------------------------------------ seeding


def new_order(
    order_id: str,
    customer_id: str,
    currency: str,
    total: float,
    lines: list[dict[str, Any]],
    at: float,
) -> dict[str, Any]:
    return {
        "id": order_id,
        "customer_id": customer_id,
        "campaign_id": "",
        "landing_site": "",
        "financial_status": "",
        "fulfillment_status": "",
        "currency_code": currency,
        "order_total": total,
        "order_url": "",
        "discount_total": 0,
        "tax_total": 0,
        "shipping_total": 0,
        "tracking_code": "",
        "processed_at_foreign": "",
        "cancelled_at_foreign": "",
        "updated_at_foreign": "",
        "shipping_address": {},
        "billing_address": {},
        "promos": [],
        "lines": lines,
        "outreach_id": "",
        "tracking_number": "",
        "tracking_carrier": "",
        "tracking_url": "",
        "created_at": at,
        "updated_at": at,
    }


def store_address() -> dict[str, Any]:
    return {**dict.fromkeys(ADDRESS_KEYS, ""), "longitude": 0, "latitude": 0}


def is_voided(order: dict[str, Any]) -> bool:
    return bool(order.get("cancelled_at_foreign")) or order.get("financial_status") in (
        "cancelled",
        "refunded",
    )


def find_variant(product: dict[str, Any], variant_id: str) -> dict[str, Any] | None:
    for v in product.get("variants", []):
        if v["id"] == variant_id:
            return v
    return None
