"""Deleted customer users, found by id reconciliation at the end of each ``contacts`` scan.

Oro's JSON:API keeps no trace of a deleted record (no soft delete, no tombstone, no "deleted since"
filter). The data audit (OroDataAuditBundle) logs removals of auditable entities, but only through
the old REST API (``/api/rest/latest/audits``), asynchronously (message queue), with its own
permission, and not for rows removed by the database; the search index is asynchronous and lists
only what exists. So the tap reconciles ids: the ``contacts`` stream reads every customer user on
every run anyway (stock Oro cannot filter them by ``updatedAt``), which gives the complete set of
live ids at no extra request. Every id the stream has emitted before and that is no longer live was
deleted (directly, or with its whole customer account): it is reported once as an erase row.

State: ``known_ids``, the ids emitted and still live, as a compact id set (``idsets``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from oromc_common.idsets import BitMap, decode, encode

STATE_KEY = "known_ids"
DELETION_CHECKS = ("auto", "never")


class DeletionTracker:
    """Live and emitted ids of one scan against the ids known from earlier runs."""

    def __init__(self, state: Mapping[str, Any], enabled: bool) -> None:
        self.enabled = enabled
        self.known = decode(state.get(STATE_KEY), STATE_KEY)
        self.live = BitMap()
        self.emitted = BitMap()

    def deleted(self) -> list[int]:
        """Ids emitted before that the complete scan did not find (empty when disabled)."""
        return list(self.known - self.live) if self.enabled else []

    def save(self, state: dict[str, Any]) -> None:
        """Known ids after this run: those still live (all of them with ``deletion_check: never``,
        so turning the check on later reports the deletions made meanwhile), plus those emitted now."""
        known = self.known & self.live if self.enabled else self.known
        state[STATE_KEY] = encode(known | self.emitted)
