"""E-commerce state and rules: stores, customers, products (+ variants); orders, carts and their
lines in `ecommerce_orders.py`.

No HTTP here: the handlers in `responses/ecommerce.py` parse a request, call these, and render.
Resources are kept as plain dicts per store, in insertion order, with float timestamps (formatted
only when rendered). Orders carrying a `campaign_id` are attributed to that campaign and feed its
report (`ecommerce` totals, `ecommerce-product-activity`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, Self

from typing_extensions import override

from ..exceptions import ApiError, FieldError
from ..schemas import request_fields
from ..values import check_type, require_keys, subscriber_hash

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
# The fields a write copies from its body, as Mailchimp's OpenAPI description lists them.
_STORE = "/ecommerce/stores/{store_id}"
STORE_KEYS = request_fields("PATCH", _STORE)
CUSTOMER_KEYS = request_fields("POST", _STORE + "/customers", exclude=("id",))
PRODUCT_KEYS = request_fields("PATCH", _STORE + "/products/{product_id}", exclude=("variants",))
VARIANT_KEYS = request_fields("PATCH", _STORE + "/products/{product_id}/variants/{variant_id}")
ORDER_KEYS = request_fields("PATCH", _STORE + "/orders/{order_id}", exclude=("customer", "lines"))
CART_KEYS = request_fields("PATCH", _STORE + "/carts/{cart_id}", exclude=("customer", "lines"))
# Spelled out, in this order, because a new line is built from it (its documents keep the order);
# tests/sandbox_mailchimp/test_ecommerce_fields.py checks it against the OpenAPI description.
LINE_KEYS = ("product_id", "product_variant_id", "quantity", "price", "discount")
SEED_DOMAIN = "shop.example.com"  # the seeded store's domain; links of a store-less account use it


def duplicate_error(kind: str) -> ApiError:
    """400 for a create whose id is taken (`kind` = store, customer, product, order ...)."""
    return ApiError.of(
        "InvalidResource", f"A {kind} with the provided ID already exists in the account."
    )


class OrderTable(dict[str, dict[str, Any]]):
    """A store's orders by id (a dict, in insertion order) that also knows each customer's orders.

    The index (customer id -> the ids of their orders, in the order they were stored) is kept on
    every insert and removal, so one customer's `orders_count`/`total_spent` costs their own orders
    rather than a pass over the store's (issue 16: that pass, once per rendered customer, was most of
    the sandbox's CPU in a 100,000-contact backfill). An order's `customer_id` never changes once
    stored (no write accepts it); its other fields, the total included, are read live.
    """

    def __init__(self, items: Iterable[tuple[str, dict[str, Any]]] = ()) -> None:
        super().__init__()
        self._by_customer: dict[str, dict[str, None]] = {}
        for key, order in items:
            self[key] = order

    def of_customer(self, customer_id: str) -> Iterator[dict[str, Any]]:
        """The orders of ``customer_id``, in the order they were stored (one stored again under
        another customer comes last)."""
        for key in self._by_customer.get(customer_id, ()):
            yield dict.__getitem__(self, key)

    def _unindex(self, key: str, order: dict[str, Any]) -> None:
        ids = self._by_customer.get(order["customer_id"])
        if ids is not None:
            ids.pop(key, None)
            if not ids:
                del self._by_customer[order["customer_id"]]

    @override
    def __setitem__(self, key: str, order: dict[str, Any]) -> None:
        old = self.get(key)
        if old is not None and old.get("customer_id") == order["customer_id"]:
            super().__setitem__(key, order)
            return
        if old is not None:
            self._unindex(key, old)
        super().__setitem__(key, order)
        self._by_customer.setdefault(order["customer_id"], {})[key] = None

    @override
    def __delitem__(self, key: str) -> None:
        self._unindex(key, self[key])
        super().__delitem__(key)

    @override
    def pop(self, key: str, *default: Any) -> Any:
        if key in self:
            order = self[key]
            del self[key]
            return order
        return super().pop(key, *default)

    @override
    def popitem(self) -> tuple[str, dict[str, Any]]:
        key, order = super().popitem()
        self._unindex(key, order)
        return key, order

    @override
    def setdefault(self, key: str, default: dict[str, Any]) -> dict[str, Any]:
        if key not in self:
            self[key] = default
        return self[key]

    @override
    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, order in dict(*args, **kwargs).items():
            self[key] = order

    @override
    def __ior__(self, other: Any) -> Self:  # type: ignore[override]
        self.update(other)
        return self

    @override
    def clear(self) -> None:
        super().clear()
        self._by_customer.clear()

    @override
    def __reduce__(self) -> Any:
        """Copies and pickles are built from the orders (their index with them)."""
        return (type(self), (list(self.items()),))


@dataclass
class Shop:
    """One e-commerce store and everything in it."""

    doc: dict[str, Any]
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    orders: OrderTable = field(default_factory=OrderTable)
    carts: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The carts written so far, oldest write first (cart id -> write number), and each cart's place
    # in `carts` (issue 16): the abandoned-cart automation looks at the carts written since its
    # last look, in the store's order, rather than at every cart on every request.
    cart_writes: int = field(default=0, compare=False, repr=False)
    written_carts: dict[str, int] = field(default_factory=dict, compare=False, repr=False)
    cart_places: dict[str, int] = field(default_factory=dict, compare=False, repr=False)
    next_cart_place: int = field(default=0, compare=False, repr=False)

    def cart_written(self, cart_id: str, *, created: bool = False) -> None:
        """Note a write of a cart (`created`: it was just added to `carts`, at their end)."""
        self.cart_writes += 1
        self.written_carts.pop(cart_id, None)
        self.written_carts[cart_id] = self.cart_writes
        if created:
            self.cart_places[cart_id] = self.next_cart_place
            self.next_cart_place += 1

    def carts_written_after(self, write: int) -> list[str]:
        """Ids of the carts written after write number ``write``, newest first."""
        out: list[str] = []
        for cart_id, number in reversed(self.written_carts.items()):
            if number <= write:
                break
            out.append(cart_id)
        return out

    def number_carts(self) -> None:
        """Give every cart its place in `carts` (so later ones can be put in that order)."""
        self.cart_places = {cart_id: i for i, cart_id in enumerate(self.carts)}
        self.next_cart_place = len(self.cart_places)

    def in_cart_order(self, cart_ids: Iterable[str]) -> list[dict[str, Any]]:
        """The carts of ``cart_ids`` that exist, in the order of `carts`."""
        found = [cart_id for cart_id in set(cart_ids) if cart_id in self.carts]
        found.sort(key=lambda cart_id: self.cart_places.get(cart_id, -1))
        return [self.carts[cart_id] for cart_id in found]

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
            orders=OrderTable((o["id"], o) for o in data["orders"]),
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


class EcommerceHost(Protocol):
    """What the e-commerce rules need from the account (the engagement state provides it)."""

    @property
    def store(self) -> Any:
        """The `MailchimpStore` (audience members are created and upgraded through it)."""

    @property
    def ecommerce(self) -> EcommerceState: ...

    @property
    def campaigns(self) -> Mapping[str, Any]:
        """Campaigns by id (`id`, `list_id`, `settings`, `type`, `send_time`)."""

    @property
    def automations(self) -> Any:
        """The automations (`attribute(host, shop, customer_id, now)` -> email id or "")."""

    @property
    def read_now(self) -> float: ...


# =========================================================================== shared rules


def now_of(host: EcommerceHost) -> float:
    """The time writes are stamped with: the account clock at the last sync, whole seconds."""
    return float(int(host.read_now))


def get_or_404(items: dict[str, dict[str, Any]], key: str) -> dict[str, Any]:
    item = items.get(key)
    if item is None:
        raise ApiError.of("ResourceNotFound")
    return item


def find_shop(host: EcommerceHost, store_id: str) -> Shop:
    shop = host.ecommerce.shops.get(store_id)
    if shop is None:
        raise ApiError.of("ResourceNotFound")
    return shop


def copy_keys(target: dict[str, Any], body: dict[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        if key in body:
            target[key] = body[key]


def check_id(body: dict[str, Any], key: str = "id", max_len: int = 50) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise FieldError(key, "This value should not be blank.")
    if len(value) > max_len:
        raise FieldError(
            key, f"This value is too long. It should have {max_len} characters or less."
        )
    return value


def check_number(body: dict[str, Any], key: str, prefix: str = "") -> None:
    check_type(body, key, "number", prefix)


def check_currency(body: dict[str, Any]) -> None:
    code = body.get("currency_code")
    if "currency_code" in body and (not isinstance(code, str) or not CURRENCY_RE.match(code)):
        raise FieldError("currency_code", "This value is not a valid currency.")


def delete_item(items: dict[str, dict[str, Any]], key: str) -> None:
    """Remove `items[key]` (404 when absent)."""
    get_or_404(items, key)
    del items[key]


# =========================================================================== member rules


def sync_member(store: Any, list_id: str, email: str, opt_in: bool, at: float) -> None:
    """Apply the e-commerce opt-in rules to the audience member behind a customer."""
    hash_ = subscriber_hash(email)
    rec = store.get_member(list_id, hash_)
    if rec is None:
        audience = store.audiences.get(list_id)
        if audience is None or hash_ in audience.forgotten:
            return
        store.create_member(
            list_id, email, "subscribed" if opt_in else "transactional", at, source="E-Commerce"
        )
    elif opt_in and rec["status"] == "transactional":
        store.set_member_status(list_id, hash_, "subscribed", at, source="E-Commerce")


# =========================================================================== stores


def validate_store(body: dict[str, Any]) -> None:
    for key in (
        "name",
        "platform",
        "domain",
        "email_address",
        "money_format",
        "primary_locale",
        "timezone",
        "phone",
    ):
        check_type(body, key, "string")
    check_type(body, "is_syncing", "boolean")
    if "address" in body:
        check_type(body, "address", "object")
    check_currency(body)


def create_store(host: EcommerceHost, body: dict[str, Any]) -> Shop:
    """POST /ecommerce/stores: a new store on an existing list (ids are unique in the account)."""
    require_keys(body, ("id", "list_id", "name", "currency_code"))
    sid = check_id(body)
    validate_store(body)
    if body["list_id"] not in host.store.lists:
        raise FieldError("list_id", "The requested list does not exist.")
    if sid in host.ecommerce.shops:
        raise duplicate_error("store")
    now = now_of(host)
    doc: dict[str, Any] = {
        "id": sid,
        "list_id": body["list_id"],
        "name": "",
        "platform": "",
        "domain": "",
        "is_syncing": False,
        "email_address": "",
        "currency_code": "",
        "money_format": "",
        "primary_locale": "",
        "timezone": "",
        "phone": "",
        "address": store_address(),
        "created_at": now,
        "updated_at": now,
    }
    copy_keys(doc, body, STORE_KEYS)
    shop = Shop(doc=doc)
    host.ecommerce.shops[sid] = shop
    return shop


def update_store(host: EcommerceHost, shop: Shop, body: dict[str, Any]) -> None:
    """PATCH a store: any field but `list_id`."""
    validate_store(body)
    if "list_id" in body and body["list_id"] != shop.doc["list_id"]:
        raise FieldError("list_id", "A store's list_id cannot be changed.")
    copy_keys(shop.doc, body, STORE_KEYS)
    shop.doc["updated_at"] = now_of(host)


def delete_store(host: EcommerceHost, shop: Shop) -> None:
    """Delete a store and everything in it."""
    del host.ecommerce.shops[shop.doc["id"]]


# =========================================================================== customers


def customer_totals(shop: Shop) -> dict[str, tuple[int, float]]:
    """(orders, money spent) per customer id of `shop`: one pass over its orders."""
    totals: dict[str, tuple[int, float]] = {}
    for order in shop.orders.values():
        count, spent = totals.get(order["customer_id"], (0, 0.0))
        totals[order["customer_id"]] = (count + 1, spent + float(order.get("order_total") or 0))
    return totals


def customer_totals_of(shop: Shop, customer_id: str) -> tuple[int, float]:
    """(orders, money spent) of one customer of `shop`, from that customer's orders only (the
    same figures as `customer_totals`, which reads every order)."""
    count, spent = 0, 0.0
    for order in shop.orders.of_customer(customer_id):
        count += 1
        spent += float(order.get("order_total") or 0)
    return count, spent


def find_customers(shop: Shop, email: str | None) -> list[dict[str, Any]]:
    """The store's customers, only those with address `email` (case-insensitive) when given."""
    customers = list(shop.customers.values())
    if email:
        low = email.strip().lower()
        customers = [c for c in customers if c["email_address"].lower() == low]
    return customers


def validate_customer(body: dict[str, Any], prefix: str = "") -> None:
    for key in ("company", "first_name", "last_name"):
        check_type(body, key, "string", prefix)
    check_type(body, "opt_in_status", "boolean", prefix)
    if "address" in body:
        check_type(body, "address", "object", prefix)
    if "email_address" in body:
        email = body["email_address"]
        if not isinstance(email, str) or not EMAIL_RE.match(email.strip()):
            raise FieldError(prefix + "email_address", "Please provide a valid email address.")


def upsert_customer(
    host: EcommerceHost,
    shop: Shop,
    cid: str,
    body: dict[str, Any],
    *,
    create_only: bool = False,
    prefix: str = "",
) -> dict[str, Any]:
    """Create or update a customer and apply the member opt-in rules."""
    validate_customer(body, prefix)
    now = now_of(host)
    customer = shop.customers.get(cid)
    if customer is None:
        if "email_address" not in body:
            raise FieldError(prefix + "email_address", "This value should not be blank.")
        customer = {
            "id": cid,
            "email_address": "",
            "opt_in_status": False,
            "company": "",
            "first_name": "",
            "last_name": "",
            "address": dict.fromkeys(ADDRESS_KEYS, ""),
            "created_at": now,
            "updated_at": now,
        }
        shop.customers[cid] = customer
    elif create_only:
        raise duplicate_error("customer")
    copy_keys(customer, body, CUSTOMER_KEYS)
    customer["email_address"] = str(customer["email_address"]).strip()
    customer["updated_at"] = now
    sync_member(
        host.store,
        shop.doc["list_id"],
        customer["email_address"],
        bool(customer["opt_in_status"]),
        now,
    )
    return customer


def create_customer(host: EcommerceHost, shop: Shop, body: dict[str, Any]) -> dict[str, Any]:
    """POST a customer (400 when the id exists)."""
    require_keys(body, ("id", "email_address", "opt_in_status"))
    return upsert_customer(host, shop, check_id(body), body, create_only=True)


def put_customer(host: EcommerceHost, shop: Shop, cid: str, body: dict[str, Any]) -> dict[str, Any]:
    """PUT (upsert) the customer `cid`: the body's id must be the path's."""
    require_keys(body, ("id", "email_address", "opt_in_status"))
    if body["id"] != cid:
        raise FieldError("id", "The customer id in the body does not match the URL.")
    return upsert_customer(host, shop, cid, body)


def patch_customer(
    host: EcommerceHost, shop: Shop, cid: str, body: dict[str, Any]
) -> dict[str, Any]:
    """PATCH an existing customer (`email_address` is not patchable and is ignored)."""
    get_or_404(shop.customers, cid)
    body = {k: v for k, v in body.items() if k != "email_address"}
    return upsert_customer(host, shop, cid, body)


# =========================================================================== products and variants


def new_variant(body: dict[str, Any], now: float, prefix: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise FieldError(prefix.rstrip("."), "Schema describes object")
    for key in ("id", "title"):
        if not isinstance(body.get(key), str) or not body[key]:
            raise FieldError(prefix + key, "This value should not be blank.")
    check_number(body, "price", prefix)
    check_type(body, "inventory_quantity", "integer", prefix)
    variant: dict[str, Any] = {
        "id": body["id"],
        "title": "",
        "url": "",
        "sku": "",
        "price": 0,
        "inventory_quantity": 0,
        "image_url": "",
        "backorders": "",
        "visibility": "",
        "created_at": now,
        "updated_at": now,
    }
    copy_keys(variant, body, VARIANT_KEYS)
    return variant


def create_product(host: EcommerceHost, shop: Shop, body: dict[str, Any]) -> dict[str, Any]:
    """POST a product with at least one variant."""
    require_keys(body, ("id", "title", "variants"))
    pid = check_id(body)
    check_type(body, "variants", "array")
    if not body["variants"]:
        raise FieldError("variants", "A product must have at least one variant.")
    if pid in shop.products:
        raise duplicate_error("product")
    now = now_of(host)
    variants = [new_variant(v, now, f"variants.item:{i}.") for i, v in enumerate(body["variants"])]
    product: dict[str, Any] = {
        "id": pid,
        "title": "",
        "handle": "",
        "url": "",
        "description": "",
        "type": "",
        "vendor": "",
        "image_url": "",
        "images": [],
        "published_at_foreign": "",
        "created_at": now,
        "updated_at": now,
    }
    copy_keys(product, body, PRODUCT_KEYS)
    product["variants"] = variants
    shop.products[pid] = product
    return product


def update_product(host: EcommerceHost, product: dict[str, Any], body: dict[str, Any]) -> None:
    """PATCH a product: its fields, and `variants` updated by id or added."""
    now = now_of(host)
    copy_keys(product, body, PRODUCT_KEYS)
    if "variants" in body:
        check_type(body, "variants", "array")
        for i, raw in enumerate(body["variants"]):
            existing = find_variant(product, raw.get("id", "")) if isinstance(raw, dict) else None
            if existing is not None:
                copy_keys(existing, raw, VARIANT_KEYS)
                existing["updated_at"] = now
            else:
                product["variants"].append(new_variant(raw, now, f"variants.item:{i}."))
    product["updated_at"] = now


def variant_or_404(product: dict[str, Any], variant_id: str) -> dict[str, Any]:
    variant = find_variant(product, variant_id)
    if variant is None:
        raise ApiError.of("ResourceNotFound")
    return variant


def add_variant(
    host: EcommerceHost, product: dict[str, Any], body: dict[str, Any]
) -> dict[str, Any]:
    """POST a variant (400 when the id exists)."""
    require_keys(body, ("id", "title"))
    if find_variant(product, body["id"]) is not None:
        raise duplicate_error("variant")
    variant = new_variant(body, now_of(host), "")
    product["variants"].append(variant)
    return variant


def put_variant(
    host: EcommerceHost, product: dict[str, Any], vid: str, body: dict[str, Any]
) -> dict[str, Any]:
    """PUT (upsert) the variant `vid`."""
    require_keys(body, ("id", "title"))
    variant = find_variant(product, vid)
    if variant is None:
        variant = new_variant({**body, "id": vid}, now_of(host), "")
        product["variants"].append(variant)
    else:
        copy_keys(variant, body, VARIANT_KEYS)
        variant["updated_at"] = now_of(host)
    return variant


def update_variant(host: EcommerceHost, variant: dict[str, Any], body: dict[str, Any]) -> None:
    check_number(body, "price")
    copy_keys(variant, body, VARIANT_KEYS)
    variant["updated_at"] = now_of(host)


def delete_variant(product: dict[str, Any], variant_id: str) -> None:
    """Remove a variant; the last one cannot go (400 Invalid Action)."""
    variant = variant_or_404(product, variant_id)
    if len(product["variants"]) == 1:
        raise ApiError.of("InvalidAction", "A product must have at least one variant.")
    product["variants"].remove(variant)
