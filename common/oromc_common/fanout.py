"""The one bounded fan-out: run many calls on at most ``max_workers`` threads, results in order.

:class:`BoundedPool` keeps its threads for reuse (target-orocommerce's ``OroWriter.run_parallel``
fans out every lookup and write batch of a run through one; tap-mailchimp-engagement's
``MailchimpContext.pool`` reads pages ahead with :meth:`BoundedPool.stream`, which yields each result
as soon as the ones before it are in, with a bounded number of calls pending; tap-orocommerce reads
id ranges with it and runs single lookups in the background with :meth:`BoundedPool.submit`);
:func:`run_bounded` is the one-shot
form (:func:`oromc_common.governor.run_concurrently`, the Mailchimp side). The calls are expected to
take their own connection slot (the Mailchimp governor, Oro's adaptive limit): the pool only bounds
threads.

Errors: an exception for which ``keep(error)`` is true takes the call's place in the results; any
other *stops* the fan-out: calls not started yet are cancelled, calls already running finish, and
the first stopping error (in input order) is raised.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar, cast

__all__ = ["BoundedPool", "run_bounded"]

T = TypeVar("T")


class BoundedPool:
    """At most ``max_workers`` calls in flight; the threads are started on first use and kept."""

    def __init__(self, max_workers: int, *, name: str) -> None:
        self.max_workers = max(1, int(max_workers))
        self.name = name
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def run(
        self,
        calls: Iterable[Callable[[], T]],
        *,
        keep: Callable[[BaseException], bool] | None = None,
    ) -> list[T | BaseException]:
        """Run ``calls`` and return their results (or kept errors) in input order."""
        call_list = list(calls)
        if len(call_list) <= 1 or self.max_workers == 1:
            return _run_in_turn(call_list, keep)
        futures = [self._pool().submit(call) for call in call_list]
        return _collect(futures, keep)

    def stream(self, calls: Iterable[Callable[[], T]], window: int | None = None) -> Iterator[T]:
        """Yield the results of ``calls`` in input order while later calls run ahead.

        At most ``window`` calls (default: twice ``max_workers``) are pending at a time, and ``calls``
        is read lazily, so a long or endless iterable is fine. An error is raised when its result's
        turn comes; calls not started yet are then cancelled, as they are when the consumer stops
        early (closing the generator).
        """
        limit = max(1, window if window is not None else 2 * self.max_workers)
        pending: deque[Future[T]] = deque()
        iterator = iter(calls)
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < limit:
                    call = next(iterator, None)
                    if call is None:
                        exhausted = True
                        break
                    pending.append(self._pool().submit(call))
                if not pending:
                    return
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()

    def submit(self, call: Callable[[], T]) -> Future[T]:
        """Start one call in the background (on one of the threads); its result or error comes
        from the returned future."""
        return self._pool().submit(call)

    def close(self) -> None:
        """Stop the threads (after the calls in flight finish)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self.max_workers, thread_name_prefix=self.name
                )
            return self._executor


def run_bounded(calls: Iterable[Callable[[], T]], max_workers: int, *, name: str) -> list[T]:
    """Run ``calls`` on at most ``max_workers`` threads started for them; every error stops the
    fan-out (see the module docstring) and the first is raised."""
    call_list = list(calls)
    pool = BoundedPool(min(max(1, max_workers), max(1, len(call_list))), name=name)
    try:
        return cast("list[T]", pool.run(call_list))
    finally:
        pool.close()


def _kept(error: BaseException, keep: Callable[[BaseException], bool] | None) -> bool:
    return keep is not None and keep(error)


def _run_in_turn(
    calls: Sequence[Callable[[], T]], keep: Callable[[BaseException], bool] | None
) -> list[T | BaseException]:
    results: list[T | BaseException] = []
    for call in calls:
        try:
            results.append(call())
        except BaseException as error:
            if not _kept(error, keep):
                raise
            results.append(error)
    return results


def _collect(
    futures: Sequence[Future[T]], keep: Callable[[BaseException], bool] | None
) -> list[T | BaseException]:
    results: list[T | BaseException] = []
    stop: BaseException | None = None
    for future in futures:
        if stop is not None:
            future.cancel()
            continue
        error = future.exception()
        if error is None:
            results.append(future.result())
        elif _kept(error, keep):
            results.append(error)
        else:
            stop = error
            for other in futures:
                other.cancel()
    if stop is not None:
        for future in futures:  # let the calls already running finish before raising
            if not future.cancelled():
                future.exception()
        raise stop
    return results
