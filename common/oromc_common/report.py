"""The run report every connector keeps: counters, a rejects file and the end summary.

Usage::

    report = RunReport("target-mailchimp", rejects_path="rejects.jsonl")
    report.count("contacts", "received")
    report.reject("contacts", key="42", reason="invalid_email", detail="...", field="email")
    report.reject_field("contacts", key="42", reason="invalid_merge_value", field="phone", value="12",
                        detail="...")  # the field is dropped, the record is kept
    report.action("forgotten_members", key="list/oro:42", reason="gdpr_erasure_request", detail="...")
    report.count_call("POST", 200)
    report.log_summary(logger)

The rejects file is JSON lines, one object per rejected record:
``{"ts", "kind", "stream", "key", "reason", "field", "value", "detail"}``; the same file receives

* *field rejects* (``"kind": "field_reject"``): one field of a record could not be used, so it was
  left out and the rest of the record was written (counted as ``fields_rejected``, not as
  ``rejected``);
* the *actions* (things the run could not or must not decide on its own and a person has to act on,
  e.g. a GDPR erasure request), with ``"kind": "action"``.

Rejected records have ``"kind": "reject"``. ``value`` is never the value itself, only its shape
(:func:`describe_value`: type and length, and which control characters it holds), so the file holds
no personal data; details must already be free of secrets and personal data.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_MISSING = object()


def describe_value(value: Any = _MISSING) -> str | None:
    """The redacted form of a rejected value: its JSON type and size, never its content.

    ``"string, 10000 chars"``, ``"string, 5 chars, control characters U+0000"``, ``"object, 1 key"``,
    ``"array, 3 items"``, ``"integer"``, ``"null"``; None when no value is at hand.
    """
    if value is _MISSING:
        return None
    if isinstance(value, str):
        text = f"string, {len(value)} chars"
        found = {f"U+{ord(c):04X}" for c in value if ord(c) < 32 or 127 <= ord(c) < 160}
        controls = sorted(found - {"U+0009", "U+000A", "U+000D"})
        if controls:
            text += ", control characters " + " ".join(controls[:5])
        return text
    if isinstance(value, dict):
        return f"object, {len(value)} key{'s' if len(value) != 1 else ''}"
    if isinstance(value, list | tuple):
        return f"array, {len(value)} item{'s' if len(value) != 1 else ''}"
    return _SCALAR_TYPES.get(type(value), type(value).__name__)


#: JSON type names of the scalars (``bool`` before ``int``: a bool is an int in Python).
_SCALAR_TYPES: dict[type, str] = {type(None): "null", bool: "boolean", int: "integer", float: "number"}


class RunReport:
    """Thread-safe counters per stream, API-call counts and a rejects report."""

    def __init__(self, component: str, rejects_path: str | Path | None = None) -> None:
        self.component = component
        self.started = time.monotonic()
        self.rejects_path = Path(rejects_path) if rejects_path else None
        self._lock = threading.Lock()
        self._counts: dict[str, Counter[str]] = defaultdict(Counter)
        self._rejects_by_reason: dict[str, Counter[str]] = defaultdict(Counter)
        self._actions_by_reason: dict[str, Counter[str]] = defaultdict(Counter)
        self._fields_by_reason: dict[str, Counter[str]] = defaultdict(Counter)
        self._calls: Counter[str] = Counter()
        self._rejects_file: Any = None

    # -- counters -------------------------------------------------------------------------
    def count(self, stream: str, what: str, n: int = 1) -> None:
        """Add ``n`` to counter ``what`` (read, created, updated, unchanged, ...) of ``stream``."""
        with self._lock:
            self._counts[stream][what] += n

    def get(self, stream: str, what: str) -> int:
        """Current value of a counter."""
        with self._lock:
            return self._counts[stream][what]

    def count_call(self, method: str, status: int | str) -> None:
        """Count one API call by method and status (``"error"`` for no response)."""
        with self._lock:
            self._calls[f"{method.upper()} {status}"] += 1

    @property
    def api_calls(self) -> int:
        """Total API calls made so far."""
        with self._lock:
            return sum(self._calls.values())

    # -- rejects --------------------------------------------------------------------------
    def reject(
        self,
        stream: str,
        key: Any,
        reason: str,
        detail: str = "",
        field: str | None = None,
        value: Any = _MISSING,
    ) -> None:
        """Count a rejected record and append it to the rejects file (if configured).

        ``value`` (optional) is the offending value; only :func:`describe_value` of it is written.
        """
        self._record("reject", stream, key, reason, detail, field, describe_value(value))

    def reject_field(
        self,
        stream: str,
        key: Any,
        reason: str,
        field: str,
        value: Any = _MISSING,
        detail: str = "",
    ) -> None:
        """Report one field left out of a record that is still written (``fields_rejected``)."""
        self._record("field_reject", stream, key, reason, detail, field, describe_value(value))

    def action(
        self,
        stream: str,
        key: Any,
        reason: str,
        detail: str = "",
        field: str | None = None,
    ) -> None:
        """Report something a person must act on (counted as ``actions``; a line in the rejects file)."""
        self._record("action", stream, key, reason, detail, field, None)

    def _record(
        self, kind: str, stream: str, key: Any, reason: str, detail: str, field: str | None, value: str | None
    ) -> None:
        line = {
            "ts": datetime.now(UTC).isoformat(timespec="seconds"),
            "kind": kind,
            "stream": stream,
            "key": key,
            "reason": reason,
            "field": field,
            "value": value,
            "detail": detail,
        }
        with self._lock:
            if kind == "action":
                self._counts[stream]["actions"] += 1
                self._actions_by_reason[stream][reason] += 1
            elif kind == "field_reject":
                self._counts[stream]["fields_rejected"] += 1
                self._fields_by_reason[stream][reason] += 1
            else:
                self._counts[stream]["rejected"] += 1
                self._rejects_by_reason[stream][reason] += 1
            if self.rejects_path is not None:
                if self._rejects_file is None:
                    self.rejects_path.parent.mkdir(parents=True, exist_ok=True)
                    self._rejects_file = self.rejects_path.open("a", encoding="utf-8")
                self._rejects_file.write(json.dumps(line, default=str) + "\n")
                self._rejects_file.flush()

    def rejected_by_reason(self, stream: str) -> dict[str, int]:
        """Rejection counts by reason for one stream."""
        with self._lock:
            return dict(self._rejects_by_reason[stream])

    def fields_rejected_by_reason(self, stream: str) -> dict[str, int]:
        """Field-reject counts by reason for one stream."""
        with self._lock:
            return dict(self._fields_by_reason[stream])

    def actions_by_reason(self, stream: str) -> dict[str, int]:
        """Action counts by reason for one stream."""
        with self._lock:
            return dict(self._actions_by_reason[stream])

    # -- summary --------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """A JSON-able summary of the run."""
        with self._lock:
            return {
                "component": self.component,
                "elapsed_s": round(time.monotonic() - self.started, 3),
                "streams": {
                    stream: {
                        **dict(counts),
                        "rejected_by_reason": dict(self._rejects_by_reason[stream]),
                        **(
                            {"actions_by_reason": dict(self._actions_by_reason[stream])}
                            if self._actions_by_reason.get(stream)
                            else {}
                        ),
                        **(
                            {"fields_rejected_by_reason": dict(self._fields_by_reason[stream])}
                            if self._fields_by_reason.get(stream)
                            else {}
                        ),
                    }
                    for stream, counts in sorted(self._counts.items())
                },
                "actions_required": sum(sum(c.values()) for c in self._actions_by_reason.values()),
                "api_calls": sum(self._calls.values()),
                "api_calls_by_status": dict(sorted(self._calls.items())),
                "rejects_file": str(self.rejects_path) if self.rejects_path else None,
            }

    def log_summary(self, logger: logging.Logger) -> dict[str, Any]:
        """Log the summary as one INFO line (``RUN SUMMARY {json}``) and return it."""
        summary = self.summary()
        logger.info("RUN SUMMARY %s", json.dumps(summary, sort_keys=True))
        return summary

    def close(self) -> None:
        """Close the rejects file."""
        with self._lock:
            if self._rejects_file is not None:
                self._rejects_file.close()
                self._rejects_file = None
