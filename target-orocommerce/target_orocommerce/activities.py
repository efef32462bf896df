"""Mailchimp engagement -> Oro ``marketingactivities``, written exactly once.

Dedupe key
    Every activity the target writes carries, inside its ``details`` JSON, ``"source": "mailchimp"``
    and a deterministic ``"key"``: the SHA-1 (first 20 hex) of
    ``type | campaign id | email id | timestamp (UTC, seconds) | url``. The key is stored *in the same
    record* it identifies, by the same POST, so it survives anything that can happen to the target
    process: a kill between the POST and the state message leaves the activity and its key in Oro
    together, and the replayed input finds it again.

    Before writing, the target looks existing keys up in Oro with one list call per campaign and
    time window (``filter[campaign]=<id>&filter[actionDate][gte]=<first>&filter[actionDate][lte]=
    <last>``; ``actionDate`` is indexed and ``campaign`` is filterable in stock Oro) and skips
    what is already there. Keys written in this run are also kept in memory, so duplicates inside
    one input are dropped without a call. A retried POST (5xx, lost connection) first re-checks the
    key, so a create that landed before its response was lost is not repeated.

Granularity
    ``every_event`` writes one activity per Mailchimp event. ``first_per_action`` keeps only the first
    ``open`` and the first ``click`` per member and campaign (sends, bounces and unsubscribes happen
    once anyway); its key is ``type | campaign id | email id``, and the existing first-of-action
    records of a campaign are loaded once per run with ``filter[campaign]``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests
from oromc_common.dates import parse_utc
from oromc_common.diskmap import DiskMap
from oromc_common.emails import email_key
from oromc_common.keys import record_key
from oromc_common.oro import OroClientError, format_oro_datetime
from oromc_common.report import RunReport

from target_orocommerce.bulk import BATCH_MODES, note_batch_answer
from target_orocommerce.client import (
    PLANNED_ID,
    SYNC_BATCH_LIMIT,
    OroWriter,
    all_error_details,
)
from target_orocommerce.lookups import CampaignDirectory, CustomerUserDirectory

ACTIVITY_TYPES = ("send", "open", "click", "soft_bounce", "hard_bounce", "unsubscribe")
FIRST_ONLY_TYPES = frozenset({"open", "click"})
ONE_PER_MEMBER_TYPES = frozenset({"send", "unsubscribe"})
EVERY_EVENT = "every_event"
FIRST_PER_ACTION = "first_per_action"


@dataclass
class ActivityIntent:
    """One marketing activity the input asks for."""

    stream: str
    record_key: str
    type: str
    email: str
    email_id: str
    campaign_code: str | None
    list_id: str | None
    action_date: datetime
    url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Member-status unsubscribes only: the member's latest opt-in (``timestamp_opt``). An
    # unsubscribe of ours dated at or after it already records this opt-out.
    opted_in_at: datetime | None = None

    @property
    def key(self) -> str:
        """Event key: identifies one Mailchimp event.

        Unsubscribes leave the campaign out, so the unsubscribe seen in a campaign report and the
        one seen as the member's status change (same moment) are one activity.
        """
        campaign = "" if self.type == "unsubscribe" else self.campaign_code or ""
        raw = "|".join(
            [self.type, campaign, self.email_id, format_oro_datetime(self.action_date), self.url or ""]
        )
        return hashlib.sha1(raw.encode(), usedforsecurity=False).hexdigest()[:20]

    @property
    def first_key(self) -> str:
        """First-of-action key: identifies (type, campaign, member)."""
        return f"{self.type}|{self.campaign_code or ''}|{self.email_id}"

    def dedupe_key(self, granularity: str) -> str:
        """The key that decides "already written" under ``granularity``.

        A ``send`` happens once per member and campaign, so its key never includes a time (the
        send time may come from the campaign or, failing that, from the Oro campaign's date).
        An ``unsubscribe`` is one per member and campaign-or-none, whatever its exact second
        (Mailchimp's report time and the member's ``last_changed`` differ, and ``last_changed``
        moves whenever anything about the member changes); see :meth:`ActivityWriter.write` for
        how the member-status opt-out and the report row become one activity.
        """
        if self.type in ONE_PER_MEMBER_TYPES or (
            granularity == FIRST_PER_ACTION and self.type in FIRST_ONLY_TYPES
        ):
            return "F:" + self.first_key
        return "E:" + self.key

    def details(self) -> str:
        """The ``details`` text stored on the Oro record (no email address, no names)."""
        payload: dict[str, Any] = {
            "source": "mailchimp",
            "key": self.key,
            "action": self.type,
            "campaign_id": self.campaign_code,
            "list_id": self.list_id,
            "email_id": self.email_id,
            "timestamp": format_oro_datetime(self.action_date),
        }
        if self.url:
            payload["url"] = self.url
        payload.update({k: v for k, v in self.extra.items() if v not in (None, "")})
        return json.dumps(payload, sort_keys=True, separators=(",", ":"))


class MappingError(ValueError):
    """A record that cannot become an activity; ``field`` names the culprit."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def _email_id(record: Mapping[str, Any], email: str) -> str:
    value = record.get("email_id")
    if isinstance(value, str) and value:
        return value
    return hashlib.md5(email.encode(), usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class _Row:
    """What every activity of one input row shares: its member and its campaign."""

    record: Mapping[str, Any]
    email: str
    email_id: str
    campaign: str

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> _Row:
        email = email_key(record.get("email_address"))
        if email is None:
            raise MappingError("missing or invalid email address", "email_address")
        campaign = record.get("campaign_id")
        if not isinstance(campaign, str) or not campaign:
            raise MappingError("missing campaign_id", "campaign_id")
        return cls(record, email, _email_id(record, email), campaign)

    def intent(
        self,
        stream: str,
        key: str | None,
        kind: str,
        when: datetime,
        *,
        url: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> ActivityIntent:
        """The row's ``kind`` activity at ``when``."""
        return ActivityIntent(
            stream=stream,
            record_key=_record_key(self.record, when, kind, key),
            type=kind,
            email=self.email,
            email_id=self.email_id,
            campaign_code=self.campaign,
            list_id=self.record.get("list_id"),
            action_date=when,
            url=url,
            extra=extra or {},
        )


def intents_from_email_activity(
    stream: str, record: Mapping[str, Any], key: str | None = None
) -> list[ActivityIntent]:
    """Rows of ``email_activity`` (one event per row, or Mailchimp's nested ``activity`` list)."""
    row = _Row.of(record)
    events = record.get("activity")
    rows: Iterable[Mapping[str, Any]] = events if isinstance(events, list) else [record]
    out = []
    for event in rows:
        action = event.get("action")
        if action == "bounce":
            bounce = event.get("bounce_type") or event.get("type")
            kind = "hard_bounce" if bounce == "hard" else "soft_bounce"
        elif action in {"open", "click"}:
            kind = str(action)
        else:
            raise MappingError(f"unsupported action {action!r} (open, click, bounce)", "action")
        when = parse_utc(event.get("timestamp"))
        if when is None:
            raise MappingError("missing or invalid timestamp", "timestamp")
        url = (event.get("url") or None) if kind == "click" else None
        extra = {"bounce_type": bounce} if action == "bounce" else {}
        out.append(row.intent(stream, key, kind, when, url=str(url) if url else None, extra=extra))
    return out


def intents_from_sent_to(
    stream: str, record: Mapping[str, Any], send_times: Mapping[str, datetime], key: str | None = None
) -> list[ActivityIntent]:
    """Rows of ``sent_to``: one ``send`` per recipient, dated by the campaign's send time."""
    row = _Row.of(record)
    when = parse_utc(record.get("timestamp")) or parse_utc(record.get("send_time"))
    when = when or send_times.get(row.campaign)
    if when is None:
        raise MappingError(
            "no send time: neither the row nor the campaigns stream gives one", "send_time"
        )
    extra = {"status": record.get("status")} if record.get("status") not in (None, "sent") else {}
    return [row.intent(stream, key, "send", when, extra=extra)]


def intents_from_unsubscribes(
    stream: str, record: Mapping[str, Any], key: str | None = None
) -> list[ActivityIntent]:
    """Rows of ``unsubscribes`` (campaign reports): one ``unsubscribe`` each."""
    row = _Row.of(record)
    when = parse_utc(record.get("timestamp"))
    if when is None:
        raise MappingError("missing or invalid timestamp", "timestamp")
    return [row.intent(stream, key, "unsubscribe", when, extra={"reason": record.get("reason")})]


ACTIVITY_KEY = ("campaign_id", "email_id")  # names an activity record in rejects: ``<campaign>/<hash>``


def _record_key(record: Mapping[str, Any], when: datetime, kind: str, key: str | None) -> str:
    base = key if key is not None else record_key(record, ACTIVITY_KEY)
    return f"{base}/{kind}/{format_oro_datetime(when)}"


@dataclass
class Unsubscribe:
    """One ``unsubscribe`` activity this connector wrote (read back from Oro or just created)."""

    activity_id: str | None
    when: datetime
    campaign_code: str | None
    resubscribed_at: datetime | None = None
    payload: dict[str, Any] | None = None  # the ``details`` JSON (re-subscribes add to it)


class ActivityLedger:
    """Which Mailchimp activities Oro already holds (keys read from ``details``).

    Every activity read back or written in the run is remembered by its two keys, with the Oro id
    of the activity holding it: a million activities (a re-run of a campaign to 100,000 people) as
    Python sets and dicts took ~300 MB (``bench_memory.py --engagement``), so they are kept on disk
    (:class:`~oromc_common.diskmap.DiskMap`, the project's per-run table).
    """

    def __init__(self, writer: OroWriter, page_size: int = 500) -> None:
        self.writer = writer
        self.page_size = page_size
        # key -> Oro id of the activity holding it as read back ("" when written in this run and
        # not read back: a create whose answer was lost has no id of its own)
        self._known = DiskMap(prefix="oromc-activity-keys-")
        self._full: set[str | None] = set()
        self._windows: dict[str | None, list[tuple[datetime, datetime]]] = defaultdict(list)
        self._lock = threading.Lock()
        self.lookup_calls = 0
        self._unsubscribes: dict[str, list[Unsubscribe]] | None = None

    def __contains__(self, key: str) -> bool:
        return key in self._known

    def add(self, key: str) -> None:
        """Remember a key written in this run."""
        self._known.setdefault(key, "")

    def id_of(self, key: str) -> str | None:
        """The Oro id of the activity holding ``key``, when it was read from Oro (a create whose
        answer was lost and that :meth:`recheck` found has no id of its own)."""
        return self._known.get(key) or None

    def _remember(self, resources: list[tuple[str, list[str]]]) -> None:
        for activity_id, keys in resources:
            for key in keys:
                self._known[key] = activity_id

    def ensure_campaign(self, campaign_id: str) -> None:
        """Load every Mailchimp activity of one Oro campaign (once per run)."""
        with self._lock:
            if campaign_id in self._full:
                return
            if campaign_id.startswith(PLANNED_ID):  # a campaign a dry run would create holds nothing yet
                self._full.add(campaign_id)
                return
        self._load({"filter[campaign]": campaign_id})
        with self._lock:
            self._full.add(campaign_id)

    def ensure_window(self, campaign_id: str | None, start: datetime, end: datetime) -> None:
        """Load the activities of ``campaign_id`` (None = any) with ``start <= actionDate <= end``."""
        if campaign_id is not None and campaign_id.startswith(PLANNED_ID):
            self.ensure_campaign(campaign_id)
            return
        with self._lock:
            if campaign_id in self._full:
                return
            if any(s <= start and end <= e for s, e in self._windows[campaign_id]):
                return
        params = {
            "filter[actionDate][gte]": format_oro_datetime(start),
            "filter[actionDate][lte]": format_oro_datetime(end),
        }
        if campaign_id is not None:
            params["filter[campaign]"] = campaign_id
        self._load(params)
        with self._lock:
            self._windows[campaign_id].append((start, end))

    # -- unsubscribes: one per member and opt-out ------------------------------------------------
    def ensure_unsubscribes(self) -> dict[str, list[Unsubscribe]]:
        """Every ``unsubscribe`` activity this connector wrote, by customer user id (once per run).

        One list call (``filter[marketingActivityType]=unsubscribe``, paged): opt-outs are few
        compared with opens and sends, and consent needs them per person, not per time window.
        """
        with self._lock:
            if self._unsubscribes is not None:
                return self._unsubscribes
        found: dict[str, list[Unsubscribe]] = defaultdict(list)
        keys: list[tuple[str, list[str]]] = []
        params = {"filter[marketingActivityType]": "unsubscribe", "page[size]": str(self.page_size), "sort": "id"}
        self.lookup_calls += 1
        for resource in self.writer.iter_resources("marketingactivities", params):
            payload = _our_details(resource)
            entity = ((resource.get("relationships") or {}).get("entity") or {}).get("data") or {}
            when = parse_utc((resource.get("attributes") or {}).get("actionDate"))
            if payload is None or entity.get("type") != "customerusers" or when is None:
                continue
            keys.append((str(resource.get("id")), keys_of(resource)))
            found[str(entity.get("id"))].append(
                Unsubscribe(
                    activity_id=str(resource.get("id")),
                    when=when,
                    campaign_code=payload.get("campaign_id") or None,
                    resubscribed_at=parse_utc(payload.get("resubscribed_at")),
                    payload=payload,
                )
            )
        self._remember(keys)
        with self._lock:
            if self._unsubscribes is None:
                self._unsubscribes = found
            return self._unsubscribes

    def unsubscribes_of(self, user_id: str) -> list[Unsubscribe]:
        """This connector's unsubscribe activities on one customer user."""
        return list(self.ensure_unsubscribes().get(user_id, ()))

    def opt_out_recorded(self, user_id: str, since: datetime | None, *, campaign_only: bool | None = None) -> bool:
        """True when an unsubscribe of ours on ``user_id`` is dated at or after ``since``.

        ``since`` None = any. ``campaign_only`` True/False restricts to report rows (with a
        campaign) / member-status opt-outs (without one).
        """
        for item in self.unsubscribes_of(user_id):
            if campaign_only is not None and (item.campaign_code is not None) != campaign_only:
                continue
            if since is None or item.when >= since:
                return True
        return False

    def note_unsubscribe(self, user_id: str, item: Unsubscribe) -> None:
        """Remember an unsubscribe activity created in this run."""
        registry = self.ensure_unsubscribes()
        with self._lock:
            registry.setdefault(user_id, []).append(item)

    def recheck(self, campaign_id: str | None, when: datetime, key: str) -> bool:
        """Ask Oro again whether ``key`` exists (used before retrying an ambiguous create)."""
        params = {"filter[actionDate]": format_oro_datetime(when)}
        if campaign_id is not None:
            params["filter[campaign]"] = campaign_id
        self._load(params)
        return key in self

    def _load(self, params: Mapping[str, str]) -> None:
        """Remember the keys of the activities ``params`` select, a page at a time (a campaign to
        100,000 people has ~200,000 of them: as one list ~35 MB)."""
        query = {**params, "page[size]": str(self.page_size), "sort": "id"}
        self.lookup_calls += 1
        page: list[tuple[str, list[str]]] = []
        for res in self.writer.iter_resources("marketingactivities", query):
            page.append((str(res.get("id")), keys_of(res)))
            if len(page) >= self.page_size:
                self._remember(page)
                page = []
        self._remember(page)


def _our_details(resource: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``details`` JSON of an activity this target wrote, else None."""
    details = (resource.get("attributes") or {}).get("details")
    if not isinstance(details, str) or '"mailchimp"' not in details:
        return None
    try:
        payload = json.loads(details)
    except ValueError:
        return None
    if not isinstance(payload, dict) or payload.get("source") != "mailchimp" or not payload.get("key"):
        return None
    return payload


def keys_of(resource: Mapping[str, Any]) -> list[str]:
    """Dedupe keys of an Oro marketing activity written by this target (``[]`` for others)."""
    payload = _our_details(resource)
    if payload is None:
        return []
    kind = payload.get("action")
    first = f"F:{kind}|{payload.get('campaign_id') or ''}|{payload.get('email_id') or ''}"
    return ["E:" + str(payload["key"]), first]


@dataclass
class WriteOutcome:
    """Counters of one :meth:`ActivityWriter.write` call."""

    created: int = 0
    duplicates: int = 0
    skipped_granularity: int = 0
    skipped_type: int = 0
    enriched: int = 0  # member-status unsubscribes given the campaign of their report row
    created_records: set[str] = field(default_factory=set)


@dataclass
class _Prepared:
    """A batch ready to create: its counters so far, what to create, the Oro campaign ids."""

    outcome: WriteOutcome
    todo: list[tuple[str, ActivityIntent, str]]
    campaign_ids: dict[str, str]


#: Batches whose creates may be in flight at once (:meth:`ActivityWriter.write_behind`).
WRITES_BEHIND = 4


class ActivityWriter:
    """Turns intents into Oro records: resolve, dedupe, then create (Batch API or bounded POSTs)."""

    def __init__(
        self,
        *,
        writer: OroWriter,
        customers: CustomerUserDirectory,
        campaigns: CampaignDirectory,
        report: RunReport,
        granularity: str = FIRST_PER_ACTION,
        types: Iterable[str] | None = None,
        batch_mode: str = "auto",
        page_size: int = 500,
    ) -> None:
        # Called with the new opt-outs (intent, customer user id) before their unsubscribe
        # activities are created; returns the indexes that failed (already rejected). Set by
        # the member sync so that every unsubscribe activity means "the lists are done too".
        self.before_opt_outs: Callable[[list[tuple[ActivityIntent, str]]], set[int]] | None = None
        self.types = frozenset(ACTIVITY_TYPES if types is None else types)
        self.writer = writer
        self.customers = customers
        self.campaigns = campaigns
        self.report = report
        self.granularity = granularity
        self.ledger = ActivityLedger(writer, page_size=page_size)
        # None = not probed yet; the stock Oro API has no Batch API for marketingactivities (405).
        self.batch_supported = BATCH_MODES[batch_mode]
        self._lock = threading.Lock()
        self._probe_lock = threading.Lock()
        self._behind: list[Future[None]] = []  # creates running in the background, oldest first
        self._pending_keys: set[str] = set()  # their dedupe keys
        self._behind_pool = ThreadPoolExecutor(max_workers=WRITES_BEHIND, thread_name_prefix="oro-behind")

    def write(self, intents: Sequence[ActivityIntent]) -> WriteOutcome:
        """Write the intents not yet in Oro; reject (and report) those that cannot be written.

        Waits for the writes still running behind (:meth:`write_behind`) first.
        """
        self.flush()
        prepared = self._prepare(intents)
        return self._finish(prepared)

    def write_behind(self, intents: Sequence[ActivityIntent], on_done: Callable[[WriteOutcome], None]) -> None:
        """Like :meth:`write`, but the creates run in the background while the caller goes on.

        The lookups of this batch run now (while the previous batch's creates are still in flight),
        then its creates are queued behind them: Oro's workers never wait for the target's
        preparation. At most :data:`WRITES_BEHIND` batches are in flight; a batch sharing a dedupe
        key with one of them, or carrying unsubscribes (consent comes first), waits for them and
        is written in the foreground. ``on_done`` gets the counters once the creates are done (on a
        background thread). :meth:`flush` waits for everything (before any state is emitted) and
        raises what failed.
        """
        self._raise_failure()
        if self.writer.dry_run or any(i.type == "unsubscribe" for i in intents):
            on_done(self.write(intents))
            return
        keys = {i.dedupe_key(self.granularity) for i in intents}
        with self._lock:
            clash = not keys.isdisjoint(self._pending_keys)
        if clash:
            self.flush()
        prepared = self._prepare(intents)
        written = {k for k, _, _ in prepared.todo}
        self._wait_behind(WRITES_BEHIND - 1)
        with self._lock:
            self._pending_keys |= written
        self._behind.append(self._behind_pool.submit(self._write_behind, prepared, written, on_done))

    def _write_behind(self, prepared: _Prepared, written: set[str], on_done: Callable[[WriteOutcome], None]) -> None:
        try:
            on_done(self._finish(prepared))
        finally:
            with self._lock:
                self._pending_keys -= written

    def _wait_behind(self, keep: int) -> None:
        while len(self._behind) > keep:
            self._behind[0].exception()  # waits for the oldest
            self._raise_failure()

    def _raise_failure(self) -> None:
        """Forget the finished background writes; raise the first failure (once all have stopped)."""
        done = [f for f in self._behind if f.done()]
        self._behind = [f for f in self._behind if not f.done()]
        errors = [e for e in (f.exception() for f in done) if e is not None]
        if errors:
            with contextlib.suppress(Exception):
                self.flush()
            raise errors[0]

    def flush(self) -> None:
        """Wait for the writes running behind; raise the first failure (after all have stopped)."""
        futures, self._behind = self._behind, []
        errors = [e for e in (f.exception() for f in futures) if e is not None]
        if errors:
            raise errors[0]

    def close(self) -> None:
        """Stop the background writer (waits for what is in flight)."""
        self._behind_pool.shutdown(wait=True, cancel_futures=True)

    def _finish(self, prepared: _Prepared) -> WriteOutcome:
        outcome, todo = prepared.outcome, prepared.todo
        outcome.created = self._create(todo, prepared.campaign_ids)
        outcome.created_records = {i.record_key for k, i, _ in todo if k in self.ledger}
        return outcome

    def _prepare(self, intents: Sequence[ActivityIntent]) -> _Prepared:
        """Steps 1-4 of a write: dedupe, resolve users and campaigns, check Oro, anchor opt-outs."""
        outcome = WriteOutcome()
        chosen = self._dedupe(intents, outcome)
        ready, campaign_ids = self._resolve_users(chosen)
        todo = self._not_in_oro(ready, campaign_ids, outcome)
        return _Prepared(outcome, self._anchor_opt_outs(todo), campaign_ids)

    def _dedupe(
        self, intents: Sequence[ActivityIntent], outcome: WriteOutcome
    ) -> dict[str, ActivityIntent]:
        """1. Drop duplicates inside the input (and, for first_per_action, later events)."""
        chosen: dict[str, ActivityIntent] = {}
        for intent in sorted(intents, key=lambda i: i.action_date):
            if intent.type not in self.types:
                outcome.skipped_type += 1
                continue
            key = intent.dedupe_key(self.granularity)
            if key in chosen:
                if chosen[key].key == intent.key:
                    outcome.duplicates += 1  # the same event twice in the input
                else:
                    outcome.skipped_granularity += 1  # a later open/click of the same member
                continue
            chosen[key] = intent
        return chosen

    def _resolve_users(
        self, chosen: Mapping[str, ActivityIntent]
    ) -> tuple[list[tuple[str, ActivityIntent, str]], dict[str, str]]:
        """2. Customer users (an intent without one is rejected) and campaigns."""
        users = self.customers.resolve({i.email for i in chosen.values()})
        campaign_ids: dict[str, str] = {}
        for code in sorted({i.campaign_code for i in chosen.values() if i.campaign_code}):
            campaign_ids[code] = self.campaigns.ensure(code).id
        ready: list[tuple[str, ActivityIntent, str]] = []
        for key, intent in chosen.items():
            user = users.get(intent.email)
            if user is None:
                self.report.reject(
                    intent.stream,
                    intent.record_key,
                    "no_customer_user",
                    "no Oro customer user has this email address",
                    "email_address",
                )
                continue
            ready.append((key, intent, user.id))
        return ready, campaign_ids

    def _not_in_oro(
        self,
        ready: list[tuple[str, ActivityIntent, str]],
        campaign_ids: Mapping[str, str],
        outcome: WriteOutcome,
    ) -> list[tuple[str, ActivityIntent, str]]:
        """3. What does Oro already hold? The rest is to create."""
        self._prepare_ledger([(k, i) for k, i, _ in ready], campaign_ids)
        reported: dict[str, list[datetime]] = defaultdict(list)  # report-row unsubscribes here
        for _, intent, user_id in ready:
            if intent.type == "unsubscribe" and intent.campaign_code:
                reported[user_id].append(intent.action_date)
        todo = []
        for key, intent, user_id in ready:
            if intent.type == "unsubscribe":
                found = self._opt_out_recorded(key, intent, user_id, reported.get(user_id, []))
                if found is None:
                    todo.append((key, intent, user_id))
                elif isinstance(found, Unsubscribe) and self._enrich(key, intent, found, campaign_ids):
                    outcome.enriched += 1
                else:
                    outcome.duplicates += 1  # recorded (an unsubscribe left without the campaign)
            elif key not in self.ledger:
                todo.append((key, intent, user_id))
            elif key.startswith("F:") and f"E:{intent.key}" not in self.ledger:
                outcome.skipped_granularity += 1  # Oro holds an earlier event of this kind
            else:
                outcome.duplicates += 1  # this very event is already in Oro
        return todo

    def _anchor_opt_outs(
        self, todo: list[tuple[str, ActivityIntent, str]]
    ) -> list[tuple[str, ActivityIntent, str]]:
        """4. Opt-outs: the marketing lists first (the activity is the anchor), then create; an
        opt-out whose lists failed is not created."""
        opt_outs = [(n, i, u) for n, (_, i, u) in enumerate(todo) if i.type == "unsubscribe"]
        if not opt_outs or self.before_opt_outs is None:
            return todo
        failed = self.before_opt_outs([(i, u) for _, i, u in opt_outs])
        skip = {opt_outs[f][0] for f in failed}
        return [item for n, item in enumerate(todo) if n not in skip]

    def _opt_out_recorded(
        self, key: str, intent: ActivityIntent, user_id: str, reported: Sequence[datetime]
    ) -> bool | Unsubscribe | None:
        """Is this opt-out already an unsubscribe activity in Oro (or in this very batch)?

        One opt-out, two sightings: the member's status (no campaign; dated ``last_changed``,
        which moves whenever the member changes) and the campaign report row (the campaign and
        the real time). Returns True (recorded), None (new) or, for a report row whose opt-out
        Oro holds as a member-status unsubscribe dated at or after it, that record (to be given
        the campaign). A member-status opt-out is recorded when an unsubscribe of ours (either
        kind) is dated at or after the member's latest opt-in (``timestamp_opt``; unknown = any),
        so a re-subscribe followed by a new opt-out is recorded again, whatever the exact second.
        """
        if intent.campaign_code:
            if key in self.ledger:
                return True
            for item in self.ledger.unsubscribes_of(user_id):
                if item.campaign_code is None and item.when >= intent.action_date:
                    return item
            return None
        since = intent.opted_in_at
        if any(since is None or when >= since for when in reported):
            return True  # the report row of this batch carries the campaign: it wins
        return True if self.ledger.opt_out_recorded(user_id, since) else None

    def _enrich(
        self, key: str, intent: ActivityIntent, item: Unsubscribe, campaign_ids: Mapping[str, str]
    ) -> bool:
        """Give a member-status unsubscribe the campaign, time and reason of its report row.

        The tap sends members before campaign reports, so in a run that sees both, the
        member-status activity is written first; one PATCH makes it the report's activity
        (campaign relation, real time, reason) instead of a second record for the same opt-out.
        """
        campaign_id = campaign_ids.get(intent.campaign_code or "")
        if item.activity_id is None or campaign_id is None:
            return False
        payload = json.loads(intent.details())
        if item.payload and item.payload.get("status"):
            payload["status"] = item.payload["status"]
        body = {
            "data": {
                "type": "marketingactivities",
                "id": item.activity_id,
                "attributes": {
                    "actionDate": format_oro_datetime(intent.action_date),
                    "details": json.dumps(payload, sort_keys=True, separators=(",", ":")),
                },
                "relationships": {"campaign": {"data": {"type": "campaigns", "id": campaign_id}}},
            }
        }
        self.writer.plan.add(intent.stream, "enrich_unsubscribe_activity", intent.record_key,
                             activity=item.activity_id, campaign=intent.campaign_code)
        try:
            if not self.writer.dry_run:
                self.writer.call("PATCH", f"marketingactivities/{item.activity_id}", body=body)
        except OroClientError as exc:
            self._reject(intent, exc)
            return False
        item.campaign_code, item.when, item.payload = intent.campaign_code, intent.action_date, payload
        self.ledger.add(key)
        return True

    def _note_created(self, intent: ActivityIntent, user_id: str, activity_id: str | None) -> None:
        if intent.type == "unsubscribe":
            self.ledger.note_unsubscribe(
                user_id,
                Unsubscribe(
                    activity_id,
                    intent.action_date,
                    intent.campaign_code or None,
                    payload=json.loads(intent.details()),
                ),
            )

    def _prepare_ledger(
        self, items: Sequence[tuple[str, ActivityIntent]], campaign_ids: Mapping[str, str]
    ) -> None:
        windows: dict[str | None, list[datetime]] = defaultdict(list)
        for key, intent in items:
            if intent.type == "unsubscribe":
                self.ledger.ensure_unsubscribes()
                continue
            scope = self._scope(intent, campaign_ids)
            if key.startswith("F:") and scope is not None:
                self.ledger.ensure_campaign(scope)
            else:
                windows[scope].append(intent.action_date)
        for scope, dates in windows.items():
            self.ledger.ensure_window(scope, min(dates), max(dates))

    @staticmethod
    def _scope(intent: ActivityIntent, campaign_ids: Mapping[str, str]) -> str | None:
        """Campaign filter for ledger lookups (None = any campaign, used for unsubscribes)."""
        if intent.type == "unsubscribe":
            return None
        return campaign_ids.get(intent.campaign_code or "")

    def _body(self, intent: ActivityIntent, user_id: str, campaign_id: str | None) -> dict[str, Any]:
        rels: dict[str, Any] = {
            "marketingActivityType": {"data": {"type": "marketingactivitytypes", "id": intent.type}},
            "entity": {"data": {"type": "customerusers", "id": user_id}},
        }
        if campaign_id is not None:
            rels["campaign"] = {"data": {"type": "campaigns", "id": campaign_id}}
        return {
            "type": "marketingactivities",
            "attributes": {
                "actionDate": format_oro_datetime(intent.action_date),
                "details": intent.details(),
            },
            "relationships": rels,
        }

    def _create(
        self, todo: list[tuple[str, ActivityIntent, str]], campaign_ids: Mapping[str, str]
    ) -> int:
        if not todo:
            return 0
        for _, intent, user_id in todo:
            action = "create_unsubscribe_activity" if intent.type == "unsubscribe" else "create_marketing_activity"
            self.writer.plan.add(intent.stream, action, intent.record_key, type=intent.type,
                                 customer_user=user_id, campaign=intent.campaign_code)
        if self.writer.dry_run:  # remembered as written, so the run plans each activity once
            for key, intent, user_id in todo:
                self.ledger.add(key)
                self._note_created(intent, user_id, None)
            return len(todo)
        if self.batch_supported is not False:
            done = self._create_batched(todo, campaign_ids)
            if done is not None:
                return done
        return self._create_single(todo, campaign_ids)

    # -- one POST per activity, bounded concurrency ------------------------------------------
    def _create_single(
        self, todo: Sequence[tuple[str, ActivityIntent, str]], campaign_ids: Mapping[str, str]
    ) -> int:
        def post(key: str, intent: ActivityIntent, user_id: str) -> bool:
            scope = self._scope(intent, campaign_ids)
            body = {"data": self._body(intent, user_id, campaign_ids.get(intent.campaign_code or ""))}
            response = self.writer.call(
                "POST",
                "marketingactivities",
                body=body,
                verify=lambda: self.ledger.recheck(scope, intent.action_date, key),
            )
            self.ledger.add(key)
            # no answer when the create landed but its response was lost: the id read back then
            self._note_created(intent, user_id, _created_id(response) or self.ledger.id_of(key))
            return True

        results = self.writer.run_parallel([functools.partial(post, k, i, u) for k, i, u in todo])
        created = 0
        for (_, intent, _), result in zip(todo, results, strict=True):
            if isinstance(result, OroClientError):
                self._reject(intent, result)
            elif isinstance(result, BaseException):
                raise result
            else:
                created += 1
        return created

    # -- Batch API (X-Mode: sync), where the instance enables it ------------------------------
    def _create_batched(
        self, todo: list[tuple[str, ActivityIntent, str]], campaign_ids: Mapping[str, str]
    ) -> int | None:
        """Chunks of <= 100 in parallel (one probes first while support is unknown); None = no Batch API.

        A chunk Oro refuses as a whole, for reasons not tied to its records, falls back to one POST
        per record.
        """
        chunks = [todo[n : n + SYNC_BATCH_LIMIT] for n in range(0, len(todo), SYNC_BATCH_LIMIT)]
        created = 0
        fallback: list[tuple[str, ActivityIntent, str]] = []
        with self._probe_lock:  # one probe at a time: the other batches wait for its answer
            if self.batch_supported is None:
                first = self._send_batch(chunks[0], campaign_ids)
                if first is None:
                    return None
                created, fallback, chunks = created + first[0], fallback + first[1], chunks[1:]
        if self.batch_supported is False:
            return None
        results = self.writer.run_parallel([functools.partial(self._send_batch, c, campaign_ids) for c in chunks])
        for chunk, result in zip(chunks, results, strict=True):
            if isinstance(result, BaseException):
                raise result
            if result is None:  # the Batch API went away (405) while these were in flight
                fallback += chunk
                continue
            created += result[0]
            fallback += result[1]
        return created + (self._create_single(fallback, campaign_ids) if fallback else 0)

    def _send_batch(
        self, chunk: list[tuple[str, ActivityIntent, str]], campaign_ids: Mapping[str, str]
    ) -> tuple[int, list[tuple[str, ActivityIntent, str]]] | None:
        """One ``X-Mode: sync`` request (again without the records Oro named as invalid).

        Returns (created, records to send one by one), or None when the instance has no Batch API.
        """
        while chunk:
            body = {
                "data": [
                    self._body(i, u, campaign_ids.get(i.campaign_code or "")) for _, i, u in chunk
                ]
            }
            first_key, first_intent, _ = chunk[0]
            scope = self._scope(first_intent, campaign_ids)

            def landed(k: str = first_key, i: ActivityIntent = first_intent, s: str | None = scope) -> bool:
                # A sync batch is atomic: if its first record landed, all of them did.
                return self.ledger.recheck(s, i.action_date, k)

            try:
                response = self.writer.call(
                    "PATCH",
                    "marketingactivities",
                    body=body,
                    headers={"X-Mode": "sync"},
                    verify=landed,
                    ok_statuses=(405,),
                )
            except OroClientError as exc:
                bad = _bad_indexes(exc, len(chunk))
                if not bad:
                    return 0, chunk  # errors not tied to a record: one POST each
                for index in sorted(bad):
                    self._reject(chunk[index][1], exc, index=index)
                chunk = [item for n, item in enumerate(chunk) if n not in bad]
                continue
            # 200, or 202 when Oro turned a slow sync request into an async operation (> 25 s):
            # either way the records land, and a replay's ledger lookup sees them.
            if not note_batch_answer(self, response):
                return None
            ids = _created_ids(response, len(chunk))
            for (key, intent, user_id), activity_id in zip(chunk, ids, strict=True):
                self.ledger.add(key)
                self._note_created(intent, user_id, activity_id or self.ledger.id_of(key))
            return len(chunk), []
        return 0, []

    def _reject(self, intent: ActivityIntent, exc: OroClientError, index: int | None = None) -> None:
        detail = all_error_details(exc)
        if index is not None:
            detail = _errors_for_index(exc, index) or detail
        field = _first_pointer(exc, index)
        self.report.reject(intent.stream, intent.record_key, f"oro_{exc.status}", detail, field)


def _created_id(response: object) -> str | None:
    """Id of the record a single create made, if readable."""
    data = _response_data(response)
    return str(data["id"]) if isinstance(data, dict) and data.get("id") is not None else None


def _created_ids(response: object, count: int) -> list[str | None]:
    """Ids of the records a Batch API request created, in order (None where unreadable); decoded once."""
    data = _response_data(response)
    items = data if isinstance(data, list) else []
    ids = [str(d["id"]) if isinstance(d, dict) and d.get("id") is not None else None for d in items[:count]]
    return ids + [None] * (count - len(ids))


def _response_data(response: object) -> Any:
    if not isinstance(response, requests.Response):
        return None
    try:
        doc = response.json()
    except ValueError:
        return None
    return doc.get("data") if isinstance(doc, dict) else None


def _pointer_index(pointer: str) -> int | None:
    parts = pointer.strip("/").split("/")
    if len(parts) >= 2 and parts[0] == "data" and parts[1].isdigit():
        return int(parts[1])
    return None


def _pointers(exc: OroClientError) -> list[tuple[str, str]]:
    out = []
    for error in exc.errors:
        source = error.get("source")
        pointer = source.get("pointer") if isinstance(source, Mapping) else None
        out.append((str(pointer or ""), str(error.get("detail") or error.get("title") or "")))
    return out


def _bad_indexes(exc: OroClientError, size: int) -> set[int]:
    if exc.status not in {400, 409, 422}:
        return set()
    indexes = set()
    for pointer, _ in _pointers(exc):
        index = _pointer_index(pointer)
        if index is None or index >= size:
            return set()
        indexes.add(index)
    return indexes


def _errors_for_index(exc: OroClientError, index: int) -> str:
    return "; ".join(
        f"{detail} ({pointer})" for pointer, detail in _pointers(exc) if _pointer_index(pointer) == index
    )


def _first_pointer(exc: OroClientError, index: int | None) -> str | None:
    for pointer, _ in _pointers(exc):
        if pointer and (index is None or _pointer_index(pointer) == index):
            return pointer
    return None
