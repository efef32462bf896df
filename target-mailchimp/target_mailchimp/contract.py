"""The input contract: the ``contacts`` stream any tap (or a stream map) must produce.

Only ``email`` is required. Every other field is optional; a field that is absent or null leaves
Mailchimp's value alone, ``""`` clears it.
"""

from __future__ import annotations

from typing import Any

CONTACTS_KEY_PROPERTIES = ["email"]

_STR = {"type": ["string", "null"]}
_BOOL = {"type": ["boolean", "null"]}

CONTACTS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["email"],
    "properties": {
        "email": {"type": "string", "description": "E-mail address (trimmed; matched case-insensitively)."},
        "first_name": {**_STR, "description": "-> FNAME by default."},
        "last_name": {**_STR, "description": "-> LNAME by default."},
        "phone": {**_STR, "description": "-> PHONE by default (coerced to the merge field's phone format)."},
        "customer_id": {"type": ["integer", "string", "null"], "description": "Source account id."},
        "customer_name": {**_STR, "description": "Account name -> tag '<prefix>account:<name>' by default."},
        "customer_group": {**_STR, "description": "Customer group -> tag '<prefix>group:<name>' by default."},
        "customer_group_name": {**_STR, "description": "Same as customer_group (the name tap-orocommerce uses)."},
        "tags": {"type": ["array", "null"], "items": {"type": "string"},
                 "description": "Source tags -> one '<prefix>tag:<name>' each."},
        "enabled": {**_BOOL, "description": "Login enabled at the source."},
        "confirmed": {**_BOOL, "description": "Account confirmed at the source."},
        "is_guest": {**_BOOL, "description": "Guest (checkout-only) customer."},
        "customer_user_id": {"type": ["integer", "string", "null"],
                             "description": "Source person id; used as the record key in rejects."},
        "updated_at": {"type": ["string", "null"], "format": "date-time",
                       "description": "Moves when any of the fields above moves."},
        "marketing_consent": {**_BOOL, "description": "Source's marketing consent; with consent_changed_at it is an explicit consent change."},
        "consent_changed_at": {"type": ["string", "null"], "format": "date-time",
                               "description": "When marketing_consent last changed at the source. Applied only if later than the member's last change in Mailchimp."},
        "erase": {**_BOOL, "description": "true: archive or permanently delete the member (erasure_mode)."},
    },
}
