"""Shared OroCommerce back-office API client pieces (OAuth2 + JSON:API helpers).

Used by ``tap-orocommerce`` and ``target-orocommerce``. The API is small and meant to stay stable:

Authentication
    :class:`OroOAuth2Authenticator` is a ``requests.auth.AuthBase`` (usable directly as a singer-sdk
    ``RESTStream.authenticator`` or as ``session.auth``). It gets a token from
    ``<base_url>/oauth2-token`` with a JSON body (``client_credentials`` by default, ``password``
    optionally), caches it **per (token_url, client_id) for the whole process** (all streams / sinks
    and all authenticator instances with the same key share one token), refreshes it
    ``refresh_margin`` seconds before ``expires_in`` runs out, and can be told that the API
    answered 401 with :meth:`OroOAuth2Authenticator.invalidate` (the next request fetches a new
    token; concurrent callers that already hold a newer token are not affected).
    Token-endpoint failures raise :class:`OroAuthError`; 429/5xx/connection errors from the token
    endpoint are retried (``Retry-After`` honoured).

JSON:API helpers
    * :data:`JSONAPI_MEDIA_TYPE`, :func:`jsonapi_headers` - ``Accept`` (and ``Content-Type`` for writes).
    * :func:`filter_param`, :func:`build_filters`, :func:`fields_params` - query parameters in Oro's
      bracket form (``filter[updatedAt][gte]``, ``fields[customerusers]``).
    * :func:`format_oro_datetime`, :func:`parse_oro_datetime` - Oro's UTC second-precision datetimes.
    * :func:`flatten_resource`, :func:`relationship_ids`, :func:`relationship_id` - turn a resource
      object into a flat dict (``id`` + attributes + relationship ids).
    * :func:`consents_by_name` - OroConsentBundle consents (``GET consents?include=names``, as an
      ``api.yml`` customization exposes them) by their default-localization name.
    * :func:`oro_error_message`, :func:`raise_for_oro_status` - a message from Oro's
      ``errors[].title/detail/source`` naming the resource, with emails and tokens scrubbed.

Errors
    :class:`OroApiError` (``status``, ``resource``, ``errors``) with subclasses
    :class:`OroAuthError` (token endpoint / 401), :class:`OroClientError` (4xx that cannot succeed),
    :class:`OroRetriableError` (429, 5xx, and a 403 that is not Oro's: see below) and
    :class:`OroTLSError` (the server's certificate cannot be verified: never retried).

    Oro's own 403 carries a JSON:API ``access denied exception`` document; a 403 with an empty or
    HTML body comes from a proxy or WAF in front of Oro (blocking or rate limiting), so it is
    retried as transient and, when the retries run out, reported as such
    (:func:`is_oro_error_document`, :func:`edge_error_message`), never as a missing permission.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
from typing_extensions import override

from oromc_common.dates import parse_iso_datetime
from oromc_common.http import (
    non_api_answer,
    redact,
    retry_after_seconds,
    tls_failure,
    url_host,
)
from oromc_common.retry import (
    TRANSIENT_STATUSES,
    TRANSPORT_ERRORS,
    RetryPolicy,
    is_transient_status,
)

__all__ = [
    "JSONAPI_MEDIA_TYPE",
    "RETRIABLE_STATUSES",
    "OroApiError",
    "OroAuthError",
    "OroClientError",
    "OroOAuth2Authenticator",
    "OroRetriableError",
    "OroTLSError",
    "build_filters",
    "clear_token_cache",
    "consents_by_name",
    "edge_error_message",
    "fields_params",
    "filter_param",
    "flatten_resource",
    "format_oro_datetime",
    "is_oro_error_document",
    "jsonapi_headers",
    "oro_error_message",
    "parse_oro_datetime",
    "raise_for_oro_status",
    "relationship_id",
    "relationship_ids",
    "scrub",
    "tls_error",
]

JSONAPI_MEDIA_TYPE = "application/vnd.api+json"
"""The JSON:API media type Oro requires in ``Accept`` (reads) and ``Content-Type`` (writes)."""

RETRIABLE_STATUSES = TRANSIENT_STATUSES
"""HTTP statuses worth retrying against Oro (Oro itself never sends 429; proxies may)."""

TOKEN_BACKOFF_SECONDS = 0.5
"""First wait between token requests (then doubling, at most 60 s, ``Retry-After`` honoured)."""

_BEARER_RE = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=\-]+")
_MAX_MESSAGE = 500


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class OroApiError(Exception):
    """An error answer from the Oro API.

    Attributes:
        status: HTTP status (0 when no response was received).
        resource: what was being accessed, e.g. ``"GET customerusers"`` (no query string, no PII).
        errors: Oro's ``errors`` array (already scrubbed of emails/tokens), possibly empty.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        resource: str = "",
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.resource = resource
        self.errors = errors or []


class OroAuthError(OroApiError):
    """The token endpoint refused the credentials, or the API kept answering 401."""


class OroClientError(OroApiError):
    """A 4xx answer that cannot succeed when retried (bad filter, 403, 404, validation...)."""


class OroRetriableError(OroApiError):
    """A 429/5xx answer, or a 403 from a proxy/WAF; the caller may retry (``retry_after`` seconds
    if the server said so)."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class OroTLSError(OroApiError):
    """The TLS connection failed in a way retrying cannot fix (e.g. an untrusted certificate)."""


class _TokenRetryError(OroAuthError):
    """A transient token-endpoint failure (429/5xx, proxy 403, no answer): tried again, and raised
    as the :class:`OroAuthError` when the tries run out."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


def tls_error(exc: BaseException, url: str, resource: str) -> OroTLSError | None:
    """An :class:`OroTLSError` for a transport exception that is a lasting TLS failure, else None."""
    message = tls_failure(exc, url)
    return OroTLSError(f"{resource}: {message}", resource=resource) if message else None


# --------------------------------------------------------------------------------------------
# Scrubbing and error messages
# --------------------------------------------------------------------------------------------


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Remove emails, bearer tokens and the given secret values from ``text``; cap its length."""
    out = redact(_BEARER_RE.sub(r"\1***", text), secrets)
    if len(out) > _MAX_MESSAGE:
        out = out[:_MAX_MESSAGE] + "..."
    return out


def _error_list(body: Any) -> list[dict[str, Any]]:
    if isinstance(body, Mapping):
        errors = body.get("errors")
        if isinstance(errors, list):
            return [e for e in errors if isinstance(e, Mapping)]  # type: ignore[misc]
    return []


def _describe_error(error: Mapping[str, Any]) -> str:
    title = str(error.get("title") or "").strip()
    detail = str(error.get("detail") or "").strip()
    text = f"{title}: {detail}" if title and detail else (title or detail)
    source = error.get("source")
    if isinstance(source, Mapping):
        where = source.get("pointer") or source.get("parameter")
        if where:
            text = f"{text} ({where})" if text else str(where)
    return text


def oro_error_message(
    response: requests.Response,
    resource: str | None = None,
    *,
    secrets: Iterable[str | None] = (),
) -> str:
    """Build a one-line message for an Oro error response.

    Example: ``"GET customerusers -> 400 filter constraint: The filter is not supported.
    (filter[updatedAt])"``. Uses Oro's ``errors[].title``, ``detail`` and ``source.pointer`` /
    ``source.parameter``; falls back to the HTTP reason. Emails, bearer tokens and ``secrets`` are
    scrubbed; the URL query string is never included.

    Args:
        response: the failed response.
        resource: label for what was accessed; defaults to ``"<METHOD> <path after /api/>"``.
        secrets: extra values to redact (e.g. the client secret).
    """
    label = resource or describe_request(response)
    try:
        body = response.json()
    except ValueError:
        body = None
    parts = [_describe_error(e) for e in _error_list(body)]
    parts = [p for p in parts if p]
    if not parts and isinstance(body, Mapping) and body.get("error"):
        # league/oauth2-server style (token endpoint)
        parts = [
            f"{body.get('error')}: {body.get('error_description') or body.get('message') or ''}"
        ]
    detail = "; ".join(parts) if parts else (response.reason or "no details")
    return scrub(f"{label} -> {response.status_code} {detail}", secrets)


def is_oro_error_document(response: requests.Response) -> bool:
    """Whether an error answer is Oro's own: a JSON:API ``errors`` list or an OAuth ``error``."""
    try:
        body = response.json()
    except ValueError:
        return False
    return bool(_error_list(body)) or (isinstance(body, Mapping) and bool(body.get("error")))


def edge_error_message(response: requests.Response, resource: str | None = None) -> str:
    """The message for a 403 that Oro did not write (empty or HTML body): a proxy or WAF."""
    label = resource or describe_request(response)
    host = url_host(getattr(response.request, "url", None) or response.url)
    return scrub(
        f"{label} -> {response.status_code} without a JSON:API body from {host} "
        f"({non_api_answer(response)}): likely a proxy/WAF in front of Oro blocked or rate-limited "
        "the request (Oro's own 403 is a JSON:API 'access denied exception'); retried with "
        "backoff as transient. If it persists, check the proxy/WAF rules for this client."
    )


def describe_request(response: requests.Response) -> str:
    """``"<METHOD> <resource path>"`` of the request behind ``response`` (no host, no query)."""
    request: requests.PreparedRequest | None = getattr(response, "request", None)
    method = str(getattr(request, "method", None) or "GET")
    url = str(getattr(request, "url", None) or response.url or "")
    path = url.split("?", 1)[0]
    if "://" in path:
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    marker = "/api/"
    if marker in path:
        path = path.split(marker, 1)[1]
    return f"{method} {path.strip('/')}"


def raise_for_oro_status(
    response: requests.Response,
    resource: str | None = None,
    *,
    secrets: Iterable[str | None] = (),
) -> None:
    """Raise the matching :class:`OroApiError` subclass if ``response`` is not 2xx/3xx.

    401 -> :class:`OroAuthError`; 429/5xx (see :data:`RETRIABLE_STATUSES`) and a 403 without
    Oro's error document (a proxy/WAF) -> :class:`OroRetriableError` (with ``retry_after`` from
    the header); other 4xx -> :class:`OroClientError`.
    """
    status = response.status_code
    if status < 400:
        return
    if status == 403 and not is_oro_error_document(response):
        raise OroRetriableError(
            edge_error_message(response, resource),
            status=status,
            resource=resource or describe_request(response),
            retry_after=retry_after_seconds(response),
        )
    message = oro_error_message(response, resource, secrets=secrets)
    try:
        errors = _error_list(response.json())
    except ValueError:
        errors = []
    clean = [{k: scrub(str(v)) if isinstance(v, str) else v for k, v in e.items()} for e in errors]
    label = resource or describe_request(response)
    if is_transient_status(status):
        raise OroRetriableError(
            message,
            status=status,
            resource=label,
            errors=clean,
            retry_after=retry_after_seconds(response),
        )
    if status == 401:
        raise OroAuthError(message, status=status, resource=label, errors=clean)
    raise OroClientError(message, status=status, resource=label, errors=clean)


# --------------------------------------------------------------------------------------------
# JSON:API helpers
# --------------------------------------------------------------------------------------------


def jsonapi_headers(*, write: bool = False) -> dict[str, str]:
    """Headers for a JSON:API request: ``Accept`` always, ``Content-Type`` when ``write``."""
    headers = {"Accept": JSONAPI_MEDIA_TYPE}
    if write:
        headers["Content-Type"] = JSONAPI_MEDIA_TYPE
    return headers


def filter_param(field: str, op: str | None = None) -> str:
    """Query key for an Oro filter: ``filter[field]`` or ``filter[field][op]``."""
    return f"filter[{field}]" if not op or op == "eq" else f"filter[{field}][{op}]"


def _filter_value(value: Any) -> str:
    if isinstance(value, datetime):
        return format_oro_datetime(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple | set | frozenset):
        return ",".join(_filter_value(v) for v in value)
    return str(value)


def build_filters(filters: Mapping[str, Any]) -> dict[str, str]:
    """Turn ``{"updatedAt": {"gte": dt}, "customer": [1, 2], "email": "a@b"}`` into query params.

    A plain value means ``eq`` (``filter[f]=v``); a mapping gives one param per operator
    (``filter[f][op]=v``); lists/tuples become Oro's comma-separated OR lists; datetimes are
    formatted with :func:`format_oro_datetime`; booleans as ``true``/``false``.
    """
    params: dict[str, str] = {}
    for field, spec in filters.items():
        if isinstance(spec, Mapping):
            for op, value in spec.items():
                params[filter_param(field, str(op))] = _filter_value(value)
        else:
            params[filter_param(field)] = _filter_value(spec)
    return params


def fields_params(sparse: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """``{"customerusers": ["email", "customer"]}`` -> ``{"fields[customerusers]": "email,customer"}``."""
    return {f"fields[{rtype}]": ",".join(names) for rtype, names in sparse.items()}


def format_oro_datetime(value: datetime) -> str:
    """UTC ``YYYY-MM-DDTHH:MM:SSZ`` (Oro's output format; naive datetimes are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_oro_datetime(value: str) -> datetime:
    """Parse an Oro/ISO-8601 datetime (``Z`` or offset; naive = UTC) into an aware UTC datetime."""
    return parse_iso_datetime(value).astimezone(UTC)


def relationship_ids(resource: Mapping[str, Any], name: str) -> list[str]:
    """Ids of relationship ``name`` of a resource object (``[]`` when absent/null/empty)."""
    rel = (resource.get("relationships") or {}).get(name)
    if not isinstance(rel, Mapping):
        return []
    data = rel.get("data")
    if isinstance(data, Mapping):
        return [str(data["id"])] if data.get("id") is not None else []
    if isinstance(data, list):
        return [str(d["id"]) for d in data if isinstance(d, Mapping) and d.get("id") is not None]
    return []


def relationship_id(resource: Mapping[str, Any], name: str) -> str | None:
    """Id of to-one relationship ``name`` (``None`` when absent or null)."""
    ids = relationship_ids(resource, name)
    return ids[0] if ids else None


def consents_by_name(doc: Mapping[str, Any]) -> dict[str, str]:
    """``{name: consent id}`` from a ``consents`` list document fetched with ``include=names``.

    A consent's ``names`` are localized fallback values; the default one has no ``localization``.
    Names are returned as Oro holds them; match them case-insensitively (``str.casefold``).
    """
    labels = {
        str(item.get("id")): (item.get("attributes") or {}).get("string")
        for item in doc.get("included") or []
        if isinstance(item, Mapping)
        and not ((item.get("relationships") or {}).get("localization") or {}).get("data")
    }
    found: dict[str, str] = {}
    for consent in doc.get("data") or []:
        for ref in ((consent.get("relationships") or {}).get("names") or {}).get("data") or []:
            label = labels.get(str(ref.get("id")))
            if isinstance(label, str):
                found.setdefault(label, str(consent.get("id")))
    return found


def flatten_resource(
    resource: Mapping[str, Any],
    *,
    to_one: Mapping[str, str] | None = None,
    to_many: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Flatten a JSON:API resource object into ``{"id": ..., **attributes, <rel ids>}``.

    Args:
        resource: one element of ``data``.
        to_one: ``{relationship name: output key}`` for to-one relationships, e.g.
            ``{"customer": "customer_id"}``; the value is the related id (str) or ``None``.
        to_many: same for to-many relationships; the value is a list of ids (``[]`` if none).

    Attribute names are kept as Oro sends them (camelCase). ``id`` is Oro's string id.
    Relationships not named in ``to_one``/``to_many`` are ignored.
    """
    row: dict[str, Any] = {"id": resource.get("id")}
    attributes = resource.get("attributes")
    if isinstance(attributes, Mapping):
        row.update(attributes)
    for rel, key in (to_one or {}).items():
        row[key] = relationship_id(resource, rel)
    for rel, key in (to_many or {}).items():
        row[key] = relationship_ids(resource, rel)
    return row


# --------------------------------------------------------------------------------------------
# OAuth2
# --------------------------------------------------------------------------------------------


@dataclass
class _Token:
    value: str
    expires_at: float  # time.monotonic() deadline


class _TokenSlot:
    """One cached token per (token_url, client_id), guarded by a lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.token: _Token | None = None
        self.fetch_count = 0


_CACHE: dict[tuple[str, str], _TokenSlot] = {}
_CACHE_LOCK = threading.Lock()


def clear_token_cache() -> None:
    """Forget every cached token (tests; a new process starts empty anyway)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def _slot(key: tuple[str, str]) -> _TokenSlot:
    with _CACHE_LOCK:
        slot = _CACHE.get(key)
        if slot is None:
            slot = _CACHE[key] = _TokenSlot()
        return slot


class OroOAuth2Authenticator(requests.auth.AuthBase):
    """OAuth2 bearer authenticator for Oro's ``/oauth2-token`` endpoint.

    Usage::

        auth = OroOAuth2Authenticator(base_url="https://shop.example.com",
                                      client_id="...", client_secret="...")
        session.auth = auth                     # or RESTStream.authenticator = auth
        ...
        if response.status_code == 401:          # token revoked/expired early
            auth.invalidate(response.request)   # next request gets a fresh token; retry once

    Args:
        base_url: site root (``https://host``); the token URL is ``base_url + token_path``.
        client_id / client_secret: the back-office OAuth application.
        grant_type: ``"client_credentials"`` (default) or ``"password"`` (then ``username``
            and ``password`` are required).
        token_path: default ``/oauth2-token`` (Oro's route, no ``/admin`` prefix).
        refresh_margin: seconds before expiry at which the token is refreshed (default 60;
            capped at half the token lifetime so very short tokens still get used).
        default_expires_in: lifetime assumed when the server omits ``expires_in`` (3600).
        timeout: HTTP timeout for the token request, seconds.
        max_tries: attempts for the token request on 429/5xx/connection errors.
        session: ``requests.Session`` for the token request (default: a private one).
        user_agent: optional ``User-Agent`` for the token request.

    The token is shared by every instance with the same (token URL, client_id) in this process,
    and fetching it is serialised by a lock, so many streams/threads make one token request.
    """

    def __init__(
        self,
        *,
        base_url: str,
        client_id: str,
        client_secret: str,
        grant_type: str = "client_credentials",
        username: str | None = None,
        password: str | None = None,
        token_path: str = "/oauth2-token",  # noqa: S107 - a URL path, not a secret
        refresh_margin: float = 60.0,
        default_expires_in: float = 3600.0,
        timeout: float = 30.0,
        max_tries: int = 5,
        session: requests.Session | None = None,
        user_agent: str | None = None,
    ) -> None:
        if grant_type not in {"client_credentials", "password"}:
            msg = (
                f"Unsupported OAuth2 grant_type {grant_type!r} (use client_credentials or password)"
            )
            raise ValueError(msg)
        if grant_type == "password" and not (username and password):
            msg = "The password grant needs both 'username' and 'password'"
            raise ValueError(msg)
        self.token_url = base_url.rstrip("/") + "/" + token_path.lstrip("/")
        self.client_id = client_id
        self._client_secret = client_secret
        self.grant_type = grant_type
        self._username = username
        self._password = password
        self.refresh_margin = refresh_margin
        self.default_expires_in = default_expires_in
        self.timeout = timeout
        self.max_tries = max(1, max_tries)
        self._session = session
        self.user_agent = user_agent
        self._slot = _slot((self.token_url, client_id))

    # -- public API -------------------------------------------------------------------------

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in logs/messages (secret, password, current token)."""
        values = [self._client_secret, self._password or ""]
        token = self._slot.token
        if token is not None:
            values.append(token.value)
        return tuple(v for v in values if v)

    @property
    def fetch_count(self) -> int:
        """How many tokens were fetched for this (token URL, client_id) in this process."""
        return self._slot.fetch_count

    def get_token(self) -> str:
        """Return a valid access token, fetching a new one if missing or about to expire."""
        slot = self._slot
        with slot.lock:
            token = slot.token
            if token is None or time.monotonic() >= token.expires_at:
                token = self._fetch_locked()
            return token.value

    def invalidate(self, request: requests.PreparedRequest | str | None = None) -> None:
        """Drop the cached token after a 401.

        Pass the failed request (or the token it carried) so that a token already refreshed by
        another stream/thread is not thrown away again; with no argument the cached token is
        always dropped.
        """
        used: str | None
        if isinstance(request, requests.PreparedRequest):
            header = request.headers.get("Authorization", "")
            used = header[7:] if header.startswith("Bearer ") else None
        else:
            used = request
        slot = self._slot
        with slot.lock:
            if slot.token is not None and (used is None or slot.token.value == used):
                slot.token = None

    @override
    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self.get_token()}"
        return r

    # -- internals --------------------------------------------------------------------------

    def _body(self) -> dict[str, str]:
        body = {
            "grant_type": self.grant_type,
            "client_id": self.client_id,
            "client_secret": self._client_secret,
        }
        if self.grant_type == "password":
            body["username"] = self._username or ""
            body["password"] = self._password or ""
        return body

    def _fetch_locked(self) -> _Token:
        session = self._session or requests.Session()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.user_agent:
            headers["User-Agent"] = self.user_agent
        secrets = (self._client_secret, self._password)

        def once() -> _Token:
            try:
                response = session.post(
                    self.token_url, json=self._body(), headers=headers, timeout=self.timeout
                )
            except TRANSPORT_ERRORS as exc:
                tls = tls_error(exc, self.token_url, "POST oauth2-token")
                if tls is not None:
                    raise tls from exc
                msg = f"POST oauth2-token failed: {type(exc).__name__}"
                raise _TokenRetryError(msg, resource="POST oauth2-token") from exc
            if response.status_code == 200:
                return self._store_locked(response)
            message = oro_error_message(response, "POST oauth2-token", secrets=secrets)
            edge = response.status_code == 403 and not is_oro_error_document(response)
            if edge:
                message = edge_error_message(response, "POST oauth2-token")
            elif response.status_code not in RETRIABLE_STATUSES:
                raise OroAuthError(message, status=response.status_code, resource="POST oauth2-token")
            raise _TokenRetryError(
                message,
                status=response.status_code,
                resource="POST oauth2-token",
                retry_after=retry_after_seconds(response),
            )

        return RetryPolicy(self.max_tries, TOKEN_BACKOFF_SECONDS).call(once, retry_on=(_TokenRetryError,))

    def _store_locked(self, response: requests.Response) -> _Token:
        try:
            payload = response.json()
            access_token = str(payload["access_token"])
        except (ValueError, KeyError, TypeError) as exc:
            msg = "POST oauth2-token -> 200 without an access_token in a JSON body"
            raise OroAuthError(msg, status=200, resource="POST oauth2-token") from exc
        try:
            lifetime = float(payload.get("expires_in") or self.default_expires_in)
        except (TypeError, ValueError):
            lifetime = self.default_expires_in
        margin = min(self.refresh_margin, lifetime / 2)
        slot = self._slot
        slot.fetch_count += 1
        slot.token = _Token(access_token, time.monotonic() + lifetime - margin)
        return slot.token
