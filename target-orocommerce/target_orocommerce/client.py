"""HTTP client for writing into the Oro back-office API.

One :class:`OroWriter` per target run, shared by every sink. It adds to the shared Oro pieces in
``oromc_common.oro`` (OAuth2 token cache, error classification, JSON:API helpers) what a *writer*
needs:

* retries (:class:`oromc_common.retry.RetryPolicy`) on 429/5xx/connection errors, honouring
  ``Retry-After``; one token refresh + retry on 401;
* **safe retries of non-idempotent creates**: before re-sending a POST that may already have been
  applied (5xx or a lost connection), the caller's ``verify`` callback is asked whether the write
  landed; if it did, the retry is skipped;
* Oro's 403 (a JSON:API ``access denied exception``) raised as :class:`OroPermissionError`, whose
  message names the permission the API user's role needs; a 403 without Oro's document (a proxy or
  WAF in front of Oro) is retried as transient and, when retries run out, reported as such;
* a TLS failure retrying cannot fix (untrusted certificate) raised at once as
  :class:`~oromc_common.oro.OroTLSError`, naming the host;
* every call counted in the run report (``RunReport.count_call``);
* adaptive concurrency: every request passes one gate (:class:`~target_orocommerce.concurrency.
  AdaptiveLimit`, AIMD on write latency and 503/429) whose ceiling is ``max_connections``;
  :meth:`OroWriter.run_parallel` fans work out on ``max_connections`` threads behind that gate.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import requests
from oromc_common.dryrun import ActionPlan, DryRunWriteError
from oromc_common.fanout import BoundedPool
from oromc_common.oro import (
    OroApiError,
    OroAuthError,
    OroClientError,
    OroOAuth2Authenticator,
    OroRetriableError,
    OroTLSError,
    is_oro_error_document,
    jsonapi_headers,
    oro_error_message,
    raise_for_oro_status,
    scrub,
    tls_error,
)
from oromc_common.report import RunReport
from oromc_common.retry import TRANSPORT_ERRORS, RetryPolicy, half_jitter
from requests.adapters import HTTPAdapter

from target_orocommerce.concurrency import OVERLOAD_STATUSES, AdaptiveLimit

T = TypeVar("T")

LOGGER = logging.getLogger("target_orocommerce")

SYNC_BATCH_LIMIT = 100
#: Ceiling of requests in flight at once (setting ``max_connections``): default and schema bound.
DEFAULT_MAX_CONNECTIONS = 8
MAX_CONNECTIONS = 32
#: First wait between attempts, seconds (setting ``backoff_factor_seconds``).
BACKOFF_FACTOR_SECONDS = 0.5
"""Oro's ``sync_processing_limit``: primary records per ``X-Mode: sync`` Batch API request."""

#: Id prefix of a record a dry run would create (it has no Oro id): never sent, never looked up.
PLANNED_ID = "dry-run:"

_ACTION_BY_METHOD = {"GET": "VIEW", "POST": "CREATE", "PATCH": "EDIT", "DELETE": "DELETE"}
_ENTITY_LABELS = {
    "customerusers": "Customer User",
    "customeruseraddresses": "Customer User Address",
    "tags": "Tag",
    "campaigns": "Campaign",
    "marketingactivities": "Marketing Activity",
    "orders": "Order",
}


class OroPermissionError(OroClientError):
    """A 403: the API user's role lacks a permission. Not retried; the run stops."""


class AlreadyApplied:
    """Returned instead of a response when a retried create turned out to have landed already."""


ALREADY_APPLIED = AlreadyApplied()


def permission_hint(method: str, path: str) -> str:
    """Name the Oro permission a request needs, e.g. ``"CREATE on Marketing Activity"``."""
    parts = [p for p in path.split("?", 1)[0].strip("/").split("/") if p]
    if parts[:1] == ["rest"]:
        if "unsubscribe" in parts:
            return (
                "the 'oro_marketinglist_unsubscribed_item_create' capability "
                "(Marketing List Unsubscribed Item: CREATE)"
            )
        if "subscribe" in parts:
            return (
                "the 'oro_marketinglist_unsubscribed_item_delete' capability "
                "(Marketing List Unsubscribed Item: DELETE)"
            )
        return "access to the old REST API for this OAuth application"
    resource = parts[0] if parts else "?"
    label = _ENTITY_LABELS.get(resource, resource)
    action = _ACTION_BY_METHOD.get(method.upper(), method.upper())
    if "relationships" in parts:
        action = "EDIT"
        if parts[-1] == "tags":
            label = f"{label} (and ASSIGN/UNASSIGN on Tag)"
    elif method.upper() in {"POST", "PATCH"}:
        action = f"{action} + VIEW"
    return f"{action} on {label}"


class _TransportError(OroRetriableError):
    """No response (connection reset, timeout): retriable; a create may or may not have landed."""


class OroWriter:
    """Authenticated, retrying, counting access to ``<base_url><api_prefix>``."""

    def __init__(
        self,
        *,
        base_url: str,
        api_prefix: str,
        auth: OroOAuth2Authenticator,
        report: RunReport,
        timeout: float = 60.0,
        max_tries: int = 6,
        max_retry_wait: float = 60.0,
        backoff_base: float = BACKOFF_FACTOR_SECONDS,
        max_concurrency: int = DEFAULT_MAX_CONNECTIONS,
        plan: ActionPlan | None = None,
    ) -> None:
        #: Every write the run plans (``plan.dry_run``: planned only; any non-GET is then refused).
        self.plan = plan if plan is not None else ActionPlan("target-orocommerce", report, dry_run=False)
        self.base_url = base_url.rstrip("/")
        self.api_root = self.base_url + "/" + api_prefix.strip("/")
        self.auth = auth
        self.report = report
        self.timeout = timeout
        #: 429/5xx/transport errors: ``Retry-After`` or a jittered doubling wait, ``max_tries`` in all.
        self.retry = RetryPolicy(max_tries, backoff_base, max_retry_wait, jitter=half_jitter)
        self.max_concurrency = max(1, max_concurrency)
        #: The gate of every request: AIMD between 1 and ``max_concurrency`` in flight.
        self.limit = AdaptiveLimit(self.max_concurrency)
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=self.max_concurrency + 2)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = "target-orocommerce/0.1"
        #: :meth:`run_parallel`'s threads (``max_concurrency``), started on first use.
        self._fan_out = BoundedPool(self.max_concurrency, name="oro-write")

    @property
    def dry_run(self) -> bool:
        """True in a dry run: writes are planned, never sent."""
        return self.plan.dry_run

    # -- URLs -----------------------------------------------------------------------------
    def url(self, path: str) -> str:
        """Absolute URL for an API path (``customerusers``) or an absolute URL (pagination links)."""
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.api_root}/{path.lstrip('/')}"

    # -- one call -------------------------------------------------------------------------
    def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        verify: Callable[[], bool] | None = None,
        ok_statuses: Sequence[int] = (),
    ) -> requests.Response | AlreadyApplied:
        """Send one request with retries; return the response (2xx or one of ``ok_statuses``).

        Args:
            method: HTTP method.
            path: API path relative to the API root, or an absolute URL.
            params: query parameters.
            body: JSON body (sent as ``application/vnd.api+json`` unless ``headers`` say otherwise).
            headers: extra headers.
            verify: for non-idempotent creates: called before any *retry*; return True when the
                earlier attempt already landed, then :data:`ALREADY_APPLIED` is returned.
            ok_statuses: non-2xx statuses returned to the caller instead of raised.

        Raises:
            OroPermissionError: Oro's 403 (the message names the missing permission).
            OroTLSError: the TLS connection failed for good (e.g. an untrusted certificate).
            OroClientError: other 4xx (``errors`` carries Oro's ``detail`` and ``source``).
            OroRetriableError: 429/5xx/transport errors and 403s from a proxy/WAF still failing
                after ``max_tries``.
            OroAuthError: 401 after a token refresh.
            DryRunWriteError: a request other than GET in a dry run (refused before it is sent,
                Batch API requests included).
        """
        attempts = {"n": 0, "auth_retries": 0}
        method = method.upper()
        if self.dry_run and method != "GET":
            msg = f"dry run: {method} {path.split('?', 1)[0]} refused (nothing is written in a dry run)"
            raise DryRunWriteError(msg)
        label = f"{method} {path.split('?', 1)[0].strip('/')}" if not path.startswith("http") else None

        def once() -> requests.Response | AlreadyApplied:
            attempts["n"] += 1
            if attempts["n"] > 1 and verify is not None and verify():
                return ALREADY_APPLIED
            return self._send(method, path, params, body, headers, ok_statuses, label, attempts)

        return self.retry.call(once, retry_on=(OroRetriableError,), on_retry=self._log_retry)

    def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        body: Any,
        headers: Mapping[str, str] | None,
        ok_statuses: Sequence[int],
        label: str | None,
        attempts: dict[str, int],
    ) -> requests.Response:
        all_headers = jsonapi_headers(write=body is not None)
        if headers:
            all_headers.update(headers)
        kind = _request_kind(method, path, body)
        while True:
            try:
                response = self._request(kind, method, path, params, body, all_headers)
            except TRANSPORT_ERRORS as exc:
                self.report.count_call(method, "error")
                tls = tls_error(exc, self.url(path), label or method)
                if tls is not None:
                    raise tls from exc
                msg = f"{label or method} failed without a response: {type(exc).__name__}"
                raise _TransportError(msg, resource=label or "") from exc
            self.report.count_call(method, response.status_code)
            if response.status_code == 401 and attempts["auth_retries"] < 1:
                attempts["auth_retries"] += 1
                self.auth.invalidate(response.request)
                continue
            break
        if response.status_code in ok_statuses or response.status_code < 400:
            return response
        if response.status_code == 403 and is_oro_error_document(response):
            raise self._permission_error(method, path, response, label)
        raise_for_oro_status(response, label, secrets=self.auth.secrets)
        return response  # pragma: no cover - raise_for_oro_status raised

    def _request(
        self,
        kind: str,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        body: Any,
        headers: Mapping[str, str],
    ) -> requests.Response:
        """One HTTP exchange through the concurrency gate; its answer is fed back to the limit.

        Writes feed their latency (reads vary with the rows they return); 503/429 and timeouts
        count as overload.
        """
        with self.limit.slot(kind) as ticket:
            try:
                response = self.session.request(
                    method,
                    self.url(path),
                    params=params,
                    json=body,
                    headers=headers,
                    auth=self.auth,
                    timeout=self.timeout,
                )
            except requests.RequestException as exc:
                self.limit.observe(ticket, overloaded=isinstance(exc, requests.Timeout), measured=False)
                raise
            overloaded = response.status_code in OVERLOAD_STATUSES
            self.limit.observe(ticket, overloaded=overloaded, measured=method != "GET")
            return response

    def _permission_error(
        self, method: str, path: str, response: requests.Response, label: str | None
    ) -> OroPermissionError:
        relative = path.split("?", 1)[0]
        if relative.startswith(self.api_root):
            relative = relative[len(self.api_root) :]
        need = permission_hint(method, relative)
        detail = oro_error_message(response, label, secrets=self.auth.secrets)
        msg = (
            f"{detail}. The Oro API user's role needs {need}: grant it under System > User "
            "Management > Roles (or use an OAuth application whose user has it)."
        )
        return OroPermissionError(msg, status=403, resource=label or "")

    @staticmethod
    def _log_retry(error: BaseException, attempt: int, wait: float) -> None:
        LOGGER.warning(
            "Retrying after %s (attempt %s, waiting %.1fs)", scrub(str(error)), attempt, wait
        )

    # -- JSON helpers ---------------------------------------------------------------------
    def get_json(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """GET and decode a JSON:API document."""
        response = self.call("GET", path, params=params)
        assert isinstance(response, requests.Response)
        payload = response.json()
        return payload if isinstance(payload, dict) else {}

    def iter_resources(
        self, path: str, params: Mapping[str, str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Yield every resource of a list, following ``links.next`` verbatim."""
        url: str | None = path
        query: Mapping[str, str] | None = params
        seen: set[str] = set()
        while url:
            doc = self.get_json(url, query)
            data = doc.get("data") or []
            yield from (d for d in data if isinstance(d, dict))
            next_link = (doc.get("links") or {}).get("next")
            if isinstance(next_link, dict):
                next_link = next_link.get("href")
            if not next_link or next_link in seen or not data:
                return
            seen.add(next_link)
            url, query = str(next_link), None

    # -- concurrency ----------------------------------------------------------------------
    def run_parallel(self, tasks: Sequence[Callable[[], T]]) -> list[T | BaseException]:
        """Run ``tasks`` with at most ``max_concurrency`` in flight; results in input order.

        Each slot holds the task's return value or the exception it raised, except
        :class:`OroPermissionError`, :class:`OroAuthError` and :class:`OroTLSError`, which are
        re-raised (fail fast).
        """
        return self._fan_out.run(tasks, keep=_kept_error)

    def close(self) -> None:
        """Release the worker threads and the connection pool."""
        self._fan_out.close()
        self.session.close()


def _kept_error(error: BaseException) -> bool:
    """An Oro error takes its task's slot in :meth:`OroWriter.run_parallel`; a permission,
    credentials or TLS error (and anything that is not an Oro error) stops the run."""
    return isinstance(error, OroApiError) and not isinstance(
        error, OroPermissionError | OroAuthError | OroTLSError
    )


_ID_SEGMENT = re.compile(r"/\d+(?=/|$)")


def _request_kind(method: str, path: str, body: Any) -> str:
    """``METHOD resource-template records``: requests of one kind take alike without queueing."""
    route = _ID_SEGMENT.sub("/{id}", "/" + path.split("?", 1)[0].split("://", 1)[-1].strip("/"))
    data = body.get("data") if isinstance(body, Mapping) else None
    return f"{method} {route} {len(data) if isinstance(data, list) else 1}"


def error_pointer(exc: OroApiError) -> tuple[str, str | None]:
    """``(detail, pointer)`` of the first Oro error in ``exc`` (for the rejects report)."""
    for error in exc.errors:
        detail = str(error.get("detail") or error.get("title") or "")
        source = error.get("source")
        pointer = None
        if isinstance(source, Mapping):
            pointer = source.get("pointer") or source.get("parameter")
        return scrub(detail), (str(pointer) if pointer else None)
    return scrub(str(exc)), None


def all_error_details(exc: OroApiError) -> str:
    """All Oro error details of ``exc`` joined, each with its ``source.pointer``."""
    parts = []
    for error in exc.errors:
        detail = str(error.get("detail") or error.get("title") or "")
        source = error.get("source")
        if isinstance(source, Mapping) and (source.get("pointer") or source.get("parameter")):
            detail = f"{detail} ({source.get('pointer') or source.get('parameter')})"
        parts.append(detail)
    return scrub("; ".join(parts) if parts else str(exc))
