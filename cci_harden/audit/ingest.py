"""Stream audit-log exports: validate each row, drop duplicate deliveries, count what is wrong.

Worker processes parse and validate ranges of a file side by side; this process takes their events
in file order, drops duplicate deliveries and counts what is wrong. Only a few ranges are in flight
at a time, so memory does not grow with the file. The ids seen (duplicates share an id) are kept
by ``seen.SeenIds``: a small set of the newest, the rest in sorted runs of 16-byte keys behind a
Bloom filter, moved to files once large, so a very large export cannot exhaust memory either.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import gzip
import multiprocessing
import secrets
import shutil
import tempfile
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from itertools import chain
from pathlib import Path
from typing import TextIO

from ..model.errors import CciHardenError
from .chunks import (
    CHUNK_BYTES,
    Batch,
    Layout,
    parse_range,
    split_points,
    stream_range,
)
from .events import COLUMNS, Event
from .limits import ROW_LIMIT, default_jobs
from .seen import SeenIds


class NotAnAuditExport(CciHardenError):
    """The file does not have the audit-log export's columns."""


@dataclass
class Malformed:
    source: str  # file:line, or file:first-last for a row over several lines
    reason: str
    lines: int = 1  # physical lines the malformed row took
    path: str = ""  # for a row over several lines: its file, first and last line
    first: int = 0
    last: int = 0


def _malformed(path, problem: tuple) -> Malformed:
    """A problem as reported: a row that took several lines (a quote never closed takes the
    rows after it) names its span and how many lines it covered, since events may hide there."""
    line, reason, *span = problem
    last = span[0] if span else line
    if last == line:
        return Malformed(f"{path}:{line}", reason)
    covered = last - line + 1
    return Malformed(
        f"{path}:{line}-{last}",
        f"{reason}; it spans {covered:,} lines, which may hold events this run did not read",
        covered,
        str(path),
        line,
        last,
    )


def byte_spans(path: str, spans: list[tuple[int, int]]) -> dict[tuple[int, int], tuple[int, int]]:
    """(first line, last line) -> (its first byte, the byte after its last line) in an
    uncompressed file: one pass counting newlines, holding one block at a time."""
    # line N starts after the (N-1)th newline
    targets = sorted({n - 1 for first, last in spans for n in (first, last + 1)})
    offsets = {0: 0}
    pending = [t for t in targets if t > 0]
    passed = position = 0  # newlines and bytes before the current block
    with open(path, "rb") as handle:
        while pending and (block := handle.read(1 << 20)):
            count = block.count(b"\n")
            if passed + count >= pending[0]:
                at, seen = -1, passed
                while pending and seen < passed + count:
                    at = block.find(b"\n", at + 1)
                    seen += 1
                    if seen == pending[0]:
                        offsets[pending.pop(0)] = position + at + 1
            passed += count
            position += len(block)
        size = handle.seek(0, 2)
    return {
        (first, last): (offsets.get(first - 1, size), offsets.get(last, size))
        for first, last in spans
    }


# Malformed rows kept in memory: a sample; the full list goes to ``malformed_sink`` as it comes,
# so memory does not grow with the number of bad rows (a file of nothing else included).
MALFORMED_SAMPLE = 1000


@dataclass
class IngestStats:
    rows: int = 0
    events: int = 0
    duplicates: int = 0
    conflicts: int = 0  # ids delivered again with different content (passed on, not dropped)
    malformed: list[Malformed] = field(default_factory=list)  # the first MALFORMED_SAMPLE
    malformed_count: int = 0
    malformed_sink: TextIO | None = None  # every malformed row, one "file:line<TAB>reason" line
    spanning: int = 0  # malformed rows that took more than one line
    spanned_lines: int = 0  # the lines those rows took, all together
    files: list[str] = field(default_factory=list)
    bytes_total: int = 0  # of every file to read, for progress
    bytes_done: int = 0
    started: float = field(default_factory=time.monotonic)

    def add_malformed(self, items: Iterable[Malformed]) -> None:
        for item in items:
            self.malformed_count += 1
            if item.lines > 1:
                self.spanning += 1
                self.spanned_lines += item.lines
            if len(self.malformed) < MALFORMED_SAMPLE:
                self.malformed.append(item)
            if self.malformed_sink is not None:
                self.malformed_sink.write(f"{item.source}\t{item.reason}\n")

    def as_dict(self) -> dict:
        return {
            "files": self.files,
            "rows": self.rows,
            "events": self.events,
            "duplicates": self.duplicates,
            "conflicting_ids": self.conflicts,
            "malformed": self.malformed_count,
            "malformed_spanning": self.spanning,
            "malformed_spanned_lines": self.spanned_lines,
        }


def _layout(path: Path) -> tuple[Layout, int]:
    """The file's column layout and the byte offset of its first data row; refuse non-exports."""
    try:
        with open(path, "rb") as handle:
            first = handle.readline()
    except OSError as exc:
        raise NotAnAuditExport(f"{path}: cannot read ({exc.strerror})") from None
    if not first.strip():
        raise NotAnAuditExport(f"{path}: empty file, not an audit-log export")
    try:
        header = next(csv.reader([first.decode("utf-8-sig")]))
    except (csv.Error, UnicodeDecodeError, StopIteration) as exc:
        raise NotAnAuditExport(f"{path}: not a CSV audit-log export ({exc})") from None
    names = [name.strip().lower() for name in header]
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise NotAnAuditExport(
            f"{path}: not a CircleCI audit-log export (missing columns: {', '.join(missing)})"
        )
    order = tuple(names.index(c) for c in COLUMNS)
    in_order = order == tuple(range(len(COLUMNS))) and len(names) == len(COLUMNS)
    return Layout(str(path), len(names), None if in_order else order), len(first)


def _ranges(handle, start: int, size: int) -> Iterator[tuple[int, int]]:
    """(start, end) of each range a worker parses."""
    for end in chain(split_points(handle, start, size, CHUNK_BYTES), [size]):
        yield start, end
        start = end


def _pool(jobs: int) -> ProcessPoolExecutor:
    """Workers for parse_range. It makes no reference cycles, so the workers run without the
    cycle collector, which otherwise spends a sixth of their time scanning rows."""
    # fork is quick and safe while this process runs one thread; otherwise start clean
    method = "fork" if threading.active_count() == 1 else "forkserver"
    return ProcessPoolExecutor(
        jobs, mp_context=multiprocessing.get_context(method), initializer=gc.disable
    )


def _batches(layout: Layout, start: int, size: int, jobs: int) -> Iterator[Batch]:
    """Every batch of the file in order: ranges parsed by ``jobs`` workers, or in process."""
    with open(layout.path, "rb") as handle:
        if jobs <= 1 or size - start < 2 * CHUNK_BYTES:
            for batch in stream_range(layout, handle, start, 2, CHUNK_BYTES):
                batch.position = handle.tell()  # read ahead by a block at most: for progress
                yield batch
            return
        with _pool(jobs) as pool, open(layout.path, "rb") as cutter:
            ranges = _ranges(cutter, start, size)
            pending: deque = deque()

            def submit() -> None:
                span = next(ranges, None)
                if span is not None:
                    pending.append((span, pool.submit(parse_range, layout, *span)))

            for _ in range(jobs + 2):  # enough to keep every worker busy, few to hold in memory
                submit()
            line = 2  # where the current range starts
            while pending:
                (begin, _end), future = pending.popleft()  # noqa: RUF059
                result = future.result()
                if not result.ends_on_row:
                    # a quoted field held the newline the cut was made after: from the last
                    # proven row boundary, read on in order
                    for _, later in pending:
                        later.cancel()
                    for batch in stream_range(layout, handle, begin, line, CHUNK_BYTES):
                        batch.position = handle.tell()
                        yield batch
                    return
                submit()
                problems = [
                    (line - 1 + at, reason, *(line - 1 + end for end in span))
                    for at, reason, *span in result.problems
                ]
                events = result.events()
                yield Batch(
                    result.rows,
                    result.lines,
                    events,
                    problems,
                    result.keys,
                    result.digests,
                    position=_end,
                )
                line += result.lines


def read_export_batches(
    paths: Iterable[Path],
    stats: IngestStats,
    progress=None,
    seen: SeenIds | None = None,
    jobs: int | None = None,
    row_limit: int = ROW_LIMIT,
    on_conflict: Callable[[list[Event]], None] | None = None,
) -> Iterator[list[Event]]:
    """Valid, de-duplicated events from every file in turn, a list at a time; problems are
    counted in ``stats``.

    An id delivered again with different content is passed on too, counted in
    ``stats.conflicts`` and handed to ``on_conflict``: it is never taken for a repeat.

    Rows are parsed and validated by ``jobs`` worker processes (default: one per CPU, at most 8);
    events come out in file order, so the first delivery of a duplicated event is the one kept.
    """
    seen = seen or SeenIds()
    jobs = default_jobs() if jobs is None else jobs
    salt = secrets.token_bytes(16)  # one per run: digests of every file must compare
    paths = list(paths)
    stats.bytes_total = sum(Path(p).stat().st_size for p in paths if Path(p).is_file())
    try:
        for path in paths:
            with _plain(Path(path)) as readable:
                yield from _file_batches(
                    path, readable, stats, seen, jobs, salt, row_limit, on_conflict, progress
                )
    finally:
        seen.close()


@contextlib.contextmanager
def _plain(path: Path) -> Iterator[Path]:
    """The export as a plain file: a ``.gz`` one is decompressed into a temporary file first
    (streamed, so memory stays flat), since workers read ranges of it by offset."""
    if path.suffix != ".gz":
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="cci-audit-gz-") as tmp:
        plain = Path(tmp) / path.stem
        try:
            with gzip.open(path, "rb") as packed, open(plain, "wb") as out:
                shutil.copyfileobj(packed, out, 2**20)
        except (OSError, EOFError, zlib.error) as exc:
            raise NotAnAuditExport(f"{path}: cannot decompress ({exc})") from None
        yield plain


def _file_batches(
    path,
    readable: Path,
    stats: IngestStats,
    seen: SeenIds,
    jobs: int,
    salt: bytes,
    row_limit: int,
    on_conflict,
    progress,
) -> Iterator[list[Event]]:
    """One file's events, a batch at a time (``path`` names it in reports; ``readable`` is
    what is read)."""
    layout, start = _layout(readable)
    layout = replace(layout, salt=salt, row_limit=row_limit)
    size = readable.stat().st_size
    stats.files.append(str(path))
    done_before = stats.bytes_done
    weight = Path(path).stat().st_size  # what this file counts for (compressed, for a .gz)
    last_report = time.monotonic()
    for batch in _batches(layout, start, size, jobs):
        stats.rows += batch.rows
        if batch.position >= 0 and size:
            stats.bytes_done = done_before + weight * min(batch.position, size) // size
        stats.add_malformed(_malformed(path, problem) for problem in batch.problems)
        events, conflicts = seen.fresh(batch.events, batch.keys, batch.digests)
        stats.events += len(events)
        stats.duplicates += len(batch.events) - len(events)
        if conflicts:
            stats.conflicts += len(conflicts)
            if on_conflict is not None:
                on_conflict(conflicts)
        if progress is not None:
            now = time.monotonic()
            if now - last_report >= 1:
                progress(stats)
                last_report = now
        yield events
    stats.bytes_done = done_before + weight


def read_exports(
    paths: Iterable[Path],
    stats: IngestStats,
    progress=None,
    seen: SeenIds | None = None,
    jobs: int | None = None,
    row_limit: int = ROW_LIMIT,
    on_conflict: Callable[[list[Event]], None] | None = None,
) -> Iterator[Event]:
    """The events of read_export_batches one at a time."""
    for events in read_export_batches(paths, stats, progress, seen, jobs, row_limit, on_conflict):
        yield from events
