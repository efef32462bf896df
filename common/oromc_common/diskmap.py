"""A per-run map of ids to small values, kept on disk (sqlite in a temporary file), not in RAM.

A connector that joins one resource to another (a customer user to their account, primary address
and purchase history) keeps a lookup per id for the whole run. As Python objects such a lookup costs
several hundred bytes per id (the dict slot, the int key, the tuple or object, one string object per
field): ~0.7 GB at a million customer users. Here each value is one ``marshal`` blob of a sqlite row
in a temporary directory removed at the end of the run: memory stays flat with the number of ids
(sqlite's page cache is bounded, writes are buffered in a bounded dict), and a lookup is one
indexed ``SELECT``.

Keys are ``int`` or ``str``; values are ``str``, or tuples, lists and dicts of ``None``, ``bool``,
``int``, ``float`` and ``str`` (what ``marshal`` round-trips exactly, tuples staying tuples); only
this process reads what it wrote, in its own private (0700) temporary directory. It is a scratch table
for one run, not a durable store: no journal, no fsync. It is the project's one way to keep such a
table: the target's copy of the Mailchimp store (``target_mailchimp.storecache``) is a ``DiskMap`` too.
"""

from __future__ import annotations

import marshal
import shutil
import sqlite3
import tempfile
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CACHE_PAGES_KIB = 4 * 1024
"""sqlite's page cache (KiB) per map: bounds the memory the map itself uses, whatever its size."""
WRITE_BUFFER = 2000
"""Writes held in memory before one ``executemany`` stores them."""

Key = int | str
_MISSING: Any = object()


class DiskMap:
    """``key -> value`` on disk, with the dict operations a lookup needs (thread-safe: one
    connection behind a lock)."""

    def __init__(
        self,
        *,
        cache_kib: int = CACHE_PAGES_KIB,
        write_buffer: int = WRITE_BUFFER,
        prefix: str = "oromc-diskmap-",
    ) -> None:
        """Create the temporary database (removed by :meth:`close`, or at exit): sqlite's page cache
        capped at ``cache_kib`` KiB, ``write_buffer`` writes held before they are stored (fewer for
        larger values), in a directory whose name starts with ``prefix``."""
        self._write_buffer = max(1, write_buffer)
        self._dir = tempfile.mkdtemp(prefix=prefix)
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._dir, ignore_errors=True)
        self._db = sqlite3.connect(
            Path(self._dir) / "map.sqlite3", isolation_level=None, check_same_thread=False
        )
        self._lock = threading.RLock()
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute(f"PRAGMA cache_size=-{int(cache_kib)}")
        self._db.execute("CREATE TABLE m (k PRIMARY KEY NOT NULL, v BLOB NOT NULL) WITHOUT ROWID")
        self._pending: dict[Key, Any] = {}

    @property
    def directory(self) -> str:
        """The private temporary directory that holds the database (removed by :meth:`close`)."""
        return self._dir

    def __setitem__(self, key: Key, value: Any) -> None:
        with self._lock:
            self._pending[key] = value
            if len(self._pending) >= self._write_buffer:
                self._flush()

    def get(self, key: Key, default: Any = None) -> Any:
        """The value of ``key``, else ``default``."""
        with self._lock:
            found = self._pending.get(key, _MISSING)
            if found is not _MISSING:
                return found
            row = self._db.execute("SELECT v FROM m WHERE k = ?", (key,)).fetchone()
        return default if row is None else marshal.loads(row[0])  # noqa: S302 - our own rows

    def setdefault(self, key: Key, value: Any) -> Any:
        """The value of ``key``; ``value`` (the object itself) after storing it when there is none."""
        with self._lock:
            found = self.get(key, _MISSING)
            if found is _MISSING:
                self[key] = value
                return value
            return found

    def pop(self, key: Key, default: Any = None) -> Any:
        """Remove ``key``; its value, else ``default``."""
        with self._lock:
            found = self.get(key, _MISSING)
            if found is _MISSING:
                return default
            self._pending.pop(key, None)
            self._db.execute("DELETE FROM m WHERE k = ?", (key,))
            return found

    def __delitem__(self, key: Key) -> None:
        if self.pop(key, _MISSING) is _MISSING:
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, int | str) and self.get(key, _MISSING) is not _MISSING

    def __len__(self) -> int:
        with self._lock:
            self._flush()
            (size,) = self._db.execute("SELECT count(*) FROM m").fetchone()
        return int(size)

    def items(self) -> Iterator[tuple[Key, Any]]:
        """Every ``(key, value)``, in key order (read in chunks: the map may change meanwhile)."""
        last: Key | None = None
        while True:
            with self._lock:
                self._flush()
                rows = self._db.execute(
                    "SELECT k, v FROM m WHERE ? IS NULL OR k > ? ORDER BY k LIMIT 1000",
                    (last, last),
                ).fetchall()
            if not rows:
                return
            for k, v in rows:
                yield k, marshal.loads(v)  # noqa: S302 - written above
            last = rows[-1][0]

    def _flush(self) -> None:
        if not self._pending:
            return
        rows = [(k, marshal.dumps(v)) for k, v in self._pending.items()]
        self._db.execute("BEGIN")  # one transaction a flush, not one a row
        try:
            self._db.executemany("INSERT OR REPLACE INTO m (k, v) VALUES (?, ?)", rows)
        except BaseException:
            self._db.execute("ROLLBACK")  # the writes stay buffered
            raise
        self._db.execute("COMMIT")
        self._pending.clear()

    def close(self) -> None:
        """Drop the database and its directory."""
        with self._lock:
            self._pending.clear()
            self._db.close()
            self._cleanup()
