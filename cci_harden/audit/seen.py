"""Which event ids were already delivered, in memory that does not grow with the export.

Duplicate deliveries share an id. A fixed-size Bloom filter holds every id recorded and rules
out almost every new id with a few vectorised operations per batch, so only the few it cannot
rule out (true duplicates, and about one id in 1,700 at 2.5 million ids) are searched for
exactly. Most duplicates are delivered close together, so the newest ids are a few small
sorted runs of 16-byte keys, searched first; they are merged into older runs, which stay in
memory while they are few and are then merged into one written to a file. A batch is checked
with array operations, never an id at a time. Nothing is forgotten: a key reported new was seen
nowhere.

Beside each id is the 8-byte digest of the row that first delivered it. A repeated id whose row
differs is not a repeated delivery: it is passed on and reported as a conflict, so a harmless
earlier row can never hide a later one that reuses its id.
"""

from __future__ import annotations

import mmap
import tempfile
from itertools import compress
from pathlib import Path

import numpy as np

from .events import Event

KEY = np.dtype("V16")  # an id's 16 bytes, compared as bytes
_MAX_RUNS = 8  # runs of the newest ids held apart before they are merged
_U64 = np.uint64
_NOTHING = np.empty(0, dtype=_U64)
_WRITE_SLICE = 2**16  # keys gathered at a time when a merged run is written


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every output bit depends on every input bit, so ids that differ
    only in a few bytes (time-ordered UUIDs) still spread over the whole filter."""
    z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
    return z ^ (z >> _U64(31))


def _halves(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keys as (first 8 bytes, last 8 bytes), each a uint64 column."""
    halves = keys.view(_U64).reshape(-1, 2)
    return halves[:, 0], halves[:, 1]


class BloomFilter:
    """A fixed-size set that may say "maybe" for a key never added, never "no" for one added.

    Blocked: a key sets 3 bits of one 64-bit word, so it costs one memory access where three
    probes over the whole filter would cost three (the filter is 16 MiB: most are cache
    misses). 2**27 bits and 3 bits a key: about 1 false "maybe" in 1,700 keys at 2.5 million
    keys, 1 in 400 at 5 million, 1 in 20 at 20 million; a false "maybe" only costs an exact
    search.
    """

    def __init__(self, bits_log2: int = 27, probes: int = 3):
        self._words = np.zeros(2 ** (bits_log2 - 6), dtype=_U64)
        self._word_mask = _U64(2 ** (bits_log2 - 6) - 1)
        self._probes = probes

    def _slots(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(each key's word, the bits it sets there): the word from the low bits of a mixed
        hash, each bit's position from 6 of its high bits, so the two do not depend on each
        other."""
        hi, lo = _halves(keys)
        mixed = _mix(hi ^ _mix(lo))
        bits = np.zeros(len(keys), dtype=_U64)
        for probe in range(self._probes):
            bits |= _U64(1) << ((mixed >> _U64(58 - 6 * probe)) & _U64(63))
        return mixed & self._word_mask, bits

    def add(self, keys: np.ndarray) -> None:
        words = self._words
        with np.errstate(over="ignore"):
            at, bits = self._slots(keys)
            # a fancy |= keeps one write per word when several keys share it: write again the
            # bits that were lost (np.bitwise_or.at does this in one call, four times slower)
            while len(at):
                words[at] |= bits
                lost = (words[at] & bits) != bits
                at, bits = at[lost], bits[lost]

    def might_hold(self, keys: np.ndarray) -> np.ndarray:
        """One bool per key: False means certainly never added."""
        with np.errstate(over="ignore"):
            at, bits = self._slots(keys)
            return (self._words[at] & bits) == bits


class Run:
    """Keys sorted by their first 8 bytes (a uint64 sort is four times quicker than sorting
    16-byte values), the last 8 bytes and the content digest alongside. Two keys that share
    their first 8 bytes are both kept and both searched."""

    __slots__ = ("hi", "lo", "digest")

    def __init__(
        self, hi: np.ndarray, lo: np.ndarray, digest: np.ndarray, ordered: bool | None = False
    ):
        """``ordered``: True if sorted already, None if made of sorted runs end to end."""
        if not ordered:
            order = np.argsort(hi, kind="quicksort" if ordered is False else "stable")
            hi, lo, digest = hi[order], lo[order], digest[order]
        self.hi, self.lo, self.digest = hi, lo, digest

    def __len__(self) -> int:
        return len(self.hi)

    def positions(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """One position per key (given as halves): where this run holds it, or -1."""
        run_hi, run_lo = self.hi, self.lo
        at = np.searchsorted(run_hi, hi)
        near = np.minimum(at, len(run_hi) - 1)
        same_hi = run_hi[near] == hi
        found = same_hi & (run_lo[near] == lo)
        where = np.where(found, near, -1)
        # the key may sit after other keys with the same first half: search those few in full
        for i in np.flatnonzero(same_hi & ~found):
            end = np.searchsorted(run_hi, hi[i], side="right")
            match = np.flatnonzero(run_lo[at[i] : end] == lo[i])
            if len(match):
                where[i] = at[i] + match[0]
        return where


class SortedRuns:
    """Runs of keys, none holding a key another holds: in memory up to ``file_keys``, then
    merged into one run and written to a file, searched through a read-only mapping whose pages
    are handed back after each search, so they never count as this process's memory."""

    def __init__(self, file_keys: int = 2**19):
        self._file_keys = file_keys
        self._memory: list[Run] = []
        self._files: list[tuple[mmap.mmap, Run]] = []
        self._tmp: tempfile.TemporaryDirectory | None = None

    def __bool__(self) -> bool:
        return bool(self._memory or self._files)

    def add(self, run: Run) -> None:
        """Take a run of keys that no run holds yet."""
        self._memory.append(run)
        if sum(map(len, self._memory)) >= self._file_keys:
            runs, self._memory = self._memory, []
            self._to_file(runs)
        elif len(self._memory) >= 4 * _MAX_RUNS:
            # many small runs (batches of few events): one to search, not many. Runs of the
            # usual size reach a file before they are this many, so are merged only once.
            self._memory = [_merged(self._memory)]

    def _to_file(self, runs: list[Run]) -> None:
        """Merge ``runs`` (each sorted) into one run written to a file, a column at a time and
        a slice at a time: beside the runs it holds the sort order and one column, and each
        column of the runs is let go once it is copied (the peak it adds is what the memory
        bound has to allow for)."""
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="cci-audit-ids-")
        path = Path(self._tmp.name) / f"run{len(self._files)}.keys"
        column = np.concatenate([r.hi for r in runs])
        order = np.argsort(column, kind="stable")  # the runs end to end: one merging pass
        count = len(order)
        with open(path, "wb") as out:
            for name in ("hi", "lo", "digest"):
                if name != "hi":
                    column = np.concatenate([getattr(r, name) for r in runs])
                for run in runs:
                    setattr(run, name, _NOTHING)
                for at in range(0, count, _WRITE_SLICE):
                    column[order[at : at + _WRITE_SLICE]].tofile(out)
                del column
        del order, runs
        with open(path, "rb") as handle:
            mapped = mmap.mmap(handle.fileno(), 0, prot=mmap.PROT_READ)
        hi, lo, digest = (
            np.frombuffer(mapped, dtype=_U64, count=count, offset=count * 8 * column)
            for column in range(3)
        )
        self._files.append((mapped, Run(hi, lo, digest, ordered=True)))

    def holding(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(one bool per key: whether a run holds it, the digest stored with it). Newest runs
        first: duplicates of recent deliveries are the usual ones."""
        hi, lo = _halves(keys)
        found = np.zeros(len(keys), dtype=bool)
        digests = np.zeros(len(keys), dtype=_U64)
        for run in reversed(self._memory):
            _take(run, hi, lo, found, digests, np.arange(len(keys)))
        for mapped, run in reversed(self._files):
            rest = np.flatnonzero(~found)
            if not len(rest):
                break
            _take(run, hi[rest], lo[rest], found, digests, rest)
            mapped.madvise(mmap.MADV_DONTNEED)  # the page cache keeps them; we do not
        return found, digests

    def close(self) -> None:
        self._memory = []
        while self._files:
            mapped, run = self._files.pop()
            del run  # the mapping cannot close while an array still views it
            mapped.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _take(run: Run, hi, lo, found: np.ndarray, digests: np.ndarray, index: np.ndarray) -> None:
    """Mark in ``found``/``digests`` (at ``index``) the keys ``run`` holds."""
    where = run.positions(hi, lo)
    held = where >= 0
    found[index[held]] = True
    digests[index[held]] = run.digest[where[held]]


def _first_of_each(hi: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(for each key, the index of its first occurrence in the batch; the batch's order by first
    half). Only keys that share a first half with another are compared in full."""
    count = len(hi)
    order = np.argsort(hi)
    first = np.arange(count)
    by_hi = hi[order]
    same = np.flatnonzero(by_hi[1:] == by_hi[:-1])
    if len(same):
        earliest: dict[tuple[int, int], int] = {}
        sharing = order[np.union1d(same, same + 1)].tolist()
        for i in sorted(sharing):
            earliest.setdefault((int(hi[i]), int(lo[i])), i)
        for i in sharing:
            first[i] = earliest[(int(hi[i]), int(lo[i]))]
    return first, order


def _merged(runs: list[Run]) -> Run:
    """Sorted runs as one run."""
    if len(runs) == 1:
        return runs[0]
    return Run(
        np.concatenate([r.hi for r in runs]),
        np.concatenate([r.lo for r in runs]),
        np.concatenate([r.digest for r in runs]),
        ordered=None,
    )


class SeenIds:
    """Which event ids were already delivered: a Bloom filter over every id, the newest ids in
    a few small sorted runs searched first, the rest in ``SortedRuns`` (see the module's
    docstring). A batch is checked with array operations, never an id at a time."""

    def __init__(self, budget: int = 2**15, file_keys: int = 2**19, filter_bits_log2: int = 27):
        self._newest: list[Run] = []  # a run per batch, merged past ``budget`` keys or 8 runs
        self._budget = budget
        self._runs = SortedRuns(file_keys)
        self._filter = BloomFilter(filter_bits_log2)

    def fresh(
        self, events: list[Event], keys: bytes | None = None, digests: bytes = b""
    ) -> tuple[list[Event], list[Event]]:
        """(events to pass on, order kept; those of them whose id was seen with other content).

        An id seen before with the same digest is a repeated delivery and dropped; with another
        digest it is a conflict, passed on. New ids are recorded now; an id's first digest is
        the one kept. ``keys``, if given, is the events' keys end to end (workers send them so);
        ``digests`` their 8-byte content digests end to end (none given: every delivery of an
        id counts as the same content).
        """
        count = len(events)
        if not count:
            return [], []
        if keys is None:
            keys = b"".join([e.key for e in events])
        if len(digests) != 8 * count:
            digests = bytes(8 * count)
        array = np.frombuffer(keys, dtype=KEY)
        hi, lo = _halves(array)
        digest = np.frombuffer(digests, dtype=_U64)
        held, earlier = self._earlier(array)
        first, order = _first_of_each(hi, lo)
        new = ~held & (first == np.arange(count))
        # a repeat within the batch compares with the batch's first delivery of its id
        earlier = np.where(held, earlier, digest[first])
        passed = new | (earlier != digest)
        if new.any():
            self._record(array[new], hi, lo, digest, order[new[order]])
        out = list(events) if passed.all() else list(compress(events, passed.tolist()))
        conflicted = passed & ~new
        conflicts = list(compress(events, conflicted.tolist())) if conflicted.any() else []
        return out, conflicts

    def _earlier(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(whether each key was recorded before, the digest recorded with it). The filter rules
        out almost every new key; the rest are searched for in the runs, newest first."""
        held = np.zeros(len(keys), dtype=bool)
        earlier = np.zeros(len(keys), dtype=_U64)
        maybe = np.flatnonzero(self._filter.might_hold(keys))
        if not len(maybe):
            return held, earlier
        hi, lo = _halves(keys[maybe])
        found = np.zeros(len(maybe), dtype=bool)
        digests = np.zeros(len(maybe), dtype=_U64)
        everywhere = np.arange(len(maybe))
        for run in reversed(self._newest):
            _take(run, hi, lo, found, digests, everywhere)
        rest = np.flatnonzero(~found)
        if len(rest) and self._runs:
            in_runs, stored = self._runs.holding(keys[maybe[rest]])
            found[rest] = in_runs
            digests[rest[in_runs]] = stored[in_runs]
        held[maybe] = found
        earlier[maybe] = digests
        return held, earlier

    def _record(
        self, keys: np.ndarray, hi: np.ndarray, lo: np.ndarray, digest: np.ndarray, order
    ) -> None:
        """Record a batch's new keys (``order``: their positions, sorted by first half)."""
        self._filter.add(keys)
        self._newest.append(Run(hi[order], lo[order], digest[order], ordered=True))
        # few runs to search, however few events each batch held
        if len(self._newest) >= _MAX_RUNS or sum(map(len, self._newest)) >= self._budget:
            runs, self._newest = self._newest, []
            self._runs.add(_merged(runs))

    def close(self) -> None:
        self._runs.close()
