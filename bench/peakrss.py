"""A process's own peak RSS, without its parent's memory in it.

``getrusage``'s ``ru_maxrss`` is no measure of a spawned connector: Linux keeps it across ``fork``
and ``execve``, so a child reports at least the RSS its parent had when it was spawned (a parent
holding 500 MB spawns a 13 MB child that reports 513 MB). A benchmark that builds a large input in
memory and then spawns the connector measured itself: bench_memory.py's target-orocommerce runs
reported the input generator's ~410 MB, not the target's ~220 MB. The kernel's high-water mark of
the process's own address space (``VmHWM`` in ``/proc/<pid>/status``) starts afresh at ``execve``.

Run a plugin under it (``python bench/peakrss.py module:Class ARGS...``) and read
``PEAK_RSS_KB <kib>`` from the last lines of its stderr (:func:`peak_mb`).
"""

from __future__ import annotations

import atexit
import importlib
import resource
import sys
from pathlib import Path

MARK = "PEAK_RSS_KB "
RUNNER = str(Path(__file__).resolve())
"""Path of this module: ``[sys.executable, RUNNER, "module:Class", *args]`` runs that CLI."""


def vm_hwm_kb(pid: int | str = "self") -> int | None:
    """Peak RSS (KiB) of the process ``pid`` since its ``execve`` (``VmHWM``); None without ``/proc``."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def own_peak_kb() -> int:
    """This process's peak RSS (KiB): :func:`vm_hwm_kb`; where there is no ``/proc`` (macOS),
    ``ru_maxrss`` (which may include the parent's)."""
    hwm = vm_hwm_kb()
    if hwm is not None:
        return hwm
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # macOS counts bytes


def peak_mb(stderr: str) -> float:
    """The peak a run under :data:`RUNNER` reported (MB), 0.0 when it reported none."""
    kib = next((int(x.split()[1]) for x in reversed(stderr.splitlines()) if x.startswith(MARK)), 0)
    return round(kib / 1024, 1)


def _report() -> None:
    sys.stderr.write(f"{MARK}{own_peak_kb()}\n")
    sys.stderr.flush()


def main() -> None:
    """Run ``module:Class``'s CLI with the remaining arguments; report its own peak RSS at exit."""
    atexit.register(_report)
    # bench/'s own modules (report, bounds, ...) must not shadow the plugin's imports
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        del sys.path[0]
    module, cls = sys.argv[1].split(":")
    sys.argv = [module, *sys.argv[2:]]
    getattr(importlib.import_module(module), cls).cli()


if __name__ == "__main__":
    main()
