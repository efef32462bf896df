"""What the store already holds, kept on disk (sqlite in a temporary file) instead of in RAM.

The e-commerce sync reads each store collection once and compares every incoming record with what
Mailchimp has (``ecommerce._slim`` of it). Kept as dicts, that comparison copy grew ~3.7 MB per 1,000
orders (a million orders: ~3.7 GB). Here each record is one JSON text in a
:class:`~oromc_common.diskmap.DiskMap` (a sqlite table in a temporary directory that is removed at the
end of the run), keyed by collection and id: the target's memory stays flat with the store's size
(sqlite's own page cache is bounded, and so is the map's write buffer), and a lookup is one indexed
``SELECT``.

It is a cache of Mailchimp's state for one run, not a durable store: no journal, no fsync.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from typing import Any

from oromc_common.diskmap import DiskMap

CACHE_PAGES_KIB = 8 * 1024
"""sqlite's page cache (KiB): bounds the memory the cache itself uses, whatever the store's size."""
WRITE_BUFFER = 250
"""Records held in memory before they are stored: the map's default 2,000 raised the target's peak
by ~6 MB in the re-run of a 5,000-order store (``bench/bench_target_mailchimp.py --memory``)."""


class StoreCache:
    """Records of store collections by (collection, id), as JSON text in a :class:`DiskMap`.

    Thread-safe (single writes complete from worker threads, pages are read on several): the map is.
    """

    def __init__(self) -> None:
        """Create the temporary database (removed by :meth:`close`, or at exit)."""
        self._map = DiskMap(
            cache_kib=CACHE_PAGES_KIB, write_buffer=WRITE_BUFFER, prefix="target-mailchimp-store-"
        )
        self._dir = self._map.directory
        self._loaded: set[str] = set()
        # ids of collections not read whole whose store copy is known (looked up, written): a few
        self._known: dict[str, set[str]] = {}
        self._lock = threading.Lock()  # for ``_known`` (the DiskMap locks itself)

    def loaded(self, collection: str) -> bool:
        """True once :meth:`load` has filled ``collection``."""
        return collection in self._loaded

    def load(self, collection: str, docs: Iterable[dict[str, Any]]) -> None:
        """Fill ``collection`` from ``docs`` (each with an ``id``)."""
        self.add(collection, docs)
        self.mark_loaded(collection)

    def add(self, collection: str, docs: Iterable[dict[str, Any]]) -> None:
        """Add ``docs`` to ``collection`` (safe from several threads, e.g. one per page read); the
        collection counts as loaded only after :meth:`mark_loaded`. Their ids are not remembered
        as known one by one (a whole collection's ids would be a set as large as the store: ~8 MB
        per 100,000 records); :meth:`mark_loaded` makes them all known."""
        for doc in docs:
            self._store(collection, str(doc["id"]), doc)

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

    def get(self, collection: str, key: str) -> dict[str, Any] | None:
        """The record ``key`` of ``collection`` (a new dict each time), or None."""
        text = self._map.get(_key(collection, key))
        return None if text is None else dict(json.loads(text))

    def put(self, collection: str, key: str, doc: dict[str, Any]) -> None:
        """Store (or replace) the record ``key`` of ``collection``."""
        self._store(collection, key, doc)
        self.mark_known(collection, [key])

    def _store(self, collection: str, key: str, doc: dict[str, Any]) -> None:
        self._map[_key(collection, key)] = json.dumps(doc, separators=(",", ":"), default=str)

    def delete(self, collection: str, key: str) -> None:
        """Forget the record ``key`` of ``collection`` (nothing if absent)."""
        self._map.pop(_key(collection, key))
        self.mark_known(collection, [key])

    def close(self) -> None:
        """Close the database and remove its directory (idempotent)."""
        self._map.close()

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


def _key(collection: str, key: str) -> str:
    """The map's key of record ``key`` of ``collection`` (collection names hold no NUL)."""
    return f"{collection}\0{key}"
