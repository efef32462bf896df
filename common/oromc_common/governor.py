"""Limit on simultaneous Mailchimp connections per account: in a process, and across processes.

Mailchimp allows at most 10 simultaneous connections per account and answers the 11th with 429 (or, at high
volume, a body-less 403). Every client and thread that talks to the same account must therefore share one
limiter, also across processes: target-mailchimp and tap-mailchimp-engagement run at the same time when
their schedules coincide. This module keeps one :class:`ConnectionGovernor` per account key in a process
(the key is stored only as a SHA-256 fingerprint) and, with a :class:`ConnectionBudget`, makes every
governor of that account share the budget with other processes:

* on one machine through lock files (``<directory>/<fingerprint>/slot-<i>.lock``, locked with ``flock``
  via the ``filelock`` library): a slot is one locked file; the kernel releases the lock when the process
  dies, however it dies (SIGKILL included), so a killed run never leaks a slot;
* across machines through PostgreSQL session advisory locks (``pg_try_advisory_lock(account, i)``, e.g. on
  Meltano's system database): the server releases a session's locks when its connection ends; TCP
  keepalives (about 30 s) bound how long the locks of a machine that vanished without closing its
  connection stay held.

A request holds slot ``i`` for ``i < max_connections`` while it is in flight, so processes sharing a
budget never hold more slots than the largest ``max_connections`` among them (and each never more than its
own). :func:`run_concurrently` fans a list of calls out through a governor.

Usage::

    gov = get_governor(account_key, max_connections=8, budget=ConnectionBudget())
    with gov.slot():                      # blocks while `limit` requests are in flight (here or elsewhere)
        session.get(...)
    results = run_concurrently([lambda: client.get(p) for p in paths], max_workers=gov.limit)

Rules:
    * default limit :data:`DEFAULT_MAX_CONNECTIONS` (8), never above :data:`HARD_MAX_CONNECTIONS` (10);
    * asking again for the same key with a *lower* limit lowers the shared limit (the strictest caller
      wins); a higher limit never raises it;
    * :attr:`ConnectionGovernor.peak` records the highest number of simultaneous slots seen in this process.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from filelock import FileLock, Timeout

from oromc_common.fanout import run_bounded

DEFAULT_MAX_CONNECTIONS = 8
HARD_MAX_CONNECTIONS = 10
POLL_SECONDS = (0.005, 0.25)
"""First and longest wait between attempts to get a shared slot held by other processes."""

LOGGER = logging.getLogger("oromc_common.governor")

T = TypeVar("T")


def clamp_connections(value: int | None) -> int:
    """Return a usable connection limit: ``None`` -> default, clamped to ``1..HARD_MAX_CONNECTIONS``."""
    if value is None:
        return DEFAULT_MAX_CONNECTIONS
    return max(1, min(int(value), HARD_MAX_CONNECTIONS))


class ConnectionBudgetError(RuntimeError):
    """The shared connection budget cannot be used (lock directory or database unusable)."""


@dataclass(frozen=True)
class ConnectionBudget:
    """Where processes share an account's connection budget.

    ``database_uri``: a PostgreSQL URI (``postgresql://`` or SQLAlchemy's ``postgresql+psycopg://``,
    e.g. Meltano's ``MELTANO_DATABASE_URI``): advisory locks, shared by every machine using that
    database. Anything else (empty, Meltano's default SQLite): lock files in ``directory`` (default
    :func:`default_budget_dir`), shared by the processes of this machine.
    """

    directory: str | None = None
    database_uri: str | None = None

    @property
    def postgres_uri(self) -> str | None:
        """The libpq form of ``database_uri`` when it names PostgreSQL, else None."""
        uri = (self.database_uri or "").strip()
        scheme, sep, rest = uri.partition("://")
        if not sep or scheme.split("+", 1)[0] not in {"postgresql", "postgres"}:
            return None
        return f"postgresql://{rest}"


def default_budget_dir() -> Path:
    """``<temp dir>/oromc-mailchimp-connections-<uid>``: one budget per OS user of this machine."""
    user = str(os.getuid()) if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return Path(tempfile.gettempdir()) / f"oromc-mailchimp-connections-{user}"


class SharedSlots(Protocol):
    """Numbered slots other processes can see: ``try_acquire`` never blocks."""

    where: str
    """Where the slots live, for logs (no credentials)."""

    def try_acquire(self, slot: int) -> bool:
        """Take ``slot`` if no other process holds it."""

    def release(self, slot: int) -> None:
        """Give ``slot`` back."""


class FileSlots:
    """Slots as ``flock``-ed files, one per slot, in a private directory per account."""

    def __init__(self, directory: Path, fingerprint: str) -> None:
        folder = directory / fingerprint[:32]
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            folder.mkdir(mode=0o700, exist_ok=True)
            info = directory.stat()
        except OSError as exc:
            msg = f"Setting 'connection_budget_dir': cannot use {directory} for lock files ({exc})."
            raise ConnectionBudgetError(msg) from exc
        if hasattr(os, "getuid") and info.st_uid != os.getuid():
            msg = (
                f"Setting 'connection_budget_dir': {directory} belongs to another user; "
                "choose a directory of your own."
            )
            raise ConnectionBudgetError(msg)
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            directory.chmod(0o700)
        self.where = f"lock files in {directory}"
        self._locks = [
            FileLock(
                folder / f"slot-{i}.lock",
                timeout=0,
                mode=0o600,
                thread_local=False,
                fallback_to_soft=False,  # a soft lock would outlive a killed process
            )
            for i in range(HARD_MAX_CONNECTIONS)
        ]

    def try_acquire(self, slot: int) -> bool:
        """Take ``slot``'s file lock if no other process holds it."""
        try:
            self._locks[slot].acquire(blocking=False)
        except Timeout:
            return False
        except OSError as exc:
            msg = f"Setting 'connection_budget_dir': file locks do not work there ({exc})."
            raise ConnectionBudgetError(msg) from exc
        return True

    def release(self, slot: int) -> None:
        """Unlock ``slot``'s file."""
        self._locks[slot].release()


class PostgresSlots:
    """Slots as PostgreSQL session advisory locks ``(account, slot)`` on one connection."""

    def __init__(self, uri: str, fingerprint: str) -> None:
        self._uri = uri
        self.where = "PostgreSQL advisory locks on " + uri.split("@", 1)[-1].split("?", 1)[0]
        self._account = int.from_bytes(bytes.fromhex(fingerprint[:8]), "big", signed=True)
        self._lock = threading.Lock()
        self._conn: Any = None

    def _connection(self) -> Any:
        if self._conn is None or self._conn.closed:
            try:
                import psycopg

                self._conn = psycopg.connect(
                    self._uri,
                    autocommit=True,
                    connect_timeout=10,
                    application_name="oromc-mailchimp-connection-budget",
                    keepalives=1,
                    keepalives_idle=10,
                    keepalives_interval=5,
                    keepalives_count=3,
                )
                # the server drops a vanished machine's session (and its locks) within ~30 s
                self._conn.execute("SET tcp_keepalives_idle = 10")
                self._conn.execute("SET tcp_keepalives_interval = 5")
                self._conn.execute("SET tcp_keepalives_count = 3")
            except Exception as exc:
                msg = (
                    "Setting 'connection_budget_database_uri': cannot connect to PostgreSQL "
                    f"({type(exc).__name__})."
                )
                raise ConnectionBudgetError(msg) from exc
        return self._conn

    def _query(self, sql: str, slot: int) -> bool:
        with self._lock:
            for attempt in (1, 2):  # one reconnect: a dropped session has released its locks
                try:
                    row = self._connection().execute(sql, (self._account, slot)).fetchone()
                    return bool(row and row[0])
                except ConnectionBudgetError:
                    raise
                except Exception as exc:
                    self._conn = None
                    if attempt == 2:
                        msg = (
                            "Setting 'connection_budget_database_uri': PostgreSQL failed "
                            f"({type(exc).__name__})."
                        )
                        raise ConnectionBudgetError(msg) from exc
        return False  # pragma: no cover - the loop returns or raises

    def try_acquire(self, slot: int) -> bool:
        """Take the advisory lock ``(account, slot)`` if no other session holds it."""
        return self._query("SELECT pg_try_advisory_lock(%s, %s)", slot)

    def release(self, slot: int) -> None:
        """Unlock ``(account, slot)`` (nothing to do if the session was lost meanwhile)."""
        self._query("SELECT pg_advisory_unlock(%s, %s)", slot)


def shared_slots(budget: ConnectionBudget, fingerprint: str) -> SharedSlots:
    """The slots of ``budget`` for the account with ``fingerprint``."""
    uri = budget.postgres_uri
    if uri:
        return PostgresSlots(uri, fingerprint)
    if budget.database_uri:
        LOGGER.info(
            "connection_budget_database_uri is not PostgreSQL; sharing the Mailchimp connection "
            "budget through lock files on this machine only"
        )
    return FileSlots(Path(budget.directory) if budget.directory else default_budget_dir(), fingerprint)


class ConnectionGovernor:
    """A counting limiter (like a bounded semaphore) whose limit can only be lowered.

    With ``shared`` slots, each slot held in this process also holds one of the shared slots
    ``0 .. limit-1``, waiting (polling) while other processes hold them.
    """

    def __init__(self, limit: int = DEFAULT_MAX_CONNECTIONS, shared: SharedSlots | None = None) -> None:
        """Create a governor allowing ``limit`` (clamped to 1..10) simultaneous slots."""
        self._limit = clamp_connections(limit)
        self._in_flight = 0
        self._peak = 0
        self._cond = threading.Condition()
        self._shared = shared
        self._held: set[int] = set()  # shared slots held by this process
        self._held_lock = threading.Lock()
        self._local = threading.local()
        self._told_waiting = False

    @property
    def limit(self) -> int:
        """Current maximum number of simultaneous slots."""
        return self._limit

    @property
    def in_flight(self) -> int:
        """Number of slots held right now."""
        return self._in_flight

    @property
    def peak(self) -> int:
        """Highest number of simultaneous slots held since creation."""
        return self._peak

    @property
    def shared(self) -> bool:
        """Whether the slots are shared with other processes."""
        return self._shared is not None

    def lower_limit(self, limit: int) -> None:
        """Lower the limit to ``limit`` if that is stricter than the current one."""
        with self._cond:
            self._limit = min(self._limit, clamp_connections(limit))

    def acquire(self) -> None:
        """Block until a slot is free (here and, when shared, among the other processes), then take it."""
        with self._cond:
            while self._in_flight >= self._limit:
                self._cond.wait()
            self._in_flight += 1
            self._peak = max(self._peak, self._in_flight)
        if self._shared is None:
            return
        try:
            self._stack().append(self._acquire_shared(self._shared))
        except BaseException:
            self._release_local()
            raise

    def release(self) -> None:
        """Give a slot back."""
        if self._shared is not None:
            stack = self._stack()
            if not stack:
                msg = "ConnectionGovernor released more often than acquired"
                raise RuntimeError(msg)
            slot = stack.pop()
            try:
                self._shared.release(slot)
            finally:
                with self._held_lock:
                    self._held.discard(slot)
        self._release_local()

    def _release_local(self) -> None:
        with self._cond:
            if self._in_flight <= 0:
                msg = "ConnectionGovernor released more often than acquired"
                raise RuntimeError(msg)
            self._in_flight -= 1
            self._cond.notify()

    def _stack(self) -> list[int]:
        """Shared slots taken by this thread (acquire/release pair up per thread)."""
        stack: list[int] | None = getattr(self._local, "slots", None)
        if stack is None:
            stack = self._local.slots = []
        return stack

    def _acquire_shared(self, shared: SharedSlots) -> int:
        wait = POLL_SECONDS[0]
        waiting_since: float | None = None
        while True:
            limit = self._limit
            start = random.randrange(limit)
            for slot in (*range(start, limit), *range(start)):
                with self._held_lock:
                    if slot in self._held:
                        continue
                    self._held.add(slot)
                try:
                    if shared.try_acquire(slot):
                        return slot
                except BaseException:
                    with self._held_lock:
                        self._held.discard(slot)
                    raise
                with self._held_lock:
                    self._held.discard(slot)
            if waiting_since is None:
                waiting_since = time.monotonic()
            elif not self._told_waiting and time.monotonic() - waiting_since > 1.0:
                self._told_waiting = True  # once per process: a stalled run should say why
                LOGGER.info(
                    "Waiting for a Mailchimp connection: other processes hold all %d connections "
                    "of this account's budget (%s)",
                    limit,
                    shared.where,
                )
            time.sleep(wait * random.uniform(0.5, 1.0))
            wait = min(wait * 2, POLL_SECONDS[1])

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot for the duration of the ``with`` block."""
        self.acquire()
        try:
            yield
        finally:
            self.release()


_REGISTRY: dict[tuple[str, ConnectionBudget | None], ConnectionGovernor] = {}
_REGISTRY_LOCK = threading.Lock()


def account_fingerprint(key: str) -> str:
    """The name an account key's shared slots go by (lock files, advisory locks): its SHA-256 hex,
    so no credential is written anywhere."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def get_governor(
    key: str, max_connections: int | None = None, budget: ConnectionBudget | None = None
) -> ConnectionGovernor:
    """Return the process-wide governor for an account key (API key or OAuth token + API URL).

    The first call creates it with ``max_connections`` (default 8, capped at 10); later calls may lower
    the limit but never raise it. With ``budget``, its slots are shared with the other processes that
    use the same budget for the same key.
    """
    fp = account_fingerprint(key)
    limit = clamp_connections(max_connections)
    registry_key = (fp, budget)
    with _REGISTRY_LOCK:
        gov = _REGISTRY.get(registry_key)
        if gov is None:
            shared = shared_slots(budget, fp) if budget is not None else None
            gov = ConnectionGovernor(limit, shared)
            _REGISTRY[registry_key] = gov
        else:
            gov.lower_limit(limit)
        return gov


def forget_governors() -> None:
    """Drop the process's governors: the next client of an account starts at its own
    ``max_connections`` again instead of the lowest limit an earlier client of that account set.

    For hosts that run several configurations one after another in one process (the tests run the
    targets in-process); a connector's run never needs it.
    """
    with _REGISTRY_LOCK:
        _REGISTRY.clear()


def run_concurrently(calls: Iterable[Callable[[], T]], max_workers: int) -> list[T]:
    """Run zero-argument callables on a thread pool and return their results in input order.

    ``max_workers`` is clamped to 1..10; the callables are expected to take a governor slot themselves
    (every :class:`oromc_common.mailchimp.MailchimpClient` request does), so the pool size only bounds
    threads. The first exception raised by a call is re-raised after all started calls have finished;
    calls not yet started are cancelled.
    """
    return run_bounded(calls, clamp_connections(max_workers), name="mc-governor")
