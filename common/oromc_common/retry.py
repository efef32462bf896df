"""The one retry policy of every connector: what is transient, how long to wait, how many tries.

:class:`RetryPolicy` is built from the shared settings (``max_tries``, ``backoff_factor_seconds``,
``backoff_max_seconds``, see :mod:`oromc_common.settings`) and used by every HTTP client:

* :meth:`RetryPolicy.call` runs a function until it succeeds, raises a non-transient error or runs
  out of tries (the Oro token request, :class:`oromc_common.mailchimp.MailchimpClient`,
  target-orocommerce's ``OroWriter``);
* :meth:`RetryPolicy.waits` is the same schedule as a ``backoff`` wait generator (the singer-sdk's
  ``RESTStream.backoff_wait_generator`` of tap-orocommerce and of tap-mailchimp-engagement's
  ``MailchimpRESTStream`` delegate to it).

The wait after failed attempt *n* (1, 2, ...) is ``backoff_factor_seconds * 2**(n-1)``, capped at
``backoff_max_seconds`` and then jittered; when the server sent ``Retry-After`` (seconds or an HTTP
date) that wait is used instead, capped at ``backoff_max_seconds`` and not jittered (the server said
when). :func:`is_transient_status` and :data:`TRANSPORT_ERRORS` say which answers are worth another
try; each API's client adds its own exceptions (a 403 from a proxy, Mailchimp's 403 without a body).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import requests

from oromc_common.http import retry_after_seconds

__all__ = [
    "TRANSIENT_STATUSES",
    "TRANSPORT_ERRORS",
    "RetryPolicy",
    "full_jitter",
    "half_jitter",
    "is_transient_status",
    "no_jitter",
    "retry_after_of",
]

T = TypeVar("T")

TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
"""HTTP statuses worth another try (plus every other 5xx, see :func:`is_transient_status`)."""

TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)
"""No (complete) answer arrived: transient, unless it is a lasting TLS failure
(:func:`oromc_common.http.tls_failure` tells)."""


def is_transient_status(status: int) -> bool:
    """True for 408, 425, 429 and every 5xx: another try may succeed."""
    return status in TRANSIENT_STATUSES or status >= 500


def no_jitter(value: float) -> float:
    """The wait as computed."""
    return value


def full_jitter(value: float) -> float:
    """Anywhere between 0 and the wait (AWS's "full jitter"; ``backoff.full_jitter``)."""
    return random.uniform(0.0, value)


def half_jitter(value: float) -> float:
    """Between half the wait and the wait."""
    return value * (0.5 + random.random() / 2)


def retry_after_of(error: BaseException | None) -> float | None:
    """Seconds the server asked for with the failure ``error``, or None.

    Read from the error's ``retry_after`` attribute (the connectors' own errors) or from the
    ``Retry-After`` header of its ``response`` (``requests`` and singer-sdk errors).
    """
    if error is None:
        return None
    hinted = getattr(error, "retry_after", None)
    if isinstance(hinted, int | float):
        return max(0.0, float(hinted))
    response = getattr(error, "response", None)
    if isinstance(response, requests.Response):
        return retry_after_seconds(response)
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a transient failure.

    Attributes:
        max_tries: attempts in all (1 = no retry).
        backoff_factor_seconds: the wait after the first failed attempt; it doubles after each one.
        backoff_max_seconds: no wait is longer, ``Retry-After`` included.
        jitter: spreads a computed wait (never a ``Retry-After``) so clients do not retry in step.
    """

    max_tries: int = 5
    backoff_factor_seconds: float = 0.5
    backoff_max_seconds: float = 60.0
    jitter: Callable[[float], float] = field(default=no_jitter, compare=False)

    def __post_init__(self) -> None:
        """Keep the numbers usable: at least one try, no negative waits."""
        object.__setattr__(self, "max_tries", max(1, int(self.max_tries)))
        object.__setattr__(self, "backoff_factor_seconds", max(0.0, self.backoff_factor_seconds))
        object.__setattr__(self, "backoff_max_seconds", max(0.0, self.backoff_max_seconds))

    def backoff(self, attempt: int) -> float:
        """The un-jittered wait after failed attempt ``attempt`` (1-based), capped."""
        exponent = min(max(attempt, 1) - 1, 64)
        return min(self.backoff_max_seconds, self.backoff_factor_seconds * 2.0**exponent)

    def wait(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt``: ``Retry-After`` (capped) or backoff."""
        if retry_after is not None:
            return min(max(0.0, retry_after), self.backoff_max_seconds)
        return self.jitter(self.backoff(attempt))

    def wait_after(self, error: BaseException | None, attempt: int) -> float:
        """:meth:`wait` for the failure ``error`` (its ``Retry-After``, see :func:`retry_after_of`)."""
        return self.wait(attempt, retry_after_of(error))

    def waits(self, *, jittered: bool = False) -> Generator[float, BaseException | None, None]:
        """This schedule as a ``backoff`` wait generator (primed with ``send(None)``, then sent
        each exception): the singer-sdk's ``RESTStream.backoff_wait_generator``.

        Un-jittered by default: ``backoff`` applies the stream's ``backoff_jitter`` on top (a
        ``Retry-After`` included). ``jittered=True``: this policy's own ``jitter`` on the computed
        waits, never on a ``Retry-After``; pair it with a ``backoff_jitter`` of :func:`no_jitter`.
        """
        policy = self if jittered else RetryPolicy(
            self.max_tries, self.backoff_factor_seconds, self.backoff_max_seconds
        )
        attempt = 0
        error = yield 0.0
        while True:
            attempt += 1
            error = yield policy.wait_after(error, attempt)

    def call(
        self,
        func: Callable[[], T],
        *,
        retry_on: tuple[type[BaseException], ...],
        on_retry: Callable[[BaseException, int, float], Any] | None = None,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> T:
        """Return ``func()``, retrying it on ``retry_on`` errors; the last one is raised.

        ``on_retry(error, attempt, wait)`` is called before each wait (e.g. to log it).
        """
        attempt = 1
        while True:
            try:
                return func()
            except retry_on as error:
                if attempt >= self.max_tries:
                    raise
                wait = self.wait_after(error, attempt)
                if on_retry is not None:
                    on_retry(error, attempt, wait)
                sleep(wait)
                attempt += 1
