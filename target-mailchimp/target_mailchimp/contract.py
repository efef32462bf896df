"""The input contract: the ``contacts`` stream any tap (or a stream map) must produce.

``email`` is required, except on an erase row that names ``customer_user_id``. Every other field
is optional; a field that is absent or null leaves Mailchimp's value alone, ``""`` clears it.
"""

from __future__ import annotations

from typing import Any

CONTACTS_KEY_PROPERTIES = ["email"]

_STR = {"type": ["string", "null"]}
_BOOL = {"type": ["boolean", "null"]}

CONTACTS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "anyOf": [{"required": ["email"]}, {"required": ["customer_user_id", "erase"]}],
    "properties": {
        "email": {
            "type": ["string", "null"],
            "description": "E-mail address (trimmed; matched case-insensitively). Null only on an "
                           "erase row with customer_user_id.",
        },
        "first_name": {**_STR, "description": "-> FNAME by default."},
        "last_name": {**_STR, "description": "-> LNAME by default."},
        "phone": {
            **_STR,
            "description": "-> PHONE by default (coerced to the merge field's phone format).",
        },
        "country": {**_STR, "description": "Country (ISO 3166-1 alpha-2) of the primary address; map it "
                                           "to a text merge field (e.g. COUNTRY)."},
        "city": {**_STR, "description": "City of the primary address; map it to a text merge field."},
        "region": {
            **_STR,
            "description": "Region of the primary address (ISO 3166-2 like US-CA, or free text); map it "
                           "to a text merge field (e.g. REGION).",
        },
        "address": {
            "type": ["object", "null"],
            "properties": dict.fromkeys(("addr1", "addr2", "city", "state", "zip", "country"), _STR),
            "description": "Postal address in Mailchimp's address shape (addr1, city, state and zip "
                           "required); map it to an address merge field (e.g. ADDRESS).",
        },
        "birthday": {
            **_STR,
            "format": "date",
            "description": "Birthday YYYY-MM-DD (the year is dropped); map it to a birthday merge field "
                           "(e.g. BIRTHDAY, sent as MM/DD).",
        },
        "orders_count": {
            "type": ["integer", "null"],
            "description": "Purchase history: orders placed (map to a number merge field, e.g. ORDERS).",
        },
        "total_spent": {
            "type": ["number", "null"],
            "description": "Purchase history: total of those orders (map to a number merge field).",
        },
        "average_order_value": {
            "type": ["number", "null"],
            "description": "Purchase history: total_spent / orders_count (map to a number merge field).",
        },
        "last_product": {
            **_STR,
            "description": "Purchase history: a product of the latest order (map to a text merge field).",
        },
        "first_order_date": {
            "type": ["string", "null"],
            "format": "date-time",
            "description": "Purchase history: first order (map to a date merge field; sent as its date).",
        },
        "last_order_date": {
            "type": ["string", "null"],
            "format": "date-time",
            "description": "Purchase history: latest order (map to a date merge field; sent as its date).",
        },
        "customer_id": {"type": ["integer", "string", "null"], "description": "Source account id."},
        "customer_name": {
            **_STR,
            "description": "Account name -> tag '<prefix>account:<name>' by default.",
        },
        "customer_group": {
            **_STR,
            "description": "Customer group -> tag '<prefix>group:<name>' by default.",
        },
        "customer_group_name": {
            **_STR,
            "description": "Same as customer_group (the name tap-orocommerce uses).",
        },
        "tags": {
            "type": ["array", "null"],
            "items": {"type": "string"},
            "description": "Source tags -> one '<prefix>tag:<name>' each.",
        },
        "enabled": {**_BOOL, "description": "Login enabled at the source."},
        "confirmed": {**_BOOL, "description": "Account confirmed at the source."},
        "is_guest": {**_BOOL, "description": "Guest (checkout-only) customer."},
        "customer_user_id": {
            "type": ["integer", "string", "null"],
            "description": "Source person id: kept on the member in the identity merge field "
                           "(OROID), which matches the contact before the email; the record key in rejects.",
        },
        "updated_at": {
            "type": ["string", "null"],
            "format": "date-time",
            "description": "Moves when any of the fields above moves.",
        },
        "marketing_consent": {
            **_BOOL,
            "description": "Marketing consent recorded at the source: true, false, or null (nothing recorded).",
        },
        "consent_changed_at": {
            "type": ["string", "null"],
            "format": "date-time",
            "description": "When marketing_consent took its value at the source (or an upper "
                           "bound). An opt-out wins unless the person opted in in Mailchimp later "
                           "(timestamp_opt); an opt-in is recorded as the member's timestamp_opt.",
        },
        "erase": {
            **_BOOL,
            "description": "true: the person was deleted at the source; the member carrying "
                           "customer_user_id (or, without an id, the address) is archived or "
                           "permanently deleted (erasure_mode).",
        },
    },
}


_NUM = {"type": ["number", "string", "null"]}
_CUSTOMER = {
    "type": "object",
    "required": ["id"],
    "properties": {
        "id": {"type": "string"},
        "email_address": _STR,
        "opt_in_status": _BOOL,
        "first_name": _STR,
        "last_name": _STR,
        "company": _STR,
        "address": {"type": ["object", "null"]},
    },
}
_LINE = {
    "type": "object",
    "required": ["id", "product_id"],
    "properties": {
        "id": {"type": "string"},
        "product_id": {"type": "string"},
        "product_variant_id": _STR,
        "product_title": {**_STR, "description": "Title for a placeholder product."},
        "quantity": {"type": ["integer", "null"]},
        "price": _NUM,
        "discount": _NUM,
    },
}
_ORDER_LIKE = {
    "id": {"type": "string"},
    "customer": _CUSTOMER,
    "currency_code": _STR,
    "order_total": _NUM,
    "tax_total": _NUM,
    "lines": {"type": "array", "items": _LINE},
    "campaign_id": _STR,
}

#: Mailchimp-shaped, self-contained e-commerce streams (key ``id``).
ECOMMERCE_SCHEMAS: dict[str, dict[str, Any]] = {
    "ecommerce_customers": {
        "type": "object",
        "required": ["id", "email_address"],
        "properties": _CUSTOMER["properties"],
    },
    "ecommerce_products": {
        "type": "object",
        "required": ["id", "title"],
        "properties": {
            "id": {"type": "string"},
            "title": {"type": "string"},
            "handle": _STR,
            "url": _STR,
            "description": _STR,
            "type": _STR,
            "vendor": _STR,
            "image_url": _STR,
            "published_at_foreign": {"type": ["string", "null"], "format": "date-time"},
            "sku": {
                **_STR,
                "description": "Used for the single default variant when 'variants' is absent.",
            },
            "price": _NUM,
            "inventory_quantity": {"type": ["integer", "null"]},
            "variants": {
                "type": ["array", "null"],
                "items": {"type": "object", "required": ["id"]},
            },
        },
    },
    "ecommerce_orders": {
        "type": "object",
        "required": ["id", "customer", "lines", "order_total"],
        "properties": {
            **_ORDER_LIKE,
            "financial_status": _STR,
            "fulfillment_status": _STR,
            "order_url": _STR,
            "landing_site": _STR,
            "discount_total": _NUM,
            "shipping_total": _NUM,
            "tracking_code": _STR,
            "processed_at_foreign": {"type": ["string", "null"], "format": "date-time"},
            "updated_at_foreign": {"type": ["string", "null"], "format": "date-time"},
            "cancelled_at_foreign": {"type": ["string", "null"], "format": "date-time"},
            "shipping_address": {"type": ["object", "null"]},
            "billing_address": {"type": ["object", "null"]},
        },
    },
    "ecommerce_carts": {
        "type": "object",
        "required": ["id"],
        # a live cart carries its contents; a removed one only {"id", "deleted": true}
        "if": {"required": ["deleted"], "properties": {"deleted": {"const": True}}},
        "else": {"required": ["customer", "lines", "order_total"]},
        "properties": {
            **_ORDER_LIKE,
            "checkout_url": _STR,
            "deleted": {
                **_BOOL,
                "description": "true: the cart is gone (e.g. converted to an order).",
            },
        },
    },
}
