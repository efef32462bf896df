"""Fixtures: a real sandbox over HTTP and an in-process tap runner that captures Singer messages."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from oromc_sandbox.testing import RunningSandbox, running_sandbox
from singer_sdk.testing.legacy import tap_sync_test
from tap_mailchimp_engagement.tap import TapMailchimpEngagement

SANDBOX_CUSTOMERS = 300


@dataclass
class TapRun:
    """What one tap run wrote: records per stream, every STATE value, stderr."""

    records: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    states: list[dict[str, Any]] = field(default_factory=list)
    schemas: set[str] = field(default_factory=set)
    stderr: str = ""

    @property
    def state(self) -> dict[str, Any]:
        """The last STATE value."""
        return self.states[-1] if self.states else {}

    def keys(self, stream: str, *names: str) -> set[tuple[Any, ...]]:
        """Set of key tuples of a stream's records."""
        return {tuple(r.get(n) for n in names) for r in self.records[stream]}

    def summary(self) -> dict[str, Any]:
        """The RUN SUMMARY the tap logged."""
        for line in self.stderr.splitlines():
            if "RUN SUMMARY" in line:
                return json.loads(line.split("RUN SUMMARY", 1)[1])
        return {}


def tap_config(sb: RunningSandbox, **overrides: Any) -> dict[str, Any]:
    """Settings pointing the tap at the sandbox's Mailchimp API."""
    return {
        "api_key": sb.info["mailchimp"]["api_key"],
        "api_url": sb.mailchimp_api_url,
        "backoff_factor_seconds": 0.05,
        **overrides,
    }


def run_tap(
    config: dict[str, Any],
    state: dict[str, Any] | None = None,
    streams: set[str] | None = None,
    prepare: Callable[[TapMailchimpEngagement], None] | None = None,
) -> TapRun:
    """Run the tap in-process (optionally only ``streams``) and parse what it wrote."""
    state_copy = json.loads(json.dumps(state or {}))  # the tap mutates nested state in place
    tap = TapMailchimpEngagement(config=config, state=state_copy, parse_env_config=False)
    if streams is not None:
        for name, stream in tap.streams.items():
            stream.selected = name in streams
    if prepare is not None:
        prepare(tap)
    stdout, stderr = tap_sync_test(tap)
    result = TapRun(stderr=stderr.read())
    for line in stdout.read().splitlines():
        if not line.strip():
            continue
        msg = json.loads(line)
        if msg["type"] == "RECORD":
            result.records[msg["stream"]].append(msg["record"])
        elif msg["type"] == "STATE":
            result.states.append(msg["value"])
        elif msg["type"] == "SCHEMA":
            result.schemas.add(msg["stream"])
    return result


def mc_session(sb: RunningSandbox) -> requests.Session:
    """A plain requests session authenticated against the sandbox's Mailchimp API."""
    session = requests.Session()
    session.auth = ("test", sb.info["mailchimp"]["api_key"])
    return session


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    """A fresh sandbox per test module (modules mutate its data)."""
    with running_sandbox(customers=SANDBOX_CUSTOMERS, seed=7) as sb:
        yield sb


class Tools:
    """Test helpers handed out by the ``tools`` fixture (tests cannot import conftest)."""

    TapRun = TapRun
    run_tap = staticmethod(run_tap)
    tap_config = staticmethod(tap_config)
    mc_session = staticmethod(mc_session)


@pytest.fixture(scope="session")
def tools() -> type[Tools]:
    """Helpers: ``run_tap``, ``tap_config``, ``mc_session``."""
    return Tools
