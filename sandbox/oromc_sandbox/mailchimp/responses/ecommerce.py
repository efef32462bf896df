"""HTTP handlers of the e-commerce API: parse the request, call `models/ecommerce.py`, render.

Every handler works on the account's engagement state (`store.engagement`, which owns the
e-commerce stores and the campaigns orders are attributed to), synced to the sandbox clock first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from ..common import (
    ApiError,
    Ctx,
    collection_page,
    format_epoch,
    item_links,
    links,
    mc_endpoint,
    method_routes,
    parse_bool,
    require_object,
)
from ..models import ecommerce as model
from ..models.ecommerce import EcommerceHost, OrderFilter, Shop, find_variant, get_or_404

# =========================================================================== request -> state


def _host(ctx: Ctx) -> EcommerceHost:
    """The account's engagement state with every due event applied."""
    ctx.store.sync_engagement()
    host: EcommerceHost | None = ctx.store.engagement
    if host is None:  # pragma: no cover - create_store and create_store_from_dump attach one
        raise ApiError.of("ResourceNotFound")
    return host


def _shop(ctx: Ctx) -> tuple[EcommerceHost, Shop]:
    host = _host(ctx)
    return host, model.find_shop(host, ctx.request.path_params["store_id"])


def _product(ctx: Ctx) -> tuple[EcommerceHost, Shop, dict[str, Any]]:
    host, shop = _shop(ctx)
    return host, shop, get_or_404(shop.products, ctx.request.path_params["product_id"])


def _lines_owner(ctx: Ctx) -> tuple[EcommerceHost, Shop, dict[str, Any], str, str]:
    """(host, shop, order-or-cart, its path, kind) for a `/orders/{id}/lines` or `/carts/{id}/lines` URL."""
    host, shop = _shop(ctx)
    params = ctx.request.path_params
    kind = "order" if "order_id" in params else "cart"
    items = shop.orders if kind == "order" else shop.carts
    owner = get_or_404(items, params[f"{kind}_id"])
    return host, shop, owner, f"/ecommerce/stores/{shop.doc['id']}/{kind}s/{owner['id']}", kind


def _order_filter(request: Request) -> OrderFilter:
    q = request.query_params
    has_outreach = q.get("has_outreach")
    return OrderFilter(
        campaign_id=q.get("campaign_id") or "",
        outreach_id=q.get("outreach_id") or "",
        customer_id=q.get("customer_id") or "",
        has_outreach=None if has_outreach in (None, "") else parse_bool(request, "has_outreach"),
    )


def _delete(ctx: Ctx, items: dict[str, dict[str, Any]], param: str) -> None:
    model.delete_item(items, ctx.request.path_params[param])
    ctx.items = 1


# =========================================================================== rendering


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
    totals = model.customer_totals(shop)
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


def _line_doc(request: Request, shop: Shop, line: dict[str, Any], parent: str) -> dict[str, Any]:
    product = shop.products.get(line.get("product_id", ""), {})
    variant = find_variant(product, line.get("product_variant_id", "")) or {}
    return {
        **line,
        "product_title": product.get("title", ""),
        "product_variant_title": variant.get("title", ""),
        "image_url": variant.get("image_url") or product.get("image_url", ""),
        "_links": links(
            request, ("self", f"{parent}/lines/{line['id']}"), ("parent", f"{parent}/lines")
        ),
    }


def _outreach_doc(host: EcommerceHost, outreach_id: str) -> dict[str, Any]:
    campaign = host.campaigns.get(outreach_id) if outreach_id else None
    if campaign is not None:
        return {
            "id": campaign.id,
            "name": campaign.settings.get("title", ""),
            "type": "automation" if campaign.type == "automation" else "regular",
            "published_time": format_epoch(campaign.send_time) if campaign.send_time else "",
        }
    if outreach_id:
        return {"id": outreach_id, "name": "", "type": "", "published_time": ""}
    return {}


def _order_doc(
    request: Request, host: EcommerceHost, shop: Shop, order: dict[str, Any]
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
    doc["outreach"] = _outreach_doc(host, outreach_id)
    doc["_links"] = item_links(request, path, f"/ecommerce/stores/{sid}/orders", sub="lines")
    return doc


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


# =========================================================================== stores


@mc_endpoint
async def get_stores(request: Request, ctx: Ctx) -> dict[str, Any]:
    host = _host(ctx)
    return collection_page(
        request,
        ctx,
        "stores",
        list(host.ecommerce.shops.values()),
        lambda s: _store_doc(request, s),
        "/ecommerce/stores",
        None,
        ("POST",),
    )


@mc_endpoint(paged=False)
async def post_store(request: Request, ctx: Ctx) -> dict[str, Any]:
    host = _host(ctx)
    shop = model.create_store(host, require_object(ctx.json))
    ctx.items = 1
    return _store_doc(request, shop)


@mc_endpoint(paged=False)
async def get_store(request: Request, ctx: Ctx) -> dict[str, Any]:
    _, shop = _shop(ctx)
    ctx.items = 1
    return _store_doc(request, shop)


@mc_endpoint(paged=False)
async def patch_store(request: Request, ctx: Ctx) -> dict[str, Any]:
    host, shop = _shop(ctx)
    model.update_store(host, shop, require_object(ctx.json))
    ctx.items = 1
    return _store_doc(request, shop)


@mc_endpoint(paged=False)
async def delete_store(request: Request, ctx: Ctx) -> None:
    host, shop = _shop(ctx)
    model.delete_store(host, shop)
    ctx.items = 1


# =========================================================================== customers


@mc_endpoint
async def get_customers(request: Request, ctx: Ctx) -> dict[str, Any]:
    _, shop = _shop(ctx)
    customers = model.find_customers(shop, request.query_params.get("email_address"))
    return _shop_page(
        request, ctx, shop, "customers", customers, lambda c: _customer_doc(request, shop, c)
    )


@mc_endpoint(paged=False)
async def post_customer(request: Request, ctx: Ctx) -> dict[str, Any]:
    host, shop = _shop(ctx)
    customer = model.create_customer(host, shop, require_object(ctx.json))
    ctx.items = 1
    return _customer_doc(request, shop, customer)


@mc_endpoint(paged=False)
async def get_customer(request: Request, ctx: Ctx) -> dict[str, Any]:
    _, shop = _shop(ctx)
    ctx.items = 1
    customer = get_or_404(shop.customers, request.path_params["customer_id"])
    return _customer_doc(request, shop, customer)


@mc_endpoint(paged=False)
async def put_customer(request: Request, ctx: Ctx) -> dict[str, Any]:
    host, shop = _shop(ctx)
    body = require_object(ctx.json)
    customer = model.put_customer(host, shop, request.path_params["customer_id"], body)
    ctx.items = 1
    return _customer_doc(request, shop, customer)


@mc_endpoint(paged=False)
async def patch_customer(request: Request, ctx: Ctx) -> dict[str, Any]:
    host, shop = _shop(ctx)
    body = require_object(ctx.json)
    customer = model.patch_customer(host, shop, request.path_params["customer_id"], body)
    ctx.items = 1
    return _customer_doc(request, shop, customer)


@mc_endpoint(paged=False)
async def delete_customer(request: Request, ctx: Ctx) -> None:
    _, shop = _shop(ctx)
    _delete(ctx, shop.customers, "customer_id")


# =========================================================================== products and variants


@mc_endpoint
async def get_products(request: Request, ctx: Ctx) -> dict[str, Any]:
    _, shop = _shop(ctx)
    products = list(shop.products.values())
    return _shop_page(
        request, ctx, shop, "products", products, lambda p: _product_doc(request, shop, p)
    )


@mc_endpoint(paged=False)
async def post_product(request: Request, ctx: Ctx) -> dict[str, Any]:
    host, shop = _shop(ctx)
    product = model.create_product(host, shop, require_object(ctx.json))
    ctx.items = 1
    return _product_doc(request, shop, product)


@mc_endpoint(paged=False)
async def get_product(request: Request, ctx: Ctx) -> dict[str, Any]:
    _, shop, product = _product(ctx)
    ctx.items = 1
    return _product_doc(request, shop, product)


@mc_endpoint(paged=False)
async def patch_product(request: Request, ctx: Ctx) -> dict[str, Any]:
    host, shop, product = _product(ctx)
    model.update_product(host, product, require_object(ctx.json))
    ctx.items = 1
    return _product_doc(request, shop, product)


@mc_endpoint(paged=False)
async def delete_product(request: Request, ctx: Ctx) -> None:
    _, shop = _shop(ctx)
    _delete(ctx, shop.products, "product_id")


@mc_endpoint
async def get_variants(request: Request, ctx: Ctx) -> dict[str, Any]:
    _, shop, product = _product(ctx)
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
    host, shop, product = _product(ctx)
    variant = model.add_variant(host, product, require_object(ctx.json))
    ctx.items = 1
    return _variant_doc(request, shop, product, variant)


@mc_endpoint(paged=False)
async def get_variant_one(request: Request, ctx: Ctx) -> dict[str, Any]:
    _, shop, product = _product(ctx)
    variant = model.variant_or_404(product, request.path_params["variant_id"])
    ctx.items = 1
    return _variant_doc(request, shop, product, variant)


@mc_endpoint(paged=False)
async def put_variant(request: Request, ctx: Ctx) -> dict[str, Any]:
    host, shop, product = _product(ctx)
    body = require_object(ctx.json)
    variant = model.put_variant(host, product, request.path_params["variant_id"], body)
    ctx.items = 1
    return _variant_doc(request, shop, product, variant)


@mc_endpoint(paged=False)
async def patch_variant(request: Request, ctx: Ctx) -> dict[str, Any]:
    host, shop, product = _product(ctx)
    body = require_object(ctx.json)
    variant = model.variant_or_404(product, request.path_params["variant_id"])
    model.update_variant(host, variant, body)
    ctx.items = 1
    return _variant_doc(request, shop, product, variant)


@mc_endpoint(paged=False)
async def delete_variant(request: Request, ctx: Ctx) -> None:
    _, _, product = _product(ctx)
    model.delete_variant(product, request.path_params["variant_id"])
    ctx.items = 1


# =========================================================================== orders


@mc_endpoint
async def get_orders(request: Request, ctx: Ctx) -> dict[str, Any]:
    host, shop = _shop(ctx)
    pairs = model.filter_orders([(shop, o) for o in shop.orders.values()], _order_filter(request))
    return _shop_page(
        request, ctx, shop, "orders", pairs, lambda p: _order_doc(request, host, p[0], p[1])
    )


@mc_endpoint
async def get_account_orders(request: Request, ctx: Ctx) -> dict[str, Any]:
    host = _host(ctx)
    pairs = model.filter_orders(
        [(s, o) for s in host.ecommerce.shops.values() for o in s.orders.values()],
        _order_filter(request),
    )
    return collection_page(
        request,
        ctx,
        "orders",
        pairs,
        lambda p: _order_doc(request, host, p[0], p[1]),
        "/ecommerce/orders",
    )


@mc_endpoint(paged=False)
async def post_order(request: Request, ctx: Ctx) -> dict[str, Any]:
    host, shop = _shop(ctx)
    order = model.create_order(host, shop, require_object(ctx.json))
    ctx.items = 1
    return _order_doc(request, host, shop, order)


@mc_endpoint(paged=False)
async def get_order(request: Request, ctx: Ctx) -> dict[str, Any]:
    host, shop = _shop(ctx)
    ctx.items = 1
    order = get_or_404(shop.orders, request.path_params["order_id"])
    return _order_doc(request, host, shop, order)


@mc_endpoint(paged=False)
async def patch_order(request: Request, ctx: Ctx) -> dict[str, Any]:
    host, shop = _shop(ctx)
    order = get_or_404(shop.orders, request.path_params["order_id"])
    model.update_order(host, shop, order, require_object(ctx.json))
    ctx.items = 1
    return _order_doc(request, host, shop, order)


@mc_endpoint(paged=False)
async def delete_order(request: Request, ctx: Ctx) -> None:
    _, shop = _shop(ctx)
    _delete(ctx, shop.orders, "order_id")


# =========================================================================== carts


@mc_endpoint
async def get_carts(request: Request, ctx: Ctx) -> dict[str, Any]:
    _, shop = _shop(ctx)
    carts = list(shop.carts.values())
    return _shop_page(request, ctx, shop, "carts", carts, lambda c: _cart_doc(request, shop, c))


@mc_endpoint(paged=False)
async def post_cart(request: Request, ctx: Ctx) -> dict[str, Any]:
    host, shop = _shop(ctx)
    cart = model.create_cart(host, shop, require_object(ctx.json))
    ctx.items = 1
    return _cart_doc(request, shop, cart)


@mc_endpoint(paged=False)
async def get_cart(request: Request, ctx: Ctx) -> dict[str, Any]:
    _, shop = _shop(ctx)
    ctx.items = 1
    return _cart_doc(request, shop, get_or_404(shop.carts, request.path_params["cart_id"]))


@mc_endpoint(paged=False)
async def patch_cart(request: Request, ctx: Ctx) -> dict[str, Any]:
    host, shop = _shop(ctx)
    cart = get_or_404(shop.carts, request.path_params["cart_id"])
    model.update_cart(host, shop, cart, require_object(ctx.json))
    ctx.items = 1
    return _cart_doc(request, shop, cart)


@mc_endpoint(paged=False)
async def delete_cart(request: Request, ctx: Ctx) -> None:
    _, shop = _shop(ctx)
    _delete(ctx, shop.carts, "cart_id")


# =========================================================================== lines of orders and carts


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
    host, shop, owner, path, kind = _lines_owner(ctx)
    line = model.add_line(host, shop, owner, kind, require_object(ctx.json))
    ctx.items = 1
    return _line_doc(request, shop, line, path)


@mc_endpoint(paged=False)
async def get_line(request: Request, ctx: Ctx) -> dict[str, Any]:
    _, shop, owner, path, _ = _lines_owner(ctx)
    ctx.items = 1
    return _line_doc(request, shop, model.line_or_404(owner, request.path_params["line_id"]), path)


@mc_endpoint(paged=False)
async def patch_line(request: Request, ctx: Ctx) -> dict[str, Any]:
    host, shop, owner, path, _ = _lines_owner(ctx)
    line = model.line_or_404(owner, request.path_params["line_id"])
    model.update_line(host, shop, owner, line, require_object(ctx.json))
    ctx.items = 1
    return _line_doc(request, shop, line, path)


@mc_endpoint(paged=False)
async def delete_line(request: Request, ctx: Ctx) -> None:
    host, _, owner, _, _ = _lines_owner(ctx)
    model.delete_line(host, owner, request.path_params["line_id"])
    ctx.items = 1


# =========================================================================== route table


def routes() -> list[BaseRoute]:
    """Every e-commerce route (absolute paths), in the order they were always registered."""
    s = "/3.0/ecommerce/stores"
    one = s + "/{store_id}"
    order_lines = {"get": get_lines, "post": post_line}
    line_one = {"get": get_line, "patch": patch_line, "delete": delete_line}
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
        *method_routes(one + "/orders/{order_id}/lines", **order_lines),
        *method_routes(one + "/orders/{order_id}/lines/{line_id}", **line_one),
        *method_routes(one + "/carts/{cart_id}/lines", **order_lines),
        *method_routes(one + "/carts/{cart_id}/lines/{line_id}", **line_one),
    ]
