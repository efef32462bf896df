"""The Oro id a member carries, and the state key of the set of them kept per audience.

A member that Mailchimp deleted permanently (GDPR "forget") vanishes from every endpoint, so the only
way to say *who* left is to remember who was there. Remembering every member (hash -> id) would cost
~50 bytes a member; instead the tap keeps the **set of identity values** (the Oro customer-user id that
target-mailchimp writes into the identity merge field, default ``OROID``) as a compact id set
(:mod:`oromc_common.idsets`: ~0.3 KB for 1,000,000 consecutive ids, ~340 KB for 1,000,000 ids spread
over 2,000,000). Members without a (numeric) identity value, i.e. people who joined in Mailchimp only,
are not in it, so they can never be reported to Oro.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from oromc_common.idsets import MAX_ID


def identity_value(member: Mapping[str, Any], merge_field: str) -> int | None:
    """The member's Oro id from its identity merge field, or None (absent, blank, not an id)."""
    merge = member.get("merge_fields")
    if not isinstance(merge, Mapping) or not merge_field:
        return None
    value = merge.get(merge_field)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    else:
        return None
    return number if 0 < number <= MAX_ID else None


def state_key(list_id: str) -> str:
    """Where an audience's id set lives in the tap state (named in errors about a corrupt value)."""
    return f"bookmarks.forgotten_members.lists.{list_id}.oro_ids"
