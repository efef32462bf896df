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

What is remembered of the people kept and the records held grows with the run: at 100,000 Oro
customers a no-op re-run keeps all 196,527 contacts and holds ~230,000 store records (their people
are not known yet when they arrive). As Python sets that was ~140 bytes a kept contact and ~90 a held
id (~50 MB at that size, ~16 MB at 25,000 customers). Now, with the same answers:

- ids (Oro's auto-increment numbers, as the tap sends them) are a Roaring bitmap (``pyroaring``,
  the project's compact id sets, :mod:`oromc_common.idsets`): ~1 byte an id (:class:`_Keys`);
- subscriber hashes (MD5, evenly spread over 64 bits) are sorted arrays of 64-bit ints, 8 bytes
  each (:class:`_IntSet`). A Roaring bitmap fits dense ids, not random ones: ``BitMap64`` took
  ~120 bytes a random 64-bit int (more than a Python set; 500,000 of them, pyroaring 1.2), and
  ``oromc_common.diskmap`` would cost a sqlite query per store record on this path.
"""

from __future__ import annotations

import heapq
import pickle
import tempfile
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from typing import IO, Any

from oromc_common.idsets import BitMap64

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


#: Ints added to an :class:`_IntSet` kept in a Python set (fast to add to) before they are merged
#: into its sorted array: at least this many, or a sixteenth of the array (so the set costs at most
#: ~6 bytes an int of the array, and the merges, each a pass over the array, stay few).
MERGE_AT = 1024


def _contains(values: array, value: int) -> bool:
    """True when the sorted array ``values`` holds ``value``."""
    i = bisect_left(values, value)
    return i < len(values) and values[i] == value


class _Bits:
    """A bitmap of the low bits of the ints added: an int whose bit is not set was never added. It
    answers most misses of a membership test without searching a sorted array (``bisect``: ~3x
    the time of a set lookup); a set bit proves nothing (the array is searched)."""

    def __init__(self, bits: int) -> None:
        """All clear; ``bits``: a power of two (``bits // 8`` bytes)."""
        self._mask = bits - 1
        self._map = bytearray(bits // 8)

    def add(self, value: int) -> None:
        """Set ``value``'s bit."""
        bit = value & self._mask
        self._map[bit >> 3] |= 1 << (bit & 7)

    def may_hold(self, value: int) -> bool:
        """False when ``value`` was never added."""
        bit = value & self._mask
        return bool(self._map[bit >> 3] >> (bit & 7) & 1)


class _IntSet:
    """A set of unsigned 64-bit ints that only grows, for membership tests: a sorted ``array``
    (8 bytes an int, against ~90 in a Python set: the int object and its slot) plus the ints added
    since the last merge in a small set."""

    def __init__(self) -> None:
        """Empty."""
        self._sorted = array("Q")
        self._recent: set[int] = set()
        self._bits: _Bits | None = None  # from the first int added (128 KB)

    def __len__(self) -> int:
        """Ints held."""
        return len(self._sorted) + len(self._recent)

    def add(self, value: int) -> None:
        """Add ``value`` (nothing if held)."""
        if value in self:
            return
        if self._bits is None:
            self._bits = _Bits(1 << 20)
        self._bits.add(value)
        self._recent.add(value)
        if len(self._recent) >= max(MERGE_AT, len(self._sorted) // 16):
            # merged one int at a time: no list of every int as objects on the way
            merged = array(self._sorted.typecode, heapq.merge(self._sorted, sorted(self._recent)))
            self._sorted, self._recent = merged, set()

    def __contains__(self, value: object) -> bool:
        return (
            isinstance(value, int)
            and self._bits is not None
            and self._bits.may_hold(value)
            and (value in self._recent or _contains(self._sorted, value))
        )


class _Keys:
    """A set of ids (strings) that only grows: a canonical decimal id (Oro's, as the tap sends them)
    as its int in a Roaring bitmap, any other id as itself in a set; exactly the answers of a set
    of the strings."""

    def __init__(self) -> None:
        """Empty."""
        self._ints = BitMap64()
        self._others: set[str] = set()

    def __len__(self) -> int:
        """Ids held."""
        return len(self._ints) + len(self._others)

    def add(self, key: str) -> None:
        """Add ``key``."""
        number = _as_int(key)
        if number is None:
            self._others.add(key)
        else:
            self._ints.add(number)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        number = _as_int(key)
        return key in self._others if number is None else number in self._ints


def _as_int(key: str) -> int | None:
    """``key`` as an int when it is the canonical decimal form of one that fits 64 bits (so no two
    strings give the same int: no sign, no leading zero, ASCII digits only), else None."""
    if 0 < len(key) <= 18 and key.isascii() and key.isdigit() and (key[0] != "0" or key == "0"):
        return int(key)
    return None


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
        # written and read as a stream: a frame (thousands of records) never exists whole as bytes
        # (~3 MB a window of 4,000 orders; a large buffer freed raises glibc's mmap threshold, and the
        # next ones then stay in the heap)
        self._file.seek(self._end)
        pickle.dump(value, self._file, protocol=pickle.HIGHEST_PROTOCOL)
        end = self._file.tell()
        self._offsets.append((self._end, end - self._end))
        self._end = end

    def pop(self) -> Any:
        offset, _ = self._offsets.pop(0)
        assert self._file is not None
        self._file.seek(offset)
        value = pickle.load(self._file)  # noqa: S301 (our own file)
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
        # per window kept, the subscriber hashes it names (``_short``, sorted): 8 bytes a contact
        self._people: list[array] = []
        self._bits: _Bits | None = None  # all of them (and of windows no longer kept), 512 KB
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
        people = array("Q", sorted({_short(h) for h in hashes}))
        if self._bits is None:
            self._bits = _Bits(1 << 22)
        for short in people:
            self._bits.add(short)
        self._people.append(people)
        self._sizes.append(len(records))

    def pop(self) -> list[dict[str, Any]]:
        """The oldest window kept (no longer kept)."""
        self._people.pop(0)
        self._sizes.pop(0)
        if not self._people:
            self._bits = None
        records: list[dict[str, Any]] = self._windows.pop()
        return records

    def names(self, hash_: str) -> bool:
        """True when a window kept names the address with this subscriber hash."""
        short = _short(hash_)
        if self._bits is None or not self._bits.may_hold(short):
            return False
        return any(_contains(people, short) for people in self._people)

    def close(self) -> None:
        """Forget everything kept (end of run)."""
        self._windows.close()
        self._people = []
        self._bits = None
        self._sizes = []


class HeldStoreRecords:
    """Store records held until the contacts kept before them are written, per stream in arrival order."""

    def __init__(self) -> None:
        """Empty."""
        self._frames: dict[str, _Frames] = {}
        self._people = _IntSet()  # subscriber hashes of the people held (``_short``)
        self._customers = _Keys()  # store customer ids of the people held
        self._ids: dict[str, _Keys] = {}  # per stream, the ids of the records held

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
        ids = self._ids.setdefault(stream, _Keys())
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
        size) except each stream's last; nothing is held afterwards. Who and what is held is
        forgotten first: nothing is held while the records are released (``TargetMailchimp._hold``),
        so that is not kept beside the windows released."""
        self._forget_keys()
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
        self._forget_keys()

    def _forget_keys(self) -> None:
        self._people = _IntSet()
        self._customers = _Keys()
        self._ids = {}
