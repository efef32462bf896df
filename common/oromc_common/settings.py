"""Settings every connector shares: one name per concept, declared once, bounds in the JSON schema.

The four connectors spell the same concept the same way (the Singer SDK's and Meltano Hub's usual
names)::

    request_timeout          seconds before one HTTP request gives up
    max_tries                attempts per request, the first one included
    backoff_factor_seconds   first wait between attempts (doubles per attempt, jittered)
    backoff_max_seconds      longest single wait (also caps Retry-After)
    max_connections          requests in flight at once
    page_size                rows per page of the API's list reads
    rejects_path             JSON-lines file of rejected records (oromc_common.report)
    exclude_tag_prefixes     tags with these prefixes belong to the other direction: not synced

Each connector builds its ``config_jsonschema`` from these builders with its own defaults and bounds
(the APIs differ: Mailchimp allows 10 connections, Oro pages hold 1000 rows).

Names used before this spelling was fixed keep working for one release: a connector lists them in
``renamed_settings`` (:class:`Renamed`), and :func:`apply_renamed_settings` moves an old name's value to the
new name, before the configuration is validated, with a warning naming the new one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

from singer_sdk import typing as th

#: Seconds: one request may never wait longer than this for the server (the longest sane timeout).
MAX_REQUEST_TIMEOUT = 3600
#: Attempts per request: more than this would hide an outage behind hours of retries.
MAX_TRIES = 50
#: Seconds: the longest single wait between attempts.
MAX_BACKOFF_SECONDS = 3600


def request_timeout_property(default: float, detail: str = "") -> th.Property[Any]:
    """``request_timeout``: seconds before one HTTP request gives up."""
    return th.Property(
        "request_timeout",
        th.NumberType(minimum=1, maximum=MAX_REQUEST_TIMEOUT),
        default=default,
        description=f"Seconds one HTTP request may take before it fails and is retried (1-{MAX_REQUEST_TIMEOUT})."
        + (f" {detail}" if detail else ""),
    )


def max_tries_property(default: int, retried: str) -> th.Property[Any]:
    """``max_tries``: attempts per request, the first included; ``retried`` names what is retried."""
    return th.Property(
        "max_tries",
        th.IntegerType(minimum=1, maximum=MAX_TRIES),
        default=default,
        description=f"Attempts per request, the first one included (1-{MAX_TRIES}), on {retried}; "
        "then the request fails.",
    )


def backoff_factor_seconds_property(default: float) -> th.Property[Any]:
    """``backoff_factor_seconds``: the first wait between attempts."""
    return th.Property(
        "backoff_factor_seconds",
        th.NumberType(minimum=0, maximum=MAX_BACKOFF_SECONDS),
        default=default,
        description="First wait between attempts, in seconds; it doubles per attempt (jittered) "
        "when the server sends no Retry-After.",
    )


def backoff_max_seconds_property(default: float) -> th.Property[Any]:
    """``backoff_max_seconds``: the longest single wait between attempts."""
    return th.Property(
        "backoff_max_seconds",
        th.NumberType(minimum=0, maximum=MAX_BACKOFF_SECONDS),
        default=default,
        description="Longest single wait between attempts, in seconds; also caps Retry-After.",
    )


def max_connections_property(default: int, maximum: int, description: str) -> th.Property[Any]:
    """``max_connections``: requests in flight at once (1 to ``maximum``)."""
    return th.Property(
        "max_connections",
        th.IntegerType(minimum=1, maximum=maximum),
        default=default,
        description=description,
    )


def page_size_property(default: int, maximum: int, description: str) -> th.Property[Any]:
    """``page_size``: rows per page of the API's list reads (1 to ``maximum``)."""
    return th.Property(
        "page_size",
        th.IntegerType(minimum=1, maximum=maximum),
        default=default,
        description=description,
    )


def rejects_path_property(default: str | None = None) -> th.Property[Any]:
    """``rejects_path``: the JSON-lines rejects report (:class:`oromc_common.report.RunReport`)."""
    return th.Property(
        "rejects_path",
        th.StringType,
        default=default,
        description="JSON-lines file that receives every rejected record (stream, key, reason, "
        "field) and every action a person has to take; "
        + ("none when unset." if default is None else "set it to another path to move it."),
    )


def connection_properties(
    *,
    request_timeout: float,
    max_tries: int,
    retried: str,
    backoff_factor_seconds: float,
    backoff_max_seconds: float | None = None,
    timeout_detail: str = "",
) -> list[th.Property[Any]]:
    """The HTTP settings of a connector: timeout, attempts and the waits between them."""
    found = [
        request_timeout_property(request_timeout, timeout_detail),
        max_tries_property(max_tries, retried),
        backoff_factor_seconds_property(backoff_factor_seconds),
    ]
    if backoff_max_seconds is not None:
        found.append(backoff_max_seconds_property(backoff_max_seconds))
    return found


# -- old names ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Renamed:
    """A setting's former name; ``convert`` maps an old value when the meaning changed too."""

    old: str
    new: str
    convert: Callable[[Any], Any] | None = None
    note: str = ""


def retries_to_tries(retries: Any) -> Any:
    """``max_retries`` (retries after the first attempt) as ``max_tries`` (attempts).

    A value that is not a whole number is passed on unchanged, for the schema validation to name.
    """
    if isinstance(retries, bool) or not isinstance(retries, int):
        return retries
    return retries + 1


def apply_renamed_settings(
    config: MutableMapping[str, Any], renamed: Iterable[Renamed], logger: logging.Logger
) -> list[str]:
    """Move the values of former setting names to the current ones, warning once per name.

    A value under the current name wins over one under the former name. Returns the warnings logged.
    """
    warnings: list[str] = []
    for item in renamed:
        if item.old not in config:
            continue
        value = config.pop(item.old)
        if item.new in config:
            message = (
                f"Setting '{item.old}' is deprecated and ignored: '{item.new}' is also set. "
                f"Remove '{item.old}'."
            )
        else:
            config[item.new] = item.convert(value) if item.convert else value
            message = (
                f"Setting '{item.old}' is deprecated and will be removed in the next release: "
                f"use '{item.new}'" + (f" ({item.note})" if item.note else "") + "."
            )
        logger.warning(message)
        warnings.append(message)
    return warnings
