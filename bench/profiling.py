"""Sampling profiles of the plugin processes of a job (py-spy), and what dominates them.

`bench_jobs.py --profile` attaches ``py-spy record --idle --format raw`` to the tap and the target of
each run as soon as they start (py-spy is not a project dependency: give its path with
``--py-spy`` or put it on PATH, e.g. ``uv tool install py-spy``). ``--idle`` keeps the samples of
threads that wait (on the network, a lock, a queue), since a sync job mostly waits: the profile
then says *what* it waits for. ``summarize`` reads the collapsed stacks and lists the functions with
the largest inclusive share of the samples, ours (the project's packages) apart.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

OURS = ("target_mailchimp", "tap_orocommerce", "oromc_common", "singer_sdk")
FRAME_RE = re.compile(r"^(?P<func>[^ ]+) \((?P<file>[^:)]+)(?::\d+)?\)$")


def py_spy_path(given: str | None = None) -> str | None:
    """The py-spy executable (``given``, else from PATH), or None."""
    return given or shutil.which("py-spy")


def start(py_spy: str, pid: int, out: Path, rate: int = 50) -> subprocess.Popen[bytes]:
    """Record ``pid`` until it exits, as collapsed stacks in ``out``."""
    cmd = [py_spy, "record", "--idle", "--nonblocking", "--format", "raw", "--rate", str(rate)]
    cmd += ["--output", str(out), "--pid", str(pid)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _frame_name(frame: str) -> str:
    match = FRAME_RE.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    module = path.rsplit("site-packages/", 1)[-1].removesuffix(".py").replace("/", ".")
    return f"{module}.{match['func']}"


def parse(text: str) -> Counter[tuple[str, ...]]:
    """Collapsed stacks (``frame;frame;... count`` lines) -> samples per stack (root first)."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = tuple(_frame_name(f) for f in stack.split(";") if f and not f.startswith("process "))
        stacks[frames] += int(count)
    return stacks


def summarize(text: str, top: int = 8) -> dict[str, object]:
    """Samples, the functions with the largest inclusive share, and the deepest own frames' shares."""
    stacks = parse(text)
    total = sum(stacks.values())
    inclusive: Counter[str] = Counter()
    own_leaf: Counter[str] = Counter()
    for frames, n in stacks.items():
        for name in set(frames):
            inclusive[name] += n
        ours = [f for f in frames if f.startswith(OURS)]
        own_leaf[ours[-1] if ours else "(outside the project)"] += n
    leaf: Counter[str] = Counter()
    for frames, n in stacks.items():
        if frames:
            leaf[frames[-1]] += n

    def shares(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(n / total, 3)) for name, n in counter.most_common(top)] if total else []

    return {
        "samples": total,
        "top_leaf": shares(leaf),
        "top_own_frames": shares(own_leaf),
        "top_inclusive": shares(
            Counter({k: v for k, v in inclusive.items() if k.startswith(OURS)})
        ),
    }
