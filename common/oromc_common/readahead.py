"""Read a target's input ahead on a thread, so the tap is never stopped by the target's writes.

The SDK reads one line, handles it, reads the next; when a window is full the target drains it
(seconds of API calls) and reads nothing meanwhile. The pipe between tap and target holds ~64 KB
(tens of records), so the tap soon blocks in ``write`` and stops reading its source too: the two
run one after the other instead of side by side. :class:`ReadAhead` reads the input on a thread into
a buffer of at most ``limit_bytes`` (``READ_AHEAD_BYTES``): the tap keeps reading its source while
the target writes, and the next window's lines are there when the drain ends.

Nothing changes in what the target sees: the same lines, in the same order, the end of input after
the last one, an error reading the input raised where the SDK would have met it. A killed target
loses the lines it had read ahead, as it loses the ones in the pipe: the tap's state only moves with
the STATE messages the target emits after its writes.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T", str, bytes)

READ_AHEAD_BYTES = 32 * 1024 * 1024
"""The most input held read ahead (one line longer than that is still read, on its own)."""


class ReadAhead(Generic[T]):
    """Iterate ``source``'s lines, read on a daemon thread at most ``limit_bytes`` ahead."""

    def __init__(self, source: Iterable[T], limit_bytes: int = READ_AHEAD_BYTES) -> None:
        """Start reading ``source`` (an open text or binary file, or any iterable of lines)."""
        self.limit_bytes = max(1, limit_bytes)
        self._lines: deque[T] = deque()
        self._held = 0  # characters (bytes) of the lines in ``_lines``
        self._done = False
        self._error: BaseException | None = None
        self._peak = 0
        self._changed = threading.Condition()
        self._thread = threading.Thread(
            target=self._read, args=(source,), name="read-ahead", daemon=True
        )
        self._thread.start()

    @property
    def peak_bytes(self) -> int:
        """The most input held at once so far."""
        return self._peak

    def _read(self, source: Iterable[T]) -> None:
        try:
            for line in source:
                with self._changed:
                    while self._held and self._held + len(line) > self.limit_bytes:
                        self._changed.wait()
                    self._lines.append(line)
                    self._held += len(line)
                    self._peak = max(self._peak, self._held)
                    self._changed.notify_all()
        except BaseException as exc:  # handed to the reading thread, raised there
            with self._changed:
                self._error = exc
        finally:
            with self._changed:
                self._done = True
                self._changed.notify_all()

    def __iter__(self) -> Iterator[T]:
        """The lines in input order; then the reading error, if there was one."""
        while True:
            with self._changed:
                while not self._lines and not self._done:
                    self._changed.wait()
                if self._lines:
                    line = self._lines.popleft()
                    self._held -= len(line)
                    self._changed.notify_all()
                elif self._error is not None:
                    raise self._error
                else:
                    return
            yield line
