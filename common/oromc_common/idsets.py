"""Compact sets of integer ids kept in Singer state (Roaring bitmaps, base64 in JSON).

Shared by the taps that must remember which ids they have seen without storing them one by one:
tap-mailchimp-engagement (the Oro ids carried by an audience's members, to name members Mailchimp
deleted permanently) and tap-orocommerce (the customer users the ``contacts`` stream emitted).
Oro ids are auto-increment integers, so sets are mostly runs: 1,000,000 consecutive ids take ~0.3 KB;
1,000,000 ids spread over 1,250,000 ~210 KB; over 2,000,000 ~340 KB. The bound is ~1 bit per id up to
the highest id (bitmap containers) or ~2 bytes per id when ids are scattered, whichever is smaller.
``BitMap64`` holds ids up to 2**64 - 1 the same way (target-mailchimp's read-ahead: the ids of the
store records it holds back, in memory only).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pyroaring import BitMap, BitMap64

MAX_ID = 2**32 - 1  # Roaring bitmaps hold unsigned 32-bit integers


def encode(ids: BitMap) -> str:
    """A set of ids as a short string (run-length optimised Roaring bitmap, base64)."""
    ids.run_optimize()
    return base64.b64encode(ids.serialize()).decode("ascii")


def decode(value: Any, what: str) -> BitMap:
    """The set written by :func:`encode` (empty when absent).

    A corrupt value fails loudly, naming the state key, rather than silently forgetting which ids
    were seen.
    """
    if value is None or value == "":
        return BitMap()
    try:
        return BitMap.deserialize(base64.b64decode(str(value), validate=True))
    except (binascii.Error, ValueError, OSError) as exc:
        msg = f"State key '{what}' is not a valid id set ({exc}); reset the stream's state."
        raise ValueError(msg) from exc


__all__ = ["MAX_ID", "BitMap", "BitMap64", "decode", "encode"]
