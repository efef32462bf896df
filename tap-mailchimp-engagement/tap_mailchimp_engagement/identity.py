"""The Oro ids carried by an audience's members, kept compactly in state to name forgotten people.

A member that Mailchimp deleted permanently (GDPR "forget") vanishes from every endpoint, so the only
way to say *who* left is to remember who was there. Remembering every member (hash -> id) would cost
~50 bytes a member; instead the tap keeps the **set of identity values** (the Oro customer-user id that
target-mailchimp writes into the identity merge field, default ``OROID``) as a Roaring bitmap
(``pyroaring``, the portable Roaring format), zlib-compressed and base64-encoded:

* Oro ids are auto-increment integers, so the set is mostly runs: 1,000,000 consecutive ids take
  ~140 bytes; 1,000,000 ids spread over 1,250,000 (80 % dense) ~165 KB; over 2,000,000 ~335 KB.
  The bound is ~1 bit per id up to the highest id (bitmap containers) or ~2 bytes per id when ids are
  scattered (array containers), whichever is smaller: at most ~2.7 MB for 1,000,000 ids scattered
  over 100,000,000.
* Members without a (numeric) identity value (people who joined in Mailchimp only) are not in it, so
  they can never be reported to Oro.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

from pyroaring import BitMap

FORMAT_PREFIX = "roaring-z1:"
MAX_ID = 2**32 - 1  # Roaring bitmaps hold unsigned 32-bit integers


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


def encode(ids: BitMap) -> str:
    """Compact text form of a set of ids (for state)."""
    ids.run_optimize()
    return FORMAT_PREFIX + base64.b64encode(zlib.compress(ids.serialize(), 6)).decode("ascii")


def decode(text: Any) -> BitMap | None:
    """The set stored by :func:`encode`; None when absent or unreadable (a new baseline is needed)."""
    if not isinstance(text, str) or not text.startswith(FORMAT_PREFIX):
        return None
    try:
        return BitMap.deserialize(zlib.decompress(base64.b64decode(text[len(FORMAT_PREFIX) :])))
    except (ValueError, zlib.error):
        return None


def bitmap(ids: Iterable[int] = ()) -> BitMap:
    """A new set of ids."""
    return BitMap(ids)
