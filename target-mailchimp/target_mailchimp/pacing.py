"""When to poll a ``/batches`` job again: from its progress, not a fixed back-off.

Mailchimp runs an account's batches one at a time; a running batch reports ``finished_operations`` of
``total_operations``. Two polls of a running batch give its rate (operations per second); the rate is
kept for the rest of the run (an average over the batches seen), so the next poll of any batch comes
about when its remaining operations should be done, never sooner than ``poll_seconds`` (the setting
``batch_poll_seconds``) nor later than ``max_seconds``. Until a rate is known, the caller's own
back-off applies. Fewer polls (each is an API call) and less waiting after a batch has finished.
"""

from __future__ import annotations

import threading
import time
from typing import Any

RUNNING = ("started", "finalizing")
WEIGHT_NEW = 0.5  # how much a new rate measurement moves the kept average


class BatchPace:
    """The poll delay of ``wait_for_batch`` (its ``pace`` argument) for every batch of one run."""

    def __init__(self, poll_seconds: float = 1.0, max_seconds: float = 30.0) -> None:
        """``poll_seconds``: the shortest wait; ``max_seconds``: the longest."""
        self.poll_seconds = poll_seconds
        self.max_seconds = max(max_seconds, poll_seconds)
        self.rate: float | None = None  # operations per second of a running batch
        self._expected: dict[str, int] = {}
        self._seen: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def expect(self, batch_id: str, operations: int) -> None:
        """The size of a batch just submitted (a pending batch reports 0 operations)."""
        with self._lock:
            self._expected[batch_id] = operations

    def __call__(self, doc: dict[str, Any], default: float) -> float:
        """Seconds to wait before polling the batch of ``doc`` again (``default``: the back-off)."""
        now = time.monotonic()
        batch_id = str(doc.get("id") or "")
        finished = int(doc.get("finished_operations") or 0)
        with self._lock:
            total = int(doc.get("total_operations") or 0) or self._expected.get(batch_id, 0)
            if doc.get("status") in RUNNING:
                seen = self._seen.get(batch_id)
                if seen is not None and finished > seen[1] and now > seen[0]:
                    measured = (finished - seen[1]) / (now - seen[0])
                    self.rate = (
                        measured
                        if self.rate is None
                        else WEIGHT_NEW * measured + (1 - WEIGHT_NEW) * self.rate
                    )
                if seen is None or finished > seen[1]:
                    self._seen[batch_id] = (now, finished)
            if self.rate is None or not total:
                return default
            estimate = max(total - finished, 0) / self.rate
        return min(max(estimate, self.poll_seconds), self.max_seconds)
