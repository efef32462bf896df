"""What Mailchimp has for a window's contacts, read in the fewest calls: a /batches job of member GETs
for many contacts of a big audience, single GETs for a few, and no audience-wide read for a contact
at an archived member."""

from __future__ import annotations

from typing import Any

from oromc_common.batches import WORTH_A_BATCH, OperationResult, run_batch
from oromc_common.mailchimp import MailchimpClient, subscriber_hash
from oromc_sandbox.testing import RunningSandbox
from target_mailchimp.client import Audience

from .conftest import DOMAIN, contact, run_target, singer_lines
from .test_ecommerce_sandbox import BATCHES, _routes

MEMBER_GET = "GET /3.0/lists/{list_id}/members/{subscriber_hash}"
MEMBER_PAGES = "GET /3.0/lists/{list_id}/members"


def _audience(config: dict[str, Any], client: MailchimpClient, mode: str = "auto") -> Audience:
    audience = Audience(
        client, config["list_id"], ["FNAME"], "oro:", lookup_mode=mode, identity_tag="OROID"
    )
    audience.check_access()
    return audience


def test_many_contacts_of_a_big_audience_are_read_as_one_batch_of_gets(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    run_target(config, singer_lines([contact(i) for i in range(20)]))
    hashes = [subscriber_hash(f"person{i}@{DOMAIN}") for i in range(24)]  # 20 members, 4 unknown
    expected = _audience(config, api, "per_member").lookup(hashes, 4)

    def batch(ops: list[dict[str, Any]]) -> Any:
        return run_batch(api, ops, poll_seconds=0.2)

    sb.reset_stats()
    big = _audience(config, api)
    big.estimated_size = 50_000  # as if 50 pages: one batch (a few calls) beats them and 24 GETs
    got = big.lookup(hashes, 4, batch)
    routes = _routes(sb)
    assert routes.get(BATCHES) == 1
    assert MEMBER_PAGES not in routes
    assert routes.get(MEMBER_GET, 0) == 0  # (the sandbox runs the batch's GETs in-process)
    assert not big.loaded
    assert got == expected
    assert sum(state is None for state in got.values()) == 4
    assert {state.oro_id for state in got.values() if state} == {str(i) for i in range(20)}

    # A few unknown contacts: single GETs, no batch.
    sb.reset_stats()
    few = [subscriber_hash(f"person{i}@{DOMAIN}") for i in range(30, 30 + WORTH_A_BATCH - 1)]
    assert all(state is None for state in big.lookup(few, 4, batch).values())
    routes = _routes(sb)
    assert BATCHES not in routes
    assert routes[MEMBER_GET] == WORTH_A_BATCH - 1


def test_a_window_of_a_large_share_of_the_audience_reads_its_pages(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    """A big run's first window (here 24 contacts of a 100-member audience): the audience's pages,
    which later windows need too, not a /batches job of GETs."""
    run_target(config, singer_lines([contact(i) for i in range(20)]))
    hashes = [subscriber_hash(f"person{i}@{DOMAIN}") for i in range(24)]
    audience = _audience(config, api)
    audience.estimated_size = 100
    sb.reset_stats()
    got = audience.lookup(hashes, 4, lambda ops: run_batch(api, ops, poll_seconds=0.2))
    routes = _routes(sb)
    assert BATCHES not in routes
    assert routes.get(MEMBER_PAGES, 0) >= 1
    assert audience.loaded
    assert sum(state is not None for state in got.values()) == 20


def test_a_batch_result_that_is_not_final_is_read_again_by_a_single_get(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    run_target(config, singer_lines([contact(i) for i in range(10)]))
    hashes = [subscriber_hash(f"person{i}@{DOMAIN}") for i in range(10)]

    def flaky(ops: list[dict[str, Any]]) -> Any:
        for result in run_batch(api, ops, poll_seconds=0.2):
            if result.operation_id == hashes[3]:
                yield OperationResult(result.operation_id, 503, None)  # retryable: no answer
            elif result.operation_id != hashes[5]:  # missing from the archive
                yield result

    big = _audience(config, api)
    big.estimated_size = 50_000
    sb.reset_stats()
    got = big.lookup(hashes, 4, flaky)
    assert _routes(sb).get(MEMBER_GET) == 2
    assert all(got[h] is not None and got[h].oro_id == str(i) for i, h in enumerate(hashes))  # type: ignore[union-attr]


def test_a_contact_at_an_archived_member_needs_no_audience_read(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    """An archived member without the contact's source id: archived members are never brought
    back, so nothing is written whichever member carries the id, and the audience-wide id index
    (a read of every member) is not needed for it."""
    list_id = config["list_id"]
    email = f"person7@{DOMAIN}"
    api.post(f"/lists/{list_id}/members", {"email_address": email, "status": "subscribed"})
    api.delete(f"/lists/{list_id}/members/{subscriber_hash(email)}")  # archived, never linked
    sb.reset_stats()
    target, _ = run_target(config, singer_lines([contact(7)]))
    summary = target.report.summary()["streams"]["contacts"]
    assert summary["archived_skipped"] == 1
    assert MEMBER_PAGES not in _routes(sb)
    got = api.get(f"/lists/{list_id}/members/{subscriber_hash(email)}")
    assert got is not None
    assert got["status"] == "archived"
    assert not (got.get("merge_fields") or {}).get("OROID")
