"""Writes applied by Mailchimp whose answer never arrived (the sandbox's ``lost_response`` fault): the
retry finds what the first attempt did instead of failing or writing it twice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from oromc_common.mailchimp import MailchimpClient
from oromc_sandbox.testing import RunningSandbox, fault_seed_for

from .conftest import DOMAIN, contact, member, run_target, singer_lines
from .test_ecommerce_sandbox import _lines, _order


def test_a_merge_field_created_with_its_answer_lost_is_read_back(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    route = "POST /3.0/lists/{list_id}/merge-fields"
    # the first create of each field applied and its answer lost, the retry answered
    seed = fault_seed_for({route: [True, False, True, False]}, rate=0.5)
    sb.set_faults("mailchimp", rate=0.5, kinds=["lost_response"], routes=[route], seed=seed)
    cfg = {
        **config,
        "merge_fields": {"FNAME": "first_name", "COMPANY": "customer_name", "SINCE": "updated_at"},
        "create_missing_merge_fields": True,
    }
    run_target(cfg, singer_lines([contact(1)]))
    sb.set_faults("mailchimp", rate=0)
    assert sb.stats("mailchimp")["lost_responses"][route] == {"200": 2}
    fields = [
        f["tag"] for f in api.paginate(f"/lists/{config['list_id']}/merge-fields", "merge_fields")
    ]
    assert fields.count("COMPANY") == fields.count("SINCE") == 1
    got = member(api, config["list_id"], f"person1@{DOMAIN}")
    assert got is not None
    assert got["merge_fields"]["COMPANY"] == "Account 1"


def test_a_store_order_created_with_its_answer_lost_is_not_rejected(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient, tmp_path: Path
) -> None:
    """The retried create gets 400 "already exists": the order is updated, not reported as refused."""
    route = "POST /3.0/ecommerce/stores/{store_id}/orders"
    seed = fault_seed_for({route: [True, False, True, False]}, rate=0.5)
    sb.set_faults("mailchimp", rate=0.5, kinds=["lost_response"], routes=[route], seed=seed)
    cfg = {**config, "store_id": "oro-shop", "ecommerce_batch_threshold": 5}
    run_target(cfg, _lines("ecommerce_orders", [_order("o1"), _order("o2", "paid")]))
    sb.set_faults("mailchimp", rate=0)
    # the orders go out concurrently: which attempt of which order is struck varies
    assert sb.stats("mailchimp")["lost_responses"][route].get("200", 0) >= 1
    rejects = Path(cfg["rejects_path"])
    assert not rejects.exists() or rejects.read_text() == ""
    orders = {o["id"]: o for o in api.paginate("/ecommerce/stores/oro-shop/orders", "orders")}
    assert sorted(orders) == ["o1", "o2"]
    assert orders["o2"]["financial_status"] == "paid"


def test_a_batch_submitted_twice_after_a_lost_answer_reports_nothing_refused(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    """The first ``POST /batches`` is applied and its answer lost, so the retry submits the same
    operations again; the creates of the copy that runs second find the orders there: they are
    updated, not reported as refused."""
    route = "POST /3.0/batches"
    seed = fault_seed_for({route: [True, False]}, rate=0.5)
    sb.set_faults("mailchimp", rate=0.5, kinds=["lost_response"], routes=[route], seed=seed)
    cfg = {
        **config,
        "store_id": "oro-shop",
        "ecommerce_batch_threshold": 5,
        "batch_poll_seconds": 0.2,
    }
    run_target(cfg, _lines("ecommerce_orders", [_order(f"o{i}", "paid") for i in range(6)]))
    sb.set_faults("mailchimp", rate=0)
    assert sb.stats("mailchimp")["lost_responses"][route] == {"200": 1}
    rejects = Path(cfg["rejects_path"])
    assert not rejects.exists() or rejects.read_text() == ""
    got = {
        o["id"]: o["financial_status"]
        for o in api.paginate("/ecommerce/stores/oro-shop/orders", "orders")
    }
    assert got == {f"o{i}": "paid" for i in range(6)}
