"""What the store already holds, kept on disk (sqlite in a temporary file) instead of in RAM.

The e-commerce sync reads each store collection once and compares every incoming record with what
Mailchimp has (``ecommerce._slim`` of it). Kept as dicts, that comparison copy grew ~3.7 MB per 1,000
orders (a million orders: ~3.7 GB). Here each record is one JSON text row of a sqlite table in a
temporary directory that is removed at the end of the run: the target's memory stays flat with the
store's size (sqlite's own page cache is bounded), and a lookup is one indexed ``SELECT``.

It is a cache of Mailchimp's state for one run, not a durable store: no journal, no fsync.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
import threading
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import Any

CACHE_PAGES_KIB = 8 * 1024
"""sqlite's page cache (KiB): bounds the memory the cache itself uses, whatever the store's size."""


class StoreCache:
    """Records of store collections by (collection, id), as JSON text in a temporary sqlite file.

    Thread-safe (single writes complete from worker threads): one connection behind a lock.
    """

    def __init__(self) -> None:
        """Create the temporary database (removed by :meth:`close`)."""
        self._dir = tempfile.mkdtemp(prefix="target-mailchimp-store-")
        # removed at exit too when the run stops before ``close``
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._dir, ignore_errors=True)
        self._db = sqlite3.connect(
            Path(self._dir) / "store.sqlite3", check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute(f"PRAGMA cache_size=-{CACHE_PAGES_KIB}")
        self._db.execute(
            "CREATE TABLE records (collection TEXT NOT NULL, id TEXT NOT NULL, doc TEXT NOT NULL, "
            "PRIMARY KEY (collection, id)) WITHOUT ROWID"
        )
        self._lock = threading.Lock()
        self._loaded: set[str] = set()
        # ids of collections not read whole whose store copy is known (looked up, written): a few
        self._known: dict[str, set[str]] = {}

    def loaded(self, collection: str) -> bool:
        """True once :meth:`load` has filled ``collection``."""
        return collection in self._loaded

    def load(self, collection: str, docs: Iterable[dict[str, Any]], chunk: int = 1000) -> None:
        """Fill ``collection`` from ``docs`` (each with an ``id``), a chunk per transaction."""
        rows: list[tuple[str, str, str]] = []
        for doc in docs:
            rows.append((collection, str(doc["id"]), _dumps(doc)))
            if len(rows) >= chunk:
                self._insert(rows)
                rows = []
        self._insert(rows)
        self.mark_loaded(collection)

    def add(self, collection: str, docs: Iterable[dict[str, Any]]) -> None:
        """Add ``docs`` to ``collection`` in one transaction (safe from several threads, e.g. one per
        page read); the collection counts as loaded only after :meth:`mark_loaded`."""
        self._insert([(collection, str(doc["id"]), _dumps(doc)) for doc in docs])

    def mark_loaded(self, collection: str) -> None:
        """Every record of ``collection`` is in."""
        self._loaded.add(collection)
        self._known.pop(collection, None)

    def mark_known(self, collection: str, keys: Iterable[str]) -> None:
        """The store's copy of each of ``keys`` is known (held here, or absent from the store) although
        ``collection`` is not read whole (a lookup by id)."""
        if collection not in self._loaded:
            with self._lock:
                self._known.setdefault(collection, set()).update(keys)

    def known(self, collection: str, key: str) -> bool:
        """True when the store's copy of ``key`` is known: ``collection`` read whole, or ``key``
        looked up or written (:meth:`mark_known`, :meth:`put`, :meth:`delete`)."""
        return collection in self._loaded or key in self._known.get(collection, ())

    def _insert(self, rows: list[tuple[str, str, str]]) -> None:
        if not rows:
            return
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO records VALUES (?, ?, ?)", rows)
            self._db.execute("COMMIT")

    def get(self, collection: str, key: str) -> dict[str, Any] | None:
        """The record ``key`` of ``collection``, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT doc FROM records WHERE collection = ? AND id = ?", (collection, key)
            ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def put(self, collection: str, key: str, doc: dict[str, Any]) -> None:
        """Store (or replace) the record ``key`` of ``collection``."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO records VALUES (?, ?, ?)", (collection, key, _dumps(doc))
            )
        self.mark_known(collection, [key])

    def delete(self, collection: str, key: str) -> None:
        """Forget the record ``key`` of ``collection`` (nothing if absent)."""
        with self._lock:
            self._db.execute("DELETE FROM records WHERE collection = ? AND id = ?", (collection, key))
        self.mark_known(collection, [key])

    def close(self) -> None:
        """Close the database and remove its directory (idempotent)."""
        with self._lock:
            self._db.close()
        self._cleanup()

    def view(self, collection: str) -> CollectionView:
        """Lookups in one collection (``get``, ``in``)."""
        return CollectionView(self, collection)


class CollectionView:
    """Read access to one collection of a :class:`StoreCache`."""

    def __init__(self, cache: StoreCache, collection: str) -> None:
        """Bind to ``collection`` of ``cache``."""
        self.cache = cache
        self.collection = collection

    def get(self, key: str) -> dict[str, Any] | None:
        """The record ``key``, or None."""
        return self.cache.get(self.collection, key)

    def __contains__(self, key: object) -> bool:
        """True when the record ``key`` is held."""
        return isinstance(key, str) and self.cache.get(self.collection, key) is not None


def _dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, separators=(",", ":"), default=str)
