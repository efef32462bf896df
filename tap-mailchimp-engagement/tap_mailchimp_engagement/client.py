"""Base streams and the run-wide Mailchimp context shared by every stream of one tap run.

* :class:`MailchimpRESTStream`: the streams that read one collection (per audience or workflow) are SDK
  ``RESTStream`` s made of SDK overrides only (:class:`MailchimpPaginator`, the SDK's authenticators and
  backoff hooks with the :class:`~oromc_common.retry.RetryPolicy` of
  :class:`~oromc_common.mailchimp.MailchimpClient`, partitions), each attempt through
  :class:`GovernedAdapter` (a :meth:`~oromc_common.mailchimp.MailchimpClient.attempt`: the account's
  connection budget).
* :class:`MailchimpStream`: the heavy readers (members' keyset windows, email activity through pages or
  ``/batches``, reports, sent-to, orders) read through :class:`MailchimpContext`, whose
  :meth:`MailchimpContext.paginate` fetches the pages after the first concurrently (it pays: see there)
  through :meth:`oromc_common.fanout.BoundedPool.stream`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import backoff
import requests
from oromc_common.dates import parse_http_date, parse_utc
from oromc_common.fanout import BoundedPool
from oromc_common.mailchimp import (
    MailchimpClient,
    PermanentMailchimpError,
    RetryableMailchimpError,
    connection_budget,
    log_retry,
    response_error,
)
from oromc_common.report import RunReport
from oromc_common.retry import no_jitter
from oromc_common.sdk_seams import emit_stream_state, tap_of
from requests.adapters import HTTPAdapter
from singer_sdk import Tap
from singer_sdk.authenticators import (
    APIAuthenticatorBase,
    BasicAuthenticator,
    BearerTokenAuthenticator,
)
from singer_sdk.helpers.jsonpath import extract_jsonpath
from singer_sdk.pagination import OffsetPaginator
from singer_sdk.streams import RESTStream, Stream
from typing_extensions import override

from tap_mailchimp_engagement import schemas

if TYPE_CHECKING:
    from backoff.types import Details
    from singer_sdk.helpers.types import Context

PAGE_SIZE = 1000
USER_AGENT = "tap-mailchimp-engagement"


# -- timestamps ------------------------------------------------------------------------------


def format_ts(value: datetime) -> str:
    """Mailchimp's filter format: ``2026-11-28T05:22:45+00:00`` (no fractions)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def blank_timestamps_to_null(record: dict[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """Replace ``""`` by None wherever the schema says ``format: date-time`` (recursively, in place)."""
    props = schema.get("properties") or {}
    for name, prop in props.items():
        if name not in record:
            continue
        value = record[name]
        if value == "" and _is_nullable_datetime(prop):
            record[name] = None
        elif isinstance(value, dict) and "properties" in prop:
            blank_timestamps_to_null(value, prop)
        elif isinstance(value, list) and isinstance(prop.get("items"), dict):
            items = prop["items"]
            if "properties" in items:
                for item in value:
                    if isinstance(item, dict):
                        blank_timestamps_to_null(item, items)
    return record


def split_merge_fields(record: dict[str, Any], declared: set[str]) -> dict[str, Any]:
    """Keep the ``declared`` tags in ``merge_fields``, move the others to ``merge_fields_other`` (in place).

    Mailchimp's empty ADDRESS (``""``) becomes null, as the schema declares ADDRESS an object.
    """
    merge = record.get("merge_fields")
    if not isinstance(merge, dict):
        return record
    known = {k: v for k, v in merge.items() if k in declared}
    if known.get(schemas.MERGE_ADDRESS) == "":
        known[schemas.MERGE_ADDRESS] = None
    record["merge_fields"] = known
    record[schemas.OTHER_MERGE_FIELDS] = {k: v for k, v in merge.items() if k not in declared} or None
    return record


def configured_merge_tags(config: Mapping[str, Any]) -> tuple[str, ...]:
    """Merge tags declared in the schemas besides the standard ones: the identity field and ``merge_tags``."""
    identity = config.get("identity_merge_field")
    identity = schemas.DEFAULT_IDENTITY_MERGE_FIELD if identity is None else str(identity)
    return tuple(t for t in (identity, *(config.get("merge_tags") or [])) if t)


def _is_nullable_datetime(prop: Mapping[str, Any]) -> bool:
    if prop.get("format") == "date-time":
        return True
    return any(
        isinstance(sub, dict) and sub.get("format") == "date-time" for sub in prop.get("anyOf", [])
    )


def fingerprint(record: Mapping[str, Any]) -> str:
    """Short, stable content hash of a record (state only keeps these, never the data)."""
    blob = json.dumps(record, sort_keys=True, default=str, separators=(",", ":")).encode("utf-8")
    return hashlib.sha1(blob, usedforsecurity=False).hexdigest()[:12]


# -- run context -----------------------------------------------------------------------------


class MailchimpContext:
    """Everything the streams of one run share: the governed client, report, clock and caches."""

    def __init__(
        self,
        config: Mapping[str, Any],
        report: RunReport,
        read_collection: Callable[[str], Iterable[dict[str, Any]]] | None = None,
    ) -> None:
        """Create the shared client from the tap settings.

        ``read_collection(stream_name)`` reads every row of a REST stream's collection (the tap passes
        its streams' SDK request path); the audiences, campaigns and automations are read through it
        once per run and shared by every stream that needs them.
        """
        self.config = config
        self.report = report
        self._read_collection = read_collection
        self.max_connections = int(config.get("max_connections") or 8)
        self.max_tries = int(config.get("max_tries") or 6)
        self.backoff_factor = float(config.get("backoff_factor_seconds") or 1.0)
        self.client = MailchimpClient(
            api_key=config.get("api_key"),
            access_token=config.get("access_token"),
            api_url=config.get("api_url"),
            max_connections=self.max_connections,
            timeout=(10.0, float(config.get("request_timeout") or 120)),
            max_tries=self.max_tries,
            backoff_factor=self.backoff_factor,
            on_call=report.count_call,
            user_agent="tap-mailchimp-engagement",
            connection_budget=connection_budget(config),
        )
        self.page_size = max(1, min(int(config.get("page_size") or PAGE_SIZE), PAGE_SIZE))
        merge = config.get("identity_merge_field")
        self.identity_merge_field = "OROID" if merge is None else str(merge)
        self._pool: BoundedPool | None = None
        self._session: requests.Session | None = None
        self._now: datetime | None = None
        self._date_seen: tuple[datetime, float] | None = None
        self._lists: list[dict[str, Any]] | None = None
        self._campaigns: list[dict[str, Any]] | None = None
        self._automations: list[dict[str, Any]] | None = None
        self._member_runs: dict[str, dict[str, Any]] = {}

    # -- pool / clock ------------------------------------------------------------------------
    @property
    def workers(self) -> int:
        """Number of simultaneous requests this run may make (the governor enforces it too)."""
        return max(1, min(self.max_connections, self.client.governor.limit))

    @property
    def pool(self) -> BoundedPool:
        """A thread pool sized to the connection limit (its ``stream`` keeps twice that pending)."""
        if self._pool is None:
            self._pool = BoundedPool(self.workers, name="mc-tap")
        return self._pool

    def now(self) -> datetime:
        """The run cut-off: the server's time, from the ``Date`` header of an API response.

        Member ``last_changed`` values are stamped by the server, so windows and bookmarks must be
        on the server's clock: with this machine's clock ahead of the server's, a bookmark taken
        from the local clock would lie in the server's future and skip every later change.
        The ``Date`` of the last REST-stream response (:meth:`note_server_date`) plus the time
        elapsed since (monotonic clock) when there was one, else the ``Date`` of a ``GET /ping``;
        both are whole seconds cut down, so never after the server's time. The local clock is only
        the fallback when the server sends no usable ``Date``.
        Fixed at first use, so every window of the run ends at the same instant.
        """
        if self._now is None:
            server = self._seen_server_time() or self._server_date()
            self._now = server or datetime.now(UTC).replace(microsecond=0)
        return self._now

    def note_server_date(self, response: requests.Response) -> None:
        """Keep the ``Date`` of an API response for :meth:`now` (until the cut-off is fixed)."""
        if self._now is None:
            date = _date_header(response)
            if date is not None:
                self._date_seen = (date, time.monotonic())

    def _seen_server_time(self) -> datetime | None:
        if self._date_seen is None:
            return None
        date, at = self._date_seen
        return (date + timedelta(seconds=time.monotonic() - at)).replace(microsecond=0)

    def _server_date(self) -> datetime | None:
        url = f"{self.client.api_url}/ping"
        try:
            resp = self.client.attempt(
                "GET", "/ping", url, lambda: self.client.session.get(url, timeout=self.client.timeout)
            )
        except Exception:  # the clock is best effort; the local clock is the fallback
            return None
        return _date_header(resp)

    # -- paging ------------------------------------------------------------------------------
    def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """GET one document."""
        body = self.client.get(path, params)
        return body if isinstance(body, dict) else {}

    def page(
        self, path: str, items_key: str, offset: int, params: Mapping[str, Any] | None = None
    ) -> tuple[list[dict[str, Any]], int | None]:
        """One page of a collection: ``(items, total_items)``."""
        body = self.client.page(path, params, offset, self.page_size)
        total = body.get("total_items")
        return list(body.get(items_key) or []), (total if isinstance(total, int) else None)

    def paginate(
        self, path: str, items_key: str, params: Mapping[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every item of a collection: first page, then the remaining pages concurrently, in order
        (:meth:`MailchimpClient.paginate` on this run's pool).

        Kept for the heavy readers because it pays: ``GET /reports/{id}/sent-to`` of a 4,550-recipient
        campaign in 19 pages of 250 took 1.76 s this way against 8.35 s through the SDK's sequential
        RESTStream pages; in 5 pages of 1,000 (the default) 1.87 s against 4.36 s (medians of 3,
        8 connections, sandbox with ``latency=realistic``, loaded 2-core machine, so noisy; an A/B of this
        pager against a MailchimpRESTStream on the same route, 2026-12-06).
        The small collections (audiences, campaigns, merge fields, ...) are one page: RESTStream there.
        """
        return self.client.paginate(path, items_key, params, self.page_size, pool=self.pool)

    def count(self, path: str, items_key: str, params: Mapping[str, Any] | None = None) -> int:
        """``total_items`` of a collection (one cheap call)."""
        body = self.get(path, {**(params or {}), "count": 1, "fields": "total_items"})
        total = body.get("total_items")
        return total if isinstance(total, int) else 0

    # -- shared caches -----------------------------------------------------------------------
    def read_collection(self, stream_name: str) -> list[dict[str, Any]]:
        """Every row of the collection a REST stream reads (through the stream's SDK request path)."""
        if self._read_collection is None:
            msg = "this context was created without a collection reader"
            raise RuntimeError(msg)
        return list(self._read_collection(stream_name))

    def lists(self) -> list[dict[str, Any]]:
        """The audiences of this run (all, or the configured ``list_ids``)."""
        if self._lists is None:
            wanted = set(self.config.get("list_ids") or [])
            rows = self.read_collection("lists")
            self._lists = [row for row in rows if not wanted or row.get("id") in wanted]
        return self._lists

    def campaigns(self) -> list[dict[str, Any]]:
        """Every campaign of the account (of the selected audiences), oldest first.

        The audiences are read only when ``list_ids`` selects some (an email-activity run reads
        no audience).
        """
        if self._campaigns is None:
            rows = self.read_collection("campaigns")
            if self.config.get("list_ids"):
                list_ids = {row["id"] for row in self.lists()}
                rows = [row for row in rows if (row.get("recipients") or {}).get("list_id") in list_ids]
            self._campaigns = rows
        return self._campaigns

    def automations(self) -> list[dict[str, Any]]:
        """Every classic automation workflow (read once per run)."""
        if self._automations is None:
            rows = self.read_collection("automations")
            self._automations = [
                row
                for row in rows
                if not self.config.get("list_ids")
                or (row.get("recipients") or {}).get("list_id") in set(self.config["list_ids"])
            ]
        return self._automations

    def engagement_campaigns(self, polled: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Sent campaigns whose engagement is read this run.

        A campaign is read while its ``send_time`` is inside the engagement window; a campaign never read
        before (no entry in ``polled``) is read once even when older (backfill), unless it was sent before
        ``start_date``. The email of a running automation (``type`` automation, ``status`` sending) keeps
        sending to new recipients, so it is read on every run whatever its first ``send_time``.
        """
        window = timedelta(days=float(self.config.get("engagement_window_days") or 30))
        campaigns = self.campaigns()  # first: its response's Date can give the cut-off (no ping)
        horizon = self.now() - window
        start = parse_utc(self.config.get("start_date"))
        chosen = []
        for row in campaigns:
            if row.get("status") not in {"sent", "sending"}:
                continue
            sent = parse_utc(row.get("send_time"))
            if sent is None or (start is not None and sent < start):
                continue
            running = row.get("type") == "automation" and row.get("status") == "sending"
            if running or sent >= horizon or row["id"] not in polled:
                chosen.append(row)
        return chosen

    def member_run(self, list_id: str) -> dict[str, Any]:
        """Facts the members scan of this run found for an audience (cut-off, new members)."""
        return self._member_runs.setdefault(list_id, {})

    # -- the REST streams' HTTP -------------------------------------------------------------
    @property
    def session(self) -> requests.Session:
        """The session of the REST streams: every attempt holds a governor slot and is counted."""
        if self._session is None:
            session = requests.Session()
            session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
            # The SDK sends prepared requests (Session.send), which skips the environment's
            # REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE: take it here, as Session.request would.
            env = session.merge_environment_settings(self.client.api_url, {}, None, None, None)
            session.verify = env["verify"]
            adapter = GovernedAdapter(self.client, on_response=self.note_server_date)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            self._session = session
        return self._session

    @property
    def secrets(self) -> tuple[str | None, ...]:
        """Values redacted from error messages."""
        return (self.config.get("api_key"), self.config.get("access_token"))

    @functools.cached_property
    def authenticator(self) -> APIAuthenticatorBase:
        """The SDK authenticator for the configured credential: HTTP Basic for an API key, else Bearer."""
        api_key = self.config.get("api_key")
        if api_key:
            return BasicAuthenticator(username="oromc", password=str(api_key).strip())
        return BearerTokenAuthenticator(token=str(self.config.get("access_token")))

    def close(self) -> None:
        """Release threads and connections."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        if self._session is not None:
            self._session.close()
            self._session = None
        self.client.close()


def _date_header(response: requests.Response) -> datetime | None:
    """A response's ``Date`` header as an aware UTC datetime (None when absent or unreadable)."""
    when = parse_http_date(response.headers.get("Date"))
    return when.astimezone(UTC) if when else None


def api_path(api_url: str, url: str) -> str:
    """The path of ``url`` below the API root ``api_url`` (``/lists/abc/members``), for error messages."""
    root = urlsplit(api_url).path.rstrip("/")
    path = urlsplit(url).path
    return path[len(root) :] if root and path.startswith(root) else path


class GovernedAdapter(HTTPAdapter):
    """The REST streams' transport: each attempt is one :meth:`~oromc_common.mailchimp.MailchimpClient.attempt`
    of the run's client (a slot of the account's connection governor, counted in the run report, a
    connection failure raised as the project's :class:`~oromc_common.mailchimp.MailchimpError`:
    retryable, or fatal for a lasting TLS failure).
    """

    def __init__(
        self, client: MailchimpClient, on_response: Callable[[requests.Response], None] | None = None
    ) -> None:
        """Pool sized to the governor, no urllib3 retries (retrying is the stream's backoff);
        ``on_response`` sees every response (e.g. :meth:`MailchimpContext.note_server_date`)."""
        super().__init__(pool_connections=2, pool_maxsize=client.governor.limit, max_retries=0)
        self._client = client
        self._on_response = on_response

    @override
    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        # The client's (connect, read) timeout: the SDK's single number would also be the connect timeout.
        method = request.method or "GET"
        url = request.url or ""
        timeout = self._client.timeout
        send = functools.partial(
            super().send, request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies
        )
        response: requests.Response = self._client.attempt(method, api_path(self._client.api_url, url), url, send)
        if self._on_response is not None:
            self._on_response(response)
        return response


class MailchimpPaginator(OffsetPaginator):
    """Mailchimp's ``count``/``offset`` pages: the last page is short or reaches ``total_items``."""

    def __init__(self, page_size: int, items_key: str, start: int = 0) -> None:
        """Start at offset ``start`` (0: the first page)."""
        super().__init__(start, page_size)
        self._items_key = items_key

    @override
    def has_more(self, response: requests.Response) -> bool:
        body = response.json()
        if not isinstance(body, dict):
            return False
        items = body.get(self._items_key) or []
        if len(items) < self.page_size:
            return False
        total = body.get("total_items")
        return not (isinstance(total, int) and self.current_value + len(items) >= total)


# -- base stream -----------------------------------------------------------------------------


class MailchimpStream(Stream):
    """Base of every stream: shared context, ``""`` timestamps -> null, state helpers."""

    #: Keys copied into the fingerprint key of change-detected streams.
    primary_keys: ClassVar[list[str]] = []

    def __init__(self, tap: Any) -> None:
        """Bind to the tap; ``merge_fields`` (where present) also declares the configured merge tags."""
        super().__init__(tap)
        # Streams name their schema as a class attribute; this instance's copy shadows it.
        vars(self)["schema"] = schemas.with_merge_tags(self.schema, configured_merge_tags(tap.config))
        self._declared_merge_tags = schemas.declared_merge_tags(self.schema)

    @property
    def tap(self) -> Tap:
        """The tap this stream belongs to."""
        return tap_of(self)

    @property
    def mc(self) -> MailchimpContext:
        """The run-wide Mailchimp context of the tap."""
        return self.tap.mailchimp  # type: ignore[attr-defined]

    @property
    def report(self) -> RunReport:
        """The run report."""
        return self.mc.report

    @override
    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        row.pop("_links", None)
        blank_timestamps_to_null(row, self.schema)
        if self._declared_merge_tags:
            split_merge_fields(row, self._declared_merge_tags)
        return row

    @property
    @override
    def emit_activate_version_messages(self) -> bool:
        """Never: change-detected streams emit only changed rows, so a version switch would delete the rest."""
        return False

    @override
    def log_sync_costs(self) -> None:
        super().log_sync_costs()
        names = [name for name, stream in self.tap.streams.items() if stream.selected]
        if names and names[-1] == self.name:
            self.tap.finish_run()  # type: ignore[attr-defined]

    # -- state ---------------------------------------------------------------------------------
    def bucket(self, name: str) -> dict[str, Any]:
        """A named dict inside this stream's state (created on first use)."""
        state = self.stream_state
        value = state.get(name)
        if not isinstance(value, dict):
            value = {}
            state[name] = value
        return value

    def flush_state(self) -> None:
        """Emit a STATE message now (after every record written before it)."""
        emit_stream_state(self)

    def warn_missing(self, what: str, exc: PermanentMailchimpError) -> None:
        """Log a skipped resource (e.g. a campaign deleted mid-run) without personal data."""
        self.logger.warning("Skipping %s: %s %s (%s)", what, exc.status, exc.title or exc.reason, exc.path)
        self.report.count(self.name, "skipped_not_found")


class ChangeDetectedStream(MailchimpStream):
    """A small full-table stream that emits a record only when its content changed since last emitted.

    State keeps one 12-hex fingerprint per primary key (``fingerprints``), never the data itself.
    """

    @override
    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        row = super().post_process(row, context) or row
        key = "|".join(str(row.get(k)) for k in self.primary_keys)
        prints = self.bucket("fingerprints")
        digest = fingerprint(row)
        self.report.count(self.name, "read")
        if prints.get(key) == digest:
            self.report.count(self.name, "unchanged")
            return None
        prints[key] = digest
        self.report.count(self.name, "emitted")
        return row


class MailchimpRESTStream(MailchimpStream, RESTStream[int]):
    """Base of the streams that read one Mailchimp collection (per partition): SDK overrides only.

    Paging is :class:`MailchimpPaginator` (``count``/``offset``/``total_items``), auth the SDK's
    authenticator, retries the SDK's backoff hooks with the policy of
    :class:`~oromc_common.mailchimp.MailchimpClient` (the same errors retried, the same waits and tries),
    and every attempt goes through :class:`GovernedAdapter` (the account's connection budget).
    A partitioned stream (``path`` with ``{key}``) adds its partition's keys to each record; its state
    stays at the stream level (``state_partitioning_keys`` empty), as the rows are change-detected.
    """

    #: Key of the collection's array in the response body (e.g. ``lists``).
    items_key: ClassVar[str]
    #: Query parameters of every page besides ``count``/``offset``.
    url_params: ClassVar[dict[str, str]] = {}

    def __init__(self, tap: Any) -> None:
        """One state bookmark per stream, whatever the partition (the SDK's documented empty list)."""
        super().__init__(tap)
        self.state_partitioning_keys = []

    @property
    @override
    def url_base(self) -> str:
        return self.mc.client.api_url

    @property
    @override
    def records_jsonpath(self) -> str:
        return f"$.{self.items_key}[*]"

    @property
    @override
    def authenticator(self) -> APIAuthenticatorBase:
        return self.mc.authenticator

    @property
    @override
    def requests_session(self) -> requests.Session:
        return self.mc.session

    @property
    @override
    def http_headers(self) -> dict[str, str]:
        return {"User-Agent": USER_AGENT, "Accept": "application/json"}

    @override
    def get_new_paginator(self) -> MailchimpPaginator:
        return MailchimpPaginator(self.mc.page_size, self.items_key)

    @override
    def get_url_params(self, context: Context | None, next_page_token: int | None) -> dict[str, Any]:
        return {**self.url_params, "count": self.mc.page_size, "offset": next_page_token or 0}

    @override
    def parse_response(self, response: requests.Response) -> Iterable[dict[str, Any]]:
        # Plain floats (the SDK's default parses them as Decimal, which would change the fingerprints).
        yield from extract_jsonpath(self.records_jsonpath, input=response.json())

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        if "{" in (self.path or "") and not context:
            return  # a partitioned stream without partitions (no parent rows): nothing to read
        yield from super().get_records(context)

    @override
    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        row.update(context or {})
        return super().post_process(row, context)

    @override
    def validate_response(self, response: requests.Response) -> None:
        if response.status_code >= 400:
            path = api_path(self.mc.client.api_url, response.url)
            raise response_error(response, response.request.method or "GET", path, self.mc.secrets)

    # -- retries: the SDK's backoff hooks, with MailchimpClient's policy --------------------------
    @override
    def request_decorator(self, func: Callable[..., Any]) -> Callable[..., Any]:
        decorator = backoff.on_exception(
            self.backoff_wait_generator,
            RetryableMailchimpError,
            max_tries=self.backoff_max_tries,
            on_backoff=self.backoff_handler,
            jitter=self.backoff_jitter,
            logger=None,
        )
        return decorator(func)

    @override
    def backoff_wait_generator(self) -> Generator[float, Any, None]:
        """The client's policy, per failed try: the error's ``Retry-After``, else its jittered wait."""
        return self.mc.client.retry.waits(jittered=True)

    @override
    def backoff_max_tries(self) -> int:
        return self.mc.client.retry.max_tries

    @override
    def backoff_jitter(self, value: float) -> float:
        return no_jitter(value)  # the policy jitters its computed waits, never a Retry-After

    @override
    def backoff_handler(self, details: Details) -> None:
        exc = details.get("exception")  # always set by backoff.on_exception
        if isinstance(exc, BaseException):
            log_retry(exc, details.get("tries", 0), details.get("wait", 0.0))


def is_not_found(exc: PermanentMailchimpError) -> bool:
    """True for a 404 (resource deleted meanwhile)."""
    return exc.status == 404
