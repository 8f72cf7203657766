"""Which event ids were already delivered, in memory that does not grow with the export.

Duplicate deliveries share an id. Most are delivered close together, so the newest ids are a
Python set, the fastest check per event. Past its budget the set is emptied into sorted runs of
16-byte keys: merged in memory while small, written to files once large. A fixed-size Bloom
filter over those runs rules out almost every new id with a few vectorised operations per
batch, so only the few it cannot rule out (true duplicates and about one id in several thousand)
are searched for exactly. Nothing is ever forgotten: a key reported new was seen nowhere.
"""

from __future__ import annotations

import mmap
import tempfile
from pathlib import Path

import numpy as np

from .events import Event

KEY = np.dtype("V16")  # an id's 16 bytes; numpy orders and compares them as bytes
_U64 = np.uint64


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every output bit depends on every input bit, so ids that differ
    only in a few bytes (time-ordered UUIDs) still spread over the whole filter."""
    z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
    return z ^ (z >> _U64(31))


class BloomFilter:
    """A fixed-size set that may say "maybe" for a key never added, never "no" for one added.

    2**27 bits (16 MiB) and 3 probes: about 1 false "maybe" in 6,000 keys at 2.5 million keys,
    1 in 20 at 20 million; a false "maybe" only costs an exact search.
    """

    def __init__(self, bits_log2: int = 27, probes: int = 3):
        self._words = np.zeros(2 ** (bits_log2 - 6), dtype=_U64)
        self._mask = _U64(2**bits_log2 - 1)
        self._probes = probes

    def _bits(self, keys: np.ndarray) -> list[np.ndarray]:
        halves = keys.view(_U64).reshape(-1, 2)
        first = _mix(halves[:, 0] ^ _mix(halves[:, 1]))
        step = _mix(first) | _U64(1)
        return [(first + _U64(i) * step) & self._mask for i in range(self._probes)]

    def add(self, keys: np.ndarray) -> None:
        with np.errstate(over="ignore"):
            for bit in self._bits(keys):
                np.bitwise_or.at(self._words, bit >> _U64(6), _U64(1) << (bit & _U64(63)))

    def might_hold(self, keys: np.ndarray) -> np.ndarray:
        """One bool per key: False means certainly never added."""
        maybe = np.ones(len(keys), dtype=bool)
        with np.errstate(over="ignore"):
            for bit in self._bits(keys):
                maybe &= (self._words[bit >> _U64(6)] >> (bit & _U64(63))) & _U64(1) == 1
        return maybe


def _holding(run: np.ndarray, keys: np.ndarray) -> np.ndarray:
    at = np.searchsorted(run, keys)
    return run[np.minimum(at, len(run) - 1)] == keys


class SortedRuns:
    """Sorted runs of keys, none holding a key another holds.

    Runs are merged pairwise in memory while the result stays under ``file_keys``; a larger
    merge is written to a file and searched through a read-only mapping, whose pages are handed
    back after each search, so they never count as this process's memory.
    """

    def __init__(self, file_keys: int = 2**20):
        self._file_keys = file_keys
        self._memory: list[np.ndarray] = []
        self._files: list[tuple[mmap.mmap, np.ndarray]] = []
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.keys = 0

    def add(self, run: np.ndarray) -> None:
        """Take a sorted run of keys that no run holds yet."""
        self.keys += len(run)
        memory = self._memory
        memory.append(run)
        while len(memory) >= 2 and len(memory[-2]) <= len(memory[-1]):
            merged = np.concatenate(memory[-2:])
            del memory[-2:]
            merged.sort(kind="stable")  # two sorted runs: the merge is one pass
            if len(merged) >= self._file_keys:
                self._to_file(merged)
            else:
                memory.append(merged)

    def _to_file(self, run: np.ndarray) -> None:
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="cci-audit-ids-")
        path = Path(self._tmp.name) / f"run{len(self._files)}.keys"
        run.tofile(path)
        with open(path, "rb") as handle:
            mapped = mmap.mmap(handle.fileno(), 0, prot=mmap.PROT_READ)
        self._files.append((mapped, np.frombuffer(mapped, dtype=KEY)))

    def holding(self, keys: np.ndarray) -> np.ndarray:
        """One bool per key: whether a run holds it. Newest runs first: duplicates of recent
        deliveries are the usual ones."""
        found = np.zeros(len(keys), dtype=bool)
        for run in reversed(self._memory):
            found |= _holding(run, keys)
        for mapped, run in reversed(self._files):
            rest = ~found
            if not rest.any():
                break
            found[rest] = _holding(run, keys[rest])
            mapped.madvise(mmap.MADV_DONTNEED)  # the page cache keeps them; we do not
        return found

    def close(self) -> None:
        self._memory = []
        while self._files:
            mapped, run = self._files.pop()
            del run  # the mapping cannot close while an array still views it
            mapped.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _as_keys(keys: list[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(keys), dtype=KEY)


class SeenIds:
    """Which event ids were already delivered: the newest ``budget`` in a set, the rest in
    sorted runs behind a Bloom filter (see the module's docstring)."""

    def __init__(self, budget: int = 2**17, file_keys: int = 2**20, filter_bits_log2: int = 27):
        self._newest: set[bytes] = set()
        self._budget = budget
        self._runs = SortedRuns(file_keys)
        self._filter = BloomFilter(filter_bits_log2)

    def fresh(self, events: list[Event]) -> list[Event]:
        """The events whose ids were not seen before, recorded now; order kept."""
        newest = self._newest
        stored: set[bytes] | tuple = ()
        if self._runs.keys:
            unknown = [e.key for e in events if e.key not in newest]
            if unknown:
                stored = self._stored(unknown)
        out = []
        for event in events:
            key = event.key
            if key not in newest and key not in stored:
                newest.add(key)
                out.append(event)
        if len(newest) >= self._budget:
            self._spill()
        return out

    def _stored(self, unknown: list[bytes]) -> set[bytes]:
        keys = _as_keys(unknown)
        maybe = self._filter.might_hold(keys)
        if not maybe.any():
            return set()
        candidates = keys[maybe]
        held = self._runs.holding(candidates)
        return {bytes(key) for key in candidates[held]}

    def _spill(self) -> None:
        run = np.sort(_as_keys(list(self._newest)))
        self._filter.add(run)
        self._runs.add(run)
        self._newest = set()

    def close(self) -> None:
        self._runs.close()
