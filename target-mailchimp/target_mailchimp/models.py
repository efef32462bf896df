"""Plain data of the contacts sync: settings, prepared contacts, planned writes and tag changes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from oromc_common.batches import OperationResult

from target_mailchimp.client import MemberState
from target_mailchimp.mapping import ConsentPolicy


@dataclass
class SyncSettings:
    """The parts of the target config the sync needs."""

    consent: ConsentPolicy = field(default_factory=ConsentPolicy)
    merge_fields: dict[str, str] = field(default_factory=dict)  # merge tag -> contact field
    identity_merge_field: str | None = "OROID"  # merge tag holding customer_user_id
    tag_prefix: str = "oro:"
    tag_fields: dict[str, str] = field(default_factory=dict)
    tag_rules: list[dict[str, Any]] = field(default_factory=list)
    exclude_tag_prefixes: list[str] = field(default_factory=list)
    erasure_mode: str = "archive"
    is_syncing: bool = False
    tag_write_mode: str = "auto"
    skip_merge_validation: bool = False
    max_connections: int = 8
    batch_poll_seconds: float = 1.0
    batch_timeout_seconds: float = 3600.0


@dataclass
class Contact:
    """One de-duplicated contact of a window.

    ``hash`` is the subscriber hash of ``email`` (empty for an erase row without an address);
    ``oro_id`` is the source id (``customer_user_id``) the member carries in the identity merge
    field, or None for a contact without one (matched by email only).
    """

    key: str
    email: str
    hash: str
    record: dict[str, Any]
    merge: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    erase: bool = False
    oro_id: str | None = None


@dataclass
class Write:
    """One planned create or update (a batch-subscribe item)."""

    contact: Contact
    item: dict[str, Any]
    created: bool
    new_state: MemberState
    existed: bool = False
    #: an existing member's tag changes whose additions ride in ``item["tags"]`` (see
    #: ``ContactSync._inline_tag_additions``); its removals are written separately
    tags_inline: TagDelta | None = None


@dataclass
class TagDelta:
    """Owned tags to add to / remove from one member."""

    contact: Contact
    state: MemberState
    add: list[str]
    remove: list[str]

    @classmethod
    def of(cls, contact: Contact, state: MemberState) -> TagDelta:
        """The difference between the tags a contact should own and the member's owned tags
        (both keyed by ``tag_key``, so case, Unicode composition and spacing do not count)."""
        add = [name for low, name in contact.tags.items() if low not in state.tags]
        remove = [name for low, name in state.tags.items() if low not in contact.tags]
        return cls(contact, state, add, remove)


@dataclass(frozen=True)
class Rider:
    """GETs carried by another ``/batches`` job of GETs instead of a job of their own: a trickle's
    store lookups in the contacts window's lookup of its members (each job costs a ``POST``, its
    polls and ~2 s of Mailchimp's queueing). ``apply`` learns from their results (those missing
    are simply not learnt: their owner reads them as it would have)."""

    operations: list[dict[str, Any]]
    apply: Callable[[list[OperationResult]], None]
