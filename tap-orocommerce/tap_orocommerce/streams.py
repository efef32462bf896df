"""Stream classes: one small class per Oro resource (columns = Oro field -> column -> type)."""

from __future__ import annotations

from typing import ClassVar

from singer_sdk import typing as th

from tap_orocommerce.client import (
    MODE_FINGERPRINT,
    MODE_SEEK,
    Field,
    OroStream,
    attr,
    many,
    one,
)

S, B, Int, N = th.StringType, th.BooleanType, th.IntegerType, th.NumberType
DT, D = th.DateTimeType, th.DateType
CREATED = attr("createdAt", "created_at", DT())
UPDATED = attr("updatedAt", "updated_at", DT())


class CustomerUsersStream(OroStream):
    """Customer users (people). Oro rejects ``filter[updatedAt]`` here by default (see README)."""

    name = "customer_users"
    resource = "customerusers"
    replication_key = "updated_at"
    columns: ClassVar[tuple[Field, ...]] = (
        attr("email", "email", S()),
        attr("namePrefix", "name_prefix", S()),
        attr("firstName", "first_name", S()),
        attr("middleName", "middle_name", S()),
        attr("lastName", "last_name", S()),
        attr("nameSuffix", "name_suffix", S()),
        attr("birthday", "birthday", D()),
        attr("enabled", "enabled", B()),
        attr("confirmed", "confirmed", B()),
        attr("isGuest", "is_guest", B()),
        attr("loginCount", "login_count", Int()),
        attr("lastLogin", "last_login", DT()),
        CREATED,
        UPDATED,
        one("customer", "customer_id"),
        many("addresses", "address_ids"),
        one("website", "website_id"),
        one("owner", "owner_id"),
        many("tags", "tag_ids"),
    )


class CustomerUserAddressesStream(OroStream):
    """Customer user addresses: the source of phone numbers."""

    name = "customer_user_addresses"
    resource = "customeruseraddresses"
    replication_key = "updated_at"
    columns: ClassVar[tuple[Field, ...]] = (
        attr("label", "label", S()),
        attr("firstName", "first_name", S()),
        attr("lastName", "last_name", S()),
        attr("organization", "organization", S()),
        attr("street", "street", S()),
        attr("street2", "street2", S()),
        attr("city", "city", S()),
        attr("postalCode", "postal_code", S()),
        attr("customRegion", "custom_region", S()),
        attr("phone", "phone", S()),
        attr("primary", "primary", B()),
        attr(
            "types",
            "types",
            th.ArrayType(
                th.ObjectType(
                    th.Property("addressType", S()),
                    th.Property("default", B()),
                )
            ),
        ),
        CREATED,
        UPDATED,
        one("customerUser", "customer_user_id"),
        one("country", "country_code", int_id=False),
        one("region", "region_code", int_id=False),
    )


class CustomersStream(OroStream):
    """Customers (B2B accounts)."""

    name = "customers"
    resource = "customers"
    replication_key = "updated_at"
    columns: ClassVar[tuple[Field, ...]] = (
        attr("name", "name", S()),
        CREATED,
        UPDATED,
        one("group", "customer_group_id"),
        one("parent", "parent_id"),
        one("internal_rating", "internal_rating", int_id=False),
    )


class CustomerGroupsStream(OroStream):
    """Customer groups: no timestamps in Oro, so changed rows are found by fingerprint."""

    name = "customer_groups"
    resource = "customergroups"
    replication_key = None
    default_mode = MODE_FINGERPRINT
    columns: ClassVar[tuple[Field, ...]] = (attr("name", "name", S()),)


class OrdersStream(OroStream):
    """Orders (money values are strings, as Oro sends them)."""

    name = "orders"
    resource = "orders"
    replication_key = "updated_at"
    columns: ClassVar[tuple[Field, ...]] = (
        attr("identifier", "identifier", S()),
        attr("poNumber", "po_number", S()),
        attr("customerNotes", "customer_notes", S()),
        attr("currency", "currency", S()),
        attr("subtotalValue", "subtotal_value", S()),
        attr("totalValue", "total_value", S()),
        attr("totalDiscountsAmount", "total_discounts_amount", S()),
        attr("shippingMethod", "shipping_method", S()),
        attr("external", "external", B()),
        CREATED,
        UPDATED,
        one("customer", "customer_id"),
        one("customerUser", "customer_user_id"),
        one("internalStatus", "internal_status", int_id=False),
        one("status", "status", int_id=False),
        many("lineItems", "line_item_ids"),
    )


class OrderLineItemsStream(OroStream):
    """Order line items."""

    name = "order_line_items"
    resource = "orderlineitems"
    replication_key = "updated_at"
    columns: ClassVar[tuple[Field, ...]] = (
        attr("productSku", "product_sku", S()),
        attr("productName", "product_name", S()),
        attr("quantity", "quantity", N()),
        attr("productUnitCode", "product_unit_code", S()),
        attr("value", "value", S()),
        attr("currency", "currency", S()),
        CREATED,
        UPDATED,
        many("orders", "order_ids"),
        one("product", "product_id"),
    )


class ProductsStream(OroStream):
    """Products."""

    name = "products"
    resource = "products"
    replication_key = "updated_at"
    columns: ClassVar[tuple[Field, ...]] = (
        attr("sku", "sku", S()),
        attr("name", "name", S()),
        attr("status", "status", S()),
        attr("type", "type", S()),
        attr("featured", "featured", B()),
        attr("newArrival", "new_arrival", B()),
        CREATED,
        UPDATED,
    )


class TagsStream(OroStream):
    """Tags (only when tagging is enabled for customer users); changed rows by fingerprint."""

    name = "tags"
    resource = "tags"
    replication_key = None
    default_mode = MODE_FINGERPRINT
    optional = True
    columns: ClassVar[tuple[Field, ...]] = (
        attr("name", "name", S()),
        CREATED,
        UPDATED,
        one("taxonomy", "taxonomy_id"),
    )


class ShoppingListsStream(OroStream):
    """Shopping lists (carts): only when the instance exposes them in the back-office API."""

    name = "shopping_lists"
    resource = "shoppinglists"
    replication_key = "updated_at"
    default_mode = MODE_SEEK
    optional = True
    columns: ClassVar[tuple[Field, ...]] = (
        attr("name", "name", S()),
        attr("notes", "notes", S()),
        attr("default", "default", B()),
        attr("currency", "currency", S()),
        attr("total", "total", S()),
        attr("subTotal", "sub_total", S()),
        CREATED,
        UPDATED,
        one("customerUser", "customer_user_id"),
        one("customer", "customer_id"),
    )


def stream_classes() -> list[type[OroStream]]:
    """Every Oro-shaped stream, in sync order."""
    return [
        CustomerGroupsStream,
        CustomersStream,
        CustomerUsersStream,
        CustomerUserAddressesStream,
        TagsStream,
        OrdersStream,
        OrderLineItemsStream,
        ProductsStream,
        ShoppingListsStream,
    ]
