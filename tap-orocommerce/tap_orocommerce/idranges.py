"""Reading whole Oro listings by id ranges on a bounded pool, pages handed on in id order.

Oro publishes no connection limit, but one page costs a round trip plus time per row (about 0.4 s
for 500 rows), so a listing read one page after the other waits mostly on the network. With
``max_connections`` above 1 a listing sorted by id is read like this (README "Reading in parallel"):

1. the first page (``sort=id``, ``filter[id][gt]=<after>`` when resuming): it is handed on first,
   and a listing that fits on it costs nothing more;
2. else one ``sort=-id&page[size]=1&filter[id][gt]=<last id of page 1>`` request with
   ``X-Include: totalCount``: the highest id and how many rows lie above the first page, hence the
   id density;
3. the ids above the first page are cut into ranges of about one page each
   (``filter[id][gt]=a&filter[id][lte]=b``, Oro ANDs the two operators); the last range is open-ended
   (``filter[id][gt]=a`` only), so rows created while the listing is read are read too;
4. the ranges are read on the tap's :class:`~oromc_common.fanout.BoundedPool` (its ordered
   :meth:`~oromc_common.fanout.BoundedPool.stream`, a bounded number ahead of the consumer); a range
   that holds more than a page (ids denser than estimated) is read on by id (keyset) inside it.

Every page comes back as its ``requests.Response`` (the parsed document in ``_oro_doc``), in id
order, so a consumer sees exactly the rows of a serial keyset scan, page by page: the scan streams'
per-page bookkeeping (consent, deletions, state) is unchanged. Several listings can be read at once
(:meth:`IdRangeReader.pages`): their first pages together, then all their ranges through one window,
so one listing's last pages overlap the next one's first. A listing whose ids are not integers is
followed through ``links.next`` one page after the other.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple, cast

import requests
from oromc_common.fanout import BoundedPool
from singer_sdk.exceptions import FatalAPIError

TOTAL_COUNT_HEADER = "X-Include-Total-Count"
#: Ranges aim this many standard deviations of the row count below a full page, so that a range of
#: ids with some gaps rarely overflows into a second (serial) request.
OVERFLOW_MARGIN = 3.0


class ListQuery(NamedTuple):
    """One listing: its resource and the parameters every page carries (``fields``, ``include``,
    ``page[size]``, filters other than on ``id``); ``sort`` and the id filters are the reader's."""

    resource: str
    params: dict[str, Any]


@dataclass(frozen=True)
class IdRange:
    """Ids ``after < id <= upto``; ``upto`` None: no upper end."""

    after: int
    upto: int | None


Fetch = Callable[..., requests.Response]
"""``fetch(resource, params, url=None, headers=None)``: one GET with retries and validation."""


def range_width(page_size: int, rows: int, span: int) -> int:
    """Ids per range for ``rows`` rows spread over ``span`` ids: about one page of rows, less a margin
    for uneven gaps (none when the ids are dense)."""
    if rows <= 0 or span <= 0:
        return max(1, page_size)
    density = min(1.0, rows / span)
    target = page_size - OVERFLOW_MARGIN * math.sqrt(page_size * (1.0 - density))
    return max(1, math.floor(max(1.0, target) / density))


def plan_ranges(after: int, top: int, width: int) -> Iterator[IdRange]:
    """Ranges of ``width`` ids from ``after`` up to ``top``; the last one is open-ended."""
    low = after
    while low + width < top:
        yield IdRange(low, low + width)
        low += width
    yield IdRange(low, None)


def doc_of(response: requests.Response) -> dict[str, Any]:
    """The validated JSON:API document of a page (parsed once by ``validate_response``)."""
    doc: dict[str, Any] = response._oro_doc  # type: ignore[attr-defined]
    return doc


def _next_link(doc: dict[str, Any]) -> str | None:
    links = doc.get("links")
    link = links.get("next") if isinstance(links, dict) else None
    return link if isinstance(link, str) and link and doc["data"] else None


def _int_ids(doc: dict[str, Any]) -> list[int] | None:
    try:
        return [int(item["id"]) for item in doc["data"]]
    except (KeyError, TypeError, ValueError):
        return None


class IdRangeReader:
    """Reads listings by id ranges on ``pool`` (see the module docstring)."""

    def __init__(self, fetch: Fetch, pool: BoundedPool, api_url: str) -> None:
        self.fetch = fetch
        self.pool = pool
        self.api_url = api_url

    def pages(
        self, queries: Sequence[ListQuery], after: int | None = None
    ) -> Iterator[tuple[int, requests.Response]]:
        """``(index of the query, page)`` for every page of every query, query after query, each in
        id order (ids above ``after`` only)."""
        stop = threading.Event()
        try:
            # no error is kept (``keep``): the results are the pages
            responses = cast(
                "list[requests.Response]",
                self.pool.run([partial(self._page, q, after, None) for q in queries]),
            )
            ranged = [
                i for i, r in enumerate(responses)
                if _next_link(doc_of(r)) and _int_ids(doc_of(r))
            ]  # fmt: skip
            tops = cast(
                "list[tuple[int, int] | None]",
                self.pool.run([partial(self._top, queries[i], responses[i]) for i in ranged]),
            )
            plans: dict[int, Iterator[IdRange]] = {
                i: self._plan(queries[i], responses[i], after, top)
                for i, top in zip(ranged, tops, strict=True)
            }
            batch: list[int] = []
            for i, query in enumerate(queries):
                if i in plans or not _next_link(doc_of(responses[i])):
                    batch.append(i)
                    continue
                yield from self._stream(batch, responses, plans, queries, stop)
                batch = []
                yield i, responses[i]
                yield from ((i, r) for r in self._follow(query, responses[i]))
            yield from self._stream(batch, responses, plans, queries, stop)
        finally:
            stop.set()  # range reads still running stop at their next page

    # -- steps ---------------------------------------------------------------------------------

    def _page(
        self, query: ListQuery, after: int | None, upto: int | None
    ) -> requests.Response:
        params = {**query.params, "sort": "id"}
        if after is not None:
            params["filter[id][gt]"] = after
        if upto is not None:
            params["filter[id][lte]"] = upto
        return self.fetch(query.resource, params)

    def _top(self, query: ListQuery, first: requests.Response) -> tuple[int, int] | None:
        """(highest id, rows above the first page) — one row sorted by descending id; None when no
        row is left above the first page (deleted meanwhile)."""
        ids = _int_ids(doc_of(first)) or [0]
        params: dict[str, Any] = {
            key: value for key, value in query.params.items() if key.startswith("filter[")
        }
        fields = query.params.get(f"fields[{query.resource}]")
        if fields:
            params[f"fields[{query.resource}]"] = fields
        params.update({"page[size]": 1, "sort": "-id", "filter[id][gt]": ids[-1]})
        response = self.fetch(query.resource, params, headers={"X-Include": "totalCount"})
        top = _int_ids(doc_of(response))
        if not top:
            return None
        try:
            count = int(response.headers.get(TOTAL_COUNT_HEADER, ""))
        except ValueError:
            count = 0
        return top[0], count

    def _plan(
        self,
        query: ListQuery,
        first: requests.Response,
        after: int | None,
        top: tuple[int, int] | None,
    ) -> Iterator[IdRange]:
        ids = _int_ids(doc_of(first)) or [0]
        last = ids[-1]
        if top is None:
            return iter((IdRange(last, None),))
        highest, count = top
        page_size = int(query.params.get("page[size]") or len(ids))
        if count > 0:
            width = range_width(page_size, count, highest - last)
        else:  # no count header: the first page's density
            start = after if after is not None else ids[0] - 1
            width = range_width(page_size, len(ids), last - start)
        return plan_ranges(last, highest, width)

    def _range(self, query: ListQuery, span: IdRange, stop: threading.Event) -> list[requests.Response]:
        """Every page of one range (read on by id when it holds more than a page)."""
        pages: list[requests.Response] = []
        after = span.after
        while not stop.is_set():
            response = self._page(query, after, span.upto)
            pages.append(response)
            doc = doc_of(response)
            ids = _int_ids(doc)
            if not _next_link(doc) or not ids:
                break
            after = ids[-1]
        return pages

    def _stream(
        self,
        indexes: list[int],
        firsts: list[requests.Response],
        plans: dict[int, Iterator[IdRange]],
        queries: Sequence[ListQuery],
        stop: threading.Event,
    ) -> Iterator[tuple[int, requests.Response]]:
        def calls() -> Iterator[Callable[[], tuple[int, list[requests.Response]]]]:
            for i in indexes:
                yield partial(_ready, i, [firsts[i]])
                for span in plans.get(i, ()):
                    yield partial(_tagged, i, partial(self._range, queries[i], span, stop))

        for i, pages in self.pool.stream(calls()):
            for page in pages:
                yield i, page

    def _follow(self, query: ListQuery, first: requests.Response) -> Iterator[requests.Response]:
        """The pages after ``first`` through ``links.next`` (ids that are not integers)."""
        link = _next_link(doc_of(first))
        while link:
            if not link.startswith(self.api_url + "/"):
                msg = f"GET {query.resource}: links.next points outside the configured API; refusing it"
                raise FatalAPIError(msg)
            response = self.fetch(query.resource, None, url=link)
            yield response
            link = _next_link(doc_of(response))


def _ready(index: int, pages: list[requests.Response]) -> tuple[int, list[requests.Response]]:
    return index, pages


def _tagged(
    index: int, read: Callable[[], list[requests.Response]]
) -> tuple[int, list[requests.Response]]:
    return index, read()


__all__ = ["IdRange", "IdRangeReader", "ListQuery", "plan_ranges", "range_width"]
