"""Test distribution for `make test` (`pytest -n 2 --dist loadgroup`).

A test that uses a module- or class-scoped fixture (a sandbox, a pipeline run shared by the module's
assertions) joins its module's xdist group, so that fixture runs once on one worker; every other test is
scheduled on its own, so a module of independent slow tests (README snippets, each with its own sandbox)
spreads over both workers. A module fixture set up once per parameter (the consent sources of
tests/e2e/test_mailchimp_to_oro.py) makes a group per parameter.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from oromc_common.governor import forget_governors

SHARED_SCOPES = {"module", "class", "package"}
#: The longest suites (minutes each) start first, so the rest of the tests fill the other worker around
#: them instead of both workers waiting at the end for one of them.
LONGEST_FIRST = (
    "tests/e2e/test_kill_resume.py",
    "tests/e2e/test_no_echo.py",  # eight jobs in one module fixture
    "tests/e2e/test_own_project.py",  # a `meltano install` of four plugins from git
    "tests/e2e/test_round_trip.py",
    "tests/e2e/test_consent_oro_to_mailchimp.py",
    "tests/e2e/test_faults.py",
)


@pytest.fixture(autouse=True)
def _own_connection_governors() -> Iterator[None]:
    """Each test's in-process connectors start with their own ``max_connections``: the process-wide
    governor of an account keeps the lowest limit any client set (a test of max_connections 3 would
    otherwise slow, and change the write plans of, every later test of the same sandbox account)."""
    yield
    forget_governors()


def pytest_itemcollected(item: pytest.Item) -> None:
    """Group a test that shares a module-, class- or package-scoped fixture with its file's tests.

    Marked as each test is collected, i.e. before xdist's `pytest_collection_modifyitems` reads the
    groups (a mark added in that hook by a conftest may come too late).
    """
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return
    shared = {name for name, defs in info.name2fixturedefs.items() if defs[-1].scope in SHARED_SCOPES}
    if shared:
        item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0] + _own_setup(item, shared)))


def _own_setup(item: pytest.Item, shared: set[str]) -> str:
    """When every shared fixture of the test is parametrized (set up once per parameter), the
    parameters: each parameter's tests are a group of their own and may run on another worker."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    if not shared <= set(params):
        return ""
    # no "]" after the "@" xdist puts before a group name, or it takes the name for a test id's end
    own = ",".join(f"{name}={params[name]}" for name in sorted(shared))
    return "::" + own.replace("[", "(").replace("]", ")")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Move the longest suites to the front (a stable sort: the rest keep their order)."""

    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)
