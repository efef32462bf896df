"""E-commerce rules for orders, carts and their lines (state and shared rules: `ecommerce.py`).

An order or a cart names an existing customer or brings a new one (upserted under the audience
opt-in rules), lines of existing products and variants, and optionally a campaign of the store's
audience; an order without one is attributed to an abandoned-cart email its buyer clicked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..exceptions import ApiError, FieldError
from ..values import check_type, require_keys
from .ecommerce import (
    CART_KEYS,
    CUSTOMER_KEYS,
    LINE_KEYS,
    ORDER_KEYS,
    EcommerceHost,
    Shop,
    check_currency,
    check_id,
    check_number,
    copy_keys,
    duplicate_error,
    find_variant,
    new_order,
    now_of,
    upsert_customer,
)


def check_lines(shop: Shop, lines: Any, prefix: str = "lines") -> list[dict[str, Any]]:
    if not isinstance(lines, list):
        raise FieldError(prefix, "Schema describes array")
    out = []
    for i, raw in enumerate(lines):
        where = f"{prefix}.item:{i}."
        if not isinstance(raw, dict):
            raise FieldError(where.rstrip("."), "Schema describes object")
        out.append(check_line(shop, raw, where))
    return out


def check_line(
    shop: Shop, raw: dict[str, Any], where: str, partial: bool = False
) -> dict[str, Any]:
    required = () if partial else ("id", "product_id", "product_variant_id", "quantity", "price")
    missing = [k for k in required if k not in raw]
    if missing:
        raise FieldError(where + missing[0], "This value should not be blank.")
    check_type(raw, "quantity", "integer", where)
    check_number(raw, "price", where)
    check_number(raw, "discount", where)
    if "product_id" in raw or "product_variant_id" in raw:
        product = shop.products.get(raw.get("product_id", ""))
        if product is None:
            raise FieldError(
                where + "product_id",
                "Product not found.",
                "A product with the provided ID does not exist in the account for this list.",
            )
        if find_variant(product, raw.get("product_variant_id", "")) is None:
            raise FieldError(
                where + "product_variant_id",
                "Variant not found.",
                "A product variant with the provided ID does not exist in the account for this list.",
            )
    line: dict[str, Any] = {"id": raw.get("id", "")}
    copy_keys(line, raw, LINE_KEYS)
    line.setdefault("discount", 0)
    return line


def check_campaign(host: EcommerceHost, shop: Shop, campaign_id: Any) -> str:
    """The id of a campaign of the store's audience ("" for none); 400 for any other."""
    if campaign_id in (None, ""):
        return ""
    campaign = host.campaigns.get(str(campaign_id))
    if campaign is None or campaign.list_id != shop.doc["list_id"]:
        raise FieldError(
            "campaign_id",
            "Campaign not found.",
            "A campaign with the provided ID does not exist in the account for this list.",
        )
    return str(campaign.id)


def _patch_campaign(
    host: EcommerceHost, shop: Shop, target: dict[str, Any], body: dict[str, Any]
) -> None:
    """A PATCH's `campaign_id` (an order's or a cart's), checked like a new one's."""
    if "campaign_id" in body:
        target["campaign_id"] = check_campaign(host, shop, body["campaign_id"])


def validate_order_fields(body: dict[str, Any]) -> None:
    for key in ("order_total", "discount_total", "tax_total", "shipping_total"):
        check_number(body, key)
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
    check_currency(body)
    if "outreach" in body:
        check_type(body, "outreach", "object")


@dataclass(frozen=True)
class OrderFilter:
    """The query filters of the order collections (empty = not filtered)."""

    campaign_id: str = ""
    outreach_id: str = ""
    customer_id: str = ""
    has_outreach: bool | None = None


def _outreach_of(order: dict[str, Any]) -> str:
    return str(order.get("outreach_id") or order.get("campaign_id") or "")


def filter_orders(
    pairs: list[tuple[Shop, dict[str, Any]]], wanted: OrderFilter
) -> list[tuple[Shop, dict[str, Any]]]:
    if wanted.campaign_id:
        pairs = [p for p in pairs if p[1].get("campaign_id") == wanted.campaign_id]
    if wanted.outreach_id:
        pairs = [p for p in pairs if _outreach_of(p[1]) == wanted.outreach_id]
    if wanted.customer_id:
        pairs = [p for p in pairs if p[1]["customer_id"] == wanted.customer_id]
    if wanted.has_outreach is not None:
        pairs = [p for p in pairs if bool(_outreach_of(p[1])) == wanted.has_outreach]
    return pairs


def _order_customer(host: EcommerceHost, shop: Shop, body: dict[str, Any]) -> str:
    raw = body["customer"]
    if not isinstance(raw, dict):
        raise FieldError("customer", "Schema describes object")
    cid = check_id(raw, "id")
    fields = {k: v for k, v in raw.items() if k in CUSTOMER_KEYS}
    if cid in shop.customers and not fields:
        return cid
    upsert_customer(host, shop, cid, fields, prefix="customer.")
    return cid


def _checkout_parts(
    host: EcommerceHost,
    shop: Shop,
    body: dict[str, Any],
    kind: str,
    existing: dict[str, dict[str, Any]],
    validate: Callable[[dict[str, Any]], None],
) -> tuple[str, str, list[dict[str, Any]], str]:
    """(id, campaign id, lines, customer id) of a new order or cart (`kind`), checked in that order.

    The customer is created or updated last, once everything else in the body is valid.
    """
    require_keys(body, ("id", "customer", "currency_code", "order_total", "lines"))
    new_id = check_id(body)
    validate(body)
    if new_id in existing:
        raise duplicate_error(kind)
    campaign_id = check_campaign(host, shop, body.get("campaign_id"))
    lines = check_lines(shop, body["lines"])
    return new_id, campaign_id, lines, _order_customer(host, shop, body)


def create_order(host: EcommerceHost, shop: Shop, body: dict[str, Any]) -> dict[str, Any]:
    """POST an order: checks, its customer upserted, attribution (sent campaign or automation)."""
    oid, campaign_id, lines, customer_id = _checkout_parts(
        host, shop, body, "order", shop.orders, validate_order_fields
    )
    now = now_of(host)
    order = new_order(
        oid, customer_id, body["currency_code"], float(body["order_total"]), lines, now
    )
    copy_keys(order, body, ORDER_KEYS)
    order["campaign_id"] = campaign_id or host.automations.attribute(host, shop, customer_id, now)
    outreach = body.get("outreach") or {}
    order["outreach_id"] = str(outreach.get("id", "")) if isinstance(outreach, dict) else ""
    order.pop("outreach", None)
    shop.orders[oid] = order
    return order


def update_order(
    host: EcommerceHost, shop: Shop, order: dict[str, Any], body: dict[str, Any]
) -> None:
    """PATCH an order: fields, lines updated by id or added, the customer's opt-in."""
    validate_order_fields(body)
    _patch_campaign(host, shop, order, body)
    if "lines" in body:
        check_type(body, "lines", "array")
        for i, raw in enumerate(body["lines"]):
            line = check_line(shop, raw, f"lines.item:{i}.", partial=True)
            existing = next((x for x in order["lines"] if x["id"] == line["id"]), None)
            if existing is not None:
                existing.update({k: v for k, v in line.items() if k != "id"})
            else:
                order["lines"].append(check_line(shop, raw, f"lines.item:{i}."))
    copy_keys(
        order, {k: v for k, v in body.items() if k not in ("campaign_id", "outreach")}, ORDER_KEYS
    )
    if isinstance(body.get("outreach"), dict):
        order["outreach_id"] = str(body["outreach"].get("id", ""))
    if isinstance(body.get("customer"), dict) and "opt_in_status" in body["customer"]:
        upsert_customer(
            host,
            shop,
            order["customer_id"],
            {"opt_in_status": body["customer"]["opt_in_status"]},
            prefix="customer.",
        )
    order["updated_at"] = now_of(host)


def validate_cart_fields(body: dict[str, Any]) -> None:
    validate_order_fields(
        {k: v for k, v in body.items() if k in ("currency_code", "order_total", "tax_total")}
    )
    check_type(body, "checkout_url", "string")


def create_cart(host: EcommerceHost, shop: Shop, body: dict[str, Any]) -> dict[str, Any]:
    """POST a cart (same checks as an order; carts are not attributed)."""
    cart_id, campaign_id, lines, customer_id = _checkout_parts(
        host, shop, body, "cart", shop.carts, validate_cart_fields
    )
    now = now_of(host)
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
    copy_keys(cart, body, CART_KEYS)
    cart["campaign_id"] = campaign_id
    shop.carts[cart_id] = cart
    shop.cart_written(cart_id, created=True)
    return cart


def update_cart(
    host: EcommerceHost, shop: Shop, cart: dict[str, Any], body: dict[str, Any]
) -> None:
    """PATCH a cart: fields, `lines` replaced as a whole."""
    validate_cart_fields(body)
    _patch_campaign(host, shop, cart, body)
    if "lines" in body:
        cart["lines"] = check_lines(shop, body["lines"])
    copy_keys(cart, {k: v for k, v in body.items() if k != "campaign_id"}, CART_KEYS)
    cart["updated_at"] = now_of(host)
    shop.cart_written(cart["id"])


def _owner_written(shop: Shop, owner: dict[str, Any]) -> None:
    """Note the write of a line of `owner` when it is one of the store's carts."""
    if shop.carts.get(owner["id"]) is owner:
        shop.cart_written(owner["id"])


def line_or_404(owner: dict[str, Any], line_id: str) -> dict[str, Any]:
    line = next((x for x in owner["lines"] if x["id"] == line_id), None)
    if line is None:
        raise ApiError.of("ResourceNotFound")
    return line


def add_line(
    host: EcommerceHost, shop: Shop, owner: dict[str, Any], kind: str, body: dict[str, Any]
) -> dict[str, Any]:
    """POST a line to an order or cart (`kind` names it in the duplicate error)."""
    line = check_line(shop, body, "")
    if any(x["id"] == line["id"] for x in owner["lines"]):
        raise duplicate_error(f"{kind} line")
    owner["lines"].append(line)
    owner["updated_at"] = now_of(host)
    _owner_written(shop, owner)
    return line


def update_line(
    host: EcommerceHost,
    shop: Shop,
    owner: dict[str, Any],
    line: dict[str, Any],
    body: dict[str, Any],
) -> None:
    """PATCH a line of `owner` (an order or cart): the merged line is checked like a new one."""
    merged = {**line, **{k: v for k, v in body.items() if k in LINE_KEYS}}
    line.update(check_line(shop, merged, ""))
    owner["updated_at"] = now_of(host)
    _owner_written(shop, owner)


def delete_line(host: EcommerceHost, shop: Shop, owner: dict[str, Any], line_id: str) -> None:
    owner["lines"].remove(line_or_404(owner, line_id))
    owner["updated_at"] = now_of(host)
    _owner_written(shop, owner)
