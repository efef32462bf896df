"""E-commerce API: stores, customers, products (+ variants), orders (+ lines), carts.

State and rules live in `models/ecommerce.py`, the start-up seed in `seed_ecommerce.py`; this module
keeps the names the engagement half uses (`EcommerceState` with its seed methods, `Shop`, `routes`).
Customers created here join the store's audience as `subscribed` (opt_in_status true) or
`transactional` (false); an existing member's status is never downgraded, only a transactional
member is upgraded by a later opt-in.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from . import seed_ecommerce
from .common import (
    ApiError,
    Ctx,
    check_type,
    collection_page,
    field_error,
    format_epoch,
    item_links,
    links,
    mc_endpoint,
    method_routes,
    parse_bool,
    require_keys,
    require_object,
    subscriber_hash,
)
from .models import ecommerce as model
from .models.ecommerce import (
    ADDRESS_KEYS,
    CART_KEYS,
    CURRENCY_RE,
    CUSTOMER_KEYS,
    EMAIL_RE,
    LINE_KEYS,
    ORDER_KEYS,
    PRODUCT_KEYS,
    STORE_KEYS,
    VARIANT_KEYS,
    Shop,
)
from .models.ecommerce import duplicate_error as _dup
from .models.ecommerce import find_variant as _variant
from .models.ecommerce import new_order as _new_order
from .models.ecommerce import store_address as _store_address

if TYPE_CHECKING:
    from .engagement import EngagementState

__all__ = ["EcommerceState", "Shop", "routes", "sync_member", "upsert_customer"]


class EcommerceState(model.EcommerceState):
    """The account's stores, plus the seed entry points `engagement.seed_engagement` calls."""

    def seed_store(self, store: Any, list_id: str, now: float, rng: random.Random) -> Shop:
        return seed_ecommerce.seed_store(self, store, list_id, now, rng)

    def seed_orders(
        self, state: EngagementState, store: Any, now: float, rng: random.Random
    ) -> None:
        seed_ecommerce.seed_orders(self, state, store, now, rng)


# =========================================================================== helpers for handlers


def _state(ctx: Ctx) -> EngagementState:
    from .campaigns import engagement

    return engagement(ctx)


def _shop(ctx: Ctx) -> tuple[EngagementState, Shop]:
    state = _state(ctx)
    shop = state.ecommerce.shops.get(ctx.request.path_params["store_id"])
    if shop is None:
        raise ApiError.of("ResourceNotFound")
    return state, shop


def _get(items: dict[str, dict[str, Any]], key: str) -> dict[str, Any]:
    item = items.get(key)
    if item is None:
        raise ApiError.of("ResourceNotFound")
    return item


def _now(state: EngagementState) -> float:
    return float(int(state.read_now))


def _copy_keys(target: dict[str, Any], body: dict[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        if key in body:
            target[key] = body[key]


def _check_id(body: dict[str, Any], key: str = "id", max_len: int = 50) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise field_error(key, "This value should not be blank.")
    if len(value) > max_len:
        raise field_error(
            key, f"This value is too long. It should have {max_len} characters or less."
        )
    return value


def _check_number(body: dict[str, Any], key: str, prefix: str = "") -> None:
    check_type(body, key, "number", prefix)


def _check_currency(body: dict[str, Any]) -> None:
    code = body.get("currency_code")
    if "currency_code" in body and (not isinstance(code, str) or not CURRENCY_RE.match(code)):
        raise field_error("currency_code", "This value is not a valid currency.")


def _check_address(body: dict[str, Any], key: str) -> None:
    if key in body:
        check_type(body, key, "object")


def _stamp(doc: dict[str, Any]) -> dict[str, Any]:
    """Copy of an internal doc with float times formatted."""
    out = dict(doc)
    for key in ("created_at", "updated_at"):
        if isinstance(out.get(key), (int, float)):
            out[key] = format_epoch(out[key])
    return out


def _shop_page(
    request: Request,
    ctx: Ctx,
    shop: Shop,
    kind: str,
    items: list[Any],
    doc: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
    """One page of a store's `kind` collection (customers, products, orders, carts)."""
    sid = shop.doc["id"]
    path = f"/ecommerce/stores/{sid}"
    return collection_page(
        request, ctx, kind, items, doc, f"{path}/{kind}", path, ("POST",), head={"store_id": sid}
    )


def _delete_item(ctx: Ctx, items: dict[str, dict[str, Any]], param: str) -> None:
    """Remove the item named by path parameter `param` (404 when absent)."""
    key = ctx.request.path_params[param]
    _get(items, key)
    del items[key]
    ctx.items = 1


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


def _store_doc(request: Request, shop: Shop) -> dict[str, Any]:
    doc = _stamp(shop.doc)
    sid = shop.doc["id"]
    doc["list_is_active"] = True
    doc["connected_site"] = {"site_foreign_id": sid, "site_script": {"url": "", "fragment": ""}}
    doc["automations"] = {
        "abandoned_cart": {"is_supported": True, "id": "", "status": "save"},
        "abandoned_browse": {"is_supported": True, "id": "", "status": "save"},
    }
    doc["_links"] = item_links(request, f"/ecommerce/stores/{sid}", "/ecommerce/stores")
    return doc


def _validate_store(body: dict[str, Any]) -> None:
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
    _check_address(body, "address")
    _check_currency(body)


@mc_endpoint
async def get_stores(request: Request, ctx: Ctx) -> dict[str, Any]:
    state = _state(ctx)
    shops = list(state.ecommerce.shops.values())
    return collection_page(
        request,
        ctx,
        "stores",
        shops,
        lambda s: _store_doc(request, s),
        "/ecommerce/stores",
        None,
        ("POST",),
    )


@mc_endpoint(paged=False)
async def post_store(request: Request, ctx: Ctx) -> dict[str, Any]:
    state = _state(ctx)
    body = require_object(ctx.json)
    require_keys(body, ("id", "list_id", "name", "currency_code"))
    sid = _check_id(body)
    _validate_store(body)
    if body["list_id"] not in ctx.store.lists:
        raise field_error("list_id", "The requested list does not exist.")
    if sid in state.ecommerce.shops:
        raise _dup("store")
    now = _now(state)
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
        "address": _store_address(),
        "created_at": now,
        "updated_at": now,
    }
    _copy_keys(doc, body, STORE_KEYS)
    shop = Shop(doc=doc)
    state.ecommerce.shops[sid] = shop
    ctx.items = 1
    return _store_doc(request, shop)


@mc_endpoint(paged=False)
async def get_store(request: Request, ctx: Ctx) -> dict[str, Any]:
    _, shop = _shop(ctx)
    ctx.items = 1
    return _store_doc(request, shop)


@mc_endpoint(paged=False)
async def patch_store(request: Request, ctx: Ctx) -> dict[str, Any]:
    state, shop = _shop(ctx)
    body = require_object(ctx.json)
    _validate_store(body)
    if "list_id" in body and body["list_id"] != shop.doc["list_id"]:
        raise field_error("list_id", "A store's list_id cannot be changed.")
    _copy_keys(shop.doc, body, STORE_KEYS)
    shop.doc["updated_at"] = _now(state)
    ctx.items = 1
    return _store_doc(request, shop)


@mc_endpoint(paged=False)
async def delete_store(request: Request, ctx: Ctx) -> None:
    state, shop = _shop(ctx)
    del state.ecommerce.shops[shop.doc["id"]]
    ctx.items = 1


# =========================================================================== customers


def _customer_totals(request: Request, shop: Shop) -> dict[str, tuple[int, float]]:
    """Orders and money spent per customer of ``shop``: one pass over its orders per request.

    Cached on the request (a `/batches` operation is a request of its own, so it sees the writes of
    the operations before it), so a page of 1,000 customers or orders, each showing its customer's
    totals, reads the orders once rather than once per item (issue 16: O(page x orders) made a
    100,000-customer store's pages take seconds of sandbox CPU each).
    """
    cached = getattr(request.state, "customer_totals", None)
    if cached is not None and cached[0] is shop:
        totals: dict[str, tuple[int, float]] = cached[1]
        return totals
    totals = {}
    for order in shop.orders.values():
        count, spent = totals.get(order["customer_id"], (0, 0.0))
        totals[order["customer_id"]] = (count + 1, spent + float(order.get("order_total") or 0))
    request.state.customer_totals = (shop, totals)
    return totals


def _customer_doc(request: Request, shop: Shop, customer: dict[str, Any]) -> dict[str, Any]:
    doc = _stamp(customer)
    count, spent = _customer_totals(request, shop).get(customer["id"], (0, 0.0))
    doc["orders_count"] = count
    doc["total_spent"] = round(spent, 2)
    path = f"/ecommerce/stores/{shop.doc['id']}/customers/{customer['id']}"
    doc["_links"] = item_links(
        request, path, f"/ecommerce/stores/{shop.doc['id']}/customers", upsert=True
    )
    return doc


def _validate_customer(body: dict[str, Any], prefix: str = "") -> None:
    for key in ("company", "first_name", "last_name"):
        check_type(body, key, "string", prefix)
    check_type(body, "opt_in_status", "boolean", prefix)
    if "address" in body:
        check_type(body, "address", "object", prefix)
    if "email_address" in body:
        email = body["email_address"]
        if not isinstance(email, str) or not EMAIL_RE.match(email.strip()):
            raise field_error(prefix + "email_address", "Please provide a valid email address.")


def upsert_customer(
    state: EngagementState,
    shop: Shop,
    cid: str,
    body: dict[str, Any],
    *,
    create_only: bool = False,
    prefix: str = "",
) -> dict[str, Any]:
    """Create or update a customer and apply the member opt-in rules."""
    _validate_customer(body, prefix)
    now = _now(state)
    customer = shop.customers.get(cid)
    if customer is None:
        if "email_address" not in body:
            raise field_error(prefix + "email_address", "This value should not be blank.")
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
        raise _dup("customer")
    _copy_keys(customer, body, CUSTOMER_KEYS)
    customer["email_address"] = str(customer["email_address"]).strip()
    customer["updated_at"] = now
    sync_member(
        state.store,
        shop.doc["list_id"],
        customer["email_address"],
        bool(customer["opt_in_status"]),
        now,
    )
    return customer


@mc_endpoint
async def get_customers(request: Request, ctx: Ctx) -> dict[str, Any]:
    _, shop = _shop(ctx)
    customers = list(shop.customers.values())
    email = request.query_params.get("email_address")
    if email:
        low = email.strip().lower()
        customers = [c for c in customers if c["email_address"].lower() == low]
    return _shop_page(
        request, ctx, shop, "customers", customers, lambda c: _customer_doc(request, shop, c)
    )


@mc_endpoint(paged=False)
async def post_customer(request: Request, ctx: Ctx) -> dict[str, Any]:
    state, shop = _shop(ctx)
    body = require_object(ctx.json)
    require_keys(body, ("id", "email_address", "opt_in_status"))
    cid = _check_id(body)
    customer = upsert_customer(state, shop, cid, body, create_only=True)
    ctx.items = 1
    return _customer_doc(request, shop, customer)


@mc_endpoint(paged=False)
async def get_customer(request: Request, ctx: Ctx) -> dict[str, Any]:
    _, shop = _shop(ctx)
    ctx.items = 1
    return _customer_doc(request, shop, _get(shop.customers, request.path_params["customer_id"]))


@mc_endpoint(paged=False)
async def put_customer(request: Request, ctx: Ctx) -> dict[str, Any]:
    state, shop = _shop(ctx)
    body = require_object(ctx.json)
    require_keys(body, ("id", "email_address", "opt_in_status"))
    cid = request.path_params["customer_id"]
    if body["id"] != cid:
        raise field_error("id", "The customer id in the body does not match the URL.")
    customer = upsert_customer(state, shop, cid, body)
    ctx.items = 1
    return _customer_doc(request, shop, customer)


@mc_endpoint(paged=False)
async def patch_customer(request: Request, ctx: Ctx) -> dict[str, Any]:
    state, shop = _shop(ctx)
    body = require_object(ctx.json)
    cid = request.path_params["customer_id"]
    _get(shop.customers, cid)
    body = {k: v for k, v in body.items() if k != "email_address"}  # not patchable
    customer = upsert_customer(state, shop, cid, body)
    ctx.items = 1
    return _customer_doc(request, shop, customer)


@mc_endpoint(paged=False)
async def delete_customer(request: Request, ctx: Ctx) -> None:
    _, shop = _shop(ctx)
    _delete_item(ctx, shop.customers, "customer_id")


# =========================================================================== products and variants


def _product_doc(request: Request, shop: Shop, product: dict[str, Any]) -> dict[str, Any]:
    doc = {k: v for k, v in product.items() if k not in ("created_at", "updated_at")}
    doc["currency_code"] = shop.doc.get("currency_code", "")
    path = f"/ecommerce/stores/{shop.doc['id']}/products/{product['id']}"
    doc["variants"] = [
        {**_stamp(v), "_links": links(request, ("self", f"{path}/variants/{v['id']}"))}
        for v in product["variants"]
    ]
    doc["_links"] = item_links(
        request, path, f"/ecommerce/stores/{shop.doc['id']}/products", sub="variants"
    )
    return doc


def _new_variant(body: dict[str, Any], now: float, prefix: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise field_error(prefix.rstrip("."), "Schema describes object")
    for key in ("id", "title"):
        if not isinstance(body.get(key), str) or not body[key]:
            raise field_error(prefix + key, "This value should not be blank.")
    _check_number(body, "price", prefix)
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
    _copy_keys(variant, body, VARIANT_KEYS)
    return variant


@mc_endpoint
async def get_products(request: Request, ctx: Ctx) -> dict[str, Any]:
    _, shop = _shop(ctx)
    products = list(shop.products.values())
    return _shop_page(
        request, ctx, shop, "products", products, lambda p: _product_doc(request, shop, p)
    )


@mc_endpoint(paged=False)
async def post_product(request: Request, ctx: Ctx) -> dict[str, Any]:
    state, shop = _shop(ctx)
    body = require_object(ctx.json)
    require_keys(body, ("id", "title", "variants"))
    pid = _check_id(body)
    check_type(body, "variants", "array")
    if not body["variants"]:
        raise field_error("variants", "A product must have at least one variant.")
    if pid in shop.products:
        raise _dup("product")
    now = _now(state)
    variants = [_new_variant(v, now, f"variants.item:{i}.") for i, v in enumerate(body["variants"])]
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
    _copy_keys(product, body, PRODUCT_KEYS)
    product["variants"] = variants
    shop.products[pid] = product
    ctx.items = 1
    return _product_doc(request, shop, product)


@mc_endpoint(paged=False)
async def get_product(request: Request, ctx: Ctx) -> dict[str, Any]:
    _, shop = _shop(ctx)
    ctx.items = 1
    return _product_doc(request, shop, _get(shop.products, request.path_params["product_id"]))


@mc_endpoint(paged=False)
async def patch_product(request: Request, ctx: Ctx) -> dict[str, Any]:
    state, shop = _shop(ctx)
    product = _get(shop.products, request.path_params["product_id"])
    body = require_object(ctx.json)
    now = _now(state)
    _copy_keys(product, body, PRODUCT_KEYS)
    if "variants" in body:
        check_type(body, "variants", "array")
        for i, raw in enumerate(body["variants"]):
            existing = _variant(product, raw.get("id", "")) if isinstance(raw, dict) else None
            if existing is not None:
                _copy_keys(existing, raw, VARIANT_KEYS)
                existing["updated_at"] = now
            else:
                product["variants"].append(_new_variant(raw, now, f"variants.item:{i}."))
    product["updated_at"] = now
    ctx.items = 1
    return _product_doc(request, shop, product)


@mc_endpoint(paged=False)
async def delete_product(request: Request, ctx: Ctx) -> None:
    _, shop = _shop(ctx)
    _delete_item(ctx, shop.products, "product_id")


def _variant_doc(
    request: Request, shop: Shop, product: dict[str, Any], variant: dict[str, Any]
) -> dict[str, Any]:
    path = f"/ecommerce/stores/{shop.doc['id']}/products/{product['id']}/variants/{variant['id']}"
    return {
        **_stamp(variant),
        "_links": links(
            request,
            ("self", path),
            ("update", path, "PATCH"),
            ("upsert", path, "PUT"),
            ("delete", path, "DELETE"),
        ),
    }


def _variant_of(product: dict[str, Any], variant_id: str) -> dict[str, Any]:
    variant = _variant(product, variant_id)
    if variant is None:
        raise ApiError.of("ResourceNotFound")
    return variant


def _product_for_variants(ctx: Ctx) -> tuple[EngagementState, Shop, dict[str, Any]]:
    state, shop = _shop(ctx)
    return state, shop, _get(shop.products, ctx.request.path_params["product_id"])


@mc_endpoint
async def get_variants(request: Request, ctx: Ctx) -> dict[str, Any]:
    _, shop, product = _product_for_variants(ctx)
    return collection_page(
        request,
        ctx,
        "variants",
        product["variants"],
        lambda v: _variant_doc(request, shop, product, v),
        f"/ecommerce/stores/{shop.doc['id']}/products/{product['id']}/variants",
        None,
        ("POST",),
        head={"store_id": shop.doc["id"], "product_id": product["id"]},
    )


@mc_endpoint(paged=False)
async def post_variant(request: Request, ctx: Ctx) -> dict[str, Any]:
    state, shop, product = _product_for_variants(ctx)
    body = require_object(ctx.json)
    require_keys(body, ("id", "title"))
    if _variant(product, body["id"]) is not None:
        raise _dup("variant")
    variant = _new_variant(body, _now(state), "")
    product["variants"].append(variant)
    ctx.items = 1
    return _variant_doc(request, shop, product, variant)


@mc_endpoint(paged=False)
async def get_variant_one(request: Request, ctx: Ctx) -> dict[str, Any]:
    _, shop, product = _product_for_variants(ctx)
    variant = _variant_of(product, request.path_params["variant_id"])
    ctx.items = 1
    return _variant_doc(request, shop, product, variant)


@mc_endpoint(paged=False)
async def put_variant(request: Request, ctx: Ctx) -> dict[str, Any]:
    state, shop, product = _product_for_variants(ctx)
    body = require_object(ctx.json)
    require_keys(body, ("id", "title"))
    vid = request.path_params["variant_id"]
    variant = _variant(product, vid)
    if variant is None:
        variant = _new_variant({**body, "id": vid}, _now(state), "")
        product["variants"].append(variant)
    else:
        _copy_keys(variant, body, VARIANT_KEYS)
        variant["updated_at"] = _now(state)
    ctx.items = 1
    return _variant_doc(request, shop, product, variant)


@mc_endpoint(paged=False)
async def patch_variant(request: Request, ctx: Ctx) -> dict[str, Any]:
    state, shop, product = _product_for_variants(ctx)
    body = require_object(ctx.json)
    variant = _variant_of(product, request.path_params["variant_id"])
    _check_number(body, "price")
    _copy_keys(variant, body, VARIANT_KEYS)
    variant["updated_at"] = _now(state)
    ctx.items = 1
    return _variant_doc(request, shop, product, variant)


@mc_endpoint(paged=False)
async def delete_variant(request: Request, ctx: Ctx) -> None:
    _, _, product = _product_for_variants(ctx)
    variant = _variant_of(product, request.path_params["variant_id"])
    if len(product["variants"]) == 1:
        raise ApiError.of("InvalidAction", "A product must have at least one variant.")
    product["variants"].remove(variant)
    ctx.items = 1


# =========================================================================== orders and carts


def _check_lines(shop: Shop, lines: Any, prefix: str = "lines") -> list[dict[str, Any]]:
    if not isinstance(lines, list):
        raise field_error(prefix, "Schema describes array")
    out = []
    for i, raw in enumerate(lines):
        where = f"{prefix}.item:{i}."
        if not isinstance(raw, dict):
            raise field_error(where.rstrip("."), "Schema describes object")
        out.append(_check_line(shop, raw, where))
    return out


def _check_line(
    shop: Shop, raw: dict[str, Any], where: str, partial: bool = False
) -> dict[str, Any]:
    required = () if partial else ("id", "product_id", "product_variant_id", "quantity", "price")
    missing = [k for k in required if k not in raw]
    if missing:
        raise field_error(where + missing[0], "This value should not be blank.")
    check_type(raw, "quantity", "integer", where)
    _check_number(raw, "price", where)
    _check_number(raw, "discount", where)
    if "product_id" in raw or "product_variant_id" in raw:
        product = shop.products.get(raw.get("product_id", ""))
        if product is None:
            raise field_error(
                where + "product_id",
                "Product not found.",
                "A product with the provided ID does not exist in the account for this list.",
            )
        if _variant(product, raw.get("product_variant_id", "")) is None:
            raise field_error(
                where + "product_variant_id",
                "Variant not found.",
                "A product variant with the provided ID does not exist in the account for this list.",
            )
    line: dict[str, Any] = {"id": raw.get("id", "")}
    _copy_keys(line, raw, LINE_KEYS)
    line.setdefault("discount", 0)
    return line


def _line_doc(request: Request, shop: Shop, line: dict[str, Any], parent: str) -> dict[str, Any]:
    product = shop.products.get(line.get("product_id", ""), {})
    variant = _variant(product, line.get("product_variant_id", "")) or {}
    return {
        **line,
        "product_title": product.get("title", ""),
        "product_variant_title": variant.get("title", ""),
        "image_url": variant.get("image_url") or product.get("image_url", ""),
        "_links": links(
            request, ("self", f"{parent}/lines/{line['id']}"), ("parent", f"{parent}/lines")
        ),
    }


def _check_campaign(state: EngagementState, shop: Shop, campaign_id: Any) -> str:
    if campaign_id in (None, ""):
        return ""
    campaign = state.campaigns.get(str(campaign_id))
    if campaign is None or campaign.list_id != shop.doc["list_id"]:
        raise field_error(
            "campaign_id",
            "Campaign not found.",
            "A campaign with the provided ID does not exist in the account for this list.",
        )
    return campaign.id


def _order_doc(
    request: Request, state: EngagementState, shop: Shop, order: dict[str, Any]
) -> dict[str, Any]:
    sid = shop.doc["id"]
    path = f"/ecommerce/stores/{sid}/orders/{order['id']}"
    doc = {k: v for k, v in order.items() if k not in ("created_at", "updated_at")}
    customer = shop.customers.get(order["customer_id"])
    doc.pop("customer_id")
    outreach_id = doc.pop("outreach_id", "") or order.get("campaign_id", "")
    doc["customer"] = (
        _customer_doc(request, shop, customer) if customer else {"id": order["customer_id"]}
    )
    doc["store_id"] = sid
    doc["lines"] = [_line_doc(request, shop, line, path) for line in order["lines"]]
    campaign = state.campaigns.get(outreach_id) if outreach_id else None
    if campaign is not None:
        doc["outreach"] = {
            "id": campaign.id,
            "name": campaign.settings.get("title", ""),
            "type": "automation" if campaign.type == "automation" else "regular",
            "published_time": format_epoch(campaign.send_time) if campaign.send_time else "",
        }
    elif outreach_id:
        doc["outreach"] = {"id": outreach_id, "name": "", "type": "", "published_time": ""}
    else:
        doc["outreach"] = {}
    doc["_links"] = item_links(request, path, f"/ecommerce/stores/{sid}/orders", sub="lines")
    return doc


def _validate_order_fields(body: dict[str, Any]) -> None:
    for key in ("order_total", "discount_total", "tax_total", "shipping_total"):
        _check_number(body, key)
    for key in (
        "financial_status",
        "fulfillment_status",
        "landing_site",
        "order_url",
        "processed_at_foreign",
        "cancelled_at_foreign",
        "updated_at_foreign",
    ):
        check_type(body, key, "string")
    _check_currency(body)
    if "outreach" in body:
        check_type(body, "outreach", "object")


def _filter_orders(
    request: Request, pairs: list[tuple[Shop, dict[str, Any]]]
) -> list[tuple[Shop, dict[str, Any]]]:
    q = request.query_params
    if q.get("campaign_id"):
        pairs = [p for p in pairs if p[1].get("campaign_id") == q["campaign_id"]]
    if q.get("outreach_id"):
        pairs = [
            p
            for p in pairs
            if (p[1].get("outreach_id") or p[1].get("campaign_id")) == q["outreach_id"]
        ]
    if q.get("customer_id"):
        pairs = [p for p in pairs if p[1]["customer_id"] == q["customer_id"]]
    if q.get("has_outreach") not in (None, ""):
        wanted = parse_bool(request, "has_outreach")
        pairs = [
            p for p in pairs if bool(p[1].get("outreach_id") or p[1].get("campaign_id")) == wanted
        ]
    return pairs


@mc_endpoint
async def get_orders(request: Request, ctx: Ctx) -> dict[str, Any]:
    state, shop = _shop(ctx)
    pairs = _filter_orders(request, [(shop, o) for o in shop.orders.values()])
    return _shop_page(
        request, ctx, shop, "orders", pairs, lambda p: _order_doc(request, state, p[0], p[1])
    )


@mc_endpoint
async def get_account_orders(request: Request, ctx: Ctx) -> dict[str, Any]:
    state = _state(ctx)
    pairs = _filter_orders(
        request, [(s, o) for s in state.ecommerce.shops.values() for o in s.orders.values()]
    )
    return collection_page(
        request,
        ctx,
        "orders",
        pairs,
        lambda p: _order_doc(request, state, p[0], p[1]),
        "/ecommerce/orders",
    )


def _order_customer(state: EngagementState, shop: Shop, body: dict[str, Any]) -> str:
    raw = body["customer"]
    if not isinstance(raw, dict):
        raise field_error("customer", "Schema describes object")
    cid = _check_id(raw, "id")
    fields = {k: v for k, v in raw.items() if k in CUSTOMER_KEYS}
    if cid in shop.customers and not fields:
        return cid
    upsert_customer(state, shop, cid, fields, prefix="customer.")
    return cid


def _order_parts(
    state: EngagementState, shop: Shop, body: dict[str, Any]
) -> tuple[str, list[dict[str, Any]], str]:
    """(campaign id, lines, customer id) of a new order or cart, checked in that order."""
    campaign_id = _check_campaign(state, shop, body.get("campaign_id"))
    lines = _check_lines(shop, body["lines"])
    return campaign_id, lines, _order_customer(state, shop, body)


@mc_endpoint(paged=False)
async def post_order(request: Request, ctx: Ctx) -> dict[str, Any]:
    state, shop = _shop(ctx)
    body = require_object(ctx.json)
    require_keys(body, ("id", "customer", "currency_code", "order_total", "lines"))
    oid = _check_id(body)
    _validate_order_fields(body)
    if oid in shop.orders:
        raise _dup("order")
    campaign_id, lines, customer_id = _order_parts(state, shop, body)
    now = _now(state)
    order = _new_order(
        oid, customer_id, body["currency_code"], float(body["order_total"]), lines, now
    )
    _copy_keys(order, body, ORDER_KEYS)
    order["campaign_id"] = campaign_id or state.automations.attribute(state, shop, customer_id, now)
    outreach = body.get("outreach") or {}
    order["outreach_id"] = str(outreach.get("id", "")) if isinstance(outreach, dict) else ""
    order.pop("outreach", None)
    shop.orders[oid] = order
    ctx.items = 1
    return _order_doc(request, state, shop, order)


@mc_endpoint(paged=False)
async def get_order(request: Request, ctx: Ctx) -> dict[str, Any]:
    state, shop = _shop(ctx)
    ctx.items = 1
    return _order_doc(request, state, shop, _get(shop.orders, request.path_params["order_id"]))


@mc_endpoint(paged=False)
async def patch_order(request: Request, ctx: Ctx) -> dict[str, Any]:
    state, shop = _shop(ctx)
    order = _get(shop.orders, request.path_params["order_id"])
    body = require_object(ctx.json)
    _validate_order_fields(body)
    if "campaign_id" in body:
        order["campaign_id"] = _check_campaign(state, shop, body["campaign_id"])
    if "lines" in body:
        check_type(body, "lines", "array")
        for i, raw in enumerate(body["lines"]):
            line = _check_line(shop, raw, f"lines.item:{i}.", partial=True)
            existing = next((x for x in order["lines"] if x["id"] == line["id"]), None)
            if existing is not None:
                existing.update({k: v for k, v in line.items() if k != "id"})
            else:
                order["lines"].append(_check_line(shop, raw, f"lines.item:{i}."))
    _copy_keys(
        order, {k: v for k, v in body.items() if k not in ("campaign_id", "outreach")}, ORDER_KEYS
    )
    if isinstance(body.get("outreach"), dict):
        order["outreach_id"] = str(body["outreach"].get("id", ""))
    if isinstance(body.get("customer"), dict) and "opt_in_status" in body["customer"]:
        upsert_customer(
            state,
            shop,
            order["customer_id"],
            {"opt_in_status": body["customer"]["opt_in_status"]},
            prefix="customer.",
        )
    order["updated_at"] = _now(state)
    ctx.items = 1
    return _order_doc(request, state, shop, order)


@mc_endpoint(paged=False)
async def delete_order(request: Request, ctx: Ctx) -> None:
    _, shop = _shop(ctx)
    _delete_item(ctx, shop.orders, "order_id")


def _validate_cart_fields(body: dict[str, Any]) -> None:
    _validate_order_fields(
        {k: v for k, v in body.items() if k in ("currency_code", "order_total", "tax_total")}
    )
    check_type(body, "checkout_url", "string")


def _cart_doc(request: Request, shop: Shop, cart: dict[str, Any]) -> dict[str, Any]:
    sid = shop.doc["id"]
    path = f"/ecommerce/stores/{sid}/carts/{cart['id']}"
    doc = _stamp(cart)
    customer = shop.customers.get(doc.pop("customer_id"))
    doc["customer"] = (
        _customer_doc(request, shop, customer) if customer else {"id": cart["customer_id"]}
    )
    doc["lines"] = [_line_doc(request, shop, line, path) for line in cart["lines"]]
    doc["store_id"] = sid
    doc["_links"] = item_links(request, path, f"/ecommerce/stores/{sid}/carts", sub="lines")
    return doc


@mc_endpoint
async def get_carts(request: Request, ctx: Ctx) -> dict[str, Any]:
    _, shop = _shop(ctx)
    carts = list(shop.carts.values())
    return _shop_page(request, ctx, shop, "carts", carts, lambda c: _cart_doc(request, shop, c))


@mc_endpoint(paged=False)
async def post_cart(request: Request, ctx: Ctx) -> dict[str, Any]:
    state, shop = _shop(ctx)
    body = require_object(ctx.json)
    require_keys(body, ("id", "customer", "currency_code", "order_total", "lines"))
    cart_id = _check_id(body)
    _validate_cart_fields(body)
    if cart_id in shop.carts:
        raise _dup("cart")
    campaign_id, lines, customer_id = _order_parts(state, shop, body)
    now = _now(state)
    cart: dict[str, Any] = {
        "id": cart_id,
        "customer_id": customer_id,
        "campaign_id": "",
        "checkout_url": "",
        "currency_code": "",
        "order_total": 0,
        "tax_total": 0,
        "lines": lines,
        "created_at": now,
        "updated_at": now,
    }
    _copy_keys(cart, body, CART_KEYS)
    cart["campaign_id"] = campaign_id
    shop.carts[cart_id] = cart
    ctx.items = 1
    return _cart_doc(request, shop, cart)


@mc_endpoint(paged=False)
async def get_cart(request: Request, ctx: Ctx) -> dict[str, Any]:
    _, shop = _shop(ctx)
    ctx.items = 1
    return _cart_doc(request, shop, _get(shop.carts, request.path_params["cart_id"]))


@mc_endpoint(paged=False)
async def patch_cart(request: Request, ctx: Ctx) -> dict[str, Any]:
    state, shop = _shop(ctx)
    cart = _get(shop.carts, request.path_params["cart_id"])
    body = require_object(ctx.json)
    _validate_cart_fields(body)
    if "campaign_id" in body:
        cart["campaign_id"] = _check_campaign(state, shop, body["campaign_id"])
    if "lines" in body:
        cart["lines"] = _check_lines(shop, body["lines"])
    _copy_keys(cart, {k: v for k, v in body.items() if k != "campaign_id"}, CART_KEYS)
    cart["updated_at"] = _now(state)
    ctx.items = 1
    return _cart_doc(request, shop, cart)


@mc_endpoint(paged=False)
async def delete_cart(request: Request, ctx: Ctx) -> None:
    _, shop = _shop(ctx)
    _delete_item(ctx, shop.carts, "cart_id")


def _lines_owner(ctx: Ctx) -> tuple[EngagementState, Shop, dict[str, Any], str, str]:
    """(state, shop, order-or-cart, its path, kind) for a `/orders/{id}/lines` or `/carts/{id}/lines` URL."""
    state, shop = _shop(ctx)
    params = ctx.request.path_params
    kind = "order" if "order_id" in params else "cart"
    items = shop.orders if kind == "order" else shop.carts
    owner = _get(items, params[f"{kind}_id"])
    return state, shop, owner, f"/ecommerce/stores/{shop.doc['id']}/{kind}s/{owner['id']}", kind


def _line_of(owner: dict[str, Any], line_id: str) -> dict[str, Any]:
    line = next((x for x in owner["lines"] if x["id"] == line_id), None)
    if line is None:
        raise ApiError.of("ResourceNotFound")
    return line


@mc_endpoint
async def get_lines(request: Request, ctx: Ctx) -> dict[str, Any]:
    _, shop, owner, path, kind = _lines_owner(ctx)
    return collection_page(
        request,
        ctx,
        "lines",
        owner["lines"],
        lambda x: _line_doc(request, shop, x, path),
        path + "/lines",
        path,
        ("POST",),
        head={"store_id": shop.doc["id"], f"{kind}_id": owner["id"]},
    )


@mc_endpoint(paged=False)
async def post_line(request: Request, ctx: Ctx) -> dict[str, Any]:
    state, shop, owner, path, kind = _lines_owner(ctx)
    body = require_object(ctx.json)
    line = _check_line(shop, body, "")
    if any(x["id"] == line["id"] for x in owner["lines"]):
        raise _dup(f"{kind} line")
    owner["lines"].append(line)
    owner["updated_at"] = _now(state)
    ctx.items = 1
    return _line_doc(request, shop, line, path)


@mc_endpoint(paged=False)
async def get_line(request: Request, ctx: Ctx) -> dict[str, Any]:
    _, shop, owner, path, _ = _lines_owner(ctx)
    ctx.items = 1
    return _line_doc(request, shop, _line_of(owner, request.path_params["line_id"]), path)


@mc_endpoint(paged=False)
async def patch_line(request: Request, ctx: Ctx) -> dict[str, Any]:
    state, shop, owner, path, _ = _lines_owner(ctx)
    line = _line_of(owner, request.path_params["line_id"])
    body = require_object(ctx.json)
    merged = {**line, **{k: v for k, v in body.items() if k in LINE_KEYS}}
    line.update(_check_line(shop, merged, ""))
    owner["updated_at"] = _now(state)
    ctx.items = 1
    return _line_doc(request, shop, line, path)


@mc_endpoint(paged=False)
async def delete_line(request: Request, ctx: Ctx) -> None:
    state, _, owner, _, _ = _lines_owner(ctx)
    line = _line_of(owner, request.path_params["line_id"])
    owner["lines"].remove(line)
    owner["updated_at"] = _now(state)
    ctx.items = 1


def routes() -> list[BaseRoute]:
    s = "/3.0/ecommerce/stores"
    one = s + "/{store_id}"
    return [
        Route("/3.0/ecommerce/orders", get_account_orders, methods=["GET"]),
        *method_routes(s, get=get_stores, post=post_store),
        *method_routes(one, get=get_store, patch=patch_store, delete=delete_store),
        *method_routes(one + "/customers", get=get_customers, post=post_customer),
        *method_routes(
            one + "/customers/{customer_id}",
            get=get_customer,
            put=put_customer,
            patch=patch_customer,
            delete=delete_customer,
        ),
        *method_routes(one + "/products", get=get_products, post=post_product),
        *method_routes(
            one + "/products/{product_id}",
            get=get_product,
            patch=patch_product,
            delete=delete_product,
        ),
        *method_routes(
            one + "/products/{product_id}/variants", get=get_variants, post=post_variant
        ),
        *method_routes(
            one + "/products/{product_id}/variants/{variant_id}",
            get=get_variant_one,
            put=put_variant,
            patch=patch_variant,
            delete=delete_variant,
        ),
        *method_routes(one + "/orders", get=get_orders, post=post_order),
        *method_routes(
            one + "/orders/{order_id}", get=get_order, patch=patch_order, delete=delete_order
        ),
        *method_routes(one + "/carts", get=get_carts, post=post_cart),
        *method_routes(
            one + "/carts/{cart_id}", get=get_cart, patch=patch_cart, delete=delete_cart
        ),
        *method_routes(one + "/orders/{order_id}/lines", get=get_lines, post=post_line),
        *method_routes(
            one + "/orders/{order_id}/lines/{line_id}",
            get=get_line,
            patch=patch_line,
            delete=delete_line,
        ),
        *method_routes(one + "/carts/{cart_id}/lines", get=get_lines, post=post_line),
        *method_routes(
            one + "/carts/{cart_id}/lines/{line_id}",
            get=get_line,
            patch=patch_line,
            delete=delete_line,
        ),
    ]
