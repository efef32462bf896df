"""The simple streams on the SDK's RESTStream: paging, auth, retries and errors through the project's policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from oromc_common.mailchimp import RetryableMailchimpError
from tap_mailchimp_engagement.client import MailchimpPaginator
from tap_mailchimp_engagement.tap import TapMailchimpEngagement

MERGE_FIELDS_ROUTE = "GET /3.0/lists/{list_id}/merge-fields"


def _page(body: dict[str, Any]) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response._content = json.dumps(body).encode()
    return response


@pytest.mark.parametrize(
    ("offset", "items", "total", "more"),
    [
        (0, 3, 10, True),  # a full page, more to come
        (0, 2, None, False),  # a short page is the last
        (6, 3, 9, False),  # a full page reaching total_items: no empty page after it
        (6, 3, None, True),  # no total: only a short page ends
    ],
)
def test_the_paginator_stops_on_a_short_page_or_at_total_items(
    offset: int, items: int, total: int | None, more: bool
) -> None:
    paginator = MailchimpPaginator(page_size=3, items_key="segments", start=offset)
    body: dict[str, Any] = {"segments": [{"id": i} for i in range(items)]}
    if total is not None:
        body["total_items"] = total
    assert paginator.has_more(_page(body)) is more


def _tap(tmp_path: Path, **credential: str) -> TapMailchimpEngagement:
    config = {"api_url": "http://127.0.0.1:9/3.0", "connection_budget_dir": str(tmp_path), **credential}
    return TapMailchimpEngagement(config=config, parse_env_config=False)


def test_an_api_key_authenticates_with_basic_and_an_oauth_token_with_bearer(tmp_path: Path) -> None:
    keyed = _tap(tmp_path, api_key="0123456789abcdef0123456789abcdef-us21")
    header = keyed.streams["merge_fields"].authenticator.auth_headers["Authorization"]
    assert header.startswith("Basic ")
    token = _tap(tmp_path, access_token="tok123")
    assert token.streams["segments"].authenticator.auth_headers["Authorization"] == "Bearer tok123"


def test_a_failing_collection_is_retried_max_tries_times_then_fails_as_retryable(
    sandbox: Any, tools: Any
) -> None:
    config = tools.tap_config(sandbox, max_tries=3)
    sandbox.reset_stats()
    sandbox.set_faults("mailchimp", rate=1.0, kinds=["503"], routes=[MERGE_FIELDS_ROUTE], seed=1)
    try:
        with pytest.raises(RetryableMailchimpError) as failure:
            tools.run_tap(config, streams={"lists", "merge_fields"})
    finally:
        sandbox.set_faults("mailchimp", rate=0)
    assert failure.value.status == 503
    assert failure.value.path.endswith("/merge-fields"), "the path is relative to the API root"
    calls = sandbox.stats("mailchimp")["requests"][MERGE_FIELDS_ROUTE]
    assert sum(calls.values()) == 3, calls


def test_partitioned_streams_keep_one_state_per_stream(sandbox: Any, tools: Any) -> None:
    run = tools.run_tap(tools.tap_config(sandbox), streams={"lists", "merge_fields", "segments"})
    assert run.records["merge_fields"], "the sandbox audience has merge fields"
    assert {r["list_id"] for r in run.records["segments"]} == {r["id"] for r in run.records["lists"]}
    for name in ("merge_fields", "segments"):
        bookmark = run.state["bookmarks"][name]
        assert "partitions" not in bookmark
        assert len(bookmark["fingerprints"]) == len(run.records[name])
    again = tools.run_tap(tools.tap_config(sandbox), run.state, streams={"lists", "merge_fields", "segments"})
    assert not again.records.get("merge_fields")
    assert not again.records.get("segments")


def _answer(status: int, headers: dict[str, str]) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers)
    response.url = "http://127.0.0.1:9/3.0/lists/abc/merge-fields"
    response.request = requests.Request("GET", response.url).prepare()
    response._content = b""
    return response


def test_the_sdk_backoff_hooks_wait_as_the_client_policy_and_honour_retry_after(tmp_path: Path) -> None:
    tap = _tap(tmp_path, api_key="0123456789abcdef0123456789abcdef-us21", backoff_factor_seconds=2.0)
    stream = tap.streams["merge_fields"]
    policy = stream.mc.client.retry  # type: ignore[attr-defined]
    assert stream.backoff_max_tries() == policy.max_tries == 6
    with pytest.raises(RetryableMailchimpError) as told:
        stream.validate_response(_answer(429, {"Retry-After": "7"}))
    assert told.value.retry_after == 7.0
    with pytest.raises(RetryableMailchimpError) as untold:
        stream.validate_response(_answer(503, {}))
    waits = stream.backoff_wait_generator()
    waits.send(None)  # backoff primes the generator so
    first = waits.send(untold.value)  # type: ignore[arg-type]
    assert 0.0 <= first <= 2.0, "attempt 1: factor, fully jittered"
    assert waits.send(told.value) == 7.0, "Retry-After wins over the jittered 4 s, and is not jittered"  # type: ignore[arg-type]
    assert stream.backoff_jitter(7.0) == 7.0
    assert 0.0 <= waits.send(untold.value) <= 8.0, "attempt 3: 2 * 2**2"  # type: ignore[arg-type]
