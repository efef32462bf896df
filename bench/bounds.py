"""The lower bound the Mailchimp API allows for an audience sync, under the sandbox's latency profile.

A run must at least deliver its changes to Mailchimp. The bound counts the fewest calls that can do it
and what they cost in the profile (``oromc_sandbox.mailchimp.LATENCY_PROFILE``: a base time per call
plus a time per item), under Mailchimp's documented limits:

* **10 simultaneous connections** per API key: the calls' connection-seconds are packed perfectly on
  10 connections (time >= connection-seconds / 10, and >= the longest single call);
* **contacts**: batch subscribe, 500 members per `POST /lists/{id}` call. Two ways, the cheaper counts:
  *blind* (write every contact, read nothing) or *diff* (read the audience 1,000 members a page, then
  write only the contacts that differ). Tag changes: the calls the tags need at the best case of one
  `POST /segments/{id}` per 500 tagged members (``tag_writes`` member-tag changes);
* **e-commerce**: one `POST /batches` holding every operation, executed server-side outside the
  connection limit but **one batch at a time per account** (Mailchimp's `DELETE /batches/{id}`:
  "only one batch request is run at a time"), at the sandbox's batch timeline (``batches.PHASES``,
  ``STARTED_BASE``, ``PER_OPERATION``, ``FINALIZING``) plus the submit call and one poll. Again
  *blind* (every e-commerce record an operation) or *diff* (read the store's collections, 1,000 a page,
  then only the records that differ), whichever is cheaper;
* **archives** (a contact disabled or erased at the source: one `DELETE` each, batch subscribe cannot
  archive) are operations of that same serial batch (5 ms each, cheaper than 250 ms single calls);
* contacts and the e-commerce batch overlap (the batch runs server-side while members are written);
  the **Oro read overlaps** both (Oro publishes no connection limit, so its pages can be read in
  parallel with the writes): the bound is the larger of the two Mailchimp parts.

Not in the bound: Meltano's and the plugins' start-up (a few seconds per run, reported apart), the
merge-field and tag-list reads (one call each). So small runs sit further from the bound.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from oromc_sandbox.mailchimp import LATENCY_PROFILE
from oromc_sandbox.mailchimp.models import batches as sandbox_batches

CONNECTIONS = 10
BATCH_SUBSCRIBE_MAX = 500
SEGMENT_MEMBERS_MAX = 500
PAGE = 1000
SUBSCRIBE = "POST /3.0/lists/{list_id}"
SEGMENT_ADD = "POST /3.0/lists/{list_id}/segments/{segment_id}"
MEMBERS_PAGE = "GET /3.0/lists/{list_id}/members"
SUBMIT_BATCH = "POST /3.0/batches"
POLL_BATCH = "GET /3.0/batches/{batch_id}"
STORE_PAGES = ("orders", "customers", "products", "carts")
ECOMMERCE_STREAMS = (
    "ecommerce_customers",
    "ecommerce_products",
    "ecommerce_orders",
    "ecommerce_carts",
)
WRITTEN = ("created", "updated", "deleted", "archived", "unsubscribed", "erased")
ARCHIVES = ("archived", "disabled_archived", "deleted", "erased")
"""Contacts' counts that are one `DELETE` (archive) or erasure each: no batch subscribe can do them."""


def call_seconds(
    route: str, items: int = 0, profile: Mapping[str, tuple[float, float]] | None = None
) -> float:
    """What one call of ``route`` with ``items`` items costs in the latency profile (seconds)."""
    prof = LATENCY_PROFILE if profile is None else profile
    base_ms, per_item_ms = prof.get(route, prof.get("*", (100.0, 0.0)))
    return (base_ms + per_item_ms * items) / 1000.0


def calls_seconds(route: str, items: int, per_call: int) -> tuple[int, float]:
    """(calls, connection-seconds) to move ``items`` items at most ``per_call`` a call."""
    if items <= 0:
        return 0, 0.0
    full, rest = divmod(items, per_call)
    seconds = full * call_seconds(route, per_call) + (call_seconds(route, rest) if rest else 0.0)
    return full + (1 if rest else 0), seconds


def spread(connection_seconds: float, longest: float) -> float:
    """Wall time of perfectly packed calls on the allowed connections."""
    return max(connection_seconds / CONNECTIONS, longest)


def contacts_bound(
    contacts: int, written: int, audience: int, tag_writes: int = 0
) -> dict[str, Any]:
    """Fewest-calls time for the contacts: the cheaper of *blind* and *diff* (module docstring)."""
    tag_calls, tag_s = calls_seconds(SEGMENT_ADD, tag_writes, SEGMENT_MEMBERS_MAX)
    blind_calls, blind_s = calls_seconds(SUBSCRIBE, contacts, BATCH_SUBSCRIBE_MAX)
    read_calls, read_s = calls_seconds(MEMBERS_PAGE, audience, PAGE)
    write_calls, write_s = calls_seconds(SUBSCRIBE, written, BATCH_SUBSCRIBE_MAX)
    longest = call_seconds(SUBSCRIBE, min(max(written, 1), BATCH_SUBSCRIBE_MAX))
    blind = spread(blind_s + tag_s, longest)
    diff = spread(read_s + write_s + tag_s, longest if written else 0.0)
    way = "blind" if blind < diff else "diff"
    return {
        "seconds": round(min(blind, diff), 2),
        "way": way,
        "calls": (blind_calls if way == "blind" else read_calls + write_calls) + tag_calls,
        "connection_seconds": round(min(blind_s, read_s + write_s) + tag_s, 2),
    }


def batch_seconds(operations: int) -> float:
    """One `/batches` job of ``operations``: submit, the sandbox's server-side timeline, one poll."""
    if operations <= 0:
        return 0.0
    timeline = (
        sum(d for _, d in sandbox_batches.PHASES)
        + sandbox_batches.STARTED_BASE
        + sandbox_batches.PER_OPERATION * operations
        + sandbox_batches.FINALIZING
    )
    return call_seconds(SUBMIT_BATCH, operations) + timeline + call_seconds(POLL_BATCH)


def ecommerce_bound(records: int, written: int, store_size: int) -> dict[str, Any]:
    """Fewest-calls time for the e-commerce streams: one serial batch, blind or after a read."""
    read_calls, read_s = calls_seconds(
        f"GET /3.0/ecommerce/stores/{{store_id}}/{STORE_PAGES[0]}", store_size, PAGE
    )
    blind = batch_seconds(records)
    diff = spread(read_s, 0.0) + batch_seconds(written)
    way = "blind" if blind < diff else "diff"
    return {
        "seconds": round(min(blind, diff), 2),
        "way": way,
        "operations": records if way == "blind" else written,
        "calls": (2 if records else 0) if way == "blind" else read_calls + (2 if written else 0),
        "connection_seconds": round(
            call_seconds(SUBMIT_BATCH, records) if way == "blind" else read_s, 2
        ),
    }


def stream_counts(summary: Mapping[str, Any], stream: str) -> dict[str, int]:
    """The target's RUN SUMMARY counts of one stream (0 when absent)."""
    counts = (summary.get("streams") or {}).get(stream) or {}
    return {k: int(v) for k, v in counts.items() if isinstance(v, int | float)}


def records_of(counts: Mapping[str, int]) -> int:
    """Records the target received for a stream."""
    if "received" in counts:
        return int(counts["received"])
    return sum(int(counts.get(k, 0)) for k in (*WRITTEN, "unchanged", "rejected"))


def written_of(counts: Mapping[str, int]) -> int:
    """Records the target had to write for a stream."""
    return sum(int(counts.get(k, 0)) for k in WRITTEN)


def target_summary(run: Mapping[str, Any]) -> dict[str, Any]:
    """The target-mailchimp RUN SUMMARY of a measured run (empty if none)."""
    for plugin, summary in (run.get("summaries") or {}).items():
        if "target" in plugin:
            return dict(summary)
    return {}


def audience_sync_bound(run: Mapping[str, Any], audience: int | None = None) -> dict[str, Any]:
    """The bound of one measured `audience-sync` run (``jobrun.run_job``'s result) and its parts.

    ``audience``: members the audience held before the run (default: the contacts, i.e. as many as
    the run sends). The e-commerce store is assumed as large as the records sent (a diff reads it).
    """
    summary = target_summary(run)
    contacts = stream_counts(summary, "contacts")
    n_contacts = records_of(contacts)
    archives = sum(int(contacts.get(k, 0)) for k in ARCHIVES)
    part_c = contacts_bound(
        n_contacts,
        int(contacts.get("created", 0)) + int(contacts.get("updated", 0)),
        n_contacts if audience is None else audience,
        int(contacts.get("tags_changed", 0)),
    )
    eco = [stream_counts(summary, s) for s in ECOMMERCE_STREAMS]
    n_eco = sum(records_of(c) for c in eco)
    part_e = ecommerce_bound(n_eco + archives, sum(written_of(c) for c in eco) + archives, n_eco)
    seconds = max(part_c["seconds"], part_e["seconds"])
    return {
        "seconds": round(seconds, 2),
        "contacts": {**part_c, "records": n_contacts},
        "ecommerce": {**part_e, "records": n_eco, "contact_archives_in_batch": archives},
        "ratio": ratio(float(run.get("wall_s", 0.0)), seconds),
    }


def ratio(measured: float, bound: float) -> float | None:
    """measured / bound (None when the bound is 0: nothing had to be written)."""
    if bound <= 0:
        return None
    return round(measured / bound, 2)
