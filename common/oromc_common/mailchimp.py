"""Mailchimp Marketing API v3: auth, base URL, a governed HTTP client and error classification.

Shared by target-mailchimp and tap-mailchimp-engagement.

Auth and base URL:
    * API key ``<32 hex>-<dc>`` -> HTTP Basic (any username, key as password) against
      ``https://<dc>.api.mailchimp.com/3.0`` (:func:`parse_api_key`, :func:`api_url_for_dc`).
    * OAuth access token -> ``Authorization: Bearer <token>``; the data center comes from
      ``GET https://login.mailchimp.com/oauth2/metadata`` (:func:`resolve_oauth_api_url`), unless
      ``api_url`` is given.
    * ``api_url`` overrides the derived base URL (the sandbox: ``http://127.0.0.1:PORT/3.0``); it is
      validated by :func:`oromc_common.http.require_secure_url` (HTTPS, or HTTP to loopback only).

Client (:class:`MailchimpClient`): one ``requests.Session`` whose pool is sized to the connection
governor (:mod:`oromc_common.governor`, shared per account by every client in the process and, through
the :class:`~oromc_common.governor.ConnectionBudget`, by every process on the machine or on every machine
using one PostgreSQL database); each HTTP attempt holds one governor slot; ``get/post/put/patch/delete``
return parsed JSON (``None`` for 204/empty);
:meth:`MailchimpClient.paginate` walks ``count``/``offset`` collections; :meth:`MailchimpClient.open_download`
opens a pre-signed result URL (``/batches`` results, see :mod:`oromc_common.batches`); every attempt is reported to the
optional ``on_call(method, status)`` hook (e.g. ``RunReport.count_call``; status ``"error"`` when no
response arrived).

Errors (:func:`classify`): every outcome maps to one :class:`ErrorKind`:
    * ``RETRYABLE``: 429, 5xx (incl. HTML 502/503 edge pages), 403/429 without a JSON body (Mailchimp's
      edge at high volume, or a proxy/WAF in between: empty or HTML), connection resets, timeouts ->
      retried (:class:`oromc_common.retry.RetryPolicy`: ``Retry-After`` when sent, else a fully
      jittered doubling wait), then raised as
      :class:`RetryableMailchimpError` when tries are exhausted (the message says what came back
      and from which host);
    * ``PERMANENT``: a per-record failure (invalid or fake email, Member In Compliance State, Forgotten
      Email Not Subscribed, Member Exists, invalid merge fields, signup throttle, 404, 405, other 400/422)
      -> :class:`PermanentMailchimpError`, never retried;
    * ``FATAL``: bad credentials or account problems (401, 403 with a body such as Wrong Datacenter or
      User Disabled, 426), and a TLS failure retrying cannot fix (reason ``tls_error``: "certificate
      verify failed for HOST", never retried) -> :class:`FatalMailchimpError`; stop the run.
Each error carries Mailchimp's ``title``, ``detail`` and ``errors[]`` with e-mail addresses and secrets
redacted, plus a short machine ``reason`` (see :data:`REASONS`) for rejects reports.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import msgspec
import requests
from requests.adapters import HTTPAdapter
from singer_sdk import typing as th

from oromc_common import settings
from oromc_common.dryrun import DryRunWriteError
from oromc_common.emails import normalize_email  # noqa: F401 - the address to send, re-exported
from oromc_common.fanout import BoundedPool
from oromc_common.governor import (
    HARD_MAX_CONNECTIONS,
    ConnectionBudget,
    ConnectionBudgetError,
    ConnectionGovernor,
    clamp_connections,
    default_budget_dir,
    get_governor,
    run_concurrently,
)
from oromc_common.http import (
    non_api_answer,
    redact,
    require_secure_url,
    retry_after_seconds,
    tls_failure,
    url_host,
)
from oromc_common.retry import RetryPolicy, full_jitter

LOGGER = logging.getLogger("oromc_common.mailchimp")

DEFAULT_OAUTH_METADATA_URL = "https://login.mailchimp.com/oauth2/metadata"
DEFAULT_TIMEOUT = (10.0, 120.0)  # connect, read: Mailchimp itself gives up after 120 s
DEFAULT_MAX_TRIES = 6
MAX_PAGE_SIZE = 1000
#: What ``request_timeout`` means for a Mailchimp connector (see oromc_common.settings).
MAILCHIMP_TIMEOUT_DETAIL = "It is the read timeout (connecting may take 10 s); Mailchimp itself stops a call at 120 s."

_API_KEY_RE = re.compile(r"^[0-9A-Za-z]+-(?P<dc>[a-z]+[0-9]+)$")

#: Machine reasons used in exceptions and rejects reports.
REASONS = (
    "invalid_email",
    "fake_email",
    "compliance_state",
    "forgotten_email",
    "member_exists",
    "invalid_merge_fields",
    "signup_throttled",
    "not_found",
    "method_not_allowed",
    "bad_request",
    "auth_invalid",
    "forbidden",
    "rate_limited",
    "server_error",
    "connection_error",
    "tls_error",
)


class ErrorKind(enum.Enum):
    """How a Mailchimp outcome must be handled."""

    RETRYABLE = "retryable"
    PERMANENT = "permanent"
    FATAL = "fatal"


class MailchimpConfigError(ValueError):
    """Bad Mailchimp settings (malformed key, insecure URL, unresolvable OAuth token)."""


@dataclass(eq=False)
class MailchimpError(Exception):
    """A failed Mailchimp call. ``title``/``detail``/``errors`` are already PII-redacted."""

    kind: ErrorKind
    reason: str
    status: int | None
    method: str
    path: str
    title: str = ""
    detail: str = ""
    errors: list[dict[str, str]] = field(default_factory=list)
    #: Seconds the server asked to wait (``Retry-After``), honoured by the retry policy.
    retry_after: float | None = None

    def __post_init__(self) -> None:
        """Initialise the exception message."""
        super().__init__(str(self))

    def __str__(self) -> str:
        """One line: method, path, status, reason, title and detail (no PII)."""
        extra = "; ".join(f"{e.get('field', '')}: {e.get('message', '')}" for e in self.errors)
        status = "no response" if self.status is None else self.status
        title = f"{self.title}. " if self.title else ""
        text = f"{self.method} {self.path} -> {status} {self.reason}: {title}{self.detail}"
        return f"{text} [{extra}]" if extra else text

    @property
    def error_fields(self) -> list[str]:
        """Field names listed in Mailchimp's ``errors[]`` array."""
        return [e["field"] for e in self.errors if e.get("field")]


class RetryableMailchimpError(MailchimpError):
    """Transient failure (429, 5xx, 403 without a JSON body, reset, timeout) that survived all retries."""


class PermanentMailchimpError(MailchimpError):
    """Per-record failure: retrying cannot help; report it and continue."""


class FatalMailchimpError(MailchimpError):
    """Credentials or account problem: stop the run."""


_KIND_TO_CLASS: dict[ErrorKind, type[MailchimpError]] = {
    ErrorKind.RETRYABLE: RetryableMailchimpError,
    ErrorKind.PERMANENT: PermanentMailchimpError,
    ErrorKind.FATAL: FatalMailchimpError,
}


# ---------------------------------------------------------------------------------------------
# Pure helpers
# ---------------------------------------------------------------------------------------------
def parse_api_key(api_key: str) -> tuple[str, str]:
    """Split ``<key>-<dc>`` into ``(key, dc)``; raise :class:`MailchimpConfigError` if malformed."""
    value = (api_key or "").strip()
    match = _API_KEY_RE.match(value)
    if not match:
        msg = (
            "Setting 'api_key' must look like '<key>-<dc>' (e.g. '...-us14'); "
            "the data center suffix is missing or malformed."
        )
        raise MailchimpConfigError(msg)
    return value, match.group("dc")


def api_url_for_dc(dc: str) -> str:
    """Base URL of the Marketing API for a data center, e.g. ``https://us14.api.mailchimp.com/3.0``."""
    return f"https://{dc}.api.mailchimp.com/3.0"


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: md5 hex of the trimmed, lower-cased e-mail address."""
    return hashlib.md5(email.strip().lower().encode("utf-8"), usedforsecurity=False).hexdigest()


def redact_pii(text: str, secrets: tuple[str | None, ...] = ()) -> str:
    """Remove e-mail addresses and the given secrets from a message."""
    return redact(text or "", secrets)


def _reason_for(status: int, title: str, detail: str, errors: list[dict[str, str]]) -> str:
    """Map a 4xx problem document to a machine reason."""
    low_title = title.lower()
    low_detail = detail.lower()
    messages = " ".join(str(e.get("message", "")) for e in errors).lower()
    fields = [str(e.get("field", "")) for e in errors]
    text = f"{low_detail} {messages}"
    if "compliance state" in low_title or "compliance state" in text:
        reason = "compliance_state"
    elif "forgotten email" in low_title or "permanently deleted" in text:
        reason = "forgotten_email"
    elif "member exists" in low_title or "already a list member" in text:
        reason = "member_exists"
    elif "looks fake" in text:
        reason = "fake_email"
    elif "valid email" in text:
        reason = "invalid_email"
    elif "signed up to a lot of lists" in text:
        reason = "signup_throttled"
    elif "merge field" in text or any(
        f and f != "email_address" and f.upper() == f for f in fields
    ):
        reason = "invalid_merge_fields"
    elif status == 404:
        reason = "not_found"
    elif status == 405:
        reason = "method_not_allowed"
    else:
        reason = "bad_request"
    return reason


def classify(status: int | None, body: Any) -> tuple[ErrorKind, str]:
    """Classify an outcome: ``status`` (None = no response) and the parsed JSON body (None if absent).

    Returns ``(kind, reason)``. Successful statuses (< 400) are not errors; do not call this for them.
    """
    if status is None:
        return ErrorKind.RETRYABLE, "connection_error"
    problem = body if isinstance(body, dict) else None
    if status == 429:
        return ErrorKind.RETRYABLE, "rate_limited"
    if status >= 500:
        return ErrorKind.RETRYABLE, "server_error"
    if status == 403 and problem is None:
        return ErrorKind.RETRYABLE, "rate_limited"  # "403 without a JSON body" at high volume
    if status == 401:
        return ErrorKind.FATAL, "auth_invalid"
    if status in {403, 426}:
        return ErrorKind.FATAL, "forbidden"
    title = str((problem or {}).get("title", ""))
    detail = str((problem or {}).get("detail", ""))
    errors = _problem_errors(problem)
    return ErrorKind.PERMANENT, _reason_for(status, title, detail, errors)


def classify_member_error(
    message: str, error_code: str | None = None, field_name: str | None = None
) -> str:
    """Reason for one ``errors[]`` item of a batch subscribe response (``POST /lists/{id}``)."""
    if (error_code or "").upper() == "ERROR_CONTACT_EXISTS":
        return "member_exists"
    errors = [{"field": field_name or "", "message": message or ""}]
    return _reason_for(400, "", message or "", errors)


def _problem_errors(problem: dict[str, Any] | None) -> list[dict[str, str]]:
    raw = (problem or {}).get("errors") or []
    if not isinstance(raw, list):
        return []
    return [
        {"field": str(item.get("field", "")), "message": str(item.get("message", ""))}
        for item in raw
        if isinstance(item, dict)
    ]


def make_error(
    status: int | None,
    body: Any,
    method: str,
    path: str,
    secrets: tuple[str | None, ...] = (),
    fallback_detail: str = "",
    retry_after: float | None = None,
) -> MailchimpError:
    """Build the right :class:`MailchimpError` subclass for an outcome, PII-redacted."""
    kind, reason = classify(status, body)
    problem = body if isinstance(body, dict) else {}
    errors = [
        {"field": e["field"], "message": redact_pii(e["message"], secrets)}
        for e in _problem_errors(problem)
    ]
    return _KIND_TO_CLASS[kind](
        kind=kind,
        reason=reason,
        status=status,
        method=method,
        path=redact_pii(path, secrets),
        title=redact_pii(str(problem.get("title", "")), secrets),
        detail=redact_pii(str(problem.get("detail", "")) or fallback_detail, secrets),
        errors=errors,
        retry_after=retry_after,
    )


def resolve_oauth_api_url(
    access_token: str,
    metadata_url: str = DEFAULT_OAUTH_METADATA_URL,
    timeout: float = 30.0,
) -> str:
    """Return ``<api_endpoint>/3.0`` for an OAuth token via the metadata endpoint.

    Mailchimp answers an invalid token with HTTP 200 and ``{"error": ...}``; that is reported as a
    :class:`MailchimpConfigError`.
    """
    url = require_secure_url(metadata_url, "oauth_metadata_url")
    try:
        resp = requests.get(
            url, headers={"Authorization": f"OAuth {access_token}"}, timeout=timeout
        )
    except requests.exceptions.SSLError as exc:
        message = tls_failure(exc, url)
        if message is None:
            raise
        raise MailchimpConfigError(f"GET {url_host(url)} (OAuth metadata): {message}") from exc
    try:
        data = resp.json()
    except ValueError:
        data = {}
    if (
        resp.status_code >= 400
        or not isinstance(data, dict)
        or data.get("error")
        or not (data.get("api_endpoint") or data.get("dc"))
    ):
        msg = (
            "Setting 'access_token': Mailchimp did not accept the OAuth token "
            f"(metadata endpoint answered {resp.status_code} "
            f"{data.get('error', '') if isinstance(data, dict) else ''})."
        )
        raise MailchimpConfigError(msg)
    endpoint = data.get("api_endpoint") or f"https://{data['dc']}.api.mailchimp.com"
    return require_secure_url(str(endpoint).rstrip("/") + "/3.0", "api_endpoint")


def account_key(api_url: str, credential: str) -> str:
    """The key an account's connections are governed by: the API host and the API key / token."""
    return f"{urlsplit(api_url).netloc}\n{credential.strip()}"


def connection_budget_properties() -> list[th.Property[Any]]:
    """The settings both Mailchimp connectors declare for the shared connection budget."""
    return [
        th.Property(
            "connection_budget_dir",
            th.StringType,
            description="Directory of the lock files through which every connector process on this "
            "machine shares the account's max_connections (default: "
            f"{default_budget_dir().parent}/oromc-mailchimp-connections-<uid>; a local file system).",
        ),
        th.Property(
            "connection_budget_database_uri",
            th.StringType,
            secret=True,
            description="PostgreSQL database through which connector processes on several machines "
            "share the account's max_connections (session advisory locks), e.g. Meltano's system "
            "database ($MELTANO_DATABASE_URI; postgresql:// or postgresql+psycopg://). Empty or not "
            "PostgreSQL: lock files on this machine.",
        ),
    ]


def max_connections_property(default: int) -> th.Property[Any]:
    """The ``max_connections`` setting of both Mailchimp connectors (the shared budget's size)."""
    return settings.max_connections_property(
        default,
        HARD_MAX_CONNECTIONS,
        f"Simultaneous Mailchimp connections for this account (1-{HARD_MAX_CONNECTIONS}; "
        "Mailchimp refuses the 11th), shared by every connector process using the same connection "
        "budget (all processes on this machine, or on every machine with "
        "connection_budget_database_uri): together they never hold more than the largest "
        "max_connections among them.",
    )


#: Seconds: the longest ``batch_poll_seconds`` (the polls' own back-off goes up to 30 s anyway).
MAX_BATCH_POLL_SECONDS = 60
#: Minutes: the longest ``batch_timeout_minutes`` (a day).
MAX_BATCH_TIMEOUT_MINUTES = 1440


def batch_wait_properties(*, poll: str, timeout: str) -> list[th.Property[Any]]:
    """``batch_poll_seconds`` and ``batch_timeout_minutes``, the waits on a ``/batches`` job, as both
    Mailchimp connectors declare them; ``poll`` and ``timeout`` describe what each connector does."""
    return [
        th.Property(
            "batch_poll_seconds",
            th.NumberType(minimum=0, maximum=MAX_BATCH_POLL_SECONDS),
            default=1,
            description=poll,
        ),
        th.Property(
            "batch_timeout_minutes",
            th.NumberType(minimum=1, maximum=MAX_BATCH_TIMEOUT_MINUTES),
            default=60,
            description=timeout,
        ),
    ]


def connection_budget(config: Mapping[str, Any]) -> ConnectionBudget:
    """The :class:`~oromc_common.governor.ConnectionBudget` a connector's settings ask for."""
    return ConnectionBudget(
        directory=config.get("connection_budget_dir") or None,
        database_uri=config.get("connection_budget_database_uri") or None,
    )


def non_json_detail(resp: requests.Response) -> str:
    """What came back instead of Mailchimp's problem document, naming the host."""
    status, host, what = resp.status_code, url_host(resp.url), non_api_answer(resp)
    if status in {403, 429}:
        return (
            f"{status} without a JSON body from {host} ({what}): Mailchimp's edge answers this "
            "under load (too many connections), and a proxy or WAF between this machine and "
            "Mailchimp when it blocks or rate-limits the request; retried with backoff as transient"
        )
    return f"HTTP {status} from {host} ({what})"


def json_or_none(content: bytes) -> Any:
    """A response body as parsed JSON; None when it is empty or not JSON."""
    if not content:
        return None
    try:
        return json.loads(content)
    except ValueError:
        return None


def parts_of(struct_type: type[msgspec.Struct]) -> Callable[[bytes], dict[str, Any] | None]:
    """A body decoder that builds only the keys of ``struct_type`` (msgspec skips every other key
    while parsing, never making its objects); None when the body is empty or not JSON."""

    def decode(content: bytes) -> dict[str, Any] | None:
        if not content:
            return None
        try:
            return msgspec.structs.asdict(msgspec.json.decode(content, type=struct_type))
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None

    return decode


@functools.cache
def raw_items(key: str) -> Callable[[bytes], dict[str, Any] | None]:
    """A page decoder that leaves each item of the collection ``key`` unparsed (``msgspec.Raw``,
    a slice of the body): the page's ``key`` and ``total_items``, nothing else. The handler parses
    one item at a time (``msgspec.json.decode``) and keeps what it needs, so a page of 1,000 store
    orders (~10 MB as objects) is never held whole; None when the body is empty or not JSON."""
    return parts_of(
        msgspec.defstruct(
            "RawPage",
            [(key, list[msgspec.Raw], msgspec.field(default_factory=list)), ("total_items", Any, None)],
        )
    )


def response_error(
    resp: requests.Response, method: str, path: str, secrets: tuple[str | None, ...] = ()
) -> MailchimpError:
    """The :class:`MailchimpError` for an answer of status 400 or more: its problem document (or
    what came back instead, see :func:`non_json_detail`) and its ``Retry-After``, redacted.
    ``path`` is the call's path below the API root, for the message."""
    return make_error(
        resp.status_code,
        json_or_none(resp.content),
        method,
        path,
        secrets,
        fallback_detail=non_json_detail(resp),
        retry_after=retry_after_seconds(resp),
    )


# ---------------------------------------------------------------------------------------------
# Client
# ---------------------------------------------------------------------------------------------
class _BearerAuth(requests.auth.AuthBase):
    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self._token}"
        return r


class MailchimpClient:
    """Thread-safe Mailchimp client; every request goes through the account's connection governor.

    ``read_only`` (a dry run): any request but GET raises :class:`~oromc_common.dryrun.DryRunWriteError`
    before it is sent.
    """

    read_only: bool = False

    def __init__(
        self,
        *,
        api_key: str | None = None,
        access_token: str | None = None,
        api_url: str | None = None,
        oauth_metadata_url: str = DEFAULT_OAUTH_METADATA_URL,
        max_connections: int | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        max_tries: int = DEFAULT_MAX_TRIES,
        backoff_factor: float = 1.0,
        backoff_max: float = 60.0,
        on_call: Callable[[str, int | str], None] | None = None,
        user_agent: str = "oromc-connectors",
        connection_budget: ConnectionBudget | None = None,
    ) -> None:
        """Create a client from an API key or an OAuth token (exactly one is required).

        ``connection_budget`` says where the account's ``max_connections`` are shared with other
        processes (default: lock files in :func:`~oromc_common.governor.default_budget_dir`).
        Raises :class:`MailchimpConfigError` for a malformed key, a missing credential, an insecure
        ``api_url`` or an unusable budget directory.
        """
        if bool(api_key) == bool(access_token):
            msg = "Set exactly one of the settings 'api_key' or 'access_token'."
            raise MailchimpConfigError(msg)
        self._secret = str(api_key or access_token)
        self.submitted_batches: set[str] = set()
        """Ids of the ``/batches`` jobs this client submitted (``batches.submit_batch``): this run's own."""
        auth: requests.auth.AuthBase
        if api_key:
            _, dc = parse_api_key(api_key)
            base = api_url or api_url_for_dc(dc)
            auth = requests.auth.HTTPBasicAuth("oromc", api_key.strip())
        else:
            base = api_url or resolve_oauth_api_url(str(access_token), oauth_metadata_url)
            auth = _BearerAuth(str(access_token))
        try:
            self.api_url = require_secure_url(base, "api_url")
        except ValueError as exc:
            raise MailchimpConfigError(str(exc)) from exc
        try:
            self.governor: ConnectionGovernor = get_governor(
                account_key(self.api_url, self._secret),
                max_connections,
                connection_budget or ConnectionBudget(),
            )
        except ConnectionBudgetError as exc:
            raise MailchimpConfigError(str(exc)) from exc
        self.max_connections = min(clamp_connections(max_connections), self.governor.limit)
        self.timeout = timeout
        self.on_call = on_call
        self.session = requests.Session()
        self.session.auth = auth
        self.session.headers.update({"User-Agent": user_agent, "Accept": "application/json"})
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=self.governor.limit, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        #: 429/5xx/403 without a body/no answer: ``Retry-After`` or a fully jittered doubling wait.
        self.retry = RetryPolicy(max_tries, backoff_factor, backoff_max, jitter=full_jitter)

    # -- public API --------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        decode: Callable[[bytes], Any] = json_or_none,
    ) -> Any:
        """Send one request (retrying transient failures) and return the parsed JSON body or None
        (``decode``: how a successful answer's body is parsed, e.g. into only the parts read)."""
        if self.read_only and method.upper() != "GET":
            msg = f"dry run: {method.upper()} {path} refused (nothing is written in a dry run)"
            raise DryRunWriteError(msg)
        return self.retry.call(
            lambda: self._send_once(method.upper(), path, params, json_body, decode),
            retry_on=(RetryableMailchimpError,),
            on_retry=log_retry,
        )

    def get(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        decode: Callable[[bytes], Any] = json_or_none,
    ) -> Any:
        """GET ``path`` (relative to the API root, e.g. ``/lists/abc/members``)."""
        return self.request("GET", path, params=params, decode=decode)

    def post(
        self,
        path: str,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        decode: Callable[[bytes], Any] = json_or_none,
    ) -> Any:
        """POST a JSON body."""
        return self.request("POST", path, params=params, json_body=json_body, decode=decode)

    def put(self, path: str, json_body: Any = None, params: dict[str, Any] | None = None) -> Any:
        """PUT a JSON body (upsert)."""
        return self.request("PUT", path, params=params, json_body=json_body)

    def patch(self, path: str, json_body: Any = None, params: dict[str, Any] | None = None) -> Any:
        """PATCH a JSON body."""
        return self.request("PATCH", path, params=params, json_body=json_body)

    def delete(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """DELETE ``path`` (for members: archive)."""
        return self.request("DELETE", path, params=params)

    def paginate(
        self,
        path: str,
        items_key: str,
        params: Mapping[str, Any] | None = None,
        page_size: int = MAX_PAGE_SIZE,
        pool: BoundedPool | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield every item of an offset-paged collection (``count``/``offset``/``total_items``), in order.

        ``fields`` in ``params`` must be root-relative (``members.id,...``); ``total_items`` is added
        automatically when ``fields`` is used. Pages are read in turn; with ``pool``, once the first
        page has said how many items there are, the other pages are read ahead on it
        (:meth:`~oromc_common.fanout.BoundedPool.stream`: in order, a bounded number pending).
        """
        page_size = max(1, min(page_size, MAX_PAGE_SIZE))
        offset = 0
        while True:
            page = self.page(path, params, offset, page_size)
            items = page.get(items_key) or []
            yield from items
            offset += len(items)
            total = page.get("total_items")
            if len(items) < page_size or (isinstance(total, int) and offset >= total):
                return
            if pool is not None and isinstance(total, int):
                offsets = range(offset, total, page_size)
                calls = [functools.partial(self.page, path, params, off, page_size) for off in offsets]
                for page in pool.stream(calls):
                    yield from page.get(items_key) or []
                return

    def page(
        self,
        path: str,
        params: Mapping[str, Any] | None,
        offset: int,
        page_size: int = MAX_PAGE_SIZE,
        decode: Callable[[bytes], Any] = json_or_none,
    ) -> dict[str, Any]:
        """One page of an offset-paged collection (``count``/``offset``; ``total_items`` is added
        to a ``fields`` list), ``{}`` for an empty answer (``decode``: see :meth:`request`)."""
        query = dict(params or {})
        if "fields" in query and "total_items" not in str(query["fields"]).split(","):
            query["fields"] = f"{query['fields']},total_items"
        query.update({"count": max(1, min(page_size, MAX_PAGE_SIZE)), "offset": offset})
        page = self.get(path, query, decode)
        return page if isinstance(page, dict) else {}

    def each_page(
        self,
        path: str,
        handle: Callable[[dict[str, Any]], Any],
        params: Mapping[str, Any] | None = None,
        page_size: int = MAX_PAGE_SIZE,
        max_workers: int = 1,
        decode: Callable[[bytes], Any] = json_or_none,
    ) -> int:
        """Read every page of a collection and give each to ``handle`` as it arrives: the first
        alone (its ``total_items`` says how many follow), the others ``max_workers`` at a time
        (``handle`` then runs on worker threads). Returns ``total_items``. ``decode``: how a
        page's body is parsed (:func:`raw_items` leaves its items for ``handle`` to parse)."""
        page_size = max(1, min(page_size, MAX_PAGE_SIZE))

        def read(offset: int) -> int:
            page = self.page(path, params, offset, page_size, decode)
            handle(page)
            total = page.get("total_items")
            return total if isinstance(total, int) else 0

        total = read(0)
        offsets = range(page_size, total, page_size)
        run_concurrently([functools.partial(read, offset) for offset in offsets], max_workers)
        return total

    def open_download(self, url: str) -> requests.Response:
        """Open a pre-signed result URL (``/batches`` results) *without* credentials, streamed.

        Opening is retried like an API call (connection errors, 429, 5xx); the caller reads and closes
        the response (``with client.open_download(url) as resp``).
        """
        safe_url = require_secure_url(url, "response_body_url")
        return self.retry.call(
            lambda: self._download_once(safe_url), retry_on=(RetryableMailchimpError,)
        )

    def _download_once(self, url: str) -> requests.Response:
        try:
            resp = requests.get(url, timeout=self.timeout, stream=True)
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ) as exc:
            self._count("GET", "error")
            raise self.transport_error(exc, "GET", "(batch results)", url) from exc
        self._count("GET", resp.status_code)
        if resp.status_code >= 400:
            resp.close()
            raise make_error(
                resp.status_code,
                None,
                "GET",
                "(batch results)",
                retry_after=retry_after_seconds(resp),
            )
        return resp

    def ping(self) -> None:
        """Check credentials and reachability (``GET /ping``); raises on failure."""
        self.get("/ping")

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()

    # -- internals ---------------------------------------------------------------------------
    def _count(self, method: str, status: int | str) -> None:
        if self.on_call is not None:
            self.on_call(method, status)

    def attempt(
        self, method: str, path: str, url: str, send: Callable[[], requests.Response]
    ) -> requests.Response:
        """One HTTP attempt ``send()`` to ``url`` (``path`` below the API root, for messages): it
        holds a slot of the account's connection governor until the body is read, is reported to
        ``on_call``, and no answer raises :meth:`transport_error`. The client's own requests and
        tap-mailchimp-engagement's ``GovernedAdapter`` (the SDK streams' transport) go through it."""
        try:
            with self.governor.slot():
                resp = send()
                _ = resp.content  # read the body while holding the slot
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ) as exc:
            self._count(method, "error")
            raise self.transport_error(exc, method, path, url) from exc
        self._count(method, resp.status_code)
        return resp

    def _send_once(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        json_body: Any,
        decode: Callable[[bytes], Any] = json_or_none,
    ) -> Any:
        url = f"{self.api_url}/{path.lstrip('/')}"
        resp = self.attempt(
            method,
            path,
            url,
            lambda: self.session.request(method, url, params=params, json=json_body, timeout=self.timeout),
        )
        if resp.status_code < 400:
            return decode(resp.content)
        raise response_error(resp, method, path, (self._secret,))

    def transport_error(
        self, exc: BaseException, method: str, path: str, url: str
    ) -> MailchimpError:
        """The error for a call to ``url`` that got no answer (``exc``): a lasting TLS failure is fatal
        (never retried), anything else retryable. Also used by transports other than this client's
        (tap-mailchimp-engagement's ``GovernedAdapter``), so every Mailchimp connector words it alike."""
        tls = tls_failure(exc, url)
        if tls is not None:
            return FatalMailchimpError(
                kind=ErrorKind.FATAL,
                reason="tls_error",
                status=None,
                method=method,
                path=redact_pii(path, (self._secret,)),
                detail=tls,
            )
        return make_error(
            None, None, method, path, (self._secret,), fallback_detail=type(exc).__name__
        )


def log_retry(error: BaseException, attempt: int, wait: float) -> None:
    """Log one retry of a Mailchimp call (what failed, which try, how long the wait); no PII."""
    LOGGER.warning(
        "Mailchimp call failed (%s), retry %d in %.1fs",
        f"{error.status} {error.reason}" if isinstance(error, MailchimpError) else error,
        attempt,
        wait,
    )
