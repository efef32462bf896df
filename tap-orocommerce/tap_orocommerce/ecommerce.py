"""Mailchimp-shaped e-commerce streams (the input contract of target-mailchimp's store sync).

Each stream reads one Oro resource with its related records in the same request (JSON:API
``include``) and emits one self-contained row in Mailchimp's E-commerce shape:

``ecommerce_products``   products (+ their default-locale name), one default variant (id = sku row)
``ecommerce_customers``  customer users who have at least one order (+ their account name)
``ecommerce_orders``     orders + line items + customer user + account
``ecommerce_carts``      shopping lists + items + customer user (only when Oro exposes them); a cart
                         emitted before and now emptied or deleted (Oro deletes a shopping list when
                         its checkout becomes an order) is emitted once as ``{"id", "deleted": true}``

Ids are Oro ids as strings: Mailchimp order id = Oro order id, customer id = Oro customer user id,
product id (and its single variant id) = Oro product id, cart id = shopping list id, line id = Oro
line item id. Every row also carries ``updated_at`` (the replication key; target-mailchimp ignores
it). Incremental reading is the base class's (see README "Incremental design"): orders, products and
carts seek by ``updatedAt``; customers are scanned (stock Oro cannot filter customer users by
``updatedAt``, and an account rename must re-emit its users) with a client-side filter.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future
from functools import partial
from typing import Any, ClassVar

from oromc_common.idsets import BitMap, decode, encode
from singer_sdk import typing as th
from typing_extensions import override

from tap_orocommerce.client import MODE_SCAN, MODE_SEEK, Field, OroStream

S, B, Int, N, DT = th.StringType, th.BooleanType, th.IntegerType, th.NumberType, th.DateTimeType
Included = dict[tuple[str, str], dict[str, Any]]

# Oro internal order status -> Mailchimp financial status (README "Order statuses")
FINANCIAL_STATUS = {
    "open": "pending",
    "pending": "pending",
    "processing": "paid",
    "closed": "paid",
    "cancelled": "cancelled",
}
# Oro shipping status (ordershippingstatuses) -> Mailchimp fulfillment status; a closed order
# without a shipping status counts as shipped (stock Oro closes an order once it is delivered)
FULFILLMENT_STATUS = {"shipped": "shipped", "partially_shipped": "partial"}
CLOSED_FULFILLMENT = "shipped"
REFUNDED = "refunded"
DEFAULT_REFUNDED_STATUSES = ("refunded",)


def refunded_statuses(config: Any) -> frozenset[str]:
    """Oro status ids meaning "refunded" (setting ``refunded_order_statuses``)."""
    value = config.get("refunded_order_statuses")
    return frozenset(str(s) for s in (DEFAULT_REFUNDED_STATUSES if value is None else value))


def financial_status(internal: str | None, external: str | None, refunded: frozenset[str]) -> str | None:
    """Mailchimp ``financial_status``: ``refunded`` when the external or internal status is one of
    ``refunded`` (stock Oro has no refunded status), else from the internal status."""
    if (external is not None and external in refunded) or (internal is not None and internal in refunded):
        return REFUNDED
    return FINANCIAL_STATUS.get(internal or "")

# Storefront routes of stock OroCommerce (README "Storefront links"): ShoppingListBundle's frontend
# controller (prefix /customer/shoppinglist, route oro_shopping_list_frontend_update) and
# ProductBundle's (prefix /product, route oro_product_frontend_product_view).
CART_PATH = "/customer/shoppinglist/update/{id}"
PRODUCT_PATH = "/product/view/{id}"
KNOWN_CARTS = "known_cart_ids"
# a product image's types, best first (ProductBundle productimagetypes), and the resized versions of an
# image (AttachmentBundle files.filePath dimensions), largest first
IMAGE_TYPES = ("main", "listing", "additional")
IMAGE_DIMENSIONS = (
    "product_original", "product_extra_large", "product_gallery_main", "product_large",
    "product_gallery_popup", "product_medium", "product_small",
)  # fmt: skip


def fulfillment_status(internal: str | None, shipping: str | None) -> str | None:
    """Mailchimp ``fulfillment_status`` from Oro's shipping status (else from a closed order)."""
    if shipping in FULFILLMENT_STATUS:
        return FULFILLMENT_STATUS[shipping]
    return CLOSED_FULFILLMENT if internal == "closed" and shipping is None else None


class RowError(ValueError):
    """A resource that cannot become a Mailchimp record (reason + Oro field, no values)."""

    def __init__(self, reason: str, field: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.field = field


def money(value: Any) -> float | None:
    """Oro's decimal string (``"12.5000"``) as a number; None when absent or not a number."""
    if value is None or value == "":
        return None
    try:
        return round(float(value), 4)
    except (TypeError, ValueError):
        return None


def _attrs(resource: dict[str, Any]) -> dict[str, Any]:
    return resource.get("attributes") or {}


def _rel(resource: dict[str, Any], name: str) -> Any:
    rel = (resource.get("relationships") or {}).get(name)
    return rel.get("data") if isinstance(rel, dict) else None


def _customer_schema() -> th.ObjectType:
    return th.ObjectType(
        th.Property("id", S(), required=True, description="Oro customer user id."),
        th.Property("email_address", S()),
        th.Property(
            "opt_in_status", B(), description="Always null: Oro holds no marketing consent."
        ),
        th.Property("first_name", S()),
        th.Property("last_name", S()),
        th.Property("company", S(), description="Oro customer (account) name."),
    )


def _line_schema() -> th.ObjectType:
    return th.ObjectType(
        th.Property("id", S(), required=True, description="Oro line item id."),
        th.Property("product_id", S(), required=True, description="Oro product id."),
        th.Property("product_variant_id", S(), description="= product_id (one default variant)."),
        th.Property("product_title", S(), description="Product name at the time of the line."),
        th.Property("quantity", Int()),
        th.Property(
            "price", N(), description="Unit price (line total when quantity is fractional)."
        ),
    )


UPDATED_AT = th.Property(
    "updated_at", DT(), required=True, description="Oro updatedAt (replication key)."
)


class EcommerceStream(OroStream):
    """A Mailchimp-shaped stream built from one Oro resource plus included related records."""

    replication_key = "updated_at"
    primary_keys: ClassVar[list[str]] = ["id"]
    columns: ClassVar[tuple[Field, ...]] = ()
    own_fields: ClassVar[tuple[str, ...]] = ()
    """``fields[<resource>]`` (attributes and relationships read from the main resource)."""
    include: ClassVar[dict[str, tuple[str, tuple[str, ...]]]] = {}
    """relationship path -> (related type, its ``fields[...]``)."""

    def __init__(self, tap: Any) -> None:
        self.included: Included = {}
        super().__init__(tap)

    @override
    def sparse_fields(self) -> list[str]:
        return list(self.own_fields)

    @override
    def base_params(self) -> dict[str, Any]:
        params = super().base_params()
        if self.include:
            params["include"] = ",".join(self.include)
            for rtype, names in self.include.values():
                params[f"fields[{rtype}]"] = ",".join(names)
        return params

    @override
    def parse_response(self, response: Any) -> Any:
        doc: dict[str, Any] = response._oro_doc
        self.included = {
            (str(r.get("type")), str(r.get("id"))): r
            for r in doc.get("included") or []
            if isinstance(r, dict)
        }
        return super().parse_response(response)

    def storefront_link(self, path: str, rid: Any) -> str:
        """Absolute storefront URL of ``path`` (``storefront_url``, else ``base_url``)."""
        base = str(self.config.get("storefront_url") or self.config.get("base_url") or "")
        return base.rstrip("/") + path.format(id=rid)

    def related(self, resource: dict[str, Any], name: str) -> dict[str, Any] | None:
        """The included record of to-one relationship ``name`` (None when null or not included)."""
        data = _rel(resource, name)
        if not isinstance(data, dict):
            return None
        return self.included.get((str(data.get("type")), str(data.get("id"))))

    def related_many(self, resource: dict[str, Any], name: str) -> list[dict[str, Any]]:
        """The included records of to-many relationship ``name`` (in relationship order)."""
        data = _rel(resource, name)
        out = []
        for ref in data if isinstance(data, list) else []:
            rec = self.included.get((str(ref.get("type")), str(ref.get("id"))))
            if rec is not None:
                out.append(rec)
        return out

    def customer_of(self, resource: dict[str, Any]) -> dict[str, Any]:
        """Mailchimp ``customer`` object from the included customer user and account."""
        user = self.related(resource, "customerUser")
        if user is None:
            raise RowError(
                "missing_customer", "customerUser", "no customer user (guest cart/order)"
            )
        attrs = _attrs(user)
        if not attrs.get("email"):
            raise RowError("missing_email", "customerUser.email", "the customer user has no email")
        account = self.related(resource, "customer")
        return {
            "id": str(user["id"]),
            "email_address": attrs.get("email"),
            "first_name": attrs.get("firstName"),
            "last_name": attrs.get("lastName"),
            "company": _attrs(account).get("name") if account else None,
        }

    @override
    def flatten(self, resource: dict[str, Any]) -> dict[str, Any] | None:
        rid = resource.get("id")
        updated = _attrs(resource).get("updatedAt")
        try:
            if not str(rid or "").isdigit():
                raise RowError("invalid_id", "id", f"{self.resource} item without a numeric id")
            if not isinstance(updated, str):
                raise RowError("missing_updated_at", "updatedAt", "no updatedAt value")
            row = self.build_row(resource)
        except RowError as exc:
            self.oro_tap.report.reject(self.name, rid, exc.reason, str(exc), exc.field)
            return None
        if row is not None:
            row["updated_at"] = updated
        return row

    def build_row(self, resource: dict[str, Any]) -> dict[str, Any] | None:
        """The Mailchimp-shaped row (raise :class:`RowError` to reject; None to skip)."""
        raise NotImplementedError


def image_path(file_path: Any) -> str | None:
    """The relative URL of the largest resized version in a ``files.filePath`` value: Oro 5.1+ lists
    ``{url, dimension, url_webp}`` items; older versions map dimension -> URL."""
    if isinstance(file_path, dict):
        items = [{"dimension": k, "url": v} for k, v in file_path.items()]
    elif isinstance(file_path, list):
        items = [i for i in file_path if isinstance(i, dict)]
    else:
        return None
    urls = {str(i.get("dimension")): i.get("url") for i in items if isinstance(i.get("url"), str) and i["url"]}
    for dimension in IMAGE_DIMENSIONS:
        if dimension in urls:
            return str(urls[dimension])
    return next(iter(urls.values()), None)


class EcommerceProductsStream(EcommerceStream):
    """Products with one default variant, their storefront URL, their main image (one
    ``productimages`` request per page of products, ``product_images``) and, with ``price_list_id``
    set, their price from that Oro price list (one ``productprices`` request per page)."""

    name = "ecommerce_products"
    resource = "products"
    own_fields = ("sku", "status", "type", "createdAt", "updatedAt", "names")
    include: ClassVar[dict[str, tuple[str, tuple[str, ...]]]] = {
        "names": ("productnames", ("string", "localization")),
    }

    @classmethod
    @override
    def build_schema(cls) -> dict[str, Any]:
        return th.PropertiesList(
            th.Property("id", S(min_length=1), required=True, description="Oro product id."),
            th.Property("title", S(), required=True, description="Default name (else the sku)."),
            th.Property("sku", S(), description="Sku of the single default variant."),
            th.Property("type", S(), description="Oro product type (simple, configurable, kit)."),
            th.Property("published_at_foreign", DT(), description="Oro createdAt."),
            th.Property("status", S(), description="Oro status (enabled/disabled)."),
            th.Property(
                "url",
                S(),
                description="Storefront product page (storefront_url + /product/view/<id>).",
            ),
            th.Property(
                "price",
                N(),
                description="Price in price_currency for the smallest quantity in the Oro price "
                "list price_list_id (null without that setting or without a price there).",
            ),
            th.Property(
                "image_url",
                S(),
                description="Absolute URL of the product's main image (largest resized version; "
                "null without an image or with product_images off).",
            ),
            UPDATED_AT,
        ).to_dict()

    @override
    def build_row(self, resource: dict[str, Any]) -> dict[str, Any] | None:
        attrs = _attrs(resource)
        names = self.related_many(resource, "names")
        default = [n for n in names if _rel(n, "localization") is None] or names
        title = next((str(_attrs(n)["string"]) for n in default if _attrs(n).get("string")), None)
        sku = attrs.get("sku")
        if not title and not sku:
            raise RowError("missing_title", "names", "product without a name and without a sku")
        return {
            "id": str(resource["id"]),
            "title": title or str(sku),
            "sku": sku,
            "type": attrs.get("type"),
            "published_at_foreign": attrs.get("createdAt"),
            "status": attrs.get("status"),
            "url": self.storefront_link(PRODUCT_PATH, resource["id"]),
            "price": None,  # from the price list (rows), when price_list_id is set
            "image_url": None,  # from the product images (rows), with product_images on
        }

    @override
    def rows(self, data: list[dict[str, Any]]) -> Any:
        rows = list(super().rows(data))
        list_id = self.config.get("price_list_id")
        if list_id is not None and rows:
            prices = self.prices(int(list_id), [row["id"] for row in rows])
            for row in rows:
                row["price"] = prices.get(row["id"])
                if row["price"] is None:
                    self.oro_tap.report.count(self.name, "no_price")
        if self.config.get("product_images", True) and rows:
            images = self.images([row["id"] for row in rows])
            for row in rows:
                row["image_url"] = images.get(row["id"])
                if row["image_url"] is None:
                    self.oro_tap.report.count(self.name, "no_image")
        yield from rows

    def images(self, product_ids: list[str]) -> dict[str, str]:
        """Product id -> absolute URL of its main image (else listing, else additional; then the
        lowest image id): one ``productimages`` listing for these products, files and types included."""
        params = {
            "filter[product]": ",".join(product_ids),
            "include": "image,types",
            "fields[productimages]": "product,types,image",
            "fields[files]": "filePath",
            "fields[productimagetypes]": "productImageTypeType",
            "page[size]": 1000,
            "sort": "id",
        }
        best: dict[str, tuple[int, str]] = {}
        for doc in self.iter_pages("productimages", params):
            included = {(str(r.get("type")), str(r.get("id"))): r for r in doc.get("included") or []}
            for image in doc["data"]:
                product, file_ref = _rel(image, "product"), _rel(image, "image")
                if not isinstance(product, dict) or not isinstance(file_ref, dict):
                    continue
                file = included.get((str(file_ref.get("type")), str(file_ref.get("id"))))
                path = image_path(_attrs(file).get("filePath")) if file else None
                if not path:
                    continue
                kinds = {
                    _attrs(included.get((str(t.get("type")), str(t.get("id")))) or {}).get(
                        "productImageTypeType"
                    )
                    for t in _rel(image, "types") or []
                    if isinstance(t, dict)
                }
                rank = min((IMAGE_TYPES.index(k) for k in kinds if k in IMAGE_TYPES), default=len(IMAGE_TYPES))
                key = str(product.get("id"))
                if key not in best or rank < best[key][0]:
                    best[key] = (rank, self.media_link(path))
        return {pid: url for pid, (_, url) in best.items()}

    def media_link(self, path: str) -> str:
        """An absolute media URL: Oro's filePath is relative to the application (an absolute URL,
        e.g. from a CDN, is kept)."""
        if path.startswith(("http://", "https://")):
            return path
        base = str(self.config.get("storefront_url") or self.config.get("base_url") or "")
        return base.rstrip("/") + "/" + path.lstrip("/")

    def prices(self, price_list: int, product_ids: list[str]) -> dict[str, float]:
        """Product id -> its price in ``price_currency`` for the smallest quantity (then the lowest
        value) in the price list: one ``productprices`` listing for these products."""
        currency = str(self.config.get("price_currency") or "USD")
        best: dict[str, tuple[float, float]] = {}
        params = {
            "filter[priceList]": price_list,
            "filter[product]": ",".join(product_ids),
            "fields[productprices]": "quantity,currency,value,product",
            "page[size]": 1000,
            "sort": "id",
        }
        for price in self.iter_list("productprices", params):
            attrs, product = _attrs(price), _rel(price, "product")
            value, qty = money(attrs.get("value")), money(attrs.get("quantity"))
            if attrs.get("currency") != currency or value is None or qty is None:
                continue
            if not isinstance(product, dict):
                continue
            key, candidate = str(product.get("id")), (qty, value)
            if key not in best or candidate < best[key]:
                best[key] = candidate
        return {pid: value for pid, (_, value) in best.items()}


class _OrderLike(EcommerceStream):
    """Orders and carts: customer + lines + totals."""

    @classmethod
    def order_properties(cls) -> list[th.Property[Any]]:
        return [
            th.Property("id", S(min_length=1), required=True),
            # Always emitted, but not `required`: a loader that flattens (singer-sdk 0.54) keeps the
            # top-level `required` list while replacing the object by its `customer__*` columns, and
            # then refuses every record. tests/project/test_catalogs.py keeps required fields scalar.
            th.Property("customer", _customer_schema()),
            th.Property("currency_code", S()),
            th.Property("order_total", N(), required=True),
            th.Property("lines", th.ArrayType(_line_schema()), required=True),
        ]

    def lines_of(
        self, resource: dict[str, Any], relationship: str, title_field: str | None
    ) -> list[dict[str, Any]]:
        lines = []
        for item in self.related_many(resource, relationship):
            attrs = _attrs(item)
            product = _rel(item, "product")
            if not isinstance(product, dict) or not product.get("id"):
                raise RowError(
                    "line_without_product",
                    f"{relationship}.product",
                    f"line item {item.get('id')} has no Oro product (free-form line)",
                )
            qty = float(attrs.get("quantity") or 0)
            price = money(attrs.get("value"))
            if qty.is_integer() and qty >= 1:
                quantity = int(qty)
            else:  # Mailchimp quantities are integers: one line at the line total
                quantity, price = 1, round(qty * (price or 0.0), 4)
            lines.append(
                {
                    "id": str(item["id"]),
                    "product_id": str(product["id"]),
                    "product_variant_id": str(product["id"]),
                    "product_title": attrs.get(title_field) if title_field else None,
                    "quantity": quantity,
                    "price": price,
                }
            )
        if not lines:
            raise RowError("no_lines", relationship, "no line items (Mailchimp needs at least one)")
        return lines


class EcommerceOrdersStream(_OrderLike):
    """Orders with their line items and customer (order_total = Oro totalValue)."""

    name = "ecommerce_orders"
    resource = "orders"
    own_fields = (
        "identifier", "currency", "totalValue", "totalDiscountsAmount",
        "estimatedShippingCostAmount", "overriddenShippingCostAmount", "createdAt", "updatedAt",
        "customer", "customerUser", "internalStatus", "status", "shippingStatus", "lineItems",
    )  # fmt: skip
    include: ClassVar[dict[str, tuple[str, tuple[str, ...]]]] = {
        "lineItems": ("orderlineitems", ("productName", "quantity", "value", "product")),
        "customerUser": ("customerusers", ("email", "firstName", "lastName")),
        "customer": ("customers", ("name",)),
    }

    @classmethod
    @override
    def build_schema(cls) -> dict[str, Any]:
        return th.PropertiesList(
            *cls.order_properties(),
            th.Property(
                "financial_status",
                S(),
                description="From Oro internalStatus; refunded when status or internalStatus is "
                "one of refunded_order_statuses (README table).",
            ),
            th.Property(
                "fulfillment_status", S(), description="From Oro shippingStatus (README table)."
            ),
            th.Property("discount_total", N()),
            th.Property("shipping_total", N()),
            th.Property("processed_at_foreign", DT(), description="Oro createdAt."),
            th.Property("oro_identifier", S(), description="Oro order identifier (number)."),
            UPDATED_AT,
        ).to_dict()

    @override
    def build_row(self, resource: dict[str, Any]) -> dict[str, Any] | None:
        attrs = _attrs(resource)
        total = money(attrs.get("totalValue"))
        if total is None:
            raise RowError("missing_total", "totalValue", "order without a totalValue")
        status_ref = _rel(resource, "internalStatus")
        status = str(status_ref.get("id")) if isinstance(status_ref, dict) else None
        external_ref = _rel(resource, "status")
        external = str(external_ref.get("id")) if isinstance(external_ref, dict) else None
        ship_ref = _rel(resource, "shippingStatus")
        shipping_status = str(ship_ref.get("id")) if isinstance(ship_ref, dict) else None
        shipping = money(attrs.get("overriddenShippingCostAmount"))
        if shipping is None:
            shipping = money(attrs.get("estimatedShippingCostAmount"))
        return {
            "id": str(resource["id"]),
            "customer": self.customer_of(resource),
            "currency_code": attrs.get("currency"),
            "order_total": total,
            "lines": self.lines_of(resource, "lineItems", "productName"),
            "financial_status": financial_status(status, external, refunded_statuses(self.config)),
            "fulfillment_status": fulfillment_status(status, shipping_status),
            "discount_total": money(attrs.get("totalDiscountsAmount")),
            "shipping_total": shipping,
            "processed_at_foreign": attrs.get("createdAt"),
            "oro_identifier": attrs.get("identifier"),
        }


class EcommerceCartsStream(_OrderLike):
    """Shopping lists as carts (only when the instance exposes them in the back-office API).

    ``checkout_url`` opens that shopping list on the storefront. A cart this stream emitted before
    is emitted once as ``{"id", "deleted": true}`` when its list is found empty (its ``updatedAt``
    moved) or gone: Oro keeps no trace of a deleted record, so after the incremental read the tap
    lists the live shopping list ids (one ``fields[shoppinglists]=updatedAt`` listing, only when
    some cart was known at the start of the run) and compares them with the ids it emitted (state
    ``known_cart_ids``, kept current record by record, so a resumed run forgets nothing).
    """

    name = "ecommerce_carts"
    resource = "shoppinglists"
    optional = True
    own_fields = ("currency", "total", "updatedAt", "customer", "customerUser", "items")
    include: ClassVar[dict[str, tuple[str, tuple[str, ...]]]] = {
        "items": ("shoppinglistitems", ("quantity", "value", "product")),
        "customerUser": ("customerusers", ("email", "firstName", "lastName")),
        "customer": ("customers", ("name",)),
    }

    def __init__(self, tap: Any) -> None:
        self.known = BitMap()
        super().__init__(tap)

    @classmethod
    @override
    def build_schema(cls) -> dict[str, Any]:
        # only `id` is required: a removed cart is the tombstone {"id", "deleted", "updated_at"}
        return th.PropertiesList(
            th.Property("id", S(min_length=1), required=True, description="Oro shopping list id."),
            th.Property("customer", _customer_schema()),
            th.Property("currency_code", S()),
            th.Property("order_total", N()),
            th.Property("lines", th.ArrayType(_line_schema())),
            th.Property(
                "checkout_url",
                S(),
                description="Storefront page of the shopping list "
                "(storefront_url + /customer/shoppinglist/update/<id>).",
            ),
            th.Property(
                "deleted", B(), description="true: emptied or deleted since it was emitted."
            ),
            UPDATED_AT,
        ).to_dict()

    @override
    def get_records(self, context: Any) -> Any:
        self.known = decode(self.stream_state.get(KNOWN_CARTS), KNOWN_CARTS)
        known_before = bool(self.known)  # a cart first sent in this run is checked next run
        yield from super().get_records(context)
        if self.skip_reason or not known_before or not self.known:
            return
        live = BitMap(int(r["id"]) for r in self.iter_resource(self.resource, ["updatedAt"]))
        stamp = self._cursor or self._start_value or self.oro_tap.run_started_at
        for cid in self.known - live:
            self.oro_tap.report.count(self.name, "deleted")
            self._forget(cid)
            yield {"id": str(cid), "deleted": True, "updated_at": stamp}

    def _forget(self, cid: int) -> None:
        self.known.discard(cid)
        self.stream_state[KNOWN_CARTS] = encode(self.known)

    @override
    def rows(self, data: list[dict[str, Any]]) -> Any:
        for row in super().rows(data):
            cid = int(row["id"])
            if row.get("deleted"):
                self._forget(cid)
            elif cid not in self.known:
                self.known.add(cid)
                self.stream_state[KNOWN_CARTS] = encode(self.known)
            yield row

    @override
    def build_row(self, resource: dict[str, Any]) -> dict[str, Any] | None:
        attrs = _attrs(resource)
        if not self.related_many(resource, "items"):
            if int(resource["id"]) in self.known:  # emptied since it was sent: remove it
                self.oro_tap.report.count(self.name, "emptied")
                return {"id": str(resource["id"]), "deleted": True}
            # an empty list is no cart (Mailchimp needs lines); counted, not an error
            self.oro_tap.report.count(self.name, "skipped_empty")
            return None
        total = money(attrs.get("total"))
        if total is None:
            raise RowError("missing_total", "total", "shopping list without a total")
        return {
            "id": str(resource["id"]),
            "customer": self.customer_of(resource),
            "currency_code": attrs.get("currency"),
            "order_total": total,
            "lines": self.lines_of(resource, "items", None),
            "checkout_url": self.storefront_link(CART_PATH, resource["id"]),
            "deleted": False,
        }


class EcommerceCustomersStream(EcommerceStream):
    """Customer users who have ordered, with their account name as ``company``.

    Always a scan of customer users (with the account included), filtered client-side on
    max(user updatedAt, account updatedAt), so an account rename re-emits its users; then one
    ``orders?filter[customerUser]=<ids>`` lookup per ``page_size`` changed users (held across scan
    pages, the rest after the last page) keeps only users with orders: a few changes spread over the
    whole scan cost one lookup, not one per page they fall on.
    """

    name = "ecommerce_customers"
    resource = "customerusers"
    default_mode = MODE_SCAN
    own_fields = ("email", "firstName", "lastName", "updatedAt", "customer")
    include: ClassVar[dict[str, tuple[str, tuple[str, ...]]]] = {
        "customer": ("customers", ("name", "updatedAt")),
    }

    @classmethod
    @override
    def build_schema(cls) -> dict[str, Any]:
        return th.PropertiesList(
            th.Property("id", S(min_length=1), required=True, description="Oro customer user id."),
            th.Property("email_address", S(), required=True),
            th.Property("opt_in_status", B(), description="Always null: Oro holds no consent."),
            th.Property("first_name", S()),
            th.Property("last_name", S()),
            th.Property("company", S(), description="Oro customer (account) name."),
            th.Property(
                "updated_at",
                DT(),
                required=True,
                description="max(customer user updatedAt, account updatedAt).",
            ),
        ).to_dict()

    @override
    def flatten(self, resource: dict[str, Any]) -> dict[str, Any] | None:
        row = super().flatten(resource)
        account = self.related(resource, "customer")
        stamp = _attrs(account).get("updatedAt") if account else None
        if row is not None and isinstance(stamp, str) and stamp > row["updated_at"]:
            row["updated_at"] = stamp
        return row

    @override
    def build_row(self, resource: dict[str, Any]) -> dict[str, Any] | None:
        attrs = _attrs(resource)
        if not attrs.get("email"):
            raise RowError("missing_email", "email", "customer user has no email")
        account = self.related(resource, "customer")
        return {
            "id": str(resource["id"]),
            "email_address": attrs.get("email"),
            "opt_in_status": None,
            "first_name": attrs.get("firstName"),
            "last_name": attrs.get("lastName"),
            "company": _attrs(account).get("name") if account else None,
        }

    _tracking: bool = False

    @override
    def _track_scan_max(self, value: str, key: str) -> None:
        # the end-of-run id set must describe the bookmark the SDK writes, i.e. the emitted rows
        if self._tracking:
            super()._track_scan_max(value, key)

    _held: list[dict[str, Any]]
    _lookups: deque[tuple[list[dict[str, Any]], Future[set[str]] | set[str]]]
    """Changed rows with their orders lookup (running in the background when reading in parallel),
    oldest first."""

    @override
    def prepare_sync(self) -> None:
        super().prepare_sync()
        self._held = []
        self._lookups = deque()

    @override
    def rows(self, data: list[dict[str, Any]]) -> Any:
        self._held += super().rows(data)
        if len(self._held) >= self.page_size:
            self._look_up_held()
        yield from self._checked_rows(wait=False)

    @override
    def held_rows(self) -> Iterator[dict[str, Any]]:
        self._look_up_held()
        return self._checked_rows(wait=True)

    def _look_up_held(self) -> None:
        """Start the orders lookup of the rows held so far: on the tap's pool when reading in
        parallel (the scan reads on meanwhile), else now."""
        changed, self._held = self._held, []
        if not changed:
            return
        ids = [row["id"] for row in changed]
        found: Future[set[str]] | set[str] = (
            self.oro_tap.read_pool.submit(partial(self.users_with_orders, ids))
            if self.parallel
            else self.users_with_orders(ids)
        )
        self._lookups.append((changed, found))

    def _checked_rows(self, *, wait: bool) -> Iterator[dict[str, Any]]:
        """The rows of users with orders, lookup after lookup in order (``wait``: also those whose
        lookup is still running)."""
        while self._lookups:
            changed, found = self._lookups[0]
            if isinstance(found, Future):
                if not wait and not found.done():
                    return
                found = found.result()
            self._lookups.popleft()
            for row in changed:
                if row["id"] in found:
                    self._tracking = True
                    self._track_scan_max(row["updated_at"], self.row_key(row))
                    self._tracking = False
                    yield row
                else:
                    self.oro_tap.report.count(self.name, "skipped_no_orders")

    def users_with_orders(self, user_ids: list[str]) -> set[str]:
        """Which of these customer users have at least one order (one filtered listing)."""
        params = {
            "filter[customerUser]": ",".join(user_ids),
            "fields[orders]": "customerUser",
            "page[size]": 1000,
            "sort": "id",
        }
        found: set[str] = set()
        for order in self.iter_list("orders", params):
            ref = _rel(order, "customerUser")
            if isinstance(ref, dict):
                found.add(str(ref.get("id")))
        return found


def ecommerce_stream_classes() -> list[type[OroStream]]:
    """The Mailchimp-shaped streams, in the order a store is best filled."""
    return [
        EcommerceProductsStream,
        EcommerceCustomersStream,
        EcommerceOrdersStream,
        EcommerceCartsStream,
    ]


__all__ = [
    "MODE_SEEK",
    "EcommerceCartsStream",
    "EcommerceCustomersStream",
    "EcommerceOrdersStream",
    "EcommerceProductsStream",
    "ecommerce_stream_classes",
]
