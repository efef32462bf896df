"""Batch API processing as Oro's message-queue consumers do it (items 9 and 10 of issue 12).

Sources (oroinc/platform 6.1.0 unless noted):
* ``src/Oro/Bundle/ApiBundle/Tests/Functional/RestJsonApiBatch/UpdateListTest.php``
  ``testProcessChunkWithValidationErrors``: a chunk with two invalid and one valid record ends with
  readCount 3, writeCount 1, errorCount 2, updateCount 1, status success; errors ``<op>-1-1``, ``<op>-1-2``;
* ``Batch/RetryHelper.php`` (runs of consecutive valid records are retried as extra chunks),
  ``Batch/Async/UpdateListProcessChunkMessageProcessor.php`` (synchronous mode: all or nothing, no retry),
  ``Batch/EventListener/JobListener.php`` (extra chunks do not add to readCount; a failed chunk job makes
  the operation ``failed``), ``Batch/ErrorManager.php::readErrors`` (error ids);
* ``Processor/UpdateList/ProcessSynchronousOperation.php``: a sync request waits at most
  ``sync_processing_wait_timeout`` for its operation, then answers 202 with it;
* orocommerce 6.1.0 ``ProductBundle/Resources/config/oro/api.yml``: products ``update_list: true``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

SYNC = {"X-Mode": "sync"}


def _wait(api: Any, op_id: str) -> dict[str, Any]:
    for _ in range(200):
        attrs: dict[str, Any] = api.get(f"/asyncoperations/{op_id}").json()["data"]["attributes"]
        if attrs["status"] not in ("new", "running"):
            return attrs
        time.sleep(0.05)
    raise AssertionError(f"operation {op_id} did not finish")


def _customer(api: Any, name: str) -> str:
    r = api.post("/customers", {"data": {"type": "customers", "attributes": {"name": name}}})
    assert r.status_code == 201, r.text
    cid: str = r.json()["data"]["id"]
    return cid


def _name(api: Any, cid: str) -> str:
    name: str = api.get(f"/customers/{cid}").json()["data"]["attributes"]["name"]
    return name


def test_async_chunk_with_invalid_records_writes_the_valid_ones(api: Any) -> None:
    """UpdateListTest::testProcessChunkWithValidationErrors, on customers (name is required)."""
    tag = uuid.uuid4().hex[:8]
    second, third = _customer(api, f"Department 2 {tag}"), _customer(api, f"Department 3 {tag}")
    body = {"data": [
        {"type": "customers", "attributes": {"name": ""}},
        {"meta": {"update": True}, "type": "customers", "id": second, "attributes": {"name": ""}},
        {"meta": {"update": True}, "type": "customers", "id": third, "attributes": {"name": f"Updated 3 {tag}"}},
    ]}
    r = api.patch("/customers", body)
    assert r.status_code == 202
    op_id = r.json()["data"]["id"]
    done = _wait(api, op_id)
    assert done["status"] == "success"
    assert done["progress"] == 1
    summary = {k: v for k, v in done["summary"].items() if k != "aggregateTime"}
    assert summary == {"readCount": 3, "writeCount": 1, "errorCount": 2, "createCount": 0, "updateCount": 1}
    assert _name(api, second) == f"Department 2 {tag}"
    assert _name(api, third) == f"Updated 3 {tag}"
    errors = api.get(f"/asyncoperations/{op_id}/errors").json()["data"]
    assert [(e["id"], e["attributes"]["status"], e["attributes"]["title"], e["attributes"]["detail"],
             e["attributes"]["source"]) for e in errors] == [
        (f"{op_id}-1-1", 400, "not blank constraint", "This value should not be blank.",
         {"pointer": "/data/0/attributes/name"}),
        (f"{op_id}-1-2", 400, "not blank constraint", "This value should not be blank.",
         {"pointer": "/data/1/attributes/name"}),
    ]


def test_each_run_of_valid_records_is_retried_and_written_once(api: Any) -> None:
    """RetryHelper::getChunksToRetry: [ok, bad, ok, ok, bad, ok] -> extra chunks [0], [2, 3], [5]."""
    tag = uuid.uuid4().hex[:8]
    names = [f"Run {tag} {i}" if i not in (1, 4) else "" for i in range(6)]
    r = api.patch("/customers", {"data": [{"type": "customers", "attributes": {"name": n}} for n in names]})
    done = _wait(api, r.json()["data"]["id"])
    assert done["status"] == "success"
    assert (done["summary"]["readCount"], done["summary"]["writeCount"], done["summary"]["errorCount"],
            done["summary"]["createCount"]) == (6, 4, 2, 4)
    created = api.get("/customers", params={"filter[id][gt]": "0", "page[size]": -1}).json()["data"]
    got = sorted(c["attributes"]["name"] for c in created if tag in c["attributes"]["name"])
    assert got == sorted(n for n in names if n)  # every valid record exactly once


def test_a_single_invalid_record_is_an_error_not_a_retry(api: Any) -> None:
    r = api.patch("/customers", {"data": [{"type": "customers", "attributes": {"name": ""}}]})
    done = _wait(api, r.json()["data"]["id"])
    assert (done["status"], done["summary"]["writeCount"], done["summary"]["errorCount"]) == ("success", 0, 1)


@pytest.fixture
def slow_queue(sb: Any) -> Iterator[None]:
    """The message queue starts later than a sync request is willing to wait (Oro: 25 s)."""
    sb.set_switches(batch_queue_delay=0.6, batch_sync_wait_timeout=0.2)
    try:
        yield
    finally:
        sb.set_switches(batch_queue_delay=0.05, batch_sync_wait_timeout=25.0)


def test_sync_request_past_the_wait_answers_202_and_stays_all_or_nothing(api: Any, slow_queue: None) -> None:
    tag = uuid.uuid4().hex[:8]
    good = f"Sync-late {tag}"
    r = api.patch("/customers", {"data": [{"type": "customers", "attributes": {"name": good}},
                                          {"type": "customers", "attributes": {"name": ""}}]}, headers=SYNC)
    assert r.status_code == 202
    op = r.json()["data"]
    assert op["type"] == "asyncoperations"
    assert op["attributes"]["status"] == "new"
    assert r.headers["Content-Location"] == f"{api.base}/asyncoperations/{op['id']}"
    done = _wait(api, op["id"])
    # synchronous mode: no retry of the valid record, the chunk job fails
    assert done["status"] == "failed"
    assert (done["summary"]["readCount"], done["summary"]["writeCount"], done["summary"]["errorCount"]) == (2, 0, 1)
    errors = api.get(f"/asyncoperations/{op['id']}/errors").json()["data"]
    assert [e["attributes"]["source"] for e in errors] == [{"pointer": "/data/1/attributes/name"}]
    assert api.get("/customers", params={"filter[name]": good}).json()["data"] == []


def test_sync_request_past_the_wait_still_lands_when_valid(api: Any, slow_queue: None) -> None:
    name = f"Sync-late-ok {uuid.uuid4().hex[:8]}"
    r = api.patch("/customers", {"data": [{"type": "customers", "attributes": {"name": name}}]}, headers=SYNC)
    assert r.status_code == 202
    assert api.get("/customers", params={"filter[name]": name}).json()["data"] == []  # not yet
    done = _wait(api, r.json()["data"]["id"])
    assert (done["status"], done["summary"]["createCount"]) == ("success", 1)
    assert len(api.get("/customers", params={"filter[name]": name}).json()["data"]) == 1


def test_sync_request_within_the_wait_is_answered_synchronously(api: Any, sb: Any) -> None:
    sb.set_switches(batch_queue_delay=0.1, batch_sync_wait_timeout=5.0)
    try:
        name = f"Sync-fast {uuid.uuid4().hex[:8]}"
        r = api.patch("/customers", {"data": [{"type": "customers", "attributes": {"name": name}}]}, headers=SYNC)
        assert r.status_code == 200
        assert r.json()["data"][0]["attributes"]["name"] == name
    finally:
        sb.set_switches(batch_queue_delay=0.05, batch_sync_wait_timeout=25.0)


def test_products_have_the_batch_api(api: Any) -> None:
    r = api.send("OPTIONS", "/products")
    assert r.headers["Allow"] == "OPTIONS, GET, PATCH, POST, DELETE"
    sku = f"BATCH-{uuid.uuid4().hex[:6]}"
    r = api.patch("/products", {"data": [
        {"type": "products", "attributes": {"sku": sku, "status": "enabled"}},
        {"type": "products", "attributes": {"sku": f"{sku}-2"}},
    ]}, headers=SYNC)
    assert r.status_code == 200, r.text
    assert [p["attributes"]["sku"] for p in r.json()["data"]] == [sku, f"{sku}-2"]
    # upsert by the unique sku inside a batch updates the existing product
    r = api.patch("/products", {"data": [
        {"type": "products", "meta": {"upsert": ["sku"]}, "attributes": {"sku": sku, "status": "disabled"}},
    ]}, headers=SYNC)
    assert r.status_code == 200, r.text
    found = api.get("/products", params={"filter[sku]": sku}).json()["data"]
    assert [p["attributes"]["status"] for p in found] == ["disabled"]
