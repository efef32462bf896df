"""Small tables held as plain dicts: reference data (string ids allowed) and small resources."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Record = dict[str, Any]


class StaticTable:
    """A dict-backed table with the read interface of :class:`~.tables.Table`."""

    def __init__(self, name: str, rows: Iterable[tuple[Any, Record]] = (), int_ids: bool = True) -> None:
        self.name = name
        self.int_ids = int_ids
        self.rows: dict[Any, Record] = dict(rows)
        self.version = 0
        self.deleted = 0
        self.cols: dict[str, Any] = {}
        self.over = self.rows
        self.extras: dict[str, dict[Any, set[Any]]] = {}
        self.indexed: tuple[str, ...] = ()
        self._undo: list[tuple[Any, Record | None]] | None = None
        self.next_id = (max(self.rows, default=0) + 1) if int_ids else 0

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def n(self) -> int:
        """Highest integer id handed out (0 for string-id tables)."""
        return self.next_id - 1 if self.int_ids else 0

    def exists(self, rid: Any) -> bool:
        """True when ``rid`` exists."""
        return rid in self.rows

    def get(self, rid: Any) -> Record | None:
        """The record or None."""
        return self.rows.get(rid)

    def value(self, rid: Any, field: str) -> Any:
        """One field."""
        rec = self.rows.get(rid)
        return None if rec is None else rec.get(field)

    def ids(self) -> list[Any]:
        """Ids ascending."""
        return sorted(self.rows)

    def children(self, field: str, parent: Any) -> list[Any]:
        """Ids whose ``field`` holds ``parent`` (a linear scan: these tables are small)."""
        out = []
        for rid, rec in self.rows.items():
            value = rec.get(field)
            if value == parent or (isinstance(value, list | tuple) and parent in value):
                out.append(rid)
        return sorted(out)

    def create(self, rec: Record) -> int:
        """Store a new record under the next integer id."""
        rid = self.next_id
        self.next_id += 1
        self._log(rid, None)
        self.rows[rid] = rec
        self.version += 1
        return rid

    def put(self, rid: Any, rec: Record) -> None:
        """Replace a record."""
        self._log(rid, self.rows.get(rid))
        self.rows[rid] = rec
        if self.int_ids and isinstance(rid, int) and rid >= self.next_id:
            self.next_id = rid + 1
        self.version += 1

    def delete(self, rid: Any) -> None:
        """Delete a record."""
        self._log(rid, self.rows.get(rid))
        self.rows.pop(rid, None)
        self.version += 1

    def begin(self) -> None:
        """Start recording undo information."""
        self._undo = []

    def commit(self) -> None:
        """Forget undo information."""
        self._undo = None

    def rollback(self) -> None:
        """Undo writes since :meth:`begin`."""
        log, self._undo = self._undo, None
        for rid, prev in reversed(log or []):
            if prev is None:
                self.rows.pop(rid, None)
            else:
                self.rows[rid] = prev
        self.version += 1

    def _log(self, rid: Any, prev: Record | None) -> None:
        if self._undo is not None:
            self._undo.append((rid, prev))
