"""E-commerce streams -> one Mailchimp store (customers, products, orders, carts).

Input records are Mailchimp-shaped and self-contained (an order carries its ``customer`` and its
``lines``), so every window can be written on its own:

* the store (``store_id``) is created for the audience on first use; it is ``is_syncing`` (Mailchimp then
  fires no e-commerce automation, e.g. no abandoned-cart mail for a historic cart) while a backfill
  writes: from its creation, from the first drain of a backfill's size (``backfill_threshold``, 50
  writes of one resource; not the smaller batch threshold), or for the whole run with the
  ``is_syncing`` setting; the end of the run sets it back to ``false``;
* what the store already holds is read once per resource (paged, 1,000 a call) and only records that
  differ from it are written (create: ``POST``; change: ``PATCH``, customers ``PUT``); but the records
  of a stream that brings at most ``lookup_up_to`` in the run (a trickle: a re-run after a few changes)
  are looked up by id instead (``_look_up``: single GETs, or one ``/batches`` job of GETs, 404 = not
  there; with the products their order or cart lines name), then compared the same way: the read's
  calls grow with the store, the lookup's with the records. Optionally a trickle of customers (at most
  ``blind_writes_up_to`` in the run) is upserted without any read, always as a batch
  (``_may_write_blind``), unchanged ones included;
* an order or cart line that names a product Mailchimp does not know yet gets a placeholder product
  (title from the line's ``product_title``), which the ``ecommerce_products`` stream later completes:
  so the streams may arrive in any order;
* per-record failures are rejected (rejects report) and the run continues;
* a drain with more than a handful of writes (``batch_threshold``, setting ``ecommerce_batch_threshold``,
  default 8: where one batch, ~1 POST + polls + 1 download, costs fewer calls) sends them as one
  ``POST /batches`` per resource, polls it until ``finished`` and reads the per-operation results: a
  success counts as written, a failure is a reject with the reason and field of the operation's problem
  body, a retryable one (429/5xx) is sent again as a single call; a trickle uses single calls;
* batches are pipelined: Mailchimp runs an account's batches one at a time in submission order, so the
  next window's batch (of any resource) is submitted while the previous one runs (at most
  ``PIPELINE_DEPTH`` in flight) and queues right behind it; a few writes while batches are in flight
  join the queue as a batch too (single calls are for a trickle, with nothing in flight); an order
  line's product created by a queued batch counts as there (that batch runs first). The target waits
  for them (``settle``) before anything that depends on their results: a key of the same resource
  already in flight, contacts, the end of the run, and the tap's state, which is emitted only once
  every batch submitted before it has finished (``when_durable``); it polls a running batch when its
  progress says it should be done (``pacing``);
* a killed run: the tap's state moves only after a drain is acknowledged, so the window is replayed; the
  next run first waits for every batch still unfinished on the account (``GET /batches``: the one it had
  submitted keeps running server-side), then reads the store, so what that batch wrote counts as
  ``unchanged`` and only what it did not write is sent again; a run that writes only batches without
  reading the store skips that wait: its batches queue behind the killed run's.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import msgspec
from oromc_common.batches import (
    WORTH_A_BATCH,
    BatchExpiredError,
    BatchQueue,
    BatchTimeoutError,
    OperationResult,
    first_poll_seconds,
    iter_results,
    submit_batch,
    wait_for_batch,
)
from oromc_common.governor import run_concurrently
from oromc_common.mailchimp import (
    FatalMailchimpError,
    MailchimpClient,
    MailchimpConfigError,
    PermanentMailchimpError,
    make_error,
    raw_items,
    redact_pii,
)
from oromc_common.report import RunReport

from target_mailchimp.client import email_hash
from target_mailchimp.models import Rider
from target_mailchimp.pacing import BatchPace
from target_mailchimp.storecache import CollectionView, StoreCache
from target_mailchimp.tags import person_keys

PAGE = 1000
# Pages of a store collection read at once (not ``max_connections``): a page of 1,000 orders is ~10 MB
# of Python objects while it is parsed and stored, and pages waiting for the store cache's lock are all
# held: ten in flight put ~106 MB on a re-run's peak, four ~57 MB, one ~19 MB (README.md, "Memory as
# records grow").
STORE_READ_PAGES = 4
# A drain of at least this many writes costs fewer calls as one batch (1 POST + polls + 1 download)
# than as single calls; below it, single calls (and no wait for Mailchimp's batch queue).
DEFAULT_BATCH_THRESHOLD = WORTH_A_BATCH
# A drain of at least this many writes of one resource is a backfill: the store syncs (no e-commerce
# automations) until the end of the run. Independent of the batch threshold: a live change of a few
# dozen customers goes as one batch but must still fire the store's automations.
DEFAULT_BACKFILL_THRESHOLD = 50
# Customers (``PUT``: an upsert) of a stream whose run brings at most this many are written without
# reading the store's customers first (setting ``ecommerce_blind_customer_writes``): the read costs a
# call per 1,000 customers the store holds, writing a few unchanged ones again costs no call inside
# their batch, but it is a write. Off by default: a re-run with nothing changed writes nothing.
DEFAULT_BLIND_WRITES_UP_TO = 0
# The records of a stream whose run brings at most this many (setting ``ecommerce_lookup_up_to``) are
# looked up in the store by id instead of reading the store's whole collection: the lookup costs a few
# calls (one /batches job of GETs; single GETs below ``batch_threshold``), the read a call per 1,000
# records the store holds. One page's worth: a run that brings more reads the collection (a backfill
# compares every record; a job of thousands of GETs runs longer at Mailchimp than the pages).
DEFAULT_LOOKUP_UP_TO = PAGE
# A lookup job is not queued behind more operations of ours than this (~5 s of Mailchimp's queue at
# the sandbox's 5 ms an operation); the store's collection is read instead.
LOOKUP_BEHIND_OPERATIONS = 1_000
# Batches in flight at once. Mailchimp runs one batch at a time per account, so a second one only
# queues behind the first: it starts the moment the first ends instead of after the target has polled,
# downloaded and parsed the first one's results and built the next window. More than two buys nothing.
PIPELINE_DEPTH = 2
# The most a ``POST /batches`` body carries. Mailchimp states no operation limit per batch (the reference
# found none either for the body); a window's writes beyond this go as further batches, queued behind.
MAX_BATCH_BYTES = 8 * 2**20
LOGGER = logging.getLogger("target_mailchimp.ecommerce")
STORE_FIELDS = {"fields": "id,list_id,is_syncing"}
"""What ``ensure_store`` reads of the store."""


@dataclass(frozen=True)
class Resource:
    """How one e-commerce stream maps to a store sub-collection."""

    stream: str
    collection: str  # products | customers | orders | carts
    required: tuple[str, ...]
    fields: tuple[str, ...]  # top-level keys we send and compare


RESOURCES = {
    r.stream: r
    for r in (
        Resource(
            "ecommerce_products",
            "products",
            ("id", "title"),
            (
                "title",
                "handle",
                "url",
                "description",
                "type",
                "vendor",
                "image_url",
                "published_at_foreign",
                "variants",
            ),
        ),
        Resource(
            "ecommerce_customers",
            "customers",
            ("id", "email_address"),
            ("email_address", "opt_in_status", "company", "first_name", "last_name", "address"),
        ),
        Resource(
            "ecommerce_orders",
            "orders",
            ("id", "customer", "lines", "order_total"),
            (
                "customer",
                "currency_code",
                "order_total",
                "lines",
                "campaign_id",
                "landing_site",
                "financial_status",
                "fulfillment_status",
                "order_url",
                "discount_total",
                "tax_total",
                "shipping_total",
                "tracking_code",
                "processed_at_foreign",
                "cancelled_at_foreign",
                "updated_at_foreign",
                "shipping_address",
                "billing_address",
                "tracking_number",
                "tracking_carrier",
                "tracking_url",
            ),
        ),
        Resource(
            "ecommerce_carts",
            "carts",
            ("id", "customer", "lines", "order_total"),
            (
                "customer",
                "currency_code",
                "order_total",
                "lines",
                "campaign_id",
                "checkout_url",
                "tax_total",
            ),
        ),
    )
}
BY_COLLECTION = {r.collection: r for r in RESOURCES.values()}
MONEY = ("order_total", "discount_total", "tax_total", "shipping_total", "price", "discount")
CUSTOMER_KEYS = (
    "id",
    "email_address",
    "opt_in_status",
    "company",
    "first_name",
    "last_name",
    "address",
)
LINE_KEYS = ("id", "product_id", "product_variant_id", "quantity", "price", "discount")
VARIANT_KEYS = (
    "id",
    "title",
    "url",
    "sku",
    "price",
    "inventory_quantity",
    "image_url",
    "backorders",
    "visibility",
)


class RecordError(ValueError):
    """A record that cannot be written; names the field, never the value."""

    def __init__(self, field_name: str, message: str) -> None:
        """Keep the field for the rejects report."""
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass
class StoreSettings:
    """The store settings of the target config."""

    store_id: str
    list_id: str
    name: str = "OroCommerce"
    currency_code: str = "USD"
    domain: str | None = None
    platform: str | None = None
    is_syncing: bool = False
    batch_threshold: int = DEFAULT_BATCH_THRESHOLD
    backfill_threshold: int = DEFAULT_BACKFILL_THRESHOLD
    blind_writes_up_to: int = DEFAULT_BLIND_WRITES_UP_TO
    lookup_up_to: int = DEFAULT_LOOKUP_UP_TO
    batch_poll_seconds: float = 1.0
    batch_timeout_seconds: float = 3600.0


@dataclass(frozen=True)
class Write:
    """One planned write of one record."""

    resource: Resource
    key: str
    body: dict[str, Any] | None
    action: str  # CREATE | UPDATE | DELETE | UPSERT (a customer written without the store's copy)
    quiet: bool = False


#: The kind of this sync's jobs in the target's :class:`BatchQueue`.
KIND = "ecommerce"


@dataclass(frozen=True)
class _Submitted:
    """The writes of a submitted ``/batches`` job whose results are not read yet."""

    collection: str
    by_op: dict[str, Write]


def _queue_keys(collection: str, keys: Iterable[str]) -> list[str]:
    """How a store record is named in the :class:`BatchQueue` (``orders:<id>``)."""
    return [f"{collection}:{key}" for key in keys]


def _clean(value: Any) -> Any:
    """JSON-able, no None values, money as float."""
    if isinstance(value, Mapping):
        return {k: _clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _money(body: dict[str, Any], key: str, where: str) -> None:
    if key in body and body[key] is not None and body[key] != "":
        try:
            body[key] = float(body[key])
        except (TypeError, ValueError):
            raise RecordError(where + key, "expected a number") from None


def _order_customer(customer: Any) -> dict[str, Any]:
    """An order's or cart's customer: an id is required; never an opt-in (consent travels only in contacts)."""
    if not isinstance(customer, Mapping) or not customer.get("id"):
        raise RecordError("customer.id", "required")
    out = {k: customer[k] for k in CUSTOMER_KEYS if k in customer}
    if "opt_in_status" in out:
        out["opt_in_status"] = False
    return out


def store_person(stream: str, record: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The person a store record names: its store customer id and the subscriber hash of its address
    (None when it has none: a product, a cart's tombstone, an order carrying its customer's id alone)."""
    collection = RESOURCES[stream].collection if stream in RESOURCES else ""
    if collection == "customers":
        customer: Any = record
    elif collection in {"orders", "carts"}:
        customer = record.get("customer")
    else:
        return None, None
    if not isinstance(customer, Mapping):
        return None, None
    email = customer.get("email_address")
    key = customer.get("id")
    return (
        None if key in (None, "") else str(key),
        email_hash(email.strip()) if isinstance(email, str) and email.strip() else None,
    )


def _order_line(i: int, line: Mapping[str, Any]) -> dict[str, Any]:
    """Line ``i`` of an order or cart: ids required, the variant defaults to the product, numbers checked."""
    out = {k: line[k] for k in LINE_KEYS if k in line}
    for key in ("id", "product_id"):
        if not out.get(key):
            raise RecordError(f"lines.{i}.{key}", "required")
    out.setdefault("product_variant_id", out["product_id"])
    for key in ("price", "discount"):
        _money(out, key, f"lines.{i}.")
    if "quantity" in out:
        try:
            out["quantity"] = int(out["quantity"])
        except (TypeError, ValueError):
            raise RecordError(f"lines.{i}.quantity", "expected an integer") from None
    return out


def _only_variant(record: Mapping[str, Any]) -> dict[str, Any]:
    """The single variant of a product record that lists none: the product itself."""
    return {
        "id": record["id"],
        "title": record["title"],
        "sku": record.get("sku"),
        "price": record.get("price"),
        "url": record.get("url"),
        "inventory_quantity": record.get("inventory_quantity"),
    }


def _variant(i: int, variant: Mapping[str, Any], product_title: str) -> dict[str, Any]:
    """Variant ``i`` of a product: an id is required, the title defaults to the product's."""
    out = _clean({k: variant.get(k) for k in VARIANT_KEYS})
    out.setdefault("title", product_title)
    if not out.get("id"):
        raise RecordError(f"variants.{i}.id", "required")
    _money(out, "price", f"variants.{i}.")
    return out


def _same(sent: Any, current: Any) -> bool:
    if isinstance(sent, Mapping):
        return isinstance(current, Mapping) and all(
            _same(v, current.get(k)) for k, v in sent.items()
        )
    if isinstance(sent, list):
        if not isinstance(current, list):
            return False
        if all(isinstance(x, Mapping) and "id" in x for x in sent):
            by_id = {str(c.get("id")): c for c in current if isinstance(c, Mapping)}
            return all(_same(x, by_id.get(str(x["id"]))) for x in sent)
        return len(sent) == len(current) and all(
            _same(a, b) for a, b in zip(sent, current, strict=True)
        )
    if isinstance(sent, bool) or isinstance(current, bool):
        return sent == current
    if isinstance(sent, int | float) and isinstance(current, int | float | str):
        try:
            return abs(float(sent) - float(current)) < 1e-9
        except ValueError:
            return False
    return str(sent if sent is not None else "") == str(current if current is not None else "")


class EcommerceSync:
    """Writes e-commerce windows into one store."""

    def __init__(
        self,
        client: MailchimpClient,
        settings: StoreSettings,
        report: RunReport,
        workers: int,
        batches: BatchQueue | None = None,
    ) -> None:
        """Bind to the store (not created until the first window); ``batches``: the account's queue of
        jobs not read yet, shared with the contacts sync (its own when not given)."""
        self.client = client
        self.settings = settings
        self.report = report
        self.workers = workers
        self.base = f"/ecommerce/stores/{settings.store_id}"
        self._known = StoreCache()  # what the store holds, on disk (flat memory at any store size)
        self._lock = threading.Lock()
        self._window_lock = threading.Lock()
        self._store_ready = False
        self._store_seen: tuple[dict[str, Any] | None] | None = None  # read by a ``lookup_rider``
        self.batches = batches if batches is not None else BatchQueue()
        self._submitted: dict[str, _Submitted] = {}  # batch id -> its writes, while not read
        self._syncing = False  # this run set the store is_syncing (finish() clears it)
        self._pace = BatchPace(settings.batch_poll_seconds)
        self._prefetched: set[str] = set()
        self._prefetch_lock = threading.Lock()
        self._prefetcher: ThreadPoolExecutor | None = None
        self._arrived: dict[str, int] = {}  # records of each stream the sink has received
        self._drained: dict[str, int] = {}  # records of each stream handed to ``process`` so far
        self._open_awaited = False
        self._open_lock = threading.Lock()  # held while awaiting: a second caller waits for the first
        self._expected_ends: dict[str, float] = {}  # batch id -> when it should be done (its first poll)
        #: the records of a window that may be written now (the others are held: readahead.py)
        self.hold: Callable[[str, list[dict[str, Any]]], list[dict[str, Any]]] | None = None
        #: while a job is awaited: other work until about ``deadline`` (time.monotonic()); True if
        #: it did some (the queue is looked at again)
        self.on_wait: Callable[[float], bool] | None = None

    # -- store -------------------------------------------------------------------------
    def ensure_store(self, found: tuple[dict[str, Any] | None] | None = None) -> None:
        """Create the store for the audience if missing; fail fast if it belongs to another audience.
        ``found``: the store as a lookup job already read it (``(None,)``: not there), else one GET."""
        with self._lock:
            if self._store_ready:
                return
            found = found or self._store_seen
            store = self._get_store() if found is None else found[0]
            if store is None:
                body = _clean(
                    {
                        "id": self.settings.store_id,
                        "list_id": self.settings.list_id,
                        "name": self.settings.name,
                        "currency_code": self.settings.currency_code,
                        "domain": self.settings.domain,
                        "platform": self.settings.platform,
                        "is_syncing": True,  # a new store is filled from history: a backfill
                    }
                )
                store = self.client.post("/ecommerce/stores", body) or {}
                self._syncing = True
            if store.get("list_id") not in (None, self.settings.list_id):
                msg = f"Setting 'store_id': store '{self.settings.store_id}' belongs to another audience."
                raise MailchimpConfigError(msg)
            if self.settings.is_syncing and store.get("is_syncing") is False:
                self.client.patch(self.base, {"is_syncing": True})
            # (a killed run may have left it syncing: this run's end clears it)
            self._syncing = self._syncing or self.settings.is_syncing or store.get("is_syncing") is True
            self._store_ready = True

    def _get_store(self) -> dict[str, Any] | None:
        """The store (the fields ``ensure_store`` checks), None when Mailchimp has none (404)."""
        try:
            return dict(self.client.get(self.base, STORE_FIELDS) or {})
        except PermanentMailchimpError as exc:
            if exc.status != 404:
                raise
            return None

    def _await_open_batches(self) -> None:
        """Wait for batches still running on the account (a killed run's batch keeps running
        server-side) before the store is read or a single call writes, so what they write is seen
        and not sent again, and not written after this run's newer values. Once per run, and only
        then: writes sent as a batch queue behind them anyway (Mailchimp runs an account's batches
        in submission order), so a run that only does that never lists the account's batches."""
        with self._open_lock:
            if not self._open_awaited:
                self._await_open_batches_now()
                self._open_awaited = True

    def _await_open_batches_now(self) -> None:
        listing = list(
            self.client.paginate("/batches", "batches", {"fields": "batches.id,batches.status"}, PAGE)
        )
        deadline = time.monotonic() + self.settings.batch_timeout_seconds  # for all of them together
        for batch in listing:
            if batch.get("status") == "finished" or not batch.get("id"):
                continue
            if str(batch["id"]) in self.client.submitted_batches:
                continue  # this run's own (e.g. contacts' tags): awaited by whoever submitted it
            LOGGER.info("Waiting for batch %s (still %s) before reading the store.", batch["id"], batch.get("status"))
            try:
                self._wait(str(batch["id"]), max(0.0, deadline - time.monotonic()))
            except BatchExpiredError:
                continue
            except BatchTimeoutError:
                # Not ours, or stuck: go on. A write it also makes comes back as a reject at worst.
                LOGGER.warning("Batch %s still not finished; reading the store anyway.", batch["id"])

    def finish(self) -> None:
        """End of run: every batch of this sync read, then a backfill's ``is_syncing`` is switched off."""
        if self._prefetcher is not None:
            self._prefetcher.shutdown(wait=True)
        self.settle()
        if self._store_ready and self._syncing:
            self.client.patch(self.base, {"is_syncing": False})
            self._syncing = False

    def _start_syncing(self) -> None:
        """A large drain is a backfill: the store syncs until the end of the run."""
        with self._lock:
            if not self._syncing:
                self.client.patch(self.base, {"is_syncing": True})
                self._syncing = True

    def arrived(self, stream: str) -> None:
        """A record of ``stream`` reached its sink: reads the store's collection ahead (``prefetch``)
        unless the stream's records so far would be looked up by id (``_may_look_up``) or written
        without it (``_may_write_blind``)."""
        self._arrived[stream] = self._arrived.get(stream, 0) + 1
        records = self._arrived[stream]
        if not (self._may_write_blind(stream, records) or self._may_look_up(stream, records)):
            self.prefetch(stream)

    def _may_look_up(self, stream: str, records: int) -> bool:
        """True when ``records`` of ``stream`` in this run are few enough to be looked up by id
        (``lookup_up_to``), its collection is neither read nor being read ahead, and a lookup job
        would not queue behind a backlog: Mailchimp runs the account's jobs one at a time, so in a
        backfill (more than ``LOOKUP_BEHIND_OPERATIONS`` operations of ours not read yet) a job of
        GETs waits for all of them, while the collection's pages are read at once (the carts of a
        10,000-contact backfill: ~25 s later)."""
        collection = RESOURCES[stream].collection
        queued = sum(job.operations for job in self.batches)
        return (
            records <= self.settings.lookup_up_to
            and not self._known.loaded(collection)
            and collection not in self._prefetched
            and (records < self.settings.batch_threshold or queued <= LOOKUP_BEHIND_OPERATIONS)
        )

    def _how_compared(self, stream: str, drained: int) -> tuple[bool, bool]:
        """``(blind, look_up)`` for a window of ``stream`` that brings the records drained in the
        run to ``drained``: written without the store's copy (``_may_write_blind``), or compared
        with its records looked up by id (``_may_look_up``; the sink counts a stream's records as
        they arrive, ahead of the drains); neither: compared with the collection read whole."""
        blind = self._may_write_blind(stream, drained)
        return blind, not blind and self._may_look_up(
            stream, max(self._arrived.get(stream, 0), drained)
        )

    def _may_write_blind(self, stream: str, records: int) -> bool:
        """True when ``records`` of ``stream`` in this run are few enough to be written without the
        store's copy: customers only (``PUT`` is an upsert and its ``opt_in_status`` false never
        changes a member's consent), up to ``blind_writes_up_to``. Orders, carts and products keep
        the comparison: a create is a ``POST`` and a re-sent order can fire its notifications."""
        return (
            RESOURCES[stream].collection == "customers"
            and records <= self.settings.blind_writes_up_to
            and not self._known.loaded("customers")
        )

    def prefetch(self, stream: str) -> None:
        """Read the store's collection of ``stream`` (and the products an order or cart line names)
        in the background, as soon as its first record arrives: while the target still writes
        contacts or waits for a batch, instead of when the stream's first window is drained. The
        same reads as without it (only collections a record arrived for), just earlier; a failure
        is left to the drain, which reads again and raises."""
        collection = RESOURCES[stream].collection
        wanted = [collection, *(["products"] if collection in {"orders", "carts"} else [])]
        with self._prefetch_lock:  # not self._lock: a read ahead holds that one while it reads
            todo = [c for c in wanted if c not in self._prefetched]
            if not todo:
                return
            self._prefetched.update(todo)
            if self._prefetcher is None:
                self._prefetcher = ThreadPoolExecutor(1, thread_name_prefix="store-prefetch")
        self._prefetcher.submit(self._prefetch, todo)

    def _prefetch(self, collections: list[str]) -> None:
        try:
            self.ensure_store()
            for name in collections:
                self._collection(name)
        except Exception as exc:  # the drain reads again and raises it
            LOGGER.info("Store read ahead failed (%s); the drain reads it again.", type(exc).__name__)

    def _collection(self, name: str) -> CollectionView:
        with self._lock:
            if not self._known.loaded(name):
                self._await_open_batches()
                # pages after the first read in parallel on the allowed connections
                # each page's items parsed one at a time and slimmed (``raw_items``): a page of 1,000
                # orders is ~10 MB as objects, ``STORE_READ_PAGES`` of them read at once
                self.client.each_page(
                    f"{self.base}/{name}",
                    lambda page: self._known.add(
                        name, (_slim(name, msgspec.json.decode(i)) for i in page.get(name) or [])
                    ),
                    {"exclude_fields": f"{name}._links"},
                    PAGE,
                    min(self.workers, STORE_READ_PAGES),
                    raw_items(name),
                )
                self._known.mark_loaded(name)
            return self._known.view(name)

    def _look_up(self, wanted: Mapping[str, Iterable[str]]) -> None:
        """Learn the store's copy of the records ``wanted`` (collection -> ids) that are neither read
        nor looked up yet: one ``/batches`` job of their GETs (it runs after any batch a killed run
        left running: submission order), or single GETs for fewer than ``batch_threshold`` (after the
        account's open batches, ``_await_open_batches``; a record of ours in flight was settled by
        the caller, a product in flight counts as there in ``_ensure_products``). A 404
        is a record the store does not have; an operation without a usable result is read again with
        a single GET. A collection read whole (or being read ahead) is waited for instead. The store
        itself (``ensure_store``) is checked by the same job when not yet, saving its call."""
        todo: list[tuple[str, str]] = []
        for collection, keys in wanted.items():
            if self._known.loaded(collection) or collection in self._prefetched:
                self._collection(collection)
                continue
            todo += [(collection, k) for k in dict.fromkeys(keys) if not self._known.known(collection, k)]
        if len(todo) < self.settings.batch_threshold:
            self.ensure_store()
            if not todo:
                return
            self._await_open_batches()
            docs = run_concurrently([partial(self._get_one, c, k) for c, k in todo], self.workers)
            found = dict(zip(todo, docs, strict=True))
        else:
            found, store = self._get_by_batch(todo, with_store=not self._store_ready)
            self.ensure_store(store)
        self._learn(found)
        LOGGER.info(
            "Looked up %d store records by id (%d not in the store)",
            len(todo),
            sum(doc is None for doc in found.values()),
        )

    def _get_one(self, collection: str, key: str) -> dict[str, Any] | None:
        """The store's record ``key`` of ``collection`` (one GET), None when it has none (404)."""
        try:
            doc = self.client.get(f"{self.base}/{collection}/{key}", {"exclude_fields": "_links"})
        except PermanentMailchimpError as exc:
            if exc.status == 404:
                return None
            raise
        return dict(doc or {})

    def _get_by_batch(
        self, todo: list[tuple[str, str]], *, with_store: bool
    ) -> tuple[dict[tuple[str, str], dict[str, Any] | None], tuple[dict[str, Any] | None] | None]:
        """The records of ``todo`` through one ``/batches`` job of GETs (results from its archive);
        ``with_store``: the store's GET too, its result second (``(None,)``: no store; None: no
        usable result, ``ensure_store`` reads it again)."""
        operations = _lookup_operations(self.base, todo, with_store=with_store)
        batch_id = submit_batch(self.client, operations)
        self._expected_ends[batch_id] = self._expected_end(len(operations))
        self._pace.expect(batch_id, len(operations))
        LOGGER.info("Looking up %d store records in batch %s", len(operations), batch_id)
        try:
            doc = self._wait(batch_id)
        except (BatchExpiredError, BatchTimeoutError) as exc:
            msg = f"Mailchimp batch {batch_id} did not finish: {exc}"
            raise RuntimeError(msg) from exc
        finally:
            self._expected_ends.pop(batch_id, None)
        found, store = _lookup_results(
            iter_results(self.client, str(doc.get("response_body_url") or "")), todo
        )
        again = [w for w in todo if w not in found]
        if again:
            LOGGER.warning("Batch %s: %d lookups without a result; read one by one.", batch_id, len(again))
            docs = run_concurrently([partial(self._get_one, c, k) for c, k in again], self.workers)
            found.update(zip(again, docs, strict=True))
        return found, store

    def _learn(self, found: Mapping[tuple[str, str], dict[str, Any] | None]) -> None:
        """Keep what a lookup found (None: the store does not have it)."""
        for (collection, key), doc in found.items():
            if doc is None:
                self._known.mark_known(collection, [key])
            else:
                self._known.put(collection, key, _slim(collection, doc))

    def lookup_rider(self, pending: Mapping[str, list[dict[str, Any]]]) -> Rider | None:
        """The store lookups the windows ``pending`` (stream -> records about to be drained, after the
        contacts) would make (``_look_up``: a trickle's), as GETs to ride along the contacts
        window's lookup job of members: the trickle's store lookup then costs no job of its own
        (a ``POST /batches``, its polls, ~2 s of queueing). Read before the contacts are written
        instead of after: a contacts write changes no store record the comparison reads (a
        customer's ``opt_in_status`` true against our false is not a change). The store's own GET
        rides too while not checked (``ensure_store`` uses its answer). None: nothing to look up."""
        wanted: dict[str, list[str]] = {}
        for stream, records in pending.items():
            if stream not in RESOURCES or not records:
                continue
            if not self._how_compared(stream, self._drained.get(stream, 0) + len(records))[1]:
                continue
            for collection, keys in _lookup_wanted(RESOURCES[stream], records).items():
                wanted.setdefault(collection, []).extend(keys)
        todo = [
            (collection, key)
            for collection, keys in wanted.items()
            if not (self._known.loaded(collection) or collection in self._prefetched)
            for key in dict.fromkeys(keys)
            if not self._known.known(collection, key)
        ]
        if not todo:
            return None
        with_store = not self._store_ready

        def apply(results: list[OperationResult]) -> None:
            found, store = _lookup_results(results, todo)
            self._learn(found)
            if store is not None:
                self._store_seen = store
            LOGGER.info("Looked up %d store records by id in the contacts' lookup job", len(found))

        return Rider(_lookup_operations(self.base, todo, with_store=with_store), apply)

    # -- records -----------------------------------------------------------------------
    def _body(self, resource: Resource, record: Mapping[str, Any]) -> dict[str, Any]:
        """The request body of one record: its resource's fields, each checked by its documented rule."""
        missing = [k for k in resource.required if record.get(k) in (None, "", [])]
        if missing:
            raise RecordError(missing[0], "required")
        body: dict[str, Any] = {k: record[k] for k in resource.fields if record.get(k) is not None}
        body = _clean(body)
        for key in MONEY:
            _money(body, key, "")
        if resource.collection in {"orders", "carts"}:
            body.setdefault("currency_code", self.settings.currency_code)
            body["customer"] = _order_customer(body.get("customer"))
            body["lines"] = [_order_line(i, line) for i, line in enumerate(body.get("lines") or [])]
        if resource.collection == "products":
            body["variants"] = [
                _variant(i, variant, body["title"])
                for i, variant in enumerate(body.get("variants") or [_only_variant(record)])
            ]
        if resource.collection == "customers":
            # Never an opt-in: consent reaches Mailchimp only through the contacts stream and its
            # rules (double opt-in, disabled users, Oro opt-outs). Mailchimp adds a person first met
            # here as transactional and never changes an existing member for opt_in_status false,
            # so a store write cannot change anyone's consent, whichever write comes first.
            body["opt_in_status"] = False
        return body

    def process(self, stream: str, records: list[dict[str, Any]]) -> None:
        """Write one window of one e-commerce stream (one stream at a time: orders may create
        placeholder products, which must not race with the products stream)."""
        with self._window_lock:
            if self.hold is not None:
                records = self.hold(stream, records)
            if records:
                self._process(stream, records)

    def _process(self, stream: str, records: list[dict[str, Any]]) -> None:
        resource = RESOURCES[stream]
        self.report.count(stream, "received", len(records))
        drained = self._drained.get(stream, 0)
        self._drained[stream] = drained + len(records)
        blind, look_up = self._how_compared(stream, drained + len(records))
        if not look_up:
            self.ensure_store()  # a lookup job reads the store too (``_look_up``)
        latest: dict[str, dict[str, Any]] = {}
        for record in records:
            key = str(record.get("id"))
            if key in latest:
                self.report.count(stream, "duplicates_merged")
            latest[key] = record
        # What is compared below must include every earlier write of the same records.
        self.batches.settle(keys=_queue_keys(resource.collection, latest))
        if blind:
            self._run(self._blind(resource, latest), blind=True)
            return
        if look_up:
            self._look_up(_lookup_wanted(resource, latest.values()))
            known = self._known.view(resource.collection)
            products = self._known.view("products")
        else:
            known = self._collection(resource.collection)
            products = None
        writes: list[Write] = []
        for key, record in latest.items():
            current = known.get(key)
            if record.get("deleted") is True and resource.collection == "carts":
                # a removed cart needs only its id (the tap's tombstone {"id", "deleted": true})
                if current is not None:
                    writes.append(Write(resource, key, None, "DELETE"))
                continue
            try:
                body = self._body(resource, record)
            except RecordError as exc:
                self.report.reject(stream, f"id={key}", "invalid_value", str(exc), exc.field)
                continue
            if current is None:
                writes.append(Write(resource, key, body, "CREATE"))
                continue
            changed = {k: v for k, v in body.items() if k != "id" and not _same(v, current.get(k))}
            if changed.get("opt_in_status") is False and current.get("opt_in_status") is True:
                del changed[
                    "opt_in_status"
                ]  # Mailchimp never downgrades an opt-in; don't ask every run
            if not changed:
                self.report.count(stream, "unchanged")
            else:
                writes.append(Write(resource, key, changed, "UPDATE"))
        if resource.collection in {"orders", "carts"}:
            titles = {
                str(line.get("product_id")): str(line["product_title"])
                for record in latest.values()
                for line in record.get("lines") or []
                if isinstance(line, Mapping) and line.get("product_title")
            }
            self._ensure_products(
                [w.body for w in writes if w.body],
                titles,
                products if products is not None else self._collection("products"),
            )
        self._run(writes)

    def _blind(self, resource: Resource, latest: Mapping[str, Mapping[str, Any]]) -> list[Write]:
        """The writes of a few customers without the store's copy: each one's whole body as an
        upsert (what is unchanged is written again, inside the same batch)."""
        writes: list[Write] = []
        for key, record in latest.items():
            try:
                writes.append(Write(resource, key, self._body(resource, record), "UPSERT"))
            except RecordError as exc:
                self.report.reject(resource.stream, f"id={key}", "invalid_value", str(exc), exc.field)
        return writes

    def _run(self, writes: list[Write], *, blind: bool = False) -> None:
        """Many writes: one ``/batches`` call; a trickle: single calls on the allowed connections.

        A few writes while batches are in flight (the tail of a backfill) join the queue as a batch
        of their own instead of waiting for it and going one call each. Writes without the store's
        copy (``blind``) always go as a batch: it runs after any batch a killed run left running
        (submission order), which single calls would have to list and wait for first.
        """
        if len(writes) >= self.settings.backfill_threshold:
            self._start_syncing()
        if writes and (blind or len(writes) >= self.settings.batch_threshold or self.in_flight):
            self._submit(writes)
        elif writes:
            self._await_open_batches()
            run_concurrently([partial(self._write, w) for w in writes], self.workers)

    def _ensure_products(
        self, bodies: list[dict[str, Any]], titles: dict[str, str], products: CollectionView
    ) -> None:
        """Create placeholder products/variants for lines that reference unknown ones (``products``:
        the store's, read whole or looked up for these lines)."""
        queued: dict[str, set[str]] = {}  # product id -> variant ids of product writes in flight
        for batch in self._submitted.values():
            if batch.collection == "products":
                for write in batch.by_op.values():
                    variants = (write.body or {}).get("variants") or []
                    queued.setdefault(write.key, set()).update(str(v.get("id")) for v in variants)
        wanted: dict[str, dict[str, str]] = {}
        for body in bodies:
            for line in body.get("lines") or []:
                pid, vid = (
                    str(line["product_id"]),
                    str(line.get("product_variant_id") or line["product_id"]),
                )
                if vid in queued.get(pid, ()):
                    continue  # created by a batch that runs before this window's
                have = products.get(pid)
                if have is None or all(str(v.get("id")) != vid for v in have.get("variants") or []):
                    wanted.setdefault(pid, {})[vid] = titles.get(pid) or pid
        writes = []
        for pid, variants in wanted.items():
            body = {"variants": [{"id": vid, "title": title} for vid, title in variants.items()]}
            if pid in products or pid in queued:
                writes.append(Write(RESOURCES["ecommerce_products"], pid, body, "UPDATE", quiet=True))
            else:
                title = next(iter(variants.values()))
                writes.append(
                    Write(
                        RESOURCES["ecommerce_products"],
                        pid,
                        {"id": pid, "title": title, **body},
                        "CREATE",
                        quiet=True,
                    )
                )
        self._run(writes)

    def _request(self, write: Write) -> tuple[str, str, dict[str, Any] | None]:
        """Method, path and body of one write (the same for a single call and a batch operation)."""
        path = f"{self.base}/{write.resource.collection}"
        key, body = write.key, write.body
        if write.action == "DELETE":
            return "DELETE", f"{path}/{key}", None
        if write.resource.collection == "customers":
            return "PUT", f"{path}/{key}", {"id": key, **(body or {}), **self._customer_fill(key, body)}
        if write.action == "CREATE":
            return "POST", path, {"id": key, **(body or {})}
        return "PATCH", f"{path}/{key}", body

    def _write(self, write: Write) -> None:
        method, path, body = self._request(write)
        try:
            result = self.client.request(method, path, json_body=body)
        except PermanentMailchimpError as exc:
            if not (method == "POST" and _already_exists(exc)):
                self._reject(write, exc)
                return
            # A create applied before its answer was lost (the retry got 400 "already exists"),
            # or one made meanwhile: the record is there, so it is updated to what we send.
            try:
                result = self.client.request("PATCH", f"{path}/{write.key}", json_body=write.body)
            except PermanentMailchimpError as again:
                self._reject(write, again)
                return
        self._written(write, result)

    def _reject(self, write: Write, exc: PermanentMailchimpError) -> None:
        detail = "; ".join(
            filter(None, [exc.title, exc.detail, *(e.get("message", "") for e in exc.errors)])
        )
        fields = exc.error_fields
        self.report.reject(
            write.resource.stream,
            f"id={write.key}",
            exc.reason,
            redact_pii(detail),
            fields[0] if fields else None,
        )

    def _written(self, write: Write, result: Any) -> None:
        collection = write.resource.collection
        if write.action == "DELETE":
            self._known.delete(collection, write.key)
        elif isinstance(result, dict) and result.get("id"):
            self._known.put(collection, write.key, _slim(collection, result))
        else:
            before = self._known.get(collection, write.key) or {}
            self._known.put(collection, write.key, _slim(collection, {**before, **(write.body or {})}))
        if not write.quiet:
            self.report.count(
                write.resource.stream,
                {"CREATE": "created", "UPDATE": "updated", "DELETE": "deleted", "UPSERT": "upserted"}[
                    write.action
                ],
            )

    # -- /batches ------------------------------------------------------------------------
    def _wait(self, batch_id: str, timeout_seconds: float | None = None) -> dict[str, Any]:
        # One of ours is polled first when it should be finished (``_expected_end``): a small job
        # then takes one poll. Another's (a killed run's) may be finished already.
        expected_end = self._expected_ends.get(batch_id)
        return wait_for_batch(
            self.client,
            batch_id,
            poll_seconds=self.settings.batch_poll_seconds,
            timeout_seconds=self.settings.batch_timeout_seconds
            if timeout_seconds is None
            else timeout_seconds,
            pace=self._pace,
            first_wait=0.0 if expected_end is None else expected_end - time.monotonic(),
        )

    def _expected_end(self, operations: int) -> float:
        """When a job of ``operations`` submitted now should be finished (its first poll):
        ``first_poll_seconds`` after its submission or after the expected end of our job queued
        before it (Mailchimp runs them one at a time), at least a poll interval. Nothing is learned
        from a finished job's ``submitted_at`` to ``completed_at``: it includes the wait behind any
        other job of the account (the contacts' tags), which made a backfill's next first poll
        come ~50 s late; a large job is polled by its progress (``pacing``) instead."""
        start = max([time.monotonic(), *list(self._expected_ends.values())])
        return start + max(first_poll_seconds(operations), self.settings.batch_poll_seconds)

    def busy_until(self) -> float:
        """When the store's jobs queued at Mailchimp should all be done (``time.monotonic()``; 0: none)."""
        return max(self._expected_ends.values(), default=0.0)

    @property
    def in_flight(self) -> bool:
        """True while one of this sync's submitted batches is not read yet."""
        return bool(self._submitted)

    def settle(self) -> None:
        """Read the results of every batch of this sync (and of the jobs queued before them)."""
        self.batches.settle(kind=KIND)

    def _submit(self, writes: list[Write]) -> None:
        """``POST /batches`` for the writes (one, unless its body would pass ``MAX_BATCH_BYTES``),
        read later (``_collect``) while the next is prepared."""
        collection = writes[0].resource.collection
        self.batches.settle(keys=_queue_keys(collection, (w.key for w in writes)))
        by_op: dict[str, Write] = {}
        operations: list[dict[str, Any]] = []
        size = 0
        for i, write in enumerate(writes):
            method, path, body = self._request(write)
            op_id = f"{write.resource.collection}:{i}:{write.key}"
            operation: dict[str, Any] = {"method": method, "path": path, "operation_id": op_id}
            if body is not None:
                operation["body"] = json.dumps(body, separators=(",", ":"))  # a string, as Mailchimp wants
            text = operation.get("body", "")
            op_size = len(path) + len(op_id) + len(text) + text.count('"') + 64  # quotes escaped
            if operations and size + op_size > MAX_BATCH_BYTES:
                self._submit_operations(collection, writes[0].resource.stream, operations, by_op)
                by_op, operations, size = {}, [], 0
            by_op[op_id] = write
            operations.append(operation)
            size += op_size
        self._submit_operations(collection, writes[0].resource.stream, operations, by_op)

    def _submit_operations(
        self, collection: str, stream: str, operations: list[dict[str, Any]], by_op: dict[str, Write]
    ) -> None:
        # only the store's jobs count (a read-ahead's contacts jobs queued between them would
        # otherwise make this wait for the last store job, leaving Mailchimp's queue empty)
        while sum(job.kind == KIND for job in self.batches) >= PIPELINE_DEPTH:
            oldest = next(iter(self.batches))
            if self.on_wait is not None and self.on_wait(self._expected_ends.get(oldest.batch_id, 0.0)):
                continue
            self.batches.read_oldest()
        batch_id = submit_batch(self.client, operations)
        self._expected_ends[batch_id] = self._expected_end(len(operations))
        self._pace.expect(batch_id, len(operations))
        LOGGER.info("Submitted batch %s: %d %s writes", batch_id, len(operations), collection)
        self.report.count(stream, "batched", len(operations))
        self._submitted[batch_id] = _Submitted(collection, by_op)
        self.batches.add(
            batch_id,
            partial(self._collect, batch_id),
            kind=KIND,
            keys=[
                *_queue_keys(collection, (w.key for w in by_op.values())),
                *(k for w in by_op.values() for k in _person_keys(w)),
            ],
            operations=len(operations),
        )

    def _collect(self, batch_id: str) -> None:
        """Wait for a submitted batch (the oldest in the queue); per-operation results become counts or
        rejects.

        Operations whose result is missing or retryable (429, 5xx) are sent again as single calls
        (with the client's retries); a fatal one (401/403) stops the run like a single call would.
        """
        batch = self._submitted[batch_id]
        try:
            doc = self._wait(batch_id)
        except (BatchExpiredError, BatchTimeoutError) as exc:
            msg = f"Mailchimp batch {batch_id} did not finish: {exc}"
            raise RuntimeError(msg) from exc
        by_op = batch.by_op
        done: set[str] = set()
        for result in iter_results(self.client, str(doc.get("response_body_url") or "")):
            if result.operation_id not in by_op or result.operation_id in done:
                continue
            write = by_op[result.operation_id]
            done.add(result.operation_id)
            if result.status_code < 400:
                self._written(write, result.body)
                continue
            method, path, _ = self._request(write)
            error = make_error(result.status_code, result.body, method, path)
            if isinstance(error, FatalMailchimpError):
                raise error
            if isinstance(error, PermanentMailchimpError) and not (method == "POST" and _already_exists(error)):
                self._reject(write, error)
            else:  # a create already applied (e.g. by a batch sent twice when its answer was lost) too
                done.discard(result.operation_id)  # retryable: sent again below as a single call
        retry = [w for op_id, w in by_op.items() if op_id not in done]
        if retry:
            LOGGER.warning(
                "Batch %s: %d operations without a final result; sent one by one.", batch_id, len(retry)
            )
            run_concurrently([partial(self._write, w) for w in retry], self.workers)
        del self._submitted[batch_id]
        self._expected_ends.pop(batch_id, None)

    def _customer_fill(self, key: str, body: dict[str, Any] | None) -> dict[str, Any]:
        """A PUT needs the required fields even when only one changed."""
        current = self._known.get("customers", key) or {}
        fill = {
            k: current[k]
            for k in ("email_address", "opt_in_status")
            if k in current and k not in (body or {})
        }
        return json.loads(json.dumps(fill))


def _person_keys(write: Write) -> list[str]:
    """The queue keys of the person a write names (its body's customer, or the customer it writes):
    an archive or erasure of that person waits for the job (``ContactSync``)."""
    body = write.body or {}
    customer = body if write.resource.collection == "customers" else body.get("customer")
    if not isinstance(customer, Mapping):
        return []
    email = customer.get("email_address")
    key = write.key if write.resource.collection == "customers" else customer.get("id")
    return person_keys(
        email_hash(email.strip()) if isinstance(email, str) and email.strip() else None,
        None if key in (None, "") else str(key),
    )


def _line_products(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """The product ids the lines of orders or carts name."""
    return [
        str(line["product_id"])
        for record in records
        for line in record.get("lines") or []
        if isinstance(line, Mapping) and line.get("product_id")
    ]


def _lookup_wanted(
    resource: Resource, records: Iterable[Mapping[str, Any]]
) -> dict[str, list[str]]:
    """What a lookup of ``records`` reads: their ids (collection -> ids), and the products their
    order or cart lines name."""
    records = list(records)
    wanted = {resource.collection: list(dict.fromkeys(str(r.get("id")) for r in records))}
    if resource.collection in {"orders", "carts"}:
        wanted["products"] = _line_products(records)
    return wanted


def _lookup_operations(
    base: str, todo: list[tuple[str, str]], *, with_store: bool
) -> list[dict[str, Any]]:
    """The ``/batches`` GETs of a lookup (``todo``: collection and id each; operation id
    ``collection:id``), and with ``with_store`` the store's own (operation id ``store``)."""
    operations: list[dict[str, Any]] = [
        {
            "method": "GET",
            "path": f"{base}/{c}/{k}",
            "params": {"exclude_fields": "_links"},
            "operation_id": f"{c}:{k}",
        }
        for c, k in dict.fromkeys(todo)
    ]
    if with_store:
        operations.append(
            {"method": "GET", "path": base, "params": STORE_FIELDS, "operation_id": "store"}
        )
    return operations


def _lookup_results(
    results: Iterable[OperationResult], todo: list[tuple[str, str]]
) -> tuple[dict[tuple[str, str], dict[str, Any] | None], tuple[dict[str, Any] | None] | None]:
    """A lookup's results (``_lookup_operations``): the records found (None: a 404, not in the
    store; those without a usable result are missing) and the store's own (``(None,)``: a 404;
    None: not asked or no usable result)."""
    by_op = {f"{c}:{k}": (c, k) for c, k in todo}
    found: dict[tuple[str, str], dict[str, Any] | None] = {}
    store: tuple[dict[str, Any] | None] | None = None
    for result in results:
        if result.operation_id == "store":
            if result.status_code == 404:
                store = (None,)
            elif result.status_code < 400 and isinstance(result.body, dict):
                store = (dict(result.body),)
            continue
        wanted = by_op.get(result.operation_id)
        if wanted is None or wanted in found:
            continue
        if result.status_code == 404:
            found[wanted] = None
        elif result.status_code < 400 and isinstance(result.body, dict) and result.body.get("id"):
            found[wanted] = dict(result.body)
    return found, store


def _slim(collection: str, doc: dict[str, Any]) -> dict[str, Any]:
    """What the target compares of a store record (its id and the fields it sends; lines, variants and
    the order's customer with their own keys): a store read whole stays small in memory."""
    resource = BY_COLLECTION[collection]
    out: dict[str, Any] = {k: doc[k] for k in ("id", *resource.fields) if k in doc}
    nested = {"lines": LINE_KEYS, "variants": VARIANT_KEYS}
    for key, keys in nested.items():
        if isinstance(out.get(key), list):
            out[key] = [
                {k: item[k] for k in keys if k in item} if isinstance(item, Mapping) else item
                for item in out[key]
            ]
    if isinstance(out.get("customer"), Mapping):
        out["customer"] = {k: out["customer"][k] for k in CUSTOMER_KEYS if k in out["customer"]}
    return out


def _already_exists(exc: PermanentMailchimpError) -> bool:
    """Mailchimp's 400 for a create whose id is taken ("A cart with the provided ID already exists")."""
    return exc.status == 400 and "already exists" in f"{exc.title} {exc.detail}".lower()
