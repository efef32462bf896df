"""HTTP policy shared by every connector: secure URLs, TLS failures, non-JSON error answers,
Retry-After, redaction."""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
import time
from collections.abc import Iterable, Iterator
from urllib.parse import urlsplit

import requests

from oromc_common.dates import parse_http_date

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


class InsecureURLError(ValueError):
    """A URL that would send credentials or personal data over plain HTTP to a remote host."""


def is_loopback_host(host: str | None) -> bool:
    """Return True when ``host`` names this machine (localhost, 127.0.0.0/8, ::1)."""
    if not host:
        return False
    name = host.strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def require_secure_url(url: str, setting_name: str) -> str:
    """Validate a base URL: ``https://`` anywhere, ``http://`` only to a loopback host.

    Returns the URL without a trailing slash. Raises ``InsecureURLError`` naming the setting.
    """
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        msg = f"Setting '{setting_name}' must be an absolute http(s) URL, got {url!r}."
        raise InsecureURLError(msg)
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        msg = (
            f"Setting '{setting_name}' uses plain HTTP to a non-loopback host "
            f"({parts.hostname}); use https:// (plain HTTP is accepted only for 127.0.0.1/localhost)."
        )
        raise InsecureURLError(msg)
    return url.rstrip("/")


def url_host(url: str | None) -> str:
    """``host`` or ``host:port`` of a URL (no credentials, path or query), for messages."""
    parts = urlsplit(url or "")
    host = parts.hostname or "the server"
    return f"{host}:{parts.port}" if parts.port else host


# -- TLS -----------------------------------------------------------------------------------------

CA_BUNDLE_HINT = (
    "If the server's certificate comes from a private CA, set the environment variable "
    "REQUESTS_CA_BUNDLE to a PEM file containing that CA."
)

_TLS_DROPPED = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError)


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps (args, ``reason``, ``__cause__``, ``__context__``)."""
    stack, seen = [exc], set()
    while stack:
        error = stack.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        yield error
        wrapped = [*error.args, getattr(error, "reason", None), error.__cause__, error.__context__]
        stack += [e for e in wrapped if isinstance(e, BaseException)]


def tls_failure(exc: BaseException, url: str | None) -> str | None:
    """The message for a TLS failure that retrying cannot fix, else None.

    ``"certificate verify failed for HOST: <why>. ..."`` (with the CA-bundle hint) for an untrusted,
    expired or mismatched certificate; ``"TLS handshake with HOST failed: <why>"`` for other TLS
    errors (e.g. an ``https://`` URL pointing at a plain-HTTP port). None when ``exc`` is not a
    TLS error, or is a connection dropped during the handshake (a transport error: retry it).
    """
    chain = list(exception_chain(exc))
    tls_errors = [e for e in chain if isinstance(e, ssl.SSLError)]
    if not tls_errors or any(isinstance(e, _TLS_DROPPED) for e in tls_errors):
        return None
    host = url_host(url)
    verify = next((e for e in tls_errors if isinstance(e, ssl.SSLCertVerificationError)), None)
    if verify is not None:
        why = verify.verify_message or verify.reason or "the certificate is not trusted"
        return f"certificate verify failed for {host}: {why}. Not retried. {CA_BUNDLE_HINT}"
    first = tls_errors[0]
    why = first.reason or first.strerror or type(first).__name__
    return (
        f"TLS handshake with {host} failed: {why}. Not retried: check that the URL's port serves "
        "HTTPS and the server accepts TLS 1.2 or later."
    )


def env_ca_bundle() -> str | None:
    """The CA bundle requests takes from the environment (``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``)."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None


def honour_env_ca_bundle(session: requests.Session) -> requests.Session:
    """Make a session that is driven by ``Session.send`` use the environment's CA bundle.

    ``Session.request`` reads ``REQUESTS_CA_BUNDLE`` itself; ``Session.send`` (the singer-sdk's
    REST streams) only uses ``session.verify``, so set it there too.
    """
    bundle = env_ca_bundle()
    if bundle and session.verify is True:
        session.verify = bundle
    return session


# -- error answers without the API's own document --------------------------------------------------


def non_api_answer(response: requests.Response) -> str:
    """``"text/html, 162 bytes"`` / ``"empty body"``: what came back instead of the API's JSON."""
    size = len(response.content or b"")
    if not size:
        return "empty body"
    kind = (response.headers.get("Content-Type") or "no content type").split(";", 1)[0].strip()
    return f"{kind}, {size} bytes"


def retry_after_seconds(response: requests.Response | None, *, cap: float = 300.0) -> float | None:
    """Seconds the server asked us to wait (``Retry-After`` as seconds or HTTP date), capped.

    Returns None when the header is absent or unparsable.
    """
    if response is None:
        return None
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        when = parse_http_date(value)
        if when is None:
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, min(seconds, cap))


_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+\-'!#$&*/=?^`{|}~]+@[\w.\-]+\.(?:[^\W\d_]{2,}|xn--[A-Za-z0-9-]+)")


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Remove secrets and e-mail addresses from a message meant for logs or exceptions."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return _EMAIL_RE.sub("<email>", text)
