"""Base stream for the OroCommerce back-office JSON:API.

A stream is declared with one table of :class:`Field` objects (Oro attribute or relationship ->
column name -> JSON-schema type); the schema, the ``fields[<type>]`` sparse fieldset and the row
flattening are all derived from it.

Reading modes (see README "Incremental design"):

``seek``
    Server-side ``filter[updatedAt][gte]=<cursor>&sort=updatedAt,id``; each page is a fresh query
    from the last ``updatedAt`` seen (keyset, not ``page[number]`` offsets), so rows that change
    while the run pages cannot shift other rows out of view. Resumable (``is_sorted``).
``scan``
    Customer users / addresses where Oro rejects the ``updatedAt`` filter (documented 400): a
    keyset scan by id (``filter[id][gt]=<last id>&sort=id``) with the ``updatedAt`` comparison done
    client-side; the bookmark is capped at the server time when the run started.
``full`` / ``fingerprint``
    Small tables without a usable ``updatedAt`` (customer groups, tags): follow ``links.next``
    verbatim; ``fingerprint`` keeps a short hash per row in state and emits only new/changed rows.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar

import orjson
import requests
from oromc_common.dates import parse_http_date
from oromc_common.http import honour_env_ca_bundle, tls_failure
from oromc_common.oro import (
    OroOAuth2Authenticator,
    edge_error_message,
    format_oro_datetime,
    is_oro_error_document,
    jsonapi_headers,
    oro_error_message,
)
from oromc_common.retry import RetryPolicy, is_transient_status, no_jitter
from requests.adapters import HTTPAdapter
from singer_sdk import RESTStream
from singer_sdk import typing as th
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.helpers.types import Context, RequestFunc
from singer_sdk.pagination import BaseAPIPaginator
from singer_sdk.streams.rest import HTTPRequest, PageContext
from typing_extensions import override

from tap_orocommerce.idranges import IdRangeReader, ListQuery, doc_of

if TYPE_CHECKING:
    from tap_orocommerce.tap import TapOroCommerce

MODE_SEEK = "seek"
MODE_SCAN = "scan"
MODE_FULL = "full"
MODE_FINGERPRINT = "fingerprint"

IDS_AT_BOOKMARK = "ids_at_bookmark"
"""State key: ids already emitted whose ``updated_at`` equals the bookmark (avoids ``>=`` overlap)."""
MAX_IDS_AT_BOOKMARK = 2000


@dataclass(frozen=True)
class Field:
    """One column of a stream.

    ``source`` is the Oro attribute (``kind="attr"``), a to-one relationship (``"one"``, value is
    the related id) or a to-many relationship (``"many"``, list of ids). ``int_id`` converts
    relationship ids to integers (Oro ids are strings; numeric ids become integers).
    """

    source: str
    column: str
    jtype: th.JSONTypeHelper[Any]
    kind: str = "attr"
    int_id: bool = True


def attr(source: str, column: str, jtype: th.JSONTypeHelper[Any]) -> Field:
    """An attribute column."""
    return Field(source, column, jtype)


def one(source: str, column: str, *, int_id: bool = True) -> Field:
    """A to-one relationship column (related id)."""
    return Field(source, column, th.IntegerType() if int_id else th.StringType(), "one", int_id)


def many(source: str, column: str, *, int_id: bool = True) -> Field:
    """A to-many relationship column (list of related ids)."""
    item: th.JSONTypeHelper[Any] = th.IntegerType() if int_id else th.StringType()
    return Field(source, column, th.ArrayType(item), "many", int_id)


def _as_id(value: Any, *, int_id: bool) -> Any:
    if value is None:
        return None
    if int_id:
        try:
            return int(value)
        except (TypeError, ValueError):
            return None
    return str(value)


def server_now(response: requests.Response) -> str | None:
    """The server's clock from the ``Date`` header, in Oro's format (None if absent)."""
    when = parse_http_date(response.headers.get("Date"))
    return format_oro_datetime(when) if when is not None else None


def fingerprint(row: dict[str, Any]) -> str:
    """Short stable hash of a row (for change detection of tables without timestamps)."""
    return hashlib.blake2b(
        orjson.dumps(row, option=orjson.OPT_SORT_KEYS), digest_size=8
    ).hexdigest()


class OroPaginator(BaseAPIPaginator[Any]):
    """Asks the stream for the next page token (keyset cursor or ``links.next`` URL).

    The token is computed once per response (it updates the stream's tie bookkeeping), also
    when a page yields no new row: such a page does not end the listing while a token exists.
    """

    def __init__(self, stream: OroStream) -> None:
        super().__init__(None)
        self._stream = stream
        self._computed: tuple[requests.Response, Any] | None = None

    def _token(self, response: requests.Response) -> Any:
        if self._computed is None or self._computed[0] is not response:
            self._computed = (response, self._stream.next_page_token(response))
        return self._computed[1]

    @override
    def get_next(self, response: requests.Response) -> Any:
        return self._token(response)

    @override
    def continue_if_empty(self, response: requests.Response) -> bool:
        return self._token(response) is not None


class OroStream(RESTStream[Any]):
    """One OroCommerce JSON:API resource type."""

    resource: ClassVar[str] = ""
    """JSON:API type / URL segment, e.g. ``customerusers``."""
    columns: ClassVar[tuple[Field, ...]] = ()
    primary_keys: ClassVar[list[str]] = ["id"]
    default_mode: ClassVar[str] = MODE_SEEK
    optional: ClassVar[bool] = False
    """Optional resources are probed; when absent the stream is skipped with a log line."""
    extra_fields: ClassVar[tuple[str, ...]] = ()
    """Oro fields fetched (``fields[...]``) for internal use but not emitted."""
    # Rows are built by ``flatten`` from JSON values with exactly the schema's columns and JSON
    # types, so the SDK's per-record type conformance (the largest per-record cost) is skipped.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    @property
    def STATE_MSG_FREQUENCY(self) -> int:  # type: ignore[override]  # noqa: N802 - SDK name
        """Records between STATE messages (``state_every_records``; resumable streams)."""
        return int(self.config.get("state_every_records", 1000))

    def __init__(self, tap: TapOroCommerce) -> None:
        self.mode: str = self.default_mode
        self.skip_reason: str | None = None
        self.last_links_next: str | None = None
        self.server_start: str | None = None
        self._auth_failures = threading.local()  # 401s in a row, per thread (parallel reads)
        self._cursor: str | None = None
        self._seen: set[str] = set()
        self._page_first_t: str | None = None
        self._page_last_t: str | None = None
        self._page_last_id: Any = None
        self._tie_t: str | None = None
        self._page_count = 0
        self._scan_last_id: int | None = None
        self._fingerprints: dict[str, str] = {}
        self._disabled_columns: set[str] = set()
        self.oro_tap = tap
        super().__init__(
            tap=tap, name=self.name, schema=self.build_schema(), path="/" + self.resource
        )
        # one kept connection per request in flight (requests' default pool keeps 10)
        adapter = HTTPAdapter(pool_maxsize=tap.max_connections + 2)
        self.requests_session.mount("https://", adapter)
        self.requests_session.mount("http://", adapter)

    # -- declaration -------------------------------------------------------------------------

    @classmethod
    def build_schema(cls) -> dict[str, Any]:
        """JSON schema from the column table (``id`` is required)."""
        props = [th.Property("id", th.IntegerType(), required=True, description="Oro id.")]
        props += [th.Property(f.column, f.jtype) for f in cls.columns]
        return th.PropertiesList(*props).to_dict()

    @property
    @override
    def is_sorted(self) -> bool:
        return self.mode == MODE_SEEK

    @property
    @override
    def url_base(self) -> str:
        return self.oro_tap.api_url

    @property
    @override
    def authenticator(self) -> OroOAuth2Authenticator:
        return self.oro_tap.authenticator

    @property
    @override
    def requests_session(self) -> requests.Session:
        return honour_env_ca_bundle(super().requests_session)

    @property
    @override
    def timeout(self) -> float:  # type: ignore[override]  # requests takes float seconds
        return float(self.config.get("request_timeout", 60))

    @property
    @override
    def http_headers(self) -> dict[str, str]:
        headers = jsonapi_headers()
        headers["User-Agent"] = self.oro_tap.user_agent_string
        return headers

    @property
    def page_size(self) -> int:
        """``page[size]`` from config."""
        return int(self.config.get("page_size", 500))

    def sparse_fields(self) -> list[str]:
        """Oro field names to request with ``fields[<type>]``."""
        names = [f.source for f in self.columns if f.column not in self._disabled_columns]
        names += [n for n in self.extra_fields if n not in names]
        return names

    def disable_column(self, column: str) -> None:
        """Stop requesting a column (e.g. ``tags`` when tagging is off); it is emitted empty."""
        self._disabled_columns.add(column)

    # -- requests ----------------------------------------------------------------------------

    @override
    def get_new_paginator(self) -> OroPaginator:
        return OroPaginator(self)

    def base_params(self) -> dict[str, Any]:
        """Parameters every page carries."""
        return {
            f"fields[{self.resource}]": ",".join(self.sparse_fields()),
            "page[size]": self.page_size,
        }

    @override
    def get_http_request(self, *, page: PageContext[Any]) -> HTTPRequest:
        token = page.next_page_token
        url = self.url_base + "/" + self.resource
        if isinstance(token, str):  # links.next, followed verbatim
            if not token.startswith(self.url_base + "/"):
                msg = f"GET {self.resource}: links.next points outside the configured API; refusing it"
                raise FatalAPIError(msg)
            return HTTPRequest(url=token, headers=self.http_headers, params={})
        params = self.base_params()
        params.update(self.page_params(token, page.stream_context))
        return HTTPRequest(
            url=url, headers=self.http_headers, params=params, safe_query_chars="[],:"
        )

    def page_params(self, token: Any, context: Context | None) -> dict[str, Any]:
        """Filter/sort parameters for a keyset page (``token`` is None on the first page)."""
        if self.mode == MODE_SEEK:
            if isinstance(token, dict) and "tie" in token:
                return {
                    "filter[updatedAt]": token["tie"],
                    "filter[id][gt]": token["after"],
                    "sort": "id",
                }
            params: dict[str, Any] = {"sort": "updatedAt,id"}
            if isinstance(token, dict) and "gt" in token:
                params["filter[updatedAt][gt]"] = token["gt"]
            elif self._cursor:
                params["filter[updatedAt][gte]"] = self._cursor
            return params
        if self.mode == MODE_SCAN:
            params = {"sort": "id"}
            if self._scan_last_id is not None:
                params["filter[id][gt]"] = self._scan_last_id
            return params
        return {"sort": "id"}

    def next_page_token(self, response: requests.Response) -> Any:
        """Token for the next page, or None when the listing is exhausted."""
        has_more = self.last_links_next is not None
        if self.mode in {MODE_FULL, MODE_FINGERPRINT}:
            return self.last_links_next
        if self.mode == MODE_SCAN:
            return {"after": self._scan_last_id, "n": self._page_count} if has_more else None
        # seek mode
        if self._tie_t is not None:  # the page just read was a tie-drain page
            if has_more:
                return {"tie": self._tie_t, "after": self._page_last_id, "n": self._page_count}
            tie_t, self._tie_t = self._tie_t, None
            return {"gt": tie_t, "n": self._page_count}  # ties drained: strictly after them
        if not has_more:
            return None
        if self._page_first_t is not None and self._page_first_t == self._page_last_t:
            # A whole page of rows sharing one updatedAt: a ">=" query would return the same
            # page again, so drain that timestamp by id first.
            self._tie_t = self._page_last_t
            return {"tie": self._tie_t, "after": self._page_last_id, "n": self._page_count}
        return {"gte": self._cursor, "n": self._page_count}

    # -- responses ---------------------------------------------------------------------------

    @override
    def validate_response(self, response: requests.Response) -> None:
        status = response.status_code
        self.oro_tap.report.count_call(response.request.method or "GET", status)
        if status == HTTPStatus.UNAUTHORIZED:
            self._auth_failures.count = getattr(self._auth_failures, "count", 0) + 1
            if self._auth_failures.count > 1:
                msg = (
                    f"GET {self.resource} -> 401 even with a freshly issued token; "
                    "check the OAuth application and the API user's access."
                )
                raise FatalAPIError(msg)
            self.authenticator.invalidate(response.request)
            msg = f"GET {self.resource} -> 401 (token expired or revoked); refreshing the token"
            raise RetriableAPIError(msg, response)
        if is_transient_status(status):
            raise RetriableAPIError(self._message(response), response)
        if status == HTTPStatus.FORBIDDEN and not is_oro_error_document(response):
            raise RetriableAPIError(edge_error_message(response), response)  # a proxy/WAF
        if status >= HTTPStatus.BAD_REQUEST:
            raise FatalAPIError(self._message(response))
        self._auth_failures.count = 0
        try:
            doc = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            msg = f"GET {self.resource} -> {status} with a body that is not valid JSON (malformed page)"
            raise RetriableAPIError(msg, response) from exc
        if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
            msg = (
                f"GET {self.resource} -> {status} without a JSON:API 'data' array (malformed page)"
            )
            raise RetriableAPIError(msg, response)
        response._oro_doc = doc  # type: ignore[attr-defined]  # parsed once, used by parse_response
        if self.server_start is None:
            self.server_start = server_now(response)

    def _message(self, response: requests.Response) -> str:
        # names the resource from the URL path (no query string, so no filter values / PII)
        return oro_error_message(response, secrets=self.authenticator.secrets)

    def row_key(self, row: dict[str, Any]) -> str:
        """Primary key of a row as a string (for tie/fingerprint bookkeeping)."""
        return str(row["id"])

    def fetch(
        self,
        resource: str,
        params: dict[str, Any] | None = None,
        *,
        url: str | None = None,
        accept: tuple[int, ...] = (),
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        """One GET with this stream's auth, retries and validation; thread-safe (the id-range reads
        call it from the tap's pool). Each attempt holds one of the tap's ``max_connections``.

        Statuses in ``accept`` are returned instead of raising (used by capability probes).
        """

        def send() -> requests.Response:
            prepared = self.build_prepared_request(
                method="GET",
                url=url or f"{self.url_base}/{resource}",
                params=params or {},
                headers={**self.http_headers, **(headers or {})},
            )
            with self.oro_tap.connection_slots:
                response = self.requests_session.send(prepared, timeout=self.timeout)
            if response.status_code in accept:
                self.oro_tap.report.count_call("GET", response.status_code)
                return response
            self.validate_response(response)
            return response

        decorated = self.request_decorator(send)  # type: ignore[arg-type]
        return decorated()  # type: ignore[call-arg]

    @property
    def parallel(self) -> bool:
        """Whole listings are read by id ranges in parallel (``max_connections`` above 1)."""
        return self.oro_tap.max_connections > 1

    def id_range_reader(self) -> IdRangeReader:
        """Reads listings by id ranges on the tap's pool (``idranges``)."""
        return IdRangeReader(self.fetch, self.oro_tap.read_pool, self.url_base)

    def iter_resource(self, resource: str, fields: list[str]) -> Iterator[dict[str, Any]]:
        """Every resource object of ``resource``, in id order."""
        for _, item in self.read_lookups([(resource, fields)]):
            yield item

    def read_lookups(
        self, lookups: Sequence[tuple[str, list[str]]]
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(index of the lookup, resource object)`` for every object of each ``(resource,
        fields)``, lookup after lookup, each in id order. In parallel (``max_connections`` > 1) by id
        ranges, every lookup's pages through one window (``idranges``); else one page after the
        other, following ``links.next``."""
        queries = [
            ListQuery(resource, {f"fields[{resource}]": ",".join(fields), "page[size]": self.page_size})
            for resource, fields in lookups
        ]
        if self.parallel:
            for i, response in self.id_range_reader().pages(queries):
                for item in doc_of(response)["data"]:
                    yield i, item
            return
        for i, query in enumerate(queries):
            for item in self.iter_list(query.resource, {**query.params, "sort": "id"}):
                yield i, item

    def iter_list(self, resource: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every resource object of one list request, following ``links.next`` (which must stay
        under the configured API)."""
        for doc in self.iter_pages(resource, params):
            yield from doc["data"]

    def iter_pages(self, resource: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every page (the whole JSON:API document, ``included`` too) of one list request."""
        query: dict[str, Any] | None = params
        url: str | None = None
        while True:
            response = self.fetch(resource, query, url=url)
            doc = response._oro_doc  # type: ignore[attr-defined]
            yield doc
            links = doc.get("links")
            url = links.get("next") if isinstance(links, dict) else None
            if not url or not doc["data"]:
                return
            if not url.startswith(self.url_base + "/"):
                msg = f"GET {resource}: links.next points outside the configured API; refusing it"
                raise FatalAPIError(msg)
            query = None

    @override
    def parse_response(self, response: requests.Response) -> Iterable[dict[str, Any]]:
        doc: dict[str, Any] = response._oro_doc  # type: ignore[attr-defined]
        links = doc.get("links")
        self.last_links_next = links.get("next") if isinstance(links, dict) else None
        data: list[dict[str, Any]] = doc["data"]
        self._page_count += 1
        if data:
            self._page_first_t = _attr(data[0], "updatedAt")
            self._page_last_t = _attr(data[-1], "updatedAt")
            self._page_last_id = data[-1].get("id")
        else:
            self._page_first_t = self._page_last_t = self._page_last_id = None
        if self.mode == MODE_SCAN and data:
            try:
                self._scan_last_id = int(data[-1]["id"])
            except (KeyError, TypeError, ValueError):
                self._scan_last_id = None
        return self.rows(data)

    def rows(self, data: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Flatten resources into rows, applying the incremental filter of the current mode."""
        for resource in data:
            row = self.flatten(resource)
            if row is None:
                continue
            if self.keep(row):
                self.oro_tap.report.count(self.name, "read")
                yield row
            else:  # seek: a row re-read at the cursor timestamp; else: not changed since last run
                self.oro_tap.report.count(
                    self.name, "reread" if self.mode == MODE_SEEK else "unchanged"
                )

    def flatten(self, resource: dict[str, Any]) -> dict[str, Any] | None:
        """Resource object -> row; a resource without a usable id is rejected and reported."""
        raw_id = resource.get("id")
        try:
            row_id = int(raw_id)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            self.oro_tap.report.reject(
                self.name, raw_id, "invalid_id", f"{self.resource} item without a numeric id", "id"
            )
            return None
        attributes = resource.get("attributes") or {}
        rels = resource.get("relationships") or {}
        row: dict[str, Any] = {"id": row_id}
        for f in self.columns:
            if f.kind == "attr":
                row[f.column] = attributes.get(f.source)
                continue
            rel = rels.get(f.source)
            rdata = rel.get("data") if isinstance(rel, dict) else None
            if f.kind == "one":
                row[f.column] = (
                    _as_id(rdata.get("id"), int_id=f.int_id) if isinstance(rdata, dict) else None
                )
            else:
                ids = rdata if isinstance(rdata, list) else []
                row[f.column] = [
                    _as_id(d.get("id"), int_id=f.int_id) for d in ids if isinstance(d, dict)
                ]
        return row

    # -- incremental ------------------------------------------------------------------------

    def keep(self, row: dict[str, Any]) -> bool:
        """Whether a flattened row is emitted (incremental filter + tie bookkeeping)."""
        if self.mode == MODE_FINGERPRINT:
            digest = fingerprint(row)
            key = self.row_key(row)
            self._fingerprints[key] = digest
            return self._old_fingerprints.get(key) != digest
        if self.replication_key is None or self.mode == MODE_FULL:
            return True
        value = row.get(self.replication_key)
        if not isinstance(value, str):
            self.oro_tap.report.reject(
                self.name,
                row.get("id"),
                "missing_updated_at",
                "no updatedAt value",
                self.replication_key,
            )
            return False
        key = self.row_key(row)
        if self.mode == MODE_SEEK:
            cursor = self._cursor
            if cursor is not None and value == cursor:
                if key in self._seen:
                    return False
                self._seen.add(key)
                self._remember_id(key)
            elif cursor is None or value > cursor:
                self._cursor = value
                self._seen = {key}
                self._start_ids_list([key] if self._trust(value) else None)
            return True
        # scan: client-side comparison against the starting bookmark
        start = self._start_value
        if start is not None and (value < start or (value == start and key in self._start_ids)):
            return False
        self._track_scan_max(value, key)
        return True

    _seen_list: list[str] | None = None
    _start_value: str | None = None
    _start_ids: frozenset[str] = frozenset()
    _old_fingerprints: dict[str, str]
    _scan_max: str | None = None
    _scan_max_ids: set[str]

    def _track_scan_max(self, value: str, key: str) -> None:
        if self._scan_max is None or value > self._scan_max:
            self._scan_max = value
            self._scan_max_ids = {key}
        elif value == self._scan_max:
            self._scan_max_ids.add(key)

    def _start_ids_list(self, ids: list[str] | None) -> None:
        """New bookmark timestamp: start (or drop) the state's list of ids emitted at it."""
        self._seen_list = ids
        if ids is None:
            self.stream_state.pop(IDS_AT_BOOKMARK, None)
        else:
            self.stream_state[IDS_AT_BOOKMARK] = ids

    def _remember_id(self, key: str) -> None:
        """Another id emitted at the bookmark timestamp (O(1); the list is bounded)."""
        ids = self._seen_list
        if ids is None:
            return
        if len(ids) < MAX_IDS_AT_BOOKMARK:
            ids.append(key)
        else:  # too many ties to keep: fall back to the documented ">=" overlap
            self._start_ids_list(None)

    def _trust(self, value: str | None) -> bool:
        """An id set at ``value`` is complete only if that second had elapsed at run start."""
        start = self.oro_tap.run_started_at
        return value is not None and start is not None and value < start

    def prepare_sync(self) -> None:
        """Set up cursors from state before the first request (called by ``get_records``)."""
        self._page_count = 0
        self._tie_t = None
        self._scan_last_id = None
        self._scan_max = None
        self._scan_max_ids = set()
        self._fingerprints = {}
        state = self.stream_state
        self._old_fingerprints = dict(state.get("fingerprints") or {})
        start_ts = self.get_starting_timestamp(None) if self.replication_key else None
        start = format_oro_datetime(start_ts) if start_ts is not None else None
        saved_value = state.get("replication_key_value")
        saved_ids = state.get(IDS_AT_BOOKMARK) or []
        ids = frozenset(str(i) for i in saved_ids) if saved_value == start else frozenset()
        self._start_value = start
        self._start_ids = ids
        self._cursor = start
        self._seen = set(ids)
        if self.mode == MODE_SEEK:
            # the list in state always describes the bookmark the SDK will write next to it
            self._start_ids_list(sorted(ids) if (ids or self._trust(start)) else None)

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        if self.skip_reason:
            self.logger.warning("Stream '%s' skipped: %s", self.name, self.skip_reason)
            return
        self.prepare_sync()
        yield from super().get_records(context)
        yield from self.held_rows()
        self.finish_sync()

    @override
    def request_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """Scan mode with ``max_connections`` above 1: the id-range reader's pages, parsed here one
        after the other in id order (the same pages' rows, in the same order, as the serial keyset
        scan); every other case: the SDK's paginated requests."""
        if self.mode != MODE_SCAN or not self.parallel:
            yield from super().request_records(context)
            return
        query = ListQuery(self.resource, self.base_params())
        with self.get_http_request_counter() as request_counter:
            request_counter.with_context(context)
            for _, response in self.id_range_reader().pages([query], after=self._scan_last_id):
                request_counter.increment()
                yield from self.parse_response(response)

    def held_rows(self) -> Iterator[dict[str, Any]]:
        """Rows a stream held back across pages (e.g. for one lookup of many), emitted after the
        last page and before ``finish_sync``; none by default."""
        return iter(())

    def finish_sync(self) -> None:
        """Persist end-of-run bookkeeping (fingerprints, scan-mode id set)."""
        state = self.stream_state
        if self.mode == MODE_FINGERPRINT:
            state["fingerprints"] = self._fingerprints
        elif self.mode == MODE_SCAN:
            final = self._scan_max
            start = self.oro_tap.run_started_at
            if final is not None and start is not None and final >= start:
                final = start
            if final is not None and final == self._scan_max and self._trust(final):
                state[IDS_AT_BOOKMARK] = sorted(self._scan_max_ids)[:MAX_IDS_AT_BOOKMARK]
            elif final is not None:
                state.pop(IDS_AT_BOOKMARK, None)

    @override
    def get_replication_key_signpost(self, context: Context | None = None) -> Any:
        # First hook of ``Stream.sync`` (before state is touched): make sure the tap's probes ran.
        self.oro_tap.ensure_prepared()
        # Unsorted (scan) streams: the bookmark never moves past the server time at run start,
        # so a row changed while the scan ran is read again next run.
        if self.replication_key is None:
            return None
        return self.oro_tap.run_started_at

    @override
    def post_process(
        self, row: dict[str, Any], context: Context | None = None
    ) -> dict[str, Any] | None:
        return row

    # -- retries ----------------------------------------------------------------------------

    @override
    def request_decorator(self, func: RequestFunc) -> RequestFunc:
        """The SDK's retries, except for TLS failures retrying cannot fix (stop with the reason)."""

        def no_lasting_tls_failure(*args: Any, **kwargs: Any) -> requests.Response:
            try:
                return func(*args, **kwargs)
            except requests.exceptions.SSLError as exc:
                message = tls_failure(exc, self.url_base)
                if message is None:
                    raise
                raise FatalAPIError(f"GET {self.resource}: {message}") from exc

        return super().request_decorator(no_lasting_tls_failure)

    @property
    def retry_policy(self) -> RetryPolicy:
        """The shared retry policy with this tap's settings (the SDK's backoff_* hooks use it); its
        computed waits are spread by x1.0-1.2 so parallel readers do not retry in step."""
        return RetryPolicy(
            int(self.config.get("max_tries", 9)),
            float(self.config.get("backoff_factor_seconds", 0.5)),
            float(self.config.get("backoff_max_seconds", 60.0)),
            jitter=_spread,
        )

    @override
    def backoff_wait_generator(self) -> Generator[float, Any, None]:
        """The policy per failed try: the response's ``Retry-After`` as sent, else a spread wait."""
        return self.retry_policy.waits(jittered=True)

    @override
    def backoff_max_tries(self) -> int:
        return self.retry_policy.max_tries

    @override
    def backoff_jitter(self, value: float) -> float:
        return no_jitter(value)  # the policy spreads its computed waits, never a Retry-After

    @override
    def backoff_handler(self, details: Any) -> None:
        exc = details.get("exception")
        response = getattr(exc, "response", None)
        if response is None:
            self.oro_tap.report.count_call("GET", "error")
        what = str(exc) if isinstance(exc, RetriableAPIError) else type(exc).__name__
        self.logger.warning(
            "Retrying GET %s in %.1fs (attempt %d): %s",
            self.resource,
            details.get("wait", 0.0),
            details.get("tries", 0),
            what,
        )


def _attr(resource: dict[str, Any], name: str) -> str | None:
    value = (resource.get("attributes") or {}).get(name)
    return value if isinstance(value, str) else None


def _spread(wait: float) -> float:
    """A computed retry wait spread by x1.0-1.2 (never shorter than the policy's)."""
    return wait * random.uniform(1.0, 1.2)


__all__ = [
    "MODE_FINGERPRINT",
    "MODE_FULL",
    "MODE_SCAN",
    "MODE_SEEK",
    "Field",
    "OroStream",
    "attr",
    "many",
    "one",
]
