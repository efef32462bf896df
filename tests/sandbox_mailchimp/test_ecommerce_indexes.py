"""The e-commerce store's shortcuts (issue 16) give what the full passes they replace gave.

`OrderTable` keeps each customer's orders, so a customer's `orders_count`/`total_spent` read only
those; the abandoned-cart automation looks only at the carts written since its last look. Both are
checked here against the full pass over the store, through every kind of write.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

from oromc_sandbox.mailchimp.automations import (
    ABANDONED_CART,
    Automation,
    AutomationEmail,
    AutomationState,
)
from oromc_sandbox.mailchimp.models.ecommerce import (
    EcommerceState,
    OrderTable,
    Shop,
    customer_totals,
    customer_totals_of,
)


def _totals_match(shop: Shop) -> None:
    """(The totals are sums of quarters: exact in any order.)"""
    every = customer_totals(shop)
    assert {c: customer_totals_of(shop, c) for c in every} == every
    for customer_id in ("c0", "c1", "c2", "c3", "c9", "nobody"):
        assert customer_totals_of(shop, customer_id) == every.get(customer_id, (0, 0.0))


def _order(customer_id: str, total: float) -> dict[str, Any]:
    return {"id": "", "customer_id": customer_id, "order_total": total}


def test_each_customers_orders_follow_every_write_of_the_orders() -> None:
    shop = Shop(doc={"id": "s"})
    for i in range(40):
        shop.orders[f"o{i}"] = {**_order(f"c{i % 4}", 10.25 + i), "id": f"o{i}"}
    _totals_match(shop)
    shop.orders["o1"] = {**_order("c9", 1.0), "id": "o1"}  # the same id, another customer
    shop.orders["o2"] = {**_order("c2", 99.0), "id": "o2"}  # the same customer, another total
    shop.orders["o3"]["order_total"] = 7.5  # a PATCH changes the order in place
    del shop.orders["o4"]
    assert shop.orders.pop("o5")["customer_id"] == "c1"
    assert shop.orders.pop("gone", None) is None
    shop.orders.popitem()
    shop.orders.setdefault("o6", _order("c0", 123.0))  # present: unchanged
    shop.orders.setdefault("new", {**_order("c3", 5.0), "id": "new"})
    shop.orders.update(
        {"o7": {**_order("c0", 2.0), "id": "o7"}}, o8={**_order("c9", 3.0), "id": "o8"}
    )
    shop.orders |= {"o9": {**_order("c1", 4.0), "id": "o9"}}
    _totals_match(shop)
    assert customer_totals_of(shop, "c9") == (2, 4.0)
    for again in (
        Shop.load(shop.dump()).orders,
        copy.copy(shop.orders),
        copy.deepcopy(shop.orders),
    ):
        assert isinstance(again, OrderTable)
        assert list(again.items()) == list(shop.orders.items())
        mine = sorted(o["id"] for o in shop.orders.of_customer("c0"))
        assert sorted(o["id"] for o in again.of_customer("c0")) == mine
    shop.orders.clear()
    assert customer_totals_of(shop, "c0") == (0, 0.0)


def _cart_automation() -> tuple[Any, Automation, AutomationEmail]:
    engagement = SimpleNamespace(ecommerce=EcommerceState())
    engagement.ecommerce.shops["s"] = Shop(doc={"id": "s", "list_id": "l"})
    email = AutomationEmail("e1", "w1", 1, "ecomm_abandoned_cart", 1, "hour")
    auto = Automation(ABANDONED_CART, ABANDONED_CART, "t", "l", "s", 0.0, 100.0, {})
    auto.emails.append(email)
    return engagement, auto, email


def _queue(email: AutomationEmail) -> list[tuple[str, str, float, float | None]]:
    return [(k, e.email, e.next_send, e.cart_updated_at) for k, e in email.queue.items()]


def test_the_abandoned_cart_automation_queues_what_a_look_at_every_cart_queues() -> None:
    """Two automations see the same writes: one looks only at what was written since its last
    look, the other looks at every cart each time; their queues are the same after each step."""
    seen, auto, email = _cart_automation()
    full, full_auto, full_email = _cart_automation()
    incremental, fresh = AutomationState(), AutomationState
    steps: list[Any] = []

    def cart(shop: Shop, cart_id: str, customer: str, updated: float, *, new: bool) -> None:
        shop.carts[cart_id] = {"id": cart_id, "customer_id": customer, "updated_at": updated}
        shop.cart_written(cart_id, created=new)

    def customer(shop: Shop, customer_id: str) -> None:
        shop.customers[customer_id] = {"id": customer_id, "email_address": f"{customer_id}@x.org"}

    steps.append(lambda s: [customer(s, "c1"), cart(s, "k1", "c1", 150.0, new=True)])
    steps.append(lambda s: cart(s, "k0", "c1", 50.0, new=True))  # older than the automation
    steps.append(lambda s: cart(s, "k2", "c2", 160.0, new=True))  # no customer address yet
    steps.append(
        lambda s: [cart(s, "k3", "c1", 170.0, new=True), cart(s, "k4", "c1", 170.0, new=True)]
    )
    # k2 can go now, without a write of the cart; before k5, as in the store
    steps.append(lambda s: [customer(s, "c2"), cart(s, "k5", "c1", 175.0, new=True)])
    steps.append(lambda s: cart(s, "k1", "c1", 180.0, new=False))  # re-queued at its new time
    steps.append(lambda s: cart(s, "k0", "c1", 190.0, new=False))  # written after the start
    steps.append(lambda s: s.carts.pop("k3"))
    steps.append(lambda s: cart(s, "k3", "c1", 200.0, new=True))  # again, at the end of the store
    for since, step in enumerate(steps, start=1000):
        for engagement in (seen, full):
            step(engagement.ecommerce.shops["s"])
        incremental._scan_carts(seen, auto, float(since))
        fresh()._scan_carts(full, full_auto, float(since))  # a first look: every cart
        assert _queue(email) == _queue(full_email)
        if since == 1002:
            email.done.add("k4")
            full_email.done.add("k4")
    assert [k for k, *_ in _queue(email)] == ["k1", "k3", "k2", "k5", "k0"]


def test_an_automation_email_knows_its_earliest_due_entry_also_after_a_reload() -> None:
    """A sync before the earliest entry skips the queue; every way in lowers the mark, a send
    raises it to the next entry's time."""
    from oromc_sandbox.mailchimp.automations import QueueEntry

    engagement, auto, email = _cart_automation()
    email.enqueue(QueueEntry("h1", "a@x.org", 500.0, "k1", cart_updated_at=1.0))
    email.enqueue(QueueEntry("h2", "b@x.org", 300.0, "k2", cart_updated_at=1.0))
    assert email.earliest == 300.0
    assert AutomationEmail.load(email.dump()).earliest == 300.0
    engagement.campaigns = {}
    AutomationState()._send_due(engagement, auto, email, 299.0)
    assert list(email.queue) == ["k1", "k2"]
    AutomationState()._send_due(engagement, auto, email, 300.0)
    assert (list(email.queue), email.done, email.earliest) == (["k1"], {"k2"}, 500.0)
