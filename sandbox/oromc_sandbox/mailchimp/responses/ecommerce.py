"""HTTP handlers of the e-commerce API: parse the request, call `models/ecommerce.py`, render.

Every handler works on the account's engagement state (`store.engagement`, which owns the
e-commerce stores and the campaigns orders are attributed to), synced to the sandbox clock first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from ..common import (
    ApiError,
    Ctx,
    collection_page,
    item_links,
    links,
    mc_endpoint,
    method_routes,
    parse_bool,
)
from ..models import ecommerce as model
from ..models import ecommerce_orders as orders
from ..models.ecommerce import EcommerceHost, Shop, find_variant, get_or_404
from ..models.ecommerce_orders import OrderFilter
from ..values import format_epoch, require_object

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


def _customer_totals(shop: Shop, customer_id: str) -> tuple[int, float]:
    """Orders and money spent by one customer of ``shop``, from the store's index of each
    customer's orders (``OrderTable``): a customer's cost is their own orders, so an order create
    through `/batches` and a page of 1,000 customers or orders no longer read every order of the
    store (issue 16: that read, once per rendered customer, was 65 % of the sandbox's CPU in a
    100,000-customer backfill)."""
    return model.customer_totals_of(shop, customer_id)


def _customer_doc(request: Request, shop: Shop, customer: dict[str, Any]) -> dict[str, Any]:
    doc = _stamp(customer)
    count, spent = _customer_totals(shop, customer["id"])
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


# =========================================================================== a store's collections

Render = Callable[[Request, EcommerceHost, Shop, dict[str, Any]], dict[str, Any]]
Handler = Callable[[Request, Ctx], Awaitable[Any]]


@dataclass(frozen=True)
class _Kind:
    """One collection of a store (customers, products, orders, carts)."""

    name: str  # the `Shop` attribute and the collection's key in its page
    one: str  # one item, as handler names spell it (`get_customer`)
    param: str  # the path parameter naming an item
    render: Render  # an item's document

    def items(self, shop: Shop) -> dict[str, dict[str, Any]]:
        items: dict[str, dict[str, Any]] = getattr(shop, self.name)
        return items


CUSTOMERS = _Kind(
    "customers", "customer", "customer_id", lambda r, _h, s, x: _customer_doc(r, s, x)
)
PRODUCTS = _Kind("products", "product", "product_id", lambda r, _h, s, x: _product_doc(r, s, x))
ORDERS = _Kind("orders", "order", "order_id", _order_doc)
CARTS = _Kind("carts", "cart", "cart_id", lambda r, _h, s, x: _cart_doc(r, s, x))


def _endpoint(name: str, handler: Handler, *, paged: bool = False) -> Any:
    handler.__name__ = handler.__qualname__ = name
    return mc_endpoint(handler, paged=paged)


def _list_of(kind: _Kind, select: Callable[[Request, Shop], list[Any]]) -> Any:
    """GET the collection: the items `select` keeps, one page."""

    async def handler(request: Request, ctx: Ctx) -> dict[str, Any]:
        host, shop = _shop(ctx)
        items = select(request, shop)
        return _shop_page(
            request, ctx, shop, kind.name, items, lambda x: kind.render(request, host, shop, x)
        )

    return _endpoint(f"get_{kind.name}", handler, paged=True)


def _create_in(kind: _Kind, create: Callable[[EcommerceHost, Shop, dict[str, Any]], Any]) -> Any:
    """POST to the collection: the model's `create` with the body."""

    async def handler(request: Request, ctx: Ctx) -> dict[str, Any]:
        host, shop = _shop(ctx)
        item = create(host, shop, require_object(ctx.json))
        ctx.items = 1
        return kind.render(request, host, shop, item)

    return _endpoint(f"post_{kind.one}", handler)


def _get_in(kind: _Kind) -> Any:
    """GET one item (404 when absent)."""

    async def handler(request: Request, ctx: Ctx) -> dict[str, Any]:
        host, shop = _shop(ctx)
        ctx.items = 1
        item = get_or_404(kind.items(shop), request.path_params[kind.param])
        return kind.render(request, host, shop, item)

    return _endpoint(f"get_{kind.one}", handler)


def _patch_in(
    kind: _Kind, update: Callable[[EcommerceHost, Shop, dict[str, Any], dict[str, Any]], None]
) -> Any:
    """PATCH one item (404 before the body is read): the model's `update` with the body."""

    async def handler(request: Request, ctx: Ctx) -> dict[str, Any]:
        host, shop = _shop(ctx)
        item = get_or_404(kind.items(shop), request.path_params[kind.param])
        update(host, shop, item, require_object(ctx.json))
        ctx.items = 1
        return kind.render(request, host, shop, item)

    return _endpoint(f"patch_{kind.one}", handler)


def _delete_in(kind: _Kind) -> Any:
    """DELETE one item (404 when absent)."""

    async def handler(request: Request, ctx: Ctx) -> None:
        _, shop = _shop(ctx)
        _delete(ctx, kind.items(shop), kind.param)

    return _endpoint(f"delete_{kind.one}", handler)


def _all(kind: _Kind) -> Callable[[Request, Shop], list[Any]]:
    return lambda _request, shop: list(kind.items(shop).values())


def _customers_by_email(request: Request, shop: Shop) -> list[Any]:
    return model.find_customers(shop, request.query_params.get("email_address"))


def _filtered_orders(request: Request, shop: Shop) -> list[Any]:
    wanted = _order_filter(request)
    if wanted == OrderFilter():  # no filter: every order, without a pair per order (issue 16)
        return list(shop.orders.values())
    pairs = orders.filter_orders([(shop, o) for o in shop.orders.values()], wanted)
    return [order for _, order in pairs]


get_customers = _list_of(CUSTOMERS, _customers_by_email)
post_customer = _create_in(CUSTOMERS, model.create_customer)
get_customer = _get_in(CUSTOMERS)
delete_customer = _delete_in(CUSTOMERS)
get_products = _list_of(PRODUCTS, _all(PRODUCTS))
post_product = _create_in(PRODUCTS, model.create_product)
get_product = _get_in(PRODUCTS)
patch_product = _patch_in(
    PRODUCTS, lambda h, _s, product, body: model.update_product(h, product, body)
)
delete_product = _delete_in(PRODUCTS)
get_orders = _list_of(ORDERS, _filtered_orders)
post_order = _create_in(ORDERS, orders.create_order)
get_order = _get_in(ORDERS)
patch_order = _patch_in(ORDERS, orders.update_order)
delete_order = _delete_in(ORDERS)
get_carts = _list_of(CARTS, _all(CARTS))
post_cart = _create_in(CARTS, orders.create_cart)
get_cart = _get_in(CARTS)
patch_cart = _patch_in(CARTS, orders.update_cart)
delete_cart = _delete_in(CARTS)


# =========================================================================== customers (upserts)


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


# =========================================================================== variants


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


# =========================================================================== orders of every store


@mc_endpoint
async def get_account_orders(request: Request, ctx: Ctx) -> dict[str, Any]:
    host = _host(ctx)
    pairs = orders.filter_orders(
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
    line = orders.add_line(host, shop, owner, kind, require_object(ctx.json))
    ctx.items = 1
    return _line_doc(request, shop, line, path)


@mc_endpoint(paged=False)
async def get_line(request: Request, ctx: Ctx) -> dict[str, Any]:
    _, shop, owner, path, _ = _lines_owner(ctx)
    ctx.items = 1
    return _line_doc(request, shop, orders.line_or_404(owner, request.path_params["line_id"]), path)


@mc_endpoint(paged=False)
async def patch_line(request: Request, ctx: Ctx) -> dict[str, Any]:
    host, shop, owner, path, _ = _lines_owner(ctx)
    line = orders.line_or_404(owner, request.path_params["line_id"])
    orders.update_line(host, shop, owner, line, require_object(ctx.json))
    ctx.items = 1
    return _line_doc(request, shop, line, path)


@mc_endpoint(paged=False)
async def delete_line(request: Request, ctx: Ctx) -> None:
    host, shop, owner, _, _ = _lines_owner(ctx)
    orders.delete_line(host, shop, owner, request.path_params["line_id"])
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
