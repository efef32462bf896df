"""Compact record storage for the Oro sandbox.

A :class:`Table` keeps ids ``1..n``. Seeded rows are *derived* on demand from the seed (a pure
function of the id) so a million customers cost a few arrays, not a million dicts. Fields that
filters, sorts and relationships need at scale (dates, foreign keys) live in ``array`` columns that
are always authoritative. A row that is written is materialised once as a dict in ``over`` (the
overlay) and from then on served from there.

Reverse (to-many) relationships are answered from seeded contiguous ranges plus an ``extras``
index that ``put`` keeps up to date, so ``customer.users`` or ``order.lineItems`` cost O(children).
Writes can be grouped in a transaction (:meth:`Table.begin` / ``rollback``) for atomic batches.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator
from typing import Any

Record = dict[str, Any]
_MISSING = object()


class Table:
    """One resource's rows. See the module docstring."""

    def __init__(
        self,
        name: str,
        columns: Iterable[str] = (),
        derive: Callable[[int], Record] | None = None,
        indexed: Iterable[str] = (),
    ) -> None:
        self.name = name
        self.n = 0
        self.seeded = 0
        self.alive = bytearray()
        self.deleted = 0
        self.over: dict[int, Record] = {}
        self.cols: dict[str, array[int]] = {c: array("I") for c in columns}
        self.derive = derive
        # reverse indexes: field -> parent id -> child ids (beyond seeded ranges)
        self.indexed = tuple(indexed)
        self.extras: dict[str, dict[int, set[int]]] = {f: {} for f in self.indexed}
        # seeded ranges: field -> array of first child id per parent (index = parent id)
        self.ranges: dict[str, array[int]] = {}
        self.version = 0
        self._undo: list[tuple[int, Any, int, tuple[int, ...]]] | None = None

    # ---- reading -------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.n - self.deleted

    def exists(self, rid: int) -> bool:
        """True when ``rid`` is a live id."""
        return 1 <= rid <= self.n and bool(self.alive[rid - 1])

    def get(self, rid: int) -> Record | None:
        """The record (do not mutate it; use :meth:`put`), or None."""
        if not self.exists(rid):
            return None
        rec = self.over.get(rid)
        if rec is not None:
            return rec
        assert self.derive is not None
        rec = self.derive(rid)
        for name, col in self.cols.items():
            rec[name] = col[rid - 1] or None
        return rec

    def value(self, rid: int, field: str) -> Any:
        """One field of a live record (fast for array columns)."""
        col = self.cols.get(field)
        if col is not None:
            return col[rid - 1] or None
        rec = self.get(rid)
        return None if rec is None else rec.get(field)

    def ids(self) -> Iterator[int] | range:
        """Live ids, ascending."""
        if not self.deleted:
            return range(1, self.n + 1)
        alive = self.alive
        return (i + 1 for i in range(self.n) if alive[i])

    def children(self, field: str, parent: int) -> list[int]:
        """Ids whose ``field`` (a foreign key or id list) contains ``parent``, ascending."""
        out: list[int] = []
        starts = self.ranges.get(field)
        if starts is not None and 0 < parent < len(starts) - 1:
            col = self.cols.get(field)
            out.extend(
                rid for rid in range(starts[parent], starts[parent + 1])
                if self.exists(rid)
                and (col[rid - 1] == parent if col is not None else _contains(self.value(rid, field), parent))
            )
        extra = self.extras.get(field, {}).get(parent)
        if extra:
            out.extend(rid for rid in extra if self.exists(rid))
            out.sort()
        return out

    def in_seeded_range(self, field: str, parent: int, rid: int) -> bool:
        """True when ``rid`` lies in ``parent``'s seeded child range for ``field``."""
        starts = self.ranges.get(field)
        return starts is not None and 0 < parent < len(starts) - 1 and starts[parent] <= rid < starts[parent + 1]

    # ---- writing -------------------------------------------------------------------------
    def append_seeded(self, count: int) -> None:
        """Declare ``count`` more derived rows (their column values must be appended by the seeder)."""
        self.n += count
        self.seeded = self.n
        self.alive.extend(b"\x01" * count)

    def create(self, rec: Record) -> int:
        """Store a new record; returns its id."""
        self.n += 1
        rid = self.n
        self.alive.append(1)
        for col in self.cols.values():
            col.append(0)
        self._log(rid, _MISSING, 0)
        self._store(rid, rec, None)
        return rid

    def put(self, rid: int, rec: Record) -> None:
        """Replace a live record."""
        old = self.get(rid)
        self._log(rid, self.over.get(rid, _MISSING), 1)
        self._store(rid, rec, old)

    def delete(self, rid: int) -> None:
        """Delete a live record."""
        old = self.get(rid)
        self._log(rid, self.over.get(rid, _MISSING), 1)
        self.alive[rid - 1] = 0
        self.deleted += 1
        self._reindex(rid, old, None)
        self.version += 1

    def _store(self, rid: int, rec: Record, old: Record | None) -> None:
        self.over[rid] = rec
        for name, col in self.cols.items():
            col[rid - 1] = _column_value(rec.get(name))
        self._reindex(rid, old, rec)
        self.version += 1

    def _reindex(self, rid: int, old: Record | None, new: Record | None) -> None:
        for field in self.indexed:
            before = _as_set(old.get(field) if old else None)
            after = _as_set(new.get(field) if new else None)
            index = self.extras[field]
            for parent in before - after:
                bucket = index.get(parent)
                if bucket is not None:
                    bucket.discard(rid)
            for parent in after - before:
                if not self.in_seeded_range(field, parent, rid):
                    index.setdefault(parent, set()).add(rid)

    def index_seeded(self, field: str, rid: int, parents: Iterable[int]) -> None:
        """Index a derived row's id-list values (used by the seeder for sparse to-many fields)."""
        for parent in parents:
            self.extras[field].setdefault(parent, set()).add(rid)

    # ---- transactions --------------------------------------------------------------------
    def begin(self) -> None:
        """Start recording undo information."""
        self._undo = []

    def commit(self) -> None:
        """Forget the undo information."""
        self._undo = None

    def rollback(self) -> None:
        """Undo every write since :meth:`begin`."""
        log, self._undo = self._undo, None
        for rid, prev, was_alive, prev_cols in reversed(log or []):
            current = self.get(rid)
            if not was_alive:  # created in the transaction
                self.alive[rid - 1] = 0
                self.over.pop(rid, None)
                self._reindex(rid, current, None)
                if rid == self.n:
                    self.n -= 1
                    self.alive.pop()
                    for col in self.cols.values():
                        col.pop()
                else:
                    self.deleted += 1
                continue
            if not self.alive[rid - 1]:
                self.alive[rid - 1] = 1
                self.deleted -= 1
            if prev is _MISSING:
                self.over.pop(rid, None)
                for col, value in zip(self.cols.values(), prev_cols, strict=True):
                    col[rid - 1] = value
                restored = self.get(rid)
                self._reindex(rid, current, restored)
            else:
                self._store(rid, prev, current)
        self.version += 1

    def _log(self, rid: int, prev: Any, was_alive: int) -> None:
        if self._undo is not None:
            cols = tuple(col[rid - 1] for col in self.cols.values()) if was_alive else ()
            self._undo.append((rid, prev, was_alive, cols))


def _column_value(value: Any) -> int:
    """An int column cell: 0 for None; the first id of a one-element to-many list."""
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    return int(value) if isinstance(value, int) else 0


def _as_set(value: Any) -> set[int]:
    if value is None:
        return set()
    if isinstance(value, list | tuple | set):
        return {v for v in value if isinstance(v, int)}
    return {value} if isinstance(value, int) else set()


def _contains(value: Any, parent: int) -> bool:
    if isinstance(value, list | tuple | set):
        return parent in value
    return bool(value == parent)
