"""The contacts stream's per-id lookups (on disk, as flat tuples) give back exactly what was read."""

from __future__ import annotations

from decimal import Decimal

from tap_orocommerce.contacts import _Address, _OrderStats


def test_purchase_history_packs_and_unpacks_without_changing_a_value() -> None:
    stats = _OrderStats()
    stats.count, stats.total = 3, Decimal("0.1") + Decimal("0.2") + Decimal("1234567.895")
    stats.first, stats.last, stats.last_id = "2024-01-01T00:00:00Z", "2024-05-01T00:00:00Z", 42
    stats.last_product, stats.updated = "Café crème", "2024-05-02T00:00:00Z"
    back = _OrderStats.unpack(stats.pack())
    assert [getattr(back, k) for k in _OrderStats.__slots__] == [
        getattr(stats, k) for k in _OrderStats.__slots__
    ]
    assert back.total == Decimal("1234568.195")  # exact, not a float
    assert back.average() == stats.average()
    empty = _OrderStats.unpack(None)
    assert (empty.count, empty.total, empty.first, empty.last_product, empty.updated) == (
        0, 0, None, None, "",
    )  # fmt: skip


def test_primary_address_packs_and_unpacks_without_changing_a_value() -> None:
    attrs = {
        "phone": "+1 555",
        "city": "Zürich",
        "street": "Main 1",
        "street2": None,
        "postalCode": "8000",
    }
    rels = {"country": {"data": {"id": "CH"}}, "region": {"data": None}}
    addr = _Address(7, {**attrs, "customRegion": "ZH-custom"}, rels)
    again = _Address.unpack(addr.pack())
    assert [getattr(again, k) for k in _Address.__slots__] == [
        getattr(addr, k) for k in _Address.__slots__
    ]
    assert again.mailchimp() == addr.mailchimp()
