"""Pagination exactly as reference §3.2 (checklist 3)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit


def test_default_page_size_is_10_and_next_link_is_rfc3986_encoded(api: Any) -> None:
    doc = api.get("/customerusers").json()
    assert len(doc["data"]) == 10
    links = doc["links"]
    assert set(links) == {"self", "next"}
    assert links["next"] == api.base + "/customerusers?page%5Bnumber%5D=2"


def test_next_link_keeps_query_grouped_php_style(api: Any) -> None:
    doc = api.get("/customers", params=[("page[size]", "5"), ("sort", "-updatedAt"),
                                        ("filter[updatedAt][gte]", "2020-01-01T00:00:00Z")]).json()
    assert doc["links"]["next"] == (
        api.base + "/customers?page%5Bsize%5D=5&page%5Bnumber%5D=2&sort=-updatedAt"
        "&filter%5BupdatedAt%5D%5Bgte%5D=2020-01-01T00%3A00%3A00Z"
    )
    assert "last" not in doc["links"]
    assert doc["links"]["self"] == api.base + "/customers"


def test_second_page_has_first_and_prev_without_page_number(api: Any) -> None:
    doc = api.get("/customers", params={"page[size]": 5, "page[number]": 2}).json()
    assert doc["links"]["first"] == api.base + "/customers?page%5Bsize%5D=5"
    assert doc["links"]["prev"] == api.base + "/customers?page%5Bsize%5D=5"
    third = api.get("/customers", params={"page[size]": 5, "page[number]": 3}).json()
    assert third["links"]["prev"] == api.base + "/customers?page%5Bsize%5D=5&page%5Bnumber%5D=2"


def test_following_next_visits_every_record_once(api: Any) -> None:
    total = int(api.get("/customers", headers={"X-Include": "totalCount"}).headers["X-Include-Total-Count"])
    seen: list[str] = []
    url: str | None = api.base + "/customers?page[size]=7&sort=id"
    while url:
        doc = api.get(url).json()
        seen.extend(d["id"] for d in doc["data"])
        url = doc["links"].get("next")
    assert len(seen) == total == len(set(seen))
    assert [int(s) for s in seen] == sorted(int(s) for s in seen)


def test_page_size_minus_one_returns_everything(api: Any) -> None:
    r = api.get("/customers", params={"page[size]": -1, "page[number]": 3}, headers={"X-Include": "totalCount"})
    doc = r.json()
    assert len(doc["data"]) == int(r.headers["X-Include-Total-Count"])
    assert "next" not in doc["links"]


def test_page_size_below_minus_one_is_400(api: Any) -> None:
    r = api.get("/customers", params={"page[size]": -2})
    assert r.status_code == 400
    assert r.json() == {"errors": [{"status": "400", "title": "filter constraint",
                                    "detail": "The value should be greater than or equals to -1.",
                                    "source": {"parameter": "page[size]"}}]}


def test_page_size_not_integer_is_400(api: Any) -> None:
    r = api.get("/customers", params={"page[size]": "ten"})
    assert r.status_code == 400
    assert r.json()["errors"][0]["detail"] == 'Expected integer value. Given "ten".'


def test_total_count_header(api: Any) -> None:
    r = api.get("/customergroups", headers={"X-Include": "totalCount"})
    assert r.headers["X-Include-Total-Count"] == "8"
    assert "X-Include-Total-Count" not in api.get("/customergroups").headers


def test_past_the_last_page_is_empty(api: Any) -> None:
    doc = api.get("/customergroups", params={"page[number]": 50}).json()
    assert doc["data"] == []
    assert "next" not in doc["links"]


def test_links_query_roundtrip(api: Any) -> None:
    doc = api.get("/orders", params={"filter[createdAt][gte]": "2020-01-01", "page[size]": 2}).json()
    query = dict(parse_qsl(urlsplit(doc["links"]["next"]).query))
    assert query == {"filter[createdAt][gte]": "2020-01-01", "page[size]": "2", "page[number]": "2"}


def test_keyset_paging_with_id_gt(api: Any) -> None:
    everything = [c["id"] for c in api.get("/customers", params={"page[size]": -1}).json()["data"]]
    seen: list[str] = []
    last = 0
    while True:
        page = api.get("/customers", params={"filter[id][gt]": last, "page[size]": 9, "sort": "id"}).json()["data"]
        if not page:
            break
        seen.extend(c["id"] for c in page)
        last = int(page[-1]["id"])
    assert seen == everything
