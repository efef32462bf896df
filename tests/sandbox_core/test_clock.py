"""The sandbox clock can stand still for a block (seeding: a seed and a start give the same dates;
shown end to end by tests/e2e/test_faults.py, whose sandboxes are seeded alike)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from oromc_sandbox.core.state import Clock


def test_a_paused_clock_reads_one_instant_then_runs_on_from_it() -> None:
    clock = Clock(datetime(2026, 1, 1, tzinfo=UTC))
    with clock.paused() as when:
        time.sleep(0.02)
        assert clock.now() == when
    time.sleep(0.02)
    after = clock.now()
    assert 0.02 <= (after - when).total_seconds() < 1
