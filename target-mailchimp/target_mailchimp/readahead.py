"""Read-ahead of a backfill: contacts windows kept on disk while the store's records are written.

The tap sends every contact before the first store record, and Mailchimp runs the store's ``/batches``
jobs one at a time: written after the contacts, the store's backfill starts only when the last
contacts window is written (at 100,000 contacts: ~250 s of idle job queue). With a store configured,
full contacts windows that arrive before the first store record are therefore kept here (on disk, in
arrival order) and written while the store's jobs run (``TargetMailchimp``): between the store's
windows and while a store job is awaited.

Order per person, not per stream: a store record is written before the contacts still kept here only
when its person is a member of the audience at that very address (a store write never changes an
existing member's status: ``opt_in_status`` is always false, and Mailchimp never lowers a member's
consent for it; tests/test_identity_consent.py checks both orders give the same statuses). Anyone
else (a new person, an address that moves in this run, an archived member) is held here too, and
written once every contact kept before it is written, as without read-ahead. Once a person is held,
every later record naming them, or with the id of a held record, is held after it.
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO, Any

#: At most this many contacts are kept (~1 KB each on disk): past it the oldest kept window is
#: written as the next is kept, so a run without store records (a store configured, its streams
#: not selected) still writes, and emits its state, as it reads.
MAX_KEPT_CONTACTS = 500_000

#: Member statuses a store write may precede the person's contact for (the member exists at the
#: address; archived and cleaned members are held).
PRECEDE_STATUSES = frozenset({"subscribed", "unsubscribed", "pending", "transactional"})

#: The person a store record names: its store customer id and the subscriber hash of its address
#: (either may be None: a product names nobody; an order may carry its customer's id alone).
StorePerson = tuple[str | None, str | None]


def _short(hash_: str) -> int:
    """A subscriber hash as a 64-bit int (1M of them: ~60 MB less than the strings)."""
    return int(hash_[:16], 16)


class _Frames:
    """Pickled frames in an unnamed temporary file, read back in the order written."""

    def __init__(self) -> None:
        self._file: IO[bytes] | None = None
        self._offsets: list[tuple[int, int]] = []  # (offset, length) of frames not read yet
        self._end = 0

    def __len__(self) -> int:
        return len(self._offsets)

    def push(self, value: Any) -> None:
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="target-mailchimp-readahead-")  # noqa: SIM115 (closed by close)
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        self._file.seek(self._end)
        self._file.write(data)
        self._offsets.append((self._end, len(data)))
        self._end += len(data)

    def pop(self) -> Any:
        offset, length = self._offsets.pop(0)
        assert self._file is not None
        self._file.seek(offset)
        value = pickle.loads(self._file.read(length))  # noqa: S301 (our own file)
        if not self._offsets:
            self.close()
        return value

    def close(self) -> None:
        self._offsets = []
        self._end = 0
        if self._file is not None:
            self._file.close()
            self._file = None


class ContactsSpool:
    """Contacts windows not written yet, oldest first, with the people they name."""

    def __init__(self) -> None:
        """Empty."""
        self._windows = _Frames()
        self._people: list[set[int]] = []  # per window kept, the subscriber hashes it names
        self._sizes: list[int] = []

    def __len__(self) -> int:
        """Windows kept."""
        return len(self._windows)

    @property
    def contacts(self) -> int:
        """Contacts kept."""
        return sum(self._sizes)

    def push(self, records: list[dict[str, Any]], hashes: set[str]) -> None:
        """Keep one window (``hashes``: the subscriber hashes of its addresses)."""
        self._windows.push(records)
        self._people.append({_short(h) for h in hashes})
        self._sizes.append(len(records))

    def pop(self) -> list[dict[str, Any]]:
        """The oldest window kept (no longer kept)."""
        self._people.pop(0)
        self._sizes.pop(0)
        records: list[dict[str, Any]] = self._windows.pop()
        return records

    def names(self, hash_: str) -> bool:
        """True when a window kept names the address with this subscriber hash."""
        short = _short(hash_)
        return any(short in people for people in self._people)

    def close(self) -> None:
        """Forget everything kept (end of run)."""
        self._windows.close()
        self._people = []
        self._sizes = []


class HeldStoreRecords:
    """Store records held until the contacts kept before them are written, per stream in arrival order."""

    def __init__(self) -> None:
        """Empty."""
        self._frames: dict[str, _Frames] = {}
        self._people: set[int] = set()  # subscriber hashes of the people held
        self._customers: set[str] = set()  # store customer ids of the people held
        self._ids: dict[str, set[str]] = {}  # per stream, the ids of the records held

    def __len__(self) -> int:
        """Windows of records held."""
        return sum(len(f) for f in self._frames.values())

    def holds(self, stream: str, key: str, person: StorePerson) -> bool:
        """True when a record of ``stream`` with id ``key`` naming ``person`` must follow held ones."""
        customer, hash_ = person
        return (
            key in self._ids.get(stream, ())
            or (customer is not None and customer in self._customers)
            or (hash_ is not None and _short(hash_) in self._people)
        )

    def hold(self, stream: str, records: list[tuple[dict[str, Any], StorePerson]]) -> None:
        """Hold ``records`` (each with its person), after any held before."""
        if not records:
            return
        ids = self._ids.setdefault(stream, set())
        for record, (customer, hash_) in records:
            ids.add(str(record.get("id")))
            if customer is not None:
                self._customers.add(customer)
            if hash_ is not None:
                self._people.add(_short(hash_))
        self._frames.setdefault(stream, _Frames()).push([r for r, _ in records])

    def release(
        self, order: Iterable[str], window: int
    ) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        """Every record held, stream by stream in ``order`` (then any other), oldest first, in
        windows of at least ``window`` records (the held parts of consecutive windows joined: each
        window written is a ``/batches`` job, with its ~2 s of Mailchimp's queueing whatever its
        size) except each stream's last; nothing is held afterwards."""
        first = [s for s in order if s in self._frames]
        for stream in [*first, *(s for s in self._frames if s not in first)]:
            frames = self._frames[stream]
            joined: list[dict[str, Any]] = []
            while len(frames):
                joined.extend(frames.pop())
                if len(joined) >= window:
                    yield stream, joined
                    joined = []
            if joined:
                yield stream, joined
        self.close()

    def close(self) -> None:
        """Forget everything held."""
        for frames in self._frames.values():
            frames.close()
        self._frames = {}
        self._people = set()
        self._customers = set()
        self._ids = {}
