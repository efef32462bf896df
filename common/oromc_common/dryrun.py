"""What a target would do (``dry_run: true``), or did: counts per action and a redacted sample of each.

A target in dry-run mode reads everything it compares against, plans its writes as usual, then hands
the plan to an :class:`ActionPlan` instead of writing it. The same plan of a real run is recorded the
same way, so a dry run and the real run that follows can be compared action by action.

Actions are a small fixed vocabulary (``create``, ``update``, ``unsubscribe``, ``archive``, ``re-tag``,
``erase``, ``change_email``, ``create_merge_field``); a sample names the record by its redacted key
(a source id or a subscriber hash, never an e-mail address) and says what would change (field and tag
names, statuses; never values). The counts go into the run summary as ``would_<action>`` (dry run) or
``planned_<action>`` counters of the stream; the report file (``dry_run_report_path``) holds them with
the samples: ``{"dry_run", "component", "actions": {action: {"count", "sample": [...]}}}``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from oromc_common.report import RunReport

SAMPLE_SIZE = 5


class ActionPlan:
    """Thread-safe tally of planned actions, with the first ``SAMPLE_SIZE`` of each as a sample."""

    def __init__(self, component: str, report: RunReport, *, dry_run: bool, path: str | Path | None = None) -> None:
        self.component = component
        self.report = report
        self.dry_run = dry_run
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._samples: dict[str, list[dict[str, Any]]] = {}

    def add(self, stream: str, action: str, key: str, **what: Any) -> None:
        """One planned ``action`` on the record named ``key`` (``what``: names and statuses, no values)."""
        with self._lock:
            self._counts[action] += 1
            sample = self._samples.setdefault(action, [])
            if len(sample) < SAMPLE_SIZE:
                sample.append({"stream": stream, "key": key, **what})
        self.report.count(stream, f"{'would' if self.dry_run else 'planned'}_{action}")

    def counts(self) -> dict[str, int]:
        """Planned actions by kind."""
        with self._lock:
            return dict(self._counts)

    def document(self) -> dict[str, Any]:
        """The report: counts and samples per action."""
        with self._lock:
            return {
                "dry_run": self.dry_run,
                "component": self.component,
                "actions": {
                    action: {"count": n, "sample": list(self._samples.get(action, []))}
                    for action, n in sorted(self._counts.items())
                },
            }

    def write(self) -> None:
        """Write the report file, if one is configured."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.document(), indent=2, sort_keys=True) + "\n", encoding="utf-8")

    def finish(self, logger: logging.Logger) -> None:
        """At the end of a run: write the report file and, in a dry run, say so with the counts."""
        self.write()
        if self.dry_run:
            logger.info("DRY RUN: nothing was written; planned actions: %s", self.counts())


class DryRunWriteError(RuntimeError):
    """A write reached the API client of a dry run: a bug, stopped before anything was sent."""
