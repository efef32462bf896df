"""Adaptive concurrency towards Oro: AIMD on latency and overload answers.

Oro publishes no rate limit. What bounds it is its PHP-FPM pool: a fixed number of workers, a queue
in front of them and, once the queue is full, a 503 from the web server. A client that sends more
requests than there are free workers only makes them wait in the queue (latency rises); one that
sends fewer leaves workers idle. :class:`AdaptiveLimit` looks for the edge, like TCP's congestion
window:

* **slow start**: from half the ceiling, until the first sign of overload, the limit grows by one
  per answer (it doubles every round trip);
* **additive increase**: afterwards by one per round trip (``1 / limit`` per answer), while the
  latency of a kind of request stays within ``rise`` times the lowest seen for that kind;
* **multiplicative decrease**: a 503/429 or a latency above ``rise`` times the lowest halves the
  limit, at most once per round trip (answers to requests sent before the last decrease do not
  count again);
* the limit stays within ``[1, ceiling]`` (``ceiling`` = the ``max_connections`` setting).

A *kind* of request is its method, path and number of records (a Batch API request of 100
records is slower than one of 10 without any queueing). :meth:`AdaptiveLimit.slot` is the gate every
request passes: it blocks while ``limit`` requests are in flight. ``adaptive=False`` keeps the limit
fixed at ``initial`` (for comparisons).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

#: A latency this many times the lowest seen for the same kind of request means "queueing".
LATENCY_RISE = 2.0
#: Factor applied to the limit on overload.
DECREASE = 0.5
#: Statuses meaning "the server is full": PHP-FPM's queue (503 from nginx) or a rate limiter in front.
OVERLOAD_STATUSES = frozenset({429, 503})


@dataclass
class Ticket:
    """One request through the gate: when it was let in (for "sent before the last decrease")."""

    kind: str
    started: float
    done: bool = False


class AdaptiveLimit:
    """AIMD limit on requests in flight, with a blocking gate (thread-safe)."""

    def __init__(
        self,
        ceiling: int,
        *,
        initial: int | None = None,
        adaptive: bool = True,
        rise: float = LATENCY_RISE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ceiling = max(1, ceiling)
        self.adaptive = adaptive
        self.rise = rise
        self.clock = clock
        start = max(1, self.ceiling // 2) if initial is None else initial
        self._limit = float(max(1, min(self.ceiling, start)))
        self._slow_start = adaptive
        self._baseline: dict[str, float] = {}
        self._last_decrease = float("-inf")
        self._in_flight = 0
        self._cond = threading.Condition()
        self.peak_in_flight = 0
        self.peak_limit = int(self._limit)
        self.decreases = 0
        self.overloads = 0

    @property
    def limit(self) -> int:
        """Requests allowed in flight now."""
        with self._cond:
            return int(self._limit)

    @property
    def in_flight(self) -> int:
        """Requests in flight now."""
        with self._cond:
            return self._in_flight

    # -- the gate ---------------------------------------------------------------------------
    @contextmanager
    def slot(self, kind: str) -> Iterator[Ticket]:
        """Wait for room under the limit, hold it for one request; the caller reports with :meth:`observe`."""
        with self._cond:
            while self._in_flight >= int(self._limit):
                self._cond.wait()
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
            ticket = Ticket(kind, self.clock())
        try:
            yield ticket
        finally:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()

    def observe(self, ticket: Ticket, *, overloaded: bool, measured: bool = True) -> None:
        """Feed one answer back: whether the server was full and (``measured``) its latency.

        An unmeasured answer (a read, whose time depends on the rows it returns, or a broken
        connection) says nothing about queueing: it only grows the limit in slow start, and halves
        it when it is an overload.
        """
        if ticket.done:
            return
        ticket.done = True
        latency = self.clock() - ticket.started
        with self._cond:
            if overloaded:
                self.overloads += 1
            if not self.adaptive:
                return
            if not (measured or overloaded):
                if self._slow_start:  # reads before the first write: grow towards the ceiling
                    self._increase()
                    self._cond.notify_all()
                return
            baseline = self._baseline.get(ticket.kind)
            if measured and not overloaded and (baseline is None or latency < baseline):
                self._baseline[ticket.kind] = latency
            queued = measured and baseline is not None and latency > baseline * self.rise
            if overloaded or queued:
                self._decrease(ticket)
            else:
                self._increase()
            self._cond.notify_all()

    def _decrease(self, ticket: Ticket) -> None:
        self._slow_start = False
        if ticket.started < self._last_decrease:
            return  # sent under the old limit: this congestion was answered already
        self._limit = max(1.0, self._limit * DECREASE)
        self._last_decrease = self.clock()
        self.decreases += 1

    def _increase(self) -> None:
        step = 1.0 if self._slow_start else 1.0 / self._limit
        self._limit = min(float(self.ceiling), self._limit + step)
        self.peak_limit = max(self.peak_limit, int(self._limit))

    def stats(self) -> dict[str, Any]:
        """Figures for benchmarks and the run summary."""
        with self._cond:
            return {
                "adaptive": self.adaptive,
                "ceiling": self.ceiling,
                "limit": int(self._limit),
                "peak_limit": self.peak_limit,
                "peak_in_flight": self.peak_in_flight,
                "decreases": self.decreases,
                "overloads": self.overloads,
            }
