"""Process-wide limit on simultaneous Mailchimp connections per account key.

Mailchimp allows at most 10 simultaneous connections per account and answers the 11th with 429 (or, at high
volume, a body-less 403). Every client and thread in one process that talks to the same account must
therefore share one limiter. This module keeps one :class:`ConnectionGovernor` per key (the key is stored
only as a SHA-256 fingerprint) and offers :func:`run_concurrently` to fan a list of calls out through it.

Usage::

    gov = get_governor(api_key, max_connections=8)
    with gov.slot():                      # blocks while `limit` requests are in flight
        session.get(...)
    results = run_concurrently([lambda: client.get(p) for p in paths], max_workers=gov.limit)

Rules:
    * default limit :data:`DEFAULT_MAX_CONNECTIONS` (8), never above :data:`HARD_MAX_CONNECTIONS` (10);
    * asking again for the same key with a *lower* limit lowers the shared limit (the strictest caller
      wins); a higher limit never raises it;
    * :attr:`ConnectionGovernor.peak` records the highest number of simultaneous slots seen.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

DEFAULT_MAX_CONNECTIONS = 8
HARD_MAX_CONNECTIONS = 10

T = TypeVar("T")


def clamp_connections(value: int | None) -> int:
    """Return a usable connection limit: ``None`` -> default, clamped to ``1..HARD_MAX_CONNECTIONS``."""
    if value is None:
        return DEFAULT_MAX_CONNECTIONS
    return max(1, min(int(value), HARD_MAX_CONNECTIONS))


class ConnectionGovernor:
    """A counting limiter (like a bounded semaphore) whose limit can only be lowered."""

    def __init__(self, limit: int = DEFAULT_MAX_CONNECTIONS) -> None:
        """Create a governor allowing ``limit`` (clamped to 1..10) simultaneous slots."""
        self._limit = clamp_connections(limit)
        self._in_flight = 0
        self._peak = 0
        self._cond = threading.Condition()

    @property
    def limit(self) -> int:
        """Current maximum number of simultaneous slots."""
        return self._limit

    @property
    def in_flight(self) -> int:
        """Number of slots held right now."""
        return self._in_flight

    @property
    def peak(self) -> int:
        """Highest number of simultaneous slots held since creation."""
        return self._peak

    def lower_limit(self, limit: int) -> None:
        """Lower the limit to ``limit`` if that is stricter than the current one."""
        with self._cond:
            self._limit = min(self._limit, clamp_connections(limit))

    def acquire(self) -> None:
        """Block until a slot is free, then take it."""
        with self._cond:
            while self._in_flight >= self._limit:
                self._cond.wait()
            self._in_flight += 1
            self._peak = max(self._peak, self._in_flight)

    def release(self) -> None:
        """Give a slot back."""
        with self._cond:
            if self._in_flight <= 0:
                msg = "ConnectionGovernor released more often than acquired"
                raise RuntimeError(msg)
            self._in_flight -= 1
            self._cond.notify()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot for the duration of the ``with`` block."""
        self.acquire()
        try:
            yield
        finally:
            self.release()


_REGISTRY: dict[str, ConnectionGovernor] = {}
_REGISTRY_LOCK = threading.Lock()


def _fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def get_governor(key: str, max_connections: int | None = None) -> ConnectionGovernor:
    """Return the process-wide governor for an account key (API key or OAuth token).

    The first call creates it with ``max_connections`` (default 8, capped at 10); later calls may lower
    the limit but never raise it.
    """
    fp = _fingerprint(key)
    limit = clamp_connections(max_connections)
    with _REGISTRY_LOCK:
        gov = _REGISTRY.get(fp)
        if gov is None:
            gov = ConnectionGovernor(limit)
            _REGISTRY[fp] = gov
        else:
            gov.lower_limit(limit)
        return gov


def run_concurrently(calls: Iterable[Callable[[], T]], max_workers: int) -> list[T]:
    """Run zero-argument callables on a thread pool and return their results in input order.

    ``max_workers`` is clamped to 1..10; the callables are expected to take a governor slot themselves
    (every :class:`oromc_common.mailchimp.MailchimpClient` request does), so the pool size only bounds
    threads. The first exception raised by a call is re-raised after all started calls have finished;
    calls not yet started are cancelled.
    """
    call_list = list(calls)
    if not call_list:
        return []
    workers = min(clamp_connections(max_workers), len(call_list))
    if workers == 1:
        return [call() for call in call_list]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mc-governor") as pool:
        futures = [pool.submit(call) for call in call_list]
        results: list[T] = []
        first_error: BaseException | None = None
        for fut in futures:
            if first_error is not None:
                fut.cancel()
                continue
            try:
                results.append(fut.result())
            except BaseException as exc:
                first_error = exc
                for other in futures:
                    other.cancel()
        if first_error is not None:
            raise first_error
        return results
