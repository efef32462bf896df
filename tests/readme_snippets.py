"""The fenced code blocks of the repository's README files, for the tests that run or check them.

A block is identified by its README, the heading it sits under and its position there. A block that a
test elsewhere runs as it stands carries a marker on the line before its fence:

    <!-- snippet: run by tests/e2e/test_own_project.py -->

(tests/docs/test_readme_snippets.py checks that the named test exists and reads that block).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*$")
MARKER = re.compile(r"^<!--\s*snippet:\s*run by\s+(\S+)\s*-->$")


@dataclass(frozen=True)
class Snippet:
    """One fenced block."""

    readme: str  # path relative to the repository root
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    heading: str
    index: int  # position among the blocks under the same heading
    run_by: str | None  # the test file that runs it, from its marker

    @property
    def key(self) -> str:
        """A stable, readable identifier: README, heading and position."""
        return f"{self.readme} :: {self.heading} :: {self.index}"


def readmes() -> list[Path]:
    """Every README.md of the repository (tracked or new, not ignored)."""
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "--", "README.md", "**/README.md"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return sorted(ROOT / p for p in out if (ROOT / p).exists())


def snippets(readme: Path) -> list[Snippet]:
    """The fenced blocks of one README, in order."""
    lines = readme.read_text().splitlines()
    found: list[Snippet] = []
    heading = ""
    counts: dict[str, int] = {}
    i = 0
    while i < len(lines):
        if match := HEADING.match(lines[i]):
            heading = match.group(1)
        fence = FENCE.match(lines[i])
        if fence is None:
            i += 1
            continue
        indent, lang = fence.groups()
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        body = "\n".join(line.removeprefix(indent) for line in lines[i + 1 : end]) + "\n"
        marker = MARKER.match(lines[i - 1].strip()) if i else None
        index = counts.get(heading, 0)
        counts[heading] = index + 1
        found.append(
            Snippet(
                readme=str(readme.relative_to(ROOT)),
                line=i + 1,
                lang=lang,
                text=body,
                heading=heading,
                index=index,
                run_by=marker.group(1) if marker else None,
            )
        )
        i = end + 1
    return found


def all_snippets() -> list[Snippet]:
    """The fenced blocks of every README."""
    return [s for readme in readmes() for s in snippets(readme)]


def snippet(readme: str, heading: str, index: int = 0) -> Snippet:
    """The block ``index`` under ``heading`` of ``readme`` (e.g. for a test that runs it)."""
    for s in snippets(ROOT / readme):
        if s.heading == heading and s.index == index:
            return s
    msg = f"no block {index} under {heading!r} in {readme}"
    raise LookupError(msg)
