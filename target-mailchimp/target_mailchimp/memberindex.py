"""What the target knows of each audience member (``MemberState`` by subscriber hash), mostly on disk.

A run that reads the whole audience keeps one state per member: status, the mapped merge fields,
the owned tags, the opt-in times. As Python objects (dataclass, dicts, one string per value) that is
~2 KB per member, ~2 GB for a million. Here the states live in a temporary sqlite file
(``oromc_common.diskmap``) as flat tuples, and only the states the current windows work with stay
objects in memory (at most ``HOT_MAX``): a state handed out by :meth:`MemberIndex.get` is the same
object on the next ``get`` while it is hot, so the sync's in-place changes (``complete_tags``) show
until the hot states are written back. Every other change goes through ``__setitem__`` (``remember``,
the tag writes), so the index never loses what a write established; a hot state written back before
an in-place change only costs that change being made again (the tags read again) on the member's next
window.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from oromc_common.diskmap import DiskMap

if TYPE_CHECKING:
    from target_mailchimp.client import MemberState

HOT_MAX = 10_000
"""States kept as objects (those handed out or stored last) before all are written back to disk:
two and a half windows of the default size (``max_connections`` x 500), ~15 MB."""


def pack(state: MemberState) -> tuple[Any, ...]:
    """A state as one flat tuple (a ``DiskMap`` value)."""
    return (
        state.status, state.merge, state.tags, state.last_changed, state.tags_complete, state.oro_id,
        state.timestamp_opt, state.timestamp_signup,
    )  # fmt: skip


def unpack(packed: tuple[Any, ...]) -> MemberState:
    """The state of :func:`pack`."""
    from target_mailchimp.client import MemberState  # here: client imports this module

    status, merge, tags, last_changed, complete, oro_id, opt, signup = packed
    return MemberState(status, merge, tags, last_changed, complete, oro_id, opt, signup)


class MemberIndex:
    """``subscriber hash -> MemberState`` with the dict operations the audience needs (thread-safe)."""

    def __init__(self) -> None:
        """An empty index (its temporary file is removed at exit)."""
        self._hot: dict[str, MemberState] = {}
        self._disk = DiskMap()
        self._lock = threading.RLock()

    def get(self, hash_: str, default: MemberState | None = None) -> MemberState | None:
        """The member's state (the same object while it is hot), else ``default``."""
        with self._lock:
            state = self._hot.get(hash_)
            if state is None:
                packed = self._disk.get(hash_)
                if packed is None:
                    return default
                state = unpack(packed)
                self._keep(hash_, state)
            return state

    def __setitem__(self, hash_: str, state: MemberState) -> None:
        with self._lock:
            self._keep(hash_, state)

    def setdefault(self, hash_: str, state: MemberState) -> MemberState:
        """The member's state; ``state`` itself after storing it when there is none (to disk
        directly: a whole-audience read must not make every state hot)."""
        with self._lock:
            found = self._hot.get(hash_)
            if found is not None:
                return found
            new = pack(state)
            stored = self._disk.setdefault(hash_, new)
            return state if stored is new else unpack(stored)

    def pop(self, hash_: str, default: MemberState | None = None) -> MemberState | None:
        """Remove the member; its state, else ``default``."""
        with self._lock:
            state = self._hot.pop(hash_, None)
            packed = self._disk.pop(hash_)
            if state is not None:
                return state
            return default if packed is None else unpack(packed)

    def __contains__(self, hash_: object) -> bool:
        with self._lock:
            return hash_ in self._hot or hash_ in self._disk

    def _keep(self, hash_: str, state: MemberState) -> None:
        if hash_ not in self._hot and len(self._hot) >= HOT_MAX:
            self.write_back()
        self._hot[hash_] = state

    def write_back(self) -> None:
        """Store every hot state on disk and let the objects go."""
        with self._lock:
            for hash_, state in self._hot.items():
                self._disk[hash_] = pack(state)
            self._hot.clear()

    def close(self) -> None:
        """Drop the index (its temporary file)."""
        with self._lock:
            self._hot.clear()
            self._disk.close()
