"""The README's consent tables: every transition row names the tests that check it; they exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = re.compile(r"`([\w./-]+\.py)::(test_\w+)`")


def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _tables_with_tests(section: str) -> list[list[str]]:
    """Rows (as text) of each table whose header ends with a "tested by" column."""
    tables: list[list[str]] = []
    rows: list[str] | None = None
    for line in section.splitlines():
        if not line.startswith("|"):
            rows = None
            continue
        if rows is None:
            rows = []
            if line.rstrip(" |").endswith("tested by"):
                tables.append(rows)
            continue
        if not set(line) <= set("|- "):
            rows.append(line)
    return tables


def _test_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}


def test_every_consent_transition_names_existing_tests() -> None:
    tables = _tables_with_tests(_section((ROOT / "README.md").read_text(), "Consent and privacy"))
    assert len(tables) == 2, "one table per direction: Oro -> Mailchimp and Mailchimp -> Oro"
    missing: list[str] = []
    for rows in tables:
        assert len(rows) >= 10
        for row in rows:
            last = row.rstrip(" |").rsplit("|", 1)[-1]
            references = REFERENCE.findall(last)
            assert references, f"no test named for: {row[:80]}"
            for file, name in references:
                path = ROOT / file
                if not path.is_file() or name not in _test_functions(path):
                    missing.append(f"{file}::{name}")
    assert not missing, f"named in README.md but not found: {sorted(set(missing))}"
