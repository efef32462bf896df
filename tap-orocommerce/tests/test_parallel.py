"""Reading by id ranges in parallel (``max_connections``): exactly the rows of the serial read.

The reader against a fake Oro listing (ids, ``filter[id][gt|lte]``, ``sort=id|-id``, ``links.next``,
``X-Include: totalCount``) that can change while it is read; then the whole tap against the sandbox,
``max_connections`` 1 (serial) against 4.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from oromc_common.fanout import BoundedPool
from oromc_sandbox.testing import OroTestClient, running_sandbox
from tap_orocommerce.idranges import IdRange, IdRangeReader, ListQuery, plan_ranges, range_width

from tests.helpers import TapRun, run_tap, tap_config

API = "https://oro.example/admin/api"


class FakeResponse:
    """What the reader reads from a page: the parsed document and the headers."""

    def __init__(self, doc: dict[str, Any], headers: dict[str, str]) -> None:
        self._oro_doc = doc
        self.headers = headers


class FakeOro:
    """One Oro listing of ``ids``; ``after_request(params)`` may change it between answers."""

    def __init__(self, ids: list[Any], *, count_header: bool = True) -> None:
        self.ids = sorted(ids, key=lambda i: (isinstance(i, str), i))
        self.count_header = count_header
        self.requests: list[dict[str, Any]] = []
        self.after_request: Callable[[dict[str, Any]], None] = lambda params: None
        self._links: dict[str, tuple[dict[str, Any], int]] = {}
        self._lock = threading.Lock()
        self.in_flight = 0
        self.peak = 0

    def fetch(
        self,
        resource: str,
        params: dict[str, Any] | None,
        *,
        url: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> FakeResponse:
        with self._lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        time.sleep(0.002)  # let other threads in
        with self._lock:
            self.in_flight -= 1
            number = 1
            if url is not None:
                params, number = self._links[url]
            assert params is not None
            self.requests.append(dict(params))
            rows = list(self.ids)
            if "filter[id][gt]" in params:
                rows = [i for i in rows if i > int(params["filter[id][gt]"])]
            if "filter[id][lte]" in params:
                rows = [i for i in rows if i <= int(params["filter[id][lte]"])]
            if params.get("sort") == "-id":
                rows.reverse()
            size = int(params["page[size]"])
            page = rows[(number - 1) * size : number * size]
            doc: dict[str, Any] = {"data": [{"type": resource, "id": str(i)} for i in page]}
            if len(rows) > number * size:
                link = f"{API}/{resource}?n={len(self._links)}"
                self._links[link] = (params, number + 1)
                doc["links"] = {"next": link}
            answer = {"X-Include-Total-Count": str(len(rows))}
            self.after_request(params)
        wants_count = (headers or {}).get("X-Include") == "totalCount" and self.count_header
        return FakeResponse(doc, answer if wants_count else {})


def read(oro: FakeOro, page_size: int, workers: int = 4, after: int | None = None) -> list[list[Any]]:
    """The ids of each page the reader hands on."""
    pool = BoundedPool(workers, name="test-read")
    reader = IdRangeReader(oro.fetch, pool, API)  # type: ignore[arg-type]
    query = ListQuery("things", {"fields[things]": "name", "page[size]": page_size})
    try:
        return [
            [_id(item["id"]) for item in response._oro_doc["data"]]  # type: ignore[attr-defined]
            for _, response in reader.pages([query], after=after)
        ]
    finally:
        pool.close()


def _id(raw: str) -> Any:
    return int(raw) if raw.isdigit() else raw


def _flat(pages: list[list[Any]]) -> list[Any]:
    return [i for page in pages for i in page]


def _ranged(oro: FakeOro) -> list[dict[str, Any]]:
    return [p for p in oro.requests if "filter[id][lte]" in p]


def test_range_width_is_one_page_of_dense_ids_less_a_margin_for_gaps() -> None:
    assert range_width(500, 1000, 1000) == 500  # dense: exactly a page
    assert range_width(500, 500, 1000) == 905  # half the ids exist: ~452 rows expected, < 500
    assert range_width(7, 0, 0) == 7
    assert range_width(1, 10, 10**9) >= 1
    assert list(plan_ranges(500, 1200, 500)) == [IdRange(500, 1000), IdRange(1000, None)]
    assert list(plan_ranges(500, 500, 500)) == [IdRange(500, None)]  # only rows created meanwhile


def test_dense_ids_read_in_pages_of_one_range_each() -> None:
    oro = FakeOro(list(range(1, 2001)))
    pages = read(oro, 100)
    assert _flat(pages) == list(range(1, 2001))
    assert all(len(page) == 100 for page in pages)
    # the first page, the highest id, 19 ranges (the last open-ended): one request per page + 1
    assert len(oro.requests) == 21
    assert [p for p in oro.requests if p.get("sort") == "-id"] == [
        {"fields[things]": "name", "page[size]": 1, "sort": "-id", "filter[id][gt]": 100}
    ]
    assert len(_ranged(oro)) == 18
    assert oro.peak > 1


@pytest.mark.parametrize("count_header", [True, False], ids=["count", "no-count"])
def test_sparse_ids_give_the_serial_rows_in_order(count_header: bool) -> None:
    ids = sorted(random.Random(7).sample(range(1, 20_000), 3000))
    oro = FakeOro(ids, count_header=count_header)
    assert _flat(read(oro, 100)) == ids


def test_a_range_holding_more_than_a_page_is_read_on_by_id() -> None:
    # the first page is sparse (every 10th id), the rest dense: a range estimated from the first
    # page spans ten pages of rows
    ids = list(range(10, 1001, 10)) + list(range(1001, 3001))
    oro = FakeOro(ids, count_header=False)
    pages = read(oro, 100)
    assert _flat(pages) == ids
    lows = {int(p["filter[id][lte]"]): [] for p in _ranged(oro)}  # type: ignore[var-annotated]
    for p in _ranged(oro):
        lows[int(p["filter[id][lte]"])].append(int(p["filter[id][gt]"]))
    assert any(len(starts) > 1 for starts in lows.values()), "no range was read on by id"


def test_rows_created_while_reading_beyond_the_highest_id_are_read() -> None:
    oro = FakeOro(list(range(1, 1001)))

    def create(params: dict[str, Any]) -> None:
        if params.get("sort") == "-id":  # right after the highest id was answered
            oro.ids += list(range(1001, 1251))

    oro.after_request = create
    assert _flat(read(oro, 100)) == list(range(1, 1251))


def test_rows_deleted_while_reading_are_left_out_and_nothing_else() -> None:
    oro = FakeOro(list(range(1, 1001)))
    gone = set(range(400, 700, 3))

    def delete(params: dict[str, Any]) -> None:
        if params.get("sort") == "-id":
            oro.ids = [i for i in oro.ids if i not in gone]

    oro.after_request = delete
    assert _flat(read(oro, 100)) == [i for i in range(1, 1001) if i not in gone]


def test_resume_after_an_id_and_a_listing_on_one_page() -> None:
    oro = FakeOro(list(range(1, 1001)))
    assert _flat(read(oro, 100, after=850)) == list(range(851, 1001))
    assert oro.requests[0]["filter[id][gt]"] == 850
    small = FakeOro([3, 5, 8])
    assert read(small, 100) == [[3, 5, 8]]
    assert len(small.requests) == 1  # no highest-id request for a listing on one page


def test_ids_that_are_not_numbers_follow_links_next() -> None:
    ids = [f"k{i:04d}" for i in range(250)]
    oro = FakeOro(ids)
    assert _flat(read(oro, 100)) == ids
    assert len(oro.requests) == 3
    assert not _ranged(oro)


def test_a_failed_range_is_raised_in_its_turn_after_the_pages_before_it() -> None:
    oro = FakeOro(list(range(1, 3001)))
    fetch = oro.fetch

    def failing(resource: str, params: dict[str, Any] | None, **kw: Any) -> FakeResponse:
        if params and params.get("filter[id][gt]") == 1500:
            raise RuntimeError("GET things -> 500 after every retry")
        return fetch(resource, params, **kw)

    pool = BoundedPool(4, name="test-read")
    reader = IdRangeReader(failing, pool, API)  # type: ignore[arg-type]
    seen: list[int] = []

    def consume() -> None:
        for _, response in reader.pages([ListQuery("things", {"page[size]": 100})]):
            seen.extend(int(i["id"]) for i in response._oro_doc["data"])  # type: ignore[attr-defined]

    try:
        with pytest.raises(RuntimeError, match="after every retry"):
            consume()
    finally:
        pool.close()
    assert seen == list(range(1, 1501))  # every page before the failed one, in order, then the error
    # the first page, the highest id, the 14 ranges before the failed one and at most the 7 after it
    # that the window (2 per worker) had started: the rest is cancelled
    assert len(oro.requests) <= 1 + 1 + 14 + 7


def test_one_worker_reads_the_same_rows_one_request_at_a_time() -> None:
    ids = sorted(random.Random(3).sample(range(1, 5000), 900))
    oro = FakeOro(ids)
    assert _flat(read(oro, 50, workers=1)) == ids
    assert oro.peak == 1


def test_several_listings_come_one_after_the_other_each_in_id_order() -> None:
    listings = {"a": list(range(1, 260)), "b": [7], "c": list(range(5, 900, 2))}
    oros = {name: FakeOro(ids) for name, ids in listings.items()}

    def fetch(resource: str, params: dict[str, Any] | None, **kw: Any) -> FakeResponse:
        return oros[resource].fetch(resource, params, **kw)

    pool = BoundedPool(3, name="test-read")
    reader = IdRangeReader(fetch, pool, API)  # type: ignore[arg-type]
    queries = [ListQuery(name, {"page[size]": 40}) for name in listings]
    got: dict[int, list[int]] = {}
    order: list[int] = []
    try:
        for index, response in reader.pages(queries):
            if not order or order[-1] != index:
                order.append(index)
            got.setdefault(index, []).extend(
                int(item["id"]) for item in response._oro_doc["data"]  # type: ignore[attr-defined]
            )
    finally:
        pool.close()
    assert order == [0, 1, 2]
    assert [got[i] for i in range(3)] == list(listings.values())


# -- the tap against the sandbox: max_connections 1 (serial) and 4 give the same output ------------

STREAMS = ["contacts", "ecommerce_customers", "customer_users", "customer_user_addresses"]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    with running_sandbox(customers=40, seed=9, consent_source="consent_acceptances") as sb:
        yield sb


def _config(sandbox: Any, connections: int) -> dict[str, Any]:
    return tap_config(
        sandbox, page_size=10, max_connections=connections, streams=STREAMS,
        consent_source="consent_acceptances", customer_user_filter="client",
        contact_order_stats=True, contact_last_product=True, state_every_records=1000,
    )  # fmt: skip


def _runs(sandbox: Any, tmp_path: Path, name: str, state: dict[str, Any] | None) -> tuple[TapRun, TapRun]:
    """The same run with max_connections 1 and 4 (realistic latency: requests overlap), from the
    same state; each checks the peak of requests in flight."""
    sandbox.set_switches(latency="realistic")
    runs = []
    try:
        for connections in (1, 4):
            sandbox.reset_stats()
            run = run_tap(
                tmp_path, _config(sandbox, connections), state=state, name=f"{name}-{connections}",
                timeout=300,
            )  # fmt: skip
            assert run.returncode == 0, run.stderr[-3000:]
            peak = max(sandbox.stats("oro")["connections"]["peak"].values())
            assert peak == 1 if connections == 1 else 1 < peak <= connections
            runs.append(run)
    finally:
        sandbox.set_switches(latency="none")
    return runs[0], runs[1]


def _timeless(run: TapRun) -> tuple[dict[str, Any], dict[str, Any]]:
    """Records and state without what the run's own server time decides (an erase row's time and
    the bookmark it moves): the serial and the parallel run happen one after the other."""
    records = {
        stream: [{**r, "updated_at": None} if r.get("erase") else r for r in rows]
        for stream, rows in run.records.items()
    }
    state = json.loads(json.dumps(run.state))
    for bookmark in state.get("bookmarks", {}).values():
        if bookmark.get("known_ids") is not None:  # contacts: its bookmark is an erase row's time
            bookmark.pop("replication_key_value", None)
    return records, state


def test_parallel_read_emits_exactly_the_serial_rows_and_state(sandbox: Any, tmp_path: Path) -> None:
    oro = OroTestClient(sandbox)
    users = sorted(int(u["id"]) for u in oro.all("customerusers"))
    # sparse ids: a run of customer users and every fourth address deleted
    for uid in users[20:45] + users[60:63]:
        oro.write("DELETE", f"customerusers/{uid}")
    for address in oro.all("customeruseraddresses")[::4]:
        oro.write("DELETE", f"customeruseraddresses/{address['id']}")
    serial, parallel = _runs(sandbox, tmp_path, "first", None)
    for stream in STREAMS:
        assert serial.records[stream], stream
        assert parallel.records[stream] == serial.records[stream], stream  # same rows, same order
    assert parallel.state == serial.state

    # users deleted (erase rows) and one changed, then a run from the first run's state
    for uid in users[100:104]:
        oro.write("DELETE", f"customerusers/{uid}")
    oro.write("PATCH", f"customerusers/{users[5]}",
              {"data": {"type": "customerusers", "id": str(users[5]),
                        "attributes": {"firstName": "Changed"}}})  # fmt: skip
    sandbox.advance_clock(5)
    serial2, parallel2 = _runs(sandbox, tmp_path, "second", serial.state)
    assert _timeless(parallel2) == _timeless(serial2)
    erased = [r["customer_user_id"] for r in parallel2.records["contacts"] if r["erase"]]
    assert erased == users[100:104]
    assert users[5] in [r["customer_user_id"] for r in parallel2.records["contacts"]]
