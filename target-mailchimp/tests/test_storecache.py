"""The store's comparison records live in a temporary sqlite file, not in RAM."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

from oromc_common import diskmap
from target_mailchimp import storecache
from target_mailchimp.storecache import StoreCache


def test_records_round_trip_by_collection_and_id() -> None:
    cache = StoreCache()
    assert not cache.loaded("orders")
    cache.load("orders", ({"id": str(i), "order_total": i * 1.5, "lines": [{"id": f"l{i}"}]} for i in range(2500)))
    assert cache.loaded("orders")
    assert not cache.loaded("customers")
    assert cache.get("orders", "7") == {"id": "7", "order_total": 10.5, "lines": [{"id": "l7"}]}
    assert cache.get("customers", "7") is None  # another collection
    cache.put("orders", "7", {"id": "7", "order_total": 1.0})
    assert cache.get("orders", "7") == {"id": "7", "order_total": 1.0}
    view = cache.view("orders")
    assert "7" in view
    assert "9999" not in view
    assert view.get("8") is not None
    cache.delete("orders", "7")
    assert cache.get("orders", "7") is None
    assert "7" not in view
    cache.delete("orders", "7")  # absent: nothing happens
    cache.close()


def test_the_temporary_directory_is_removed() -> None:
    cache = StoreCache()
    directory = Path(cache._dir)
    assert directory.is_dir()
    cache.close()
    assert not directory.exists()
    cache.close()  # idempotent


def test_writes_from_worker_threads() -> None:
    cache = StoreCache()
    cache.load("customers", [])

    def put(start: int) -> None:
        for i in range(start, start + 200):
            cache.put("customers", str(i), {"id": str(i)})

    threads = [threading.Thread(target=put, args=(n * 200,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(cache.get("customers", str(i)) == {"id": str(i)} for i in range(800))
    cache.close()


def test_a_read_is_a_copy_and_values_json_cannot_hold_are_kept_as_text() -> None:
    cache = StoreCache()
    when = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    cache.put("orders", "1", {"id": "1", "processed_at_foreign": when, "lines": [{"id": "a"}]})
    for _ in range(2):  # from the map's write buffer, then (after a flush) from sqlite
        first = cache.get("orders", "1")
        assert first == {"id": "1", "processed_at_foreign": str(when), "lines": [{"id": "a"}]}
        first["lines"].append({"id": "b"})  # the caller's copy, not the cache's
        assert cache.get("orders", "1") == {
            "id": "1",
            "processed_at_foreign": str(when),
            "lines": [{"id": "a"}],
        }
        cache.load("customers", ({"id": str(i)} for i in range(diskmap.WRITE_BUFFER)))
    assert cache._map._db.execute("PRAGMA cache_size").fetchone() == (-storecache.CACHE_PAGES_KIB,)
    assert Path(cache._dir).name.startswith("target-mailchimp-store-")
    cache.close()


def test_records_looked_up_by_id_are_known_until_the_collection_is_read_whole() -> None:
    cache = StoreCache()
    assert not cache.known("customers", "cu1")
    cache.mark_known("customers", ["cu1"])  # looked up: not in the store
    cache.put("customers", "cu2", {"id": "cu2"})  # looked up or written: held
    assert cache.known("customers", "cu1")
    assert cache.get("customers", "cu1") is None
    assert cache.known("customers", "cu2")
    assert not cache.known("customers", "cu3")  # neither: a lookup must fetch it
    assert not cache.known("orders", "cu1")  # per collection
    cache.delete("orders", "o1")
    assert cache.known("orders", "o1")  # deleted: known to be gone
    cache.load("customers", [{"id": "cu3"}])
    assert cache.known("customers", "cu9")  # read whole: every id is known
    assert cache._known.get("customers") is None  # the set of ids is dropped (memory stays flat)
    cache.put("customers", "cu9", {"id": "cu9"})
    assert cache._known.get("customers") is None
    cache.close()


def test_a_collection_being_read_whole_does_not_remember_its_ids_one_by_one() -> None:
    cache = StoreCache()
    cache.add("orders", ({"id": str(i)} for i in range(3000)))  # pages arriving, not all in yet
    assert cache._known.get("orders") is None  # no set as large as the store
    assert not cache.known("orders", "5")  # not known until the read is complete ...
    assert cache.get("orders", "5") == {"id": "5"}
    cache.mark_loaded("orders")
    assert cache.known("orders", "5")  # ... then every id is
    cache.close()
