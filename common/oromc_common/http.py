"""HTTP policy shared by every connector: secure URLs, Retry-After, redaction."""

from __future__ import annotations

import email.utils
import ipaddress
import re
import time
from collections.abc import Iterable
from urllib.parse import urlsplit

import requests

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
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, min(seconds, cap))


_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+\-']+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Remove secrets and e-mail addresses from a message meant for logs or exceptions."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return _EMAIL_RE.sub("<email>", text)
