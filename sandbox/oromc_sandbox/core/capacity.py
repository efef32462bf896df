"""Worker slots of an API server, like a PHP-FPM pool behind nginx.

``workers`` requests are processed at once; further requests wait in a FIFO queue of at most
``backlog`` entries; a request arriving when the queue is full is refused (the caller answers 503).
``workers`` 0 means unlimited (requests are still counted as busy, so the peak shows the load).
Both values are read on every request, so `/_sandbox/config` can change them while serving.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from oromc_sandbox.core.state import CapacityCounters


class WorkerPool:
    """FIFO admission to a bounded number of worker slots (one event loop, no threads).

    The pool keeps the live gauges (busy, queued); ``counters()`` returns where the statistics go
    (a fresh object after `/_sandbox/stats/reset`, while the gauges stay true).
    """

    def __init__(self, counters: Callable[[], CapacityCounters]) -> None:
        self.counters = counters
        self.busy = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def queued(self) -> int:
        """Requests waiting for a worker."""
        return len(self._waiters)

    async def acquire(self, workers: int, backlog: int) -> bool:
        """Take a worker slot, waiting in the queue if needed; False when the queue is full."""
        if workers <= 0 or (self.busy < workers and not self._waiters):
            self._take()
            return True
        c = self.counters()
        if len(self._waiters) >= backlog:
            c.rejected += 1
            return False
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        c.queued_requests += 1
        c.peak_queued = max(c.peak_queued, len(self._waiters))
        started = time.perf_counter()
        try:
            await waiter  # release() took the slot for us
        except asyncio.CancelledError:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            elif not waiter.cancelled():
                self.release(workers)  # the slot was handed over just as the client went away
            raise
        waited = (time.perf_counter() - started) * 1000
        c = self.counters()
        c.queue_wait_ms_total += waited
        c.queue_wait_ms_max = max(c.queue_wait_ms_max, waited)
        return True

    def release(self, workers: int) -> None:
        """Give a slot back; the oldest waiters take the free slots (fewer if ``workers`` shrank)."""
        self.busy -= 1
        while self._waiters and (workers <= 0 or self.busy < workers):
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._take()
                waiter.set_result(None)

    def _take(self) -> None:
        self.busy += 1
        c = self.counters()
        c.peak_busy = max(c.peak_busy, self.busy)
