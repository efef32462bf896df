"""MailchimpClient: the one offset pager (in turn and concurrent) and Retry-After on a 429."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from oromc_common.fanout import BoundedPool
from oromc_common.governor import ConnectionBudget
from oromc_common.mailchimp import MailchimpClient

API = "http://127.0.0.1:9/3.0"
KEY = "0123456789abcdef0123456789abcdef-us1"


@pytest.fixture
def client(tmp_path: Any) -> MailchimpClient:
    return MailchimpClient(
        api_key=KEY,
        api_url=API,
        max_tries=3,
        backoff_factor=5.0,
        connection_budget=ConnectionBudget(directory=str(tmp_path)),
    )


def _collection(total: int) -> Any:
    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        query = parse_qs(urlsplit(str(request.url)).query)
        offset, count = int(query["offset"][0]), int(query["count"][0])
        assert "total_items" in query["fields"][0].split(",")
        items = [{"id": n} for n in range(offset, min(total, offset + count))]
        return 200, {}, json.dumps({"items": items, "total_items": total})

    return answer


@responses.activate
def test_paginate_and_each_page_read_every_item_once(client: MailchimpClient) -> None:
    responses.add_callback(responses.GET, API + "/things", callback=_collection(23))
    assert [i["id"] for i in client.paginate("/things", "items", {"fields": "items.id"}, 5)] == list(
        range(23)
    )
    seen: list[int] = []
    lock = threading.Lock()

    def handle(page: dict[str, Any]) -> None:
        with lock:
            seen.extend(i["id"] for i in page["items"])

    total = client.each_page("/things", handle, {"fields": "items.id"}, page_size=5, max_workers=3)
    assert total == 23
    assert sorted(seen) == list(range(23))
    offsets = [parse_qs(urlsplit(str(c.request.url)).query)["offset"][0] for c in responses.calls]
    assert sorted(offsets[-5:], key=int) == ["0", "5", "10", "15", "20"]


@responses.activate
def test_a_429_waits_what_retry_after_says(
    client: MailchimpClient, caplog: pytest.LogCaptureFixture
) -> None:
    responses.add(responses.GET, API + "/ping", status=429, headers={"Retry-After": "0"}, json={})
    responses.add(responses.GET, API + "/ping", json={"health_status": "Everything's Chimpy!"})
    with caplog.at_level(logging.WARNING, logger="oromc_common.mailchimp"):
        assert client.get("/ping") == {"health_status": "Everything's Chimpy!"}
    # the backoff alone (factor 5 s, fully jittered) would wait 0-5 s; Retry-After: 0 says now
    assert "retry 1 in 0.0s" in caplog.text


@responses.activate
def test_paginate_on_a_pool_reads_the_later_pages_ahead_and_yields_in_order(client: MailchimpClient) -> None:
    responses.add_callback(responses.GET, API + "/things", callback=_collection(23))
    pool = BoundedPool(3, name="t")
    try:
        ids = [i["id"] for i in client.paginate("/things", "items", {"fields": "items.id"}, 5, pool=pool)]
    finally:
        pool.close()
    assert ids == list(range(23))
    offsets = [int(parse_qs(urlsplit(str(c.request.url)).query)["offset"][0]) for c in responses.calls]
    assert offsets[0] == 0, "the first page alone says how many follow"
    assert sorted(offsets) == [0, 5, 10, 15, 20], "each page once, none past total_items"


@responses.activate
def test_each_page_with_raw_items_leaves_each_item_for_the_handler_to_parse(client: MailchimpClient) -> None:
    """``raw_items``: a page's items stay unparsed slices of its body until the handler parses them
    one at a time (a page of 1,000 store orders is ~10 MB as objects); the rest of the page but
    ``total_items`` is never built. What the handler parses equals what json.loads gives."""
    import msgspec
    from oromc_common.mailchimp import raw_items

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        offset = int(parse_qs(urlsplit(str(request.url)).query)["offset"][0])
        items = [
            {"id": str(n), "lines": [{"price": 1.5, "q": n}], "note": None}
            for n in range(offset, min(7, offset + 3))
        ]
        return 200, {}, json.dumps({"items": items, "total_items": 7, "_links": [{"rel": "self"}]})

    responses.add_callback(responses.GET, API + "/things", callback=answer)
    pages: list[dict[str, Any]] = []
    lock = threading.Lock()

    def handle(page: dict[str, Any]) -> None:
        with lock:
            pages.append(page)

    read = client.each_page("/things", handle, None, page_size=3, max_workers=2, decode=raw_items("items"))
    assert read == 7
    assert all(set(p) == {"items", "total_items"} for p in pages)
    raw = [i for p in pages for i in p["items"]]
    assert all(isinstance(i, msgspec.Raw) for i in raw)
    parsed = sorted((msgspec.json.decode(i) for i in raw), key=lambda i: int(i["id"]))
    assert parsed == [{"id": str(n), "lines": [{"price": 1.5, "q": n}], "note": None} for n in range(7)]
    assert raw_items("items")(b"") is None
    assert raw_items("items")(b"<html>") is None
