"""``oromc_common.diskmap``: an id -> tuple lookup on disk that reads back exactly what was stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from oromc_common import diskmap
from oromc_common.diskmap import DiskMap


def test_values_read_back_exactly_before_and_after_the_write_buffer_is_flushed() -> None:
    m = DiskMap()
    values = {
        1: ("2024-01-02T03:04:05Z", 7, None, "Zürich", "Straße 1", "", "8000", "CH", "CH-ZH"),
        2: ("",),
        2**40: (3, "123.4500", None, "x" * 5000, 0, None, "2024"),
    }
    for key, value in values.items():
        m[key] = value
    assert {k: m.get(k) for k in values} == values  # from the write buffer
    for k in range(10, 10 + diskmap.WRITE_BUFFER):  # forces a flush of everything above
        m[k] = (k,)
    assert {k: m.get(k) for k in values} == values  # from sqlite
    assert m.get(5) is None
    assert m.get(5, ("d",)) == ("d",)
    assert 2 in m
    assert 5 not in m
    m[2] = ("2025",)  # a later write replaces the stored value
    assert m.get(2) == ("2025",)
    assert len(m) == 3 + diskmap.WRITE_BUFFER
    m.close()


def test_items_lists_every_key_once_in_key_order_even_while_values_are_replaced() -> None:
    m = DiskMap()
    keys = list(range(2500, 0, -1))
    for k in keys:
        m[k] = (k, str(k))
    seen = []
    for k, value in m.items():
        assert value == (k, str(k))
        seen.append(k)
        m[k] = (k, "replaced")  # as the tap does while it reads
    assert seen == sorted(keys)
    assert all(m.get(k) == (k, "replaced") for k in keys)
    m.close()


def test_close_removes_the_temporary_files() -> None:
    m = DiskMap()
    m[1] = ("a",)
    folder = Path(m._dir)
    assert folder.exists()
    m.close()
    assert not folder.exists()


def test_string_keys_dict_values_setdefault_and_pop_behave_like_a_dict() -> None:
    m = DiskMap()
    state = (
        "subscribed",
        {"FNAME": "Zoë", "ADDRESS": {"addr1": "x", "zip": "1"}, "N": 3.5},
        {"oro:a": "oro:A"},
    )
    assert m.setdefault("a" * 32, state) is state  # stored: the object given comes back
    assert m.setdefault("a" * 32, ("other",)) == state  # already there: the stored value
    for k in range(diskmap.WRITE_BUFFER):
        m[f"k{k}"] = (k,)
    assert m.get("a" * 32) == state
    assert m.pop("a" * 32) == state
    assert m.get("a" * 32) is None
    assert m.pop("a" * 32, "gone") == "gone"
    m["b"] = ("x",)
    del m["b"]
    assert "b" not in m
    assert len(m) == diskmap.WRITE_BUFFER
    m.close()


def test_page_cache_buffer_and_folder_are_the_callers_and_a_failed_flush_loses_nothing() -> None:
    m = DiskMap(cache_kib=1024, write_buffer=3, prefix="oromc-test-map-")
    assert Path(m.directory).name.startswith("oromc-test-map-")
    assert m._db.execute("PRAGMA cache_size").fetchone() == (-1024,)
    m[10], m[11] = ("x",), ("y",)
    assert m._db.execute("SELECT count(*) FROM m").fetchone() == (0,)  # buffered
    m[12] = ("z",)
    assert m._db.execute("SELECT count(*) FROM m").fetchone() == (3,)  # the third write stores all
    for k in (10, 11, 12):
        del m[k]
    m[1] = ("a",)
    m[2**64] = ("no sqlite integer",)  # refused when the buffer is written
    with pytest.raises(OverflowError):
        len(m)
    assert not m._db.in_transaction  # the flush's transaction was rolled back
    assert m.get(1) == ("a",)  # and its writes stay buffered
    del m._pending[2**64]  # (sqlite cannot even look that key up)
    assert len(m) == 1  # the next flush opens its own transaction and writes the rest
    assert m.get(1) == ("a",)
    m.close()
    assert not Path(m.directory).exists()
