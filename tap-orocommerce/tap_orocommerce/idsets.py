"""Compact sets of Oro ids kept in stream state (roaring bitmaps, base64 in JSON).

A million customer users with scattered deletions serialise to ~170 KB; contiguous ids to a few
bytes. Used for the ids the ``contacts`` stream has emitted (deletion detection) and for the
consent-acceptance bookkeeping.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pyroaring import BitMap


def encode(ids: BitMap) -> str:
    """A set of ids as a short string (run-length optimised roaring bitmap, base64)."""
    ids.run_optimize()
    return base64.b64encode(ids.serialize()).decode("ascii")


def decode(value: Any, what: str) -> BitMap:
    """The set written by :func:`encode` (empty when absent); a corrupt value fails loudly, naming
    the state key, rather than silently forgetting which ids were seen."""
    if value is None or value == "":
        return BitMap()
    try:
        return BitMap.deserialize(base64.b64decode(str(value), validate=True))
    except (binascii.Error, ValueError, OSError) as exc:
        msg = f"State key '{what}' is not a valid id set ({exc}); reset the stream's state."
        raise ValueError(msg) from exc


__all__ = ["BitMap", "decode", "encode"]
