"""End-to-end: the e-commerce streams into a Mailchimp store of the sandbox."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from oromc_common.batches import submit_batch
from oromc_common.mailchimp import (
    MailchimpClient,
    MailchimpConfigError,
    PermanentMailchimpError,
    subscriber_hash,
)
from oromc_common.report import RunReport
from oromc_common.sdk_seams import SeamTarget
from oromc_sandbox.testing import RunningSandbox
from target_mailchimp import ecommerce as ecommerce_module
from target_mailchimp.client import Audience
from target_mailchimp.contract import ECOMMERCE_SCHEMAS
from target_mailchimp.ecommerce import RESOURCES, EcommerceSync, StoreSettings
from target_mailchimp.target import TargetMailchimp

from .conftest import DOMAIN, contact, run_target, singer_lines, writes

STORE = "oro-shop"


def _lines(stream: str, records: list[dict[str, Any]]) -> list[str]:
    schema = ECOMMERCE_SCHEMAS[stream]
    out = [
        json.dumps({"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": ["id"]})
    ]
    out += [json.dumps({"type": "RECORD", "stream": stream, "record": r}) for r in records]
    return out


def _order(oid: str, status: str = "pending", **extra: Any) -> dict[str, Any]:
    return {
        "id": oid,
        "customer": {
            "id": "cu1",
            "email_address": f"buyer1@{DOMAIN}",
            "opt_in_status": False,
            "first_name": "Bo",
        },
        "order_total": "59.90",
        "financial_status": status,
        "lines": [
            {
                "id": f"{oid}-1",
                "product_id": "p1",
                "product_variant_id": "p1",
                "quantity": 2,
                "price": "29.95",
                "product_title": "Widget",
            }
        ],
        **extra,
    }


def test_ecommerce_streams_create_update_noop_and_reject(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    cfg = {**config, "store_id": STORE, "store_currency_code": "EUR"}
    # Orders first: their product does not exist yet -> a placeholder is created, completed later.
    lines = (
        _lines("ecommerce_orders", [_order("o1"), _order("o2", customer={"email_address": "x"})])
        + _lines(
            "ecommerce_products",
            [
                {
                    "id": "p1",
                    "title": "Widget deluxe",
                    "sku": "W-1",
                    "price": "29.95",
                    "url": "https://shop.example.org/p1",
                }
            ],
        )
        + _lines(
            "ecommerce_customers",
            [
                {
                    "id": "cu2",
                    "email_address": f"buyer2@{DOMAIN}",
                    "opt_in_status": True,
                    "first_name": "Al",
                }
            ],
        )
        + _lines(
            "ecommerce_carts",
            [
                {
                    "id": "c1",
                    "customer": {"id": "cu2"},
                    "order_total": 10,
                    "checkout_url": "https://shop.example.org/cart/c1",
                    "lines": [{"id": "l1", "product_id": "p1", "quantity": 1, "price": 10}],
                }
            ],
        )
        + [json.dumps({"type": "STATE", "value": {"done": 1}})]
    )
    target, states = run_target(cfg, lines)
    assert states[-1] == {"done": 1}
    base = f"/ecommerce/stores/{STORE}"
    store = api.get(base)
    assert store["list_id"] == config["list_id"]
    assert store["currency_code"] == "EUR"
    order = api.get(f"{base}/orders/o1")
    assert float(order["order_total"]) == 59.9
    assert order["lines"][0]["quantity"] == 2
    assert api.get(f"{base}/products/p1")["title"] == "Widget deluxe"
    assert api.get(f"{base}/carts/c1")["checkout_url"].endswith("/cart/c1")
    # consent travels only in contacts: a store customer is never an opt-in
    assert api.get(f"{base}/customers/cu2")["opt_in_status"] is False
    summary = target.report.summary()["streams"]
    assert summary["ecommerce_orders"]["created"] == 1
    assert summary["ecommerce_orders"]["rejected_by_reason"] == {
        "schema_violation": 1
    }  # o2 has no customer id (a required property of the stream's schema)
    rejects = [json.loads(x) for x in Path(cfg["rejects_path"]).read_text().splitlines()]
    assert [(r["stream"], r["field"]) for r in rejects] == [("ecommerce_orders", "customer.id")]

    # Same input again: nothing to write (the customers are compared with the store by default).
    sb.reset_stats()
    target, _ = run_target(cfg, lines)
    assert writes(sb) == 0
    assert target.report.summary()["streams"]["ecommerce_customers"]["unchanged"] == 1
    # With ecommerce_blind_customer_writes, a stream of a few customers is upserted without reading
    # the store's customers (one /batches job, no store read), unchanged.
    sb.reset_stats()
    target, _ = run_target({**cfg, "ecommerce_blind_customer_writes": 1000}, lines)
    assert writes(sb) == 1
    routes = _routes(sb)
    assert routes[BATCHES] == 1
    assert "GET /3.0/ecommerce/stores/{store_id}/customers" not in routes
    assert target.report.summary()["streams"]["ecommerce_customers"]["upserted"] == 1
    assert api.get(f"{base}/customers/cu2")["first_name"] == "Al"

    # A paid order and a converted (deleted) cart, sent as the tap's tombstone (its id alone):
    # one PATCH, one DELETE.
    sb.reset_stats()
    target, _ = run_target(
        cfg,
        _lines("ecommerce_orders", [_order("o1", "paid")])
        + _lines("ecommerce_carts", [{"id": "c1", "deleted": True}]),
    )
    assert writes(sb) == 2
    assert api.get(f"{base}/orders/o1")["financial_status"] == "paid"
    with pytest.raises(PermanentMailchimpError, match="not_found"):
        api.get(f"{base}/carts/c1")


def test_ecommerce_without_store_id_fails_clearly(
    sb: RunningSandbox, config: dict[str, Any]
) -> None:
    import pytest

    with pytest.raises(MailchimpConfigError, match="store_id"):
        run_target(config, _lines("ecommerce_orders", [_order("o1")]))


# -- /batches for many writes -----------------------------------------------------------------
BATCHES = "POST /3.0/batches"
ORDERS_POST = "POST /3.0/ecommerce/stores/{store_id}/orders"
ORDERS_READ = "GET /3.0/ecommerce/stores/{store_id}/orders"


def _routes(sb: RunningSandbox) -> dict[str, int]:
    """Requests per route the Mailchimp sandbox served since the last reset (any status)."""
    return {
        route: sum(statuses.values())
        for route, statuses in sb.stats("mailchimp")["requests"].items()
    }


def _store_orders(api: MailchimpClient) -> dict[str, Any]:
    """What the store holds per order, without the server-set timestamps and links."""
    drop = {"_links", "created_at", "updated_at", "processed_at_foreign", "updated_at_foreign"}

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in drop}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return {o["id"]: strip(o) for o in api.paginate(f"/ecommerce/stores/{STORE}/orders", "orders")}


def _many(n: int) -> list[dict[str, Any]]:
    orders = [_order(f"o{i}", order_total=str(10 + i)) for i in range(n)]
    orders[3]["currency_code"] = "E1"  # passes the target's checks, refused by Mailchimp
    return orders


def test_many_orders_go_as_one_batch_with_per_operation_rejects(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    cfg = {
        **config,
        "store_id": STORE,
        "ecommerce_batch_threshold": 5,
        "batch_poll_seconds": 0.2,
        "ecommerce_lookup_up_to": 0,  # the store read whole: the writes' batch is the only job
    }
    target, _ = run_target(cfg, _lines("ecommerce_orders", _many(12)))
    routes = _routes(sb)
    assert routes.get(BATCHES) == 1  # 12 orders: one /batches call, no POST per order
    assert ORDERS_POST not in routes
    summary = target.report.summary()["streams"]["ecommerce_orders"]
    assert summary["created"] == 11
    assert summary["rejected_by_reason"] == {"bad_request": 1}
    rejects = [json.loads(x) for x in Path(cfg["rejects_path"]).read_text().splitlines()]
    assert [(r["stream"], r["key"], r["field"]) for r in rejects] == [
        ("ecommerce_orders", "id=o3", "currency_code")
    ]
    assert "not a valid currency" in rejects[0]["detail"]
    batched = _store_orders(api)
    assert sorted(batched) == sorted(f"o{i}" for i in range(12) if i != 3)

    # The single-call path (threshold above the drain) leaves the same store.
    sb.reset()
    sb.set_faults("mailchimp", rate=0)
    Path(cfg["rejects_path"]).unlink()
    run_target({**cfg, "ecommerce_batch_threshold": 1000}, _lines("ecommerce_orders", _many(12)))
    routes = _routes(sb)
    assert BATCHES not in routes
    assert routes[ORDERS_POST] == 12
    single_orders = _store_orders(api)
    assert single_orders == batched
    single = [json.loads(x) for x in Path(cfg["rejects_path"]).read_text().splitlines()]
    assert [{k: r[k] for k in ("stream", "key", "reason", "field", "detail")} for r in single] == [
        {k: r[k] for k in ("stream", "key", "reason", "field", "detail")} for r in rejects
    ]


def test_a_trickle_uses_single_calls(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    cfg = {**config, "store_id": STORE, "ecommerce_batch_threshold": 5, "ecommerce_lookup_up_to": 0}
    run_target(cfg, _lines("ecommerce_orders", [_order(f"o{i}") for i in range(4)]))
    routes = _routes(sb)
    assert BATCHES not in routes
    assert routes[ORDERS_POST] == 4


@pytest.mark.parametrize("lookup_up_to", [0, 1000])
def test_a_killed_runs_batch_is_awaited_not_sent_again(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient, lookup_up_to: int
) -> None:
    """A run killed after submitting its batch: the batch keeps running on Mailchimp's side; the next
    run (the tap replays the window: state had not moved) waits for it, reads the store (or, for a
    trickle, looks its records up in a job queued behind it) and sends only what that batch did not
    write."""
    cfg = {
        **config,
        "store_id": STORE,
        "ecommerce_batch_threshold": 5,
        "batch_poll_seconds": 0.2,
        "ecommerce_lookup_up_to": lookup_up_to,
    }
    orders = [_order(f"o{i}") for i in range(10)]
    run_target(cfg, _lines("ecommerce_orders", orders[:1]))  # the store and its product exist
    base = f"/ecommerce/stores/{STORE}/orders"
    first = EcommerceSync(api, StoreSettings(STORE, config["list_id"]), RunReport("t"), 1)
    with sb.full_batch_timeline():  # still running when the next run starts
        submitted = submit_batch(
            api,
            [
                {
                    "method": "POST",
                    "path": base,
                    "body": {"id": o["id"], **first._body(RESOURCES["ecommerce_orders"], o)},
                    "operation_id": o["id"],
                }
                for o in orders[1:7]
            ],
        )
    assert api.get(f"/batches/{submitted}")["status"] != "finished"  # "killed" here
    sb.reset_stats()
    target, _ = run_target(cfg, _lines("ecommerce_orders", orders))
    routes = _routes(sb)
    assert api.get(f"/batches/{submitted}")["status"] == "finished"
    assert routes[ORDERS_POST] == 3  # o7..o9 only: o0..o6 are in the store already
    # the lookup: one job of 11 GETs (10 orders, their product), no read of the store's orders
    assert routes.get(BATCHES, 0) == (1 if lookup_up_to else 0)
    assert (ORDERS_READ in routes) == (not lookup_up_to)
    summary = target.report.summary()["streams"]["ecommerce_orders"]
    assert summary["unchanged"] == 7
    assert "rejected_by_reason" not in summary or not summary["rejected_by_reason"]
    assert sorted(_store_orders(api)) == sorted(o["id"] for o in orders)


@pytest.mark.parametrize("lookup_up_to", [0, 1000])
def test_a_run_killed_mid_batch_converges(
    sb: RunningSandbox,
    config: dict[str, Any],
    api: MailchimpClient,
    tmp_path: Path,
    lookup_up_to: int,
) -> None:
    """The target process killed right after submitting its batch; the re-run (same input: the state
    had not moved) ends with every order written once, no reject and nothing sent twice."""
    cfg = {
        **config,
        "store_id": STORE,
        "ecommerce_batch_threshold": 5,
        "batch_poll_seconds": 0.2,
        "ecommerce_lookup_up_to": lookup_up_to,
    }
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    orders = [_order(f"o{i}") for i in range(8)]
    lines = _lines("ecommerce_orders", orders)
    with sb.full_batch_timeline():  # the killed run's job is still running when it is killed
        proc = subprocess.Popen(
            [sys.executable, "-m", "target_mailchimp.target", "--config", str(tmp_path / "config.json")],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdin is not None
        assert proc.stderr is not None
        proc.stdin.write("\n".join(lines) + "\n")
        proc.stdin.close()
        for line in proc.stderr:
            if "Submitted batch" in line:
                proc.kill()
                break
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    batches = [b for b in api.get("/batches")["batches"] if b["status"] != "finished"]
    assert len(batches) == 1  # the writes' job (a lookup job before it is finished)
    sb.reset_stats()
    target, _ = run_target(cfg, lines)
    routes = _routes(sb)
    assert routes.get(BATCHES, 0) == (1 if lookup_up_to else 0)  # the lookup only
    assert ORDERS_POST not in routes
    summary = target.report.summary()["streams"]["ecommerce_orders"]
    assert summary["unchanged"] == 8
    assert not summary.get("rejected_by_reason")
    assert sorted(_store_orders(api)) == sorted(o["id"] for o in orders)


def test_batches_are_pipelined_and_state_waits_for_them(
    sb: RunningSandbox,
    config: dict[str, Any],
    api: MailchimpClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The next window's batch is queued behind the running one; a state is emitted only once every
    batch submitted before it arrived has finished (a killed run then replays at most those)."""
    events: list[tuple[str, Any]] = []
    submit, wait = EcommerceSync._submit, EcommerceSync._wait
    write_state, emit = TargetMailchimp.write_state, SeamTarget.write_state

    def spy_submit(self: EcommerceSync, batch: list[Any]) -> None:
        submit(self, batch)
        events.append(("submit", list(self.batches)[-1].batch_id))

    def spy_wait(self: EcommerceSync, batch_id: str, timeout_seconds: float | None = None) -> Any:
        done = wait(self, batch_id, timeout_seconds)
        events.append(("finished", batch_id))
        return done

    def spy_state(self: TargetMailchimp, state: dict[str, Any]) -> None:
        events.append(("state", json.dumps(state, sort_keys=True)))
        write_state(self, state)

    def spy_emit(self: Any, state: dict[str, Any]) -> None:
        events.append(("emit", json.dumps(state, sort_keys=True)))
        emit(self, state)

    monkeypatch.setattr(EcommerceSync, "_submit", spy_submit)
    monkeypatch.setattr(EcommerceSync, "_wait", spy_wait)
    monkeypatch.setattr(TargetMailchimp, "write_state", spy_state)
    monkeypatch.setattr(SeamTarget, "write_state", spy_emit)
    cfg = {
        **config,
        "store_id": STORE,
        "ecommerce_batch_threshold": 5,
        "batch_poll_seconds": 0.2,
        "batch_size_rows": 10,
    }
    orders = [_order(f"o{i}", order_total=str(10 + i)) for i in range(40)]
    lines = _lines("ecommerce_orders", [])
    for window in range(4):
        lines += [
            json.dumps({"type": "RECORD", "stream": "ecommerce_orders", "record": r})
            for r in orders[window * 10 : window * 10 + 10]
        ]
        lines.append(json.dumps({"type": "STATE", "value": {"window": window}}))
    _, states = run_target(cfg, lines)

    assert sorted(_store_orders(api)) == sorted(f"o{i}" for i in range(40))
    assert states[-1] == {"window": 3}
    submits = [bid for kind, bid in events if kind == "submit"]
    assert len(submits) == 4
    position = {event: i for i, event in enumerate(events)}
    # Pipelined: the second batch was submitted before the target saw the first one finish.
    assert position[("submit", submits[1])] < position[("finished", submits[0])]
    # Durable: every batch submitted before a state arrived had finished before that state went out.
    for i, (kind, value) in enumerate(events):
        if kind != "emit":
            continue
        arrived = min(j for j, e in enumerate(events[:i]) if e == ("state", value))  # later: deduplicated
        before = [bid for kind2, bid in events[:arrived] if kind2 == "submit"]
        assert all(position[("finished", bid)] < i for bid in before), (value, events)


def test_the_store_is_syncing_while_a_backfill_writes_and_not_after(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    """Mailchimp fires no e-commerce automation (e.g. abandoned cart) for a store that is syncing:
    a new store is created syncing, a drain of a backfill's size makes it sync, a trickle does
    not, and the end of the run clears it."""
    base = f"/ecommerce/stores/{STORE}"
    client = MailchimpClient(api_key=config["api_key"], api_url=config["api_url"], max_tries=2)
    settings = StoreSettings(
        STORE, config["list_id"], batch_threshold=5, backfill_threshold=5, batch_poll_seconds=0.2
    )

    first = EcommerceSync(client, settings, RunReport("target-mailchimp"), workers=2)
    first.process("ecommerce_orders", [_order("o1")])
    assert api.get(base)["is_syncing"] is True  # created by this run: a backfill
    first.finish()
    assert api.get(base)["is_syncing"] is False

    trickle = EcommerceSync(client, settings, RunReport("target-mailchimp"), workers=2)
    trickle.process("ecommerce_orders", [_order(f"t{i}") for i in range(3)])
    assert api.get(base)["is_syncing"] is False  # a few live orders: automations stay on
    trickle.finish()

    backfill = EcommerceSync(client, settings, RunReport("target-mailchimp"), workers=2)
    backfill.process("ecommerce_orders", [_order(f"b{i}") for i in range(8)])  # >= threshold
    assert api.get(base)["is_syncing"] is True
    backfill.process("ecommerce_orders", [_order("b9")])
    assert api.get(base)["is_syncing"] is True  # until the end of the run
    backfill.finish()
    assert api.get(base)["is_syncing"] is False
    assert len(_store_orders(api)) == 1 + 3 + 9


def test_a_batch_of_live_changes_leaves_the_store_not_syncing(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    """A live change of a dozen records goes as one /batches job (fewer calls than a dozen single
    writes) but is no backfill: the store stays not syncing, so its automations keep firing."""
    base = f"/ecommerce/stores/{STORE}"
    client = MailchimpClient(api_key=config["api_key"], api_url=config["api_url"], max_tries=2)
    settings = StoreSettings(STORE, config["list_id"], batch_poll_seconds=0.2, lookup_up_to=0)
    assert settings.batch_threshold <= 12 < settings.backfill_threshold
    first = EcommerceSync(client, settings, RunReport("target-mailchimp"), workers=2)
    first.process("ecommerce_orders", [_order("o1")])
    first.finish()
    assert api.get(base)["is_syncing"] is False
    sb.reset_stats()
    live = EcommerceSync(client, settings, RunReport("target-mailchimp"), workers=2)
    live.process("ecommerce_orders", [_order(f"l{i}") for i in range(12)])
    assert api.get(base)["is_syncing"] is False
    live.finish()
    routes = _routes(sb)
    assert routes.get(BATCHES) == 1
    assert ORDERS_POST not in routes
    assert "PATCH /3.0/ecommerce/stores/{store_id}" not in routes  # is_syncing never switched
    assert len(_store_orders(api)) == 1 + 12


def test_batches_of_other_resources_and_the_tail_queue_without_waiting(
    sb: RunningSandbox,
    config: dict[str, Any],
    api: MailchimpClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Orders naming new products: the placeholder products' batch and the orders' batch are queued
    one behind the other (Mailchimp runs them in that order), and the last few orders, while batches
    are in flight, join the queue as a batch instead of waiting and going one call each."""
    events: list[tuple[str, str]] = []
    submit, wait = EcommerceSync._submit, EcommerceSync._wait

    def spy_submit(self: EcommerceSync, batch: list[Any]) -> None:
        submit(self, batch)
        events.append(("submit " + batch[0].resource.collection, list(self.batches)[-1].batch_id))

    def spy_wait(self: EcommerceSync, batch_id: str, timeout_seconds: float | None = None) -> Any:
        done = wait(self, batch_id, timeout_seconds)
        events.append(("finished", batch_id))
        return done

    monkeypatch.setattr(EcommerceSync, "_submit", spy_submit)
    monkeypatch.setattr(EcommerceSync, "_wait", spy_wait)
    cfg = {
        **config,
        "store_id": STORE,
        "ecommerce_batch_threshold": 5,
        "batch_poll_seconds": 0.2,
        "batch_size_rows": 10,
        "ecommerce_lookup_up_to": 0,  # the store read whole: only the writes' jobs
    }
    orders = []
    for i in range(12):
        order = _order(f"o{i}")
        order["lines"][0].update(product_id=f"p{i}", product_variant_id=f"p{i}", product_title=f"W{i}")
        orders.append(order)
    target, _ = run_target(cfg, _lines("ecommerce_orders", orders))

    routes = _routes(sb)
    assert ORDERS_POST not in routes
    assert "POST /3.0/ecommerce/stores/{store_id}/products" not in routes
    kinds = [kind for kind, _ in events if kind.startswith("submit")]
    assert kinds == ["submit products", "submit orders", "submit products", "submit orders"]
    position = {event: i for i, event in enumerate(events)}
    first_products, first_orders = events[0][1], events[1][1]
    assert position[("submit orders", first_orders)] < position[("finished", first_products)]
    assert sorted(_store_orders(api)) == sorted(f"o{i}" for i in range(12))
    products = api.get(f"/ecommerce/stores/{STORE}/products", {"count": 100})["products"]
    assert sorted(p["id"] for p in products) == sorted(f"p{i}" for i in range(12))
    summary = target.report.summary()["streams"]["ecommerce_orders"]
    assert summary["created"] == 12
    assert not summary.get("rejected_by_reason")


def test_a_window_too_large_for_one_body_goes_as_several_batches(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ecommerce_module, "MAX_BATCH_BYTES", 3000)  # a few orders a batch
    cfg = {**config, "store_id": STORE, "ecommerce_batch_threshold": 5, "batch_poll_seconds": 0.2}
    orders = [_order(f"o{i}", order_total=str(10 + i)) for i in range(12)]
    target, _ = run_target(cfg, _lines("ecommerce_orders", orders))
    routes = _routes(sb)
    assert routes.get(BATCHES, 0) >= 2  # one without the limit
    assert ORDERS_POST not in routes
    assert sorted(_store_orders(api)) == sorted(o["id"] for o in orders)
    summary = target.report.summary()["streams"]["ecommerce_orders"]
    assert (summary["created"], summary["batched"]) == (12, 12)


# -- a trickle of changes: calls in proportion to the changes --------------------------------
CUSTOMERS_READ = "GET /3.0/ecommerce/stores/{store_id}/customers"
BATCH_LISTING = "GET /3.0/batches"
BATCH_POLL = "GET /3.0/batches/{batch_id}"


def _customer(cid: str, first: str, *, opt_in: bool | None = None) -> dict[str, Any]:
    return {
        "id": cid,
        "email_address": f"{cid}@{DOMAIN}",
        "opt_in_status": opt_in,
        "first_name": first,
        "last_name": "Buyer",
    }


def test_a_trickle_of_customers_is_upserted_in_one_job_without_reading_the_store(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    """The re-run after a few customers changed in Oro: no read of the store's customers (a call per
    1,000 it holds), no listing of the account's batches, one /batches job polled once; and no
    consent changes: a subscriber stays subscribed, an opt-out stays unsubscribed, a new person is
    only transactional."""
    cfg = {**config, "store_id": STORE, "ecommerce_blind_customer_writes": 1000}
    base = f"/ecommerce/stores/{STORE}"
    run_target(cfg, _lines("ecommerce_customers", [_customer("cu0", "Zed")]))  # the store exists
    list_id = config["list_id"]
    api.put(f"{base}/customers/cu1", {**_customer("cu1", "Ann"), "opt_in_status": True})  # subscribed
    api.post(f"/lists/{list_id}", {"members": [{"email_address": f"cu2@{DOMAIN}", "status": "unsubscribed"}]})
    api.put(f"{base}/customers/cu2", {**_customer("cu2", "Bob"), "opt_in_status": False})
    assert api.get(f"{base}/customers/cu1")["opt_in_status"] is True

    sb.reset_stats()
    changed = [_customer("cu1", "Anne", opt_in=True), _customer("cu2", "Bobby"), _customer("cu3", "Cy")]
    target, _ = run_target(cfg, _lines("ecommerce_customers", changed))

    assert _routes(sb) == {
        "GET /3.0/ecommerce/stores/{store_id}": 1,  # the store's audience checked
        BATCHES: 1,
        BATCH_POLL: 1,  # first polled when a job of 3 operations should be done
    }
    assert {c: api.get(f"{base}/customers/{c}")["first_name"] for c in ("cu1", "cu2", "cu3")} == {
        "cu1": "Anne",
        "cu2": "Bobby",
        "cu3": "Cy",
    }
    status = {
        c: api.get(f"/lists/{list_id}/members/{subscriber_hash(f'{c}@{DOMAIN}')}")["status"]
        for c in ("cu1", "cu2", "cu3")
    }
    assert status == {"cu1": "subscribed", "cu2": "unsubscribed", "cu3": "transactional"}
    summary = target.report.summary()["streams"]["ecommerce_customers"]
    assert (summary["upserted"], summary["batched"]) == (3, 3)
    assert not summary.get("rejected_by_reason")


def test_customers_past_the_blind_limit_are_compared_with_the_store(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    """More customers in the run than ``blind_writes_up_to``: from then on the store's customers are
    read once and only changed ones are written (the diff a backfill needs)."""
    client = MailchimpClient(api_key=config["api_key"], api_url=config["api_url"], max_tries=2)
    settings = StoreSettings(
        STORE, config["list_id"], blind_writes_up_to=2, batch_poll_seconds=0.2, lookup_up_to=0
    )
    first = EcommerceSync(client, settings, RunReport("t"), workers=2)
    first.process("ecommerce_customers", [_customer(f"cu{i}", "Al") for i in range(4)])  # 4 > 2: diff
    first.finish()
    sb.reset_stats()
    sync = EcommerceSync(client, settings, RunReport("t"), workers=2)
    sync.process("ecommerce_customers", [_customer("cu0", "Al"), _customer("cu1", "Bo")])  # 2: blind
    sync.settle()
    assert CUSTOMERS_READ not in _routes(sb)
    sync.process("ecommerce_customers", [_customer("cu2", "Al"), _customer("cu3", "Cy")])  # 4 in all
    sync.finish()
    routes = _routes(sb)
    assert routes[CUSTOMERS_READ] == 1
    assert routes[BATCH_LISTING] == 1  # before the store read: a killed run's batch is awaited
    assert routes["PUT /3.0/ecommerce/stores/{store_id}/customers/{customer_id}"] == 1  # cu3 only
    counts = sync.report.summary()["streams"]["ecommerce_customers"]
    assert (counts["upserted"], counts["unchanged"], counts["updated"]) == (2, 1, 1)
    assert api.get(f"/ecommerce/stores/{STORE}/customers/cu1")["first_name"] == "Bo"


def test_a_store_collection_is_read_a_few_pages_at_a_time(
    config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading a collection whole holds every page in flight in memory (~10 MB per 1,000 orders), so
    at most ``STORE_READ_PAGES`` are read at once, however many connections the target may use."""
    client = MailchimpClient(api_key=config["api_key"], api_url=config["api_url"], max_tries=2)
    settings = StoreSettings(STORE, config["list_id"], batch_poll_seconds=0.2, lookup_up_to=0)
    first = EcommerceSync(client, settings, RunReport("t"), workers=10)
    first.process("ecommerce_customers", [_customer(f"cu{i}", "Al") for i in range(12)])
    first.finish()
    monkeypatch.setattr(ecommerce_module, "PAGE", 1)  # 12 pages of one customer
    in_flight, most = [0], [0]
    lock = threading.Lock()
    real_page = client.page

    def slow_page(*args: Any, **kwargs: Any) -> dict[str, Any]:
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        try:
            time.sleep(0.2)  # long enough for every allowed reader to start
            return real_page(*args, **kwargs)
        finally:
            with lock:
                in_flight[0] -= 1

    monkeypatch.setattr(client, "page", slow_page)
    sync = EcommerceSync(client, settings, RunReport("t"), workers=10)
    view = sync._collection("customers")
    assert all(f"cu{i}" in view for i in range(12))
    assert most[0] == ecommerce_module.STORE_READ_PAGES < 10


CUSTOMER_PUT = "PUT /3.0/ecommerce/stores/{store_id}/customers/{customer_id}"


def _store_writes(routes: dict[str, int]) -> dict[str, int]:
    """Calls that change the store or the audience (a ``POST /batches`` of lookups is no write)."""
    return {
        r: n
        for r, n in routes.items()
        if r.split(" ", 1)[0] in {"POST", "PUT", "PATCH", "DELETE"} and r != BATCHES
    }


def test_a_trickle_is_looked_up_by_id_and_only_what_differs_is_written(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The re-run after a few customers changed in Oro (the default ``ecommerce_lookup_up_to``):
    exactly those customers and the store itself are read by one /batches job of GETs, never the
    store's customers page by page (a call per page of the store); only the changed and new ones
    are written, without changing anyone's consent; the same input again writes nothing."""
    monkeypatch.setattr(ecommerce_module, "PAGE", 3)  # a read whole would be 5 pages of 13
    cfg = {**config, "store_id": STORE, "batch_poll_seconds": 0.2}
    base = f"/ecommerce/stores/{STORE}"
    list_id = config["list_id"]
    run_target(cfg, _lines("ecommerce_customers", [_customer(f"cu{i}", "Al") for i in range(12)]))
    api.put(f"{base}/customers/cu1", {**_customer("cu1", "Al"), "opt_in_status": True})  # subscribed
    opt_out = {"email_address": f"cu2@{DOMAIN}", "status": "unsubscribed"}
    api.post(f"/lists/{list_id}", {"members": [opt_out], "update_existing": True})
    api.put(f"{base}/customers/x", {**_customer("x", "Xi"), "opt_in_status": False})  # 13 in all

    trickle = [_customer(f"cu{i}", "Al") for i in (0, 3, 4, 5, 6, 7, 8)]  # unchanged
    trickle += [_customer("cu1", "Anne", opt_in=True), _customer("cu2", "Bobby"), _customer("cu20", "Cy")]
    sb.reset_stats()
    target, _ = run_target(cfg, _lines("ecommerce_customers", trickle))
    routes = _routes(sb)
    assert routes.pop(BATCH_POLL) in (1, 2)  # first polled when a job of 11 GETs should be done
    assert routes == {
        BATCHES: 1,  # 10 customer GETs and the store's: no GET of the store on its own
        BATCH_LISTING: 1,  # before single writes: a killed run's batch is awaited
        CUSTOMER_PUT: 3,  # cu1, cu2, cu20 (3 < the batch threshold: single calls)
    }
    counts = target.report.summary()["streams"]["ecommerce_customers"]
    assert (counts["unchanged"], counts["updated"], counts["created"]) == (7, 2, 1)
    assert {c: api.get(f"{base}/customers/{c}")["first_name"] for c in ("cu1", "cu2", "cu20")} == {
        "cu1": "Anne",
        "cu2": "Bobby",
        "cu20": "Cy",
    }
    status = {
        c: api.get(f"/lists/{list_id}/members/{subscriber_hash(f'{c}@{DOMAIN}')}")["status"]
        for c in ("cu1", "cu2", "cu20")
    }
    assert status == {"cu1": "subscribed", "cu2": "unsubscribed", "cu20": "transactional"}

    # Nothing changed: the lookup, and no write.
    sb.reset_stats()
    target, _ = run_target(cfg, _lines("ecommerce_customers", trickle))
    routes = _routes(sb)
    assert routes[BATCHES] == 1
    assert _store_writes(routes) == {}
    assert CUSTOMERS_READ not in routes
    assert target.report.summary()["streams"]["ecommerce_customers"]["unchanged"] == 10

    # With the lookup off, the same re-run reads the store's customers whole: 5 pages of 3.
    sb.reset_stats()
    run_target({**cfg, "ecommerce_lookup_up_to": 0}, _lines("ecommerce_customers", trickle))
    routes = _routes(sb)
    assert routes[CUSTOMERS_READ] == 5
    assert BATCHES not in routes
    assert _store_writes(routes) == {}


def test_a_trickles_store_lookups_ride_along_its_members_lookup_job(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A re-run after a few people changed (contacts, then their store customers): the store's
    customers and the store itself are looked up in the same ``/batches`` job as the window's
    members, not in a job of their own (a ``POST``, its polls and its queueing less); what is
    written, and everyone's consent, is as with two jobs."""
    real_check = Audience.check_access

    def big_audience(self: Audience) -> dict[str, Any]:
        info = real_check(self)
        self.estimated_size = 50_000  # members are then looked up by a job of GETs, not read whole
        return info

    monkeypatch.setattr(Audience, "check_access", big_audience)
    cfg = {**config, "store_id": STORE, "batch_poll_seconds": 0.2}
    base = f"/ecommerce/stores/{STORE}"
    list_id = config["list_id"]
    customers = [_customer(f"cu{i}", "Al") for i in range(6)]
    run_target(
        cfg,
        singer_lines([contact(i) for i in range(12)]) + _lines("ecommerce_customers", customers),
    )
    opt_out = {"email_address": f"cu2@{DOMAIN}", "status": "unsubscribed"}
    api.post(f"/lists/{list_id}", {"members": [opt_out], "update_existing": True})

    changed = [contact(i, first_name=f"New{i}") for i in range(10)]
    trickle = [customers[0], customers[1], _customer("cu2", "Bobby"), _customer("cu9", "Cy")]
    sb.reset_stats()
    target, _ = run_target(
        cfg, singer_lines(changed) + _lines("ecommerce_customers", trickle)
    )
    routes = _routes(sb)
    assert routes[BATCHES] == 1  # 10 member GETs, 4 customer GETs and the store's, in one job
    assert "GET /3.0/ecommerce/stores/{store_id}" not in routes
    assert "GET /3.0/ecommerce/stores/{store_id}/customers/{customer_id}" not in routes
    assert routes[CUSTOMER_PUT] == 2  # cu2 changed, cu9 new (single calls: a trickle)
    summary = target.report.summary()["streams"]
    assert summary["contacts"]["updated"] == 10
    counts = summary["ecommerce_customers"]
    assert (counts["unchanged"], counts["updated"], counts["created"]) == (2, 1, 1)
    assert api.get(f"{base}/customers/cu2")["first_name"] == "Bobby"
    status = {
        c: api.get(f"/lists/{list_id}/members/{subscriber_hash(f'{c}@{DOMAIN}')}")["status"]
        for c in ("cu2", "cu9")
    }
    assert status == {"cu2": "unsubscribed", "cu9": "transactional"}
    assert api.get(f"/lists/{list_id}/members/{subscriber_hash(f'person3@{DOMAIN}')}")[
        "merge_fields"
    ]["FNAME"] == "New3"


def test_a_trickle_of_orders_looks_up_the_orders_and_their_products(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    """A few orders and carts: the orders, carts and the products their lines name are looked up by
    id (single GETs for a handful, after the store check and the account's batch listing), never
    read whole; a known product gets no placeholder, an unknown one does; an unchanged order is not
    written; a removed cart the store does not have is left alone."""
    client = MailchimpClient(api_key=config["api_key"], api_url=config["api_url"], max_tries=2)
    settings = StoreSettings(STORE, config["list_id"], batch_poll_seconds=0.2)
    first = EcommerceSync(client, settings, RunReport("t"), workers=2)
    first.process("ecommerce_orders", [_order("o1")])  # the store, o1 and its product p1
    first.finish()
    sb.reset_stats()
    sync = EcommerceSync(client, settings, RunReport("t"), workers=2)
    new = _order("o2")
    new["lines"][0].update(product_id="p9", product_variant_id="p9", product_title="Gadget")
    sync.process("ecommerce_orders", [_order("o1"), new])
    sync.process("ecommerce_carts", [{"id": "c7", "deleted": True}])
    sync.finish()
    routes = _routes(sb)
    assert routes == {
        "GET /3.0/ecommerce/stores/{store_id}": 1,
        BATCH_LISTING: 1,
        "GET /3.0/ecommerce/stores/{store_id}/orders/{order_id}": 2,
        "GET /3.0/ecommerce/stores/{store_id}/products/{product_id}": 2,  # p1, p9
        "GET /3.0/ecommerce/stores/{store_id}/carts/{cart_id}": 1,
        "POST /3.0/ecommerce/stores/{store_id}/products": 1,  # p9's placeholder
        ORDERS_POST: 1,  # o2
    }
    counts = sync.report.summary()["streams"]["ecommerce_orders"]
    assert (counts["unchanged"], counts["created"]) == (1, 1)
    assert api.get(f"/ecommerce/stores/{STORE}/products/p9")["title"] == "Gadget"
    assert sorted(_store_orders(api)) == ["o1", "o2"]


@pytest.mark.parametrize("behind", [5, 1_000])
def test_a_lookup_job_never_queues_behind_a_backfills_jobs(
    sb: RunningSandbox,
    config: dict[str, Any],
    api: MailchimpClient,
    monkeypatch: pytest.MonkeyPatch,
    behind: int,
) -> None:
    """Carts after the orders of a backfill: with more of our operations queued than
    ``LOOKUP_BEHIND_OPERATIONS`` (Mailchimp runs the account's jobs one at a time), the carts are
    compared with the store's carts read page by page at once, not looked up by a job of GETs that
    would wait for every order; with a short queue they are looked up."""
    monkeypatch.setattr(ecommerce_module, "LOOKUP_BEHIND_OPERATIONS", behind)
    client = MailchimpClient(api_key=config["api_key"], api_url=config["api_url"], max_tries=2)
    settings = StoreSettings(STORE, config["list_id"], batch_poll_seconds=0.2)
    sync = EcommerceSync(client, settings, RunReport("t"), workers=2)
    sync.process("ecommerce_orders", [_order(f"o{i}") for i in range(12)])
    queued = sum(job.operations for job in sync.batches)
    assert 5 < queued <= 1_000  # the orders' write job, not read yet
    sb.reset_stats()
    carts = [
        {
            "id": f"c{i}",
            "customer": {"id": "cu1"},
            "order_total": 10,
            "checkout_url": f"https://shop.example.org/cart/c{i}",
            "lines": [{"id": "l1", "product_id": "p1", "quantity": 1, "price": 10}],
        }
        for i in range(10)
    ]
    sync.process("ecommerce_carts", carts)
    routes = _routes(sb)
    sync.finish()
    if behind == 5:
        assert routes["GET /3.0/ecommerce/stores/{store_id}/carts"] == 1  # read whole, at once
        assert routes[BATCHES] == 1  # the carts' writes only
    else:
        assert "GET /3.0/ecommerce/stores/{store_id}/carts" not in routes
        assert routes[BATCHES] == 2  # the carts' lookup job, then their writes
    assert sync.report.summary()["streams"]["ecommerce_carts"]["created"] == 10
    assert len(api.get(f"/ecommerce/stores/{STORE}/carts", {"count": 100})["carts"]) == 10
