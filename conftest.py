"""Test distribution for `make test` (`pytest -n 2 --dist loadgroup`).

A test that uses a module- or class-scoped fixture (a sandbox, a pipeline run shared by the module's
assertions) joins its module's xdist group, so that fixture runs once on one worker; every other test is
scheduled on its own, so a module of independent slow tests (README snippets, each with its own sandbox)
spreads over both workers.
"""

from __future__ import annotations

import pytest

SHARED_SCOPES = {"module", "class", "package"}
#: The longest suites (minutes each) start first, so the rest of the tests fill the other worker around
#: them instead of both workers waiting at the end for one of them.
LONGEST_FIRST = ("tests/e2e/test_kill_resume.py", "tests/e2e/test_faults.py")


def pytest_itemcollected(item: pytest.Item) -> None:
    """Group a test that shares a module-, class- or package-scoped fixture with its file's tests.

    Marked as each test is collected, i.e. before xdist's `pytest_collection_modifyitems` reads the
    groups (a mark added in that hook by a conftest may come too late).
    """
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return
    scopes = {d.scope for defs in info.name2fixturedefs.values() for d in defs}
    if scopes & SHARED_SCOPES:
        item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Move the longest suites to the front (a stable sort: the rest keep their order)."""

    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)
