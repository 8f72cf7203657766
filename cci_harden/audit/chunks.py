"""Cut an export into byte ranges that start on a row, and parse one range into events.

Worker processes parse ranges side by side. A range is cut after a newline, which is a row
boundary unless a quoted field holds a newline (CircleCI writes its JSON blobs on one line, so
that is rare). Whether a cut was right is proven, not assumed: the worker reads its range followed
by a sentinel line, and the cut was on a row boundary exactly when the sentinel comes back as a row
of its own. A wrong cut is reported and the reader goes on from the last proven boundary in order.
"""

from __future__ import annotations

import csv
import io
import pickle
import secrets
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, islice

import msgspec

from .batch import parse_batch
from .events import Event

csv.field_size_limit(sys.maxsize)

CHUNK_BYTES = 2 * 2**20
BATCH_ROWS = 2048
# str.splitlines also breaks at these; csv (like files opened with newline="") does not
_OTHER_LINE_BREAKS = "\v\f\x1c\x1d\x1e"
# Made anew in every process: no export row can equal it, whatever the export holds (a fixed
# marker could be planted in a row and make a worker drop the rows around it).
_SENTINEL = f"\x00cci-harden-range-end-{secrets.token_hex(16)}\x00"
_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(list[Event])


@dataclass(frozen=True)
class Layout:
    """How a file's rows map onto the export's columns."""

    path: str
    width: int  # columns in the file's header
    order: tuple[int, ...] | None  # where each export column sits; None when already in order


@dataclass
class Batch:
    rows: int
    lines: int  # physical lines the rows took
    events: list[Event]
    problems: list[tuple[int, str]]  # (line, reason)
    keys: bytes | None = None  # the events' keys end to end, when a worker sent them


@dataclass
class RangeResult:
    """What a worker sends back: events packed, since many small objects pickle slowly."""

    rows: int = 0
    lines: int = 0  # problems count lines from 1 at the range's start; this says how many
    packed: bytes = b""
    keys: bytes = b""  # the events' keys end to end: the main process checks them as one array
    problems: list[tuple[int, str]] = field(default_factory=list)
    ends_on_row: bool = True

    def events(self) -> list[Event]:
        if self.packed[:1] == b"m":
            return _DECODER.decode(memoryview(self.packed)[1:])
        # only ever bytes our own worker processes produced (a pipe, not a file or a peer)
        return pickle.loads(self.packed[1:])  # noqa: S301


def split_points(handle, start: int, size: int, chunk: int = CHUNK_BYTES) -> Iterator[int]:
    """Offsets after ``start`` where a range ends: the first newline past each ``chunk`` bytes."""
    position = start
    while position + chunk < size:
        handle.seek(position + chunk)
        tail = b""
        while True:
            block = handle.read(65536)
            if not block:
                return
            cut = block.find(b"\n")
            if cut >= 0:
                position = position + chunk + len(tail) + cut + 1
                break
            tail += block
        if position >= size:
            return
        yield position


def _decoded_lines(blocks: Iterable[bytes], broken: list[bool]) -> Iterator[str]:
    """Lines as csv wants them (line endings kept) from blocks that each end after a newline.

    Bytes that are not UTF-8 are kept escaped and ``broken[0]`` is set, so the rows holding them
    are reported instead of the whole file failing.
    """

    def lines(block: bytes) -> list[str]:
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError:
            broken[0] = True
            text = block.decode("utf-8", "surrogateescape")
        if text.isascii() and not any(c in text for c in _OTHER_LINE_BREAKS):
            return text.splitlines(keepends=True)  # the same lines, three times faster
        return io.StringIO(text, newline="").readlines()

    return chain.from_iterable(map(lines, blocks))


def iter_batches(
    layout: Layout,
    lines: Iterable[str],
    first_line: int,
    broken: list[bool],
    sentinel: bool = False,
) -> Iterator[Batch]:
    """Parse ``lines`` (which begin at physical line ``first_line``) in batches of rows.

    With ``sentinel``, a last batch with rows=-1 says the text did not end on a row boundary.
    """
    lines = iter(lines)
    if sentinel:
        lines = chain(lines, [_SENTINEL + "\n"])
    reader = csv.reader(lines)
    line = first_line - 1  # the last physical line consumed
    ended_on_row = not sentinel
    while True:
        rows = list(islice(reader, BATCH_ROWS))
        if not rows:
            break
        consumed = first_line - 1 + reader.line_num - line
        if sentinel and rows[-1] == [_SENTINEL]:
            rows.pop()
            consumed -= 1
            ended_on_row = True
        single_lines = consumed == len(rows)
        if single_lines:
            starts: Sequence[int] = range(line + 1, line + 1 + len(rows))
        else:
            starts = _row_starts(rows, line + 1)
        line += consumed
        if layout.order is not None:
            order, width = layout.order, layout.width
            rows = [[row[i] for i in order] if len(row) == width else row for row in rows]
        events, problems = parse_batch(rows, starts, layout.path, broken[0], single_lines)
        yield Batch(len(rows), consumed, events, problems)
    if not ended_on_row:
        yield Batch(-1, 0, [], [])


def _row_starts(rows: list[list[str]], first: int) -> list[int]:
    """Start lines when some row spans several lines (a quoted field holding line breaks)."""
    starts = []
    line = first
    for row in rows:
        starts.append(line)
        line += 1
        for value in row:
            if "\n" in value or "\r" in value:
                line += value.count("\n") + value.count("\r") - value.count("\r\n")
    return starts


def parse_range(layout: Layout, start: int, end: int) -> RangeResult:
    """Worker: every row in bytes [start, end) of the file, with proof the range ended on a row."""
    with open(layout.path, "rb") as handle:
        handle.seek(start)
        data = handle.read(end - start)
    result = RangeResult()
    events: list[Event] = []
    broken = [False]
    for batch in iter_batches(layout, _decoded_lines([data], broken), 1, broken, True):
        if batch.rows < 0:
            return RangeResult(ends_on_row=False)
        result.rows += batch.rows
        result.lines += batch.lines
        events.extend(batch.events)
        result.problems.extend(batch.problems)
    result.keys = b"".join([event.key for event in events])
    try:
        result.packed = b"m" + _ENCODER.encode(events)
    except (OverflowError, TypeError):  # a payload number msgpack cannot hold
        result.packed = b"p" + pickle.dumps(events, protocol=pickle.HIGHEST_PROTOCOL)
    return result


def _line_blocks(handle, start: int, size: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The file from ``start`` in blocks that end after a newline (or at the end of the file)."""
    handle.seek(start)
    carry = b""
    while True:
        block = handle.read(size)
        if not block:
            if carry:
                yield carry
            return
        block = carry + block
        cut = block.rfind(b"\n") + 1
        if cut == 0:
            carry = block
            continue
        carry = block[cut:]
        yield block[:cut]


def stream_range(
    layout: Layout, handle, start: int, first_line: int, block: int = CHUNK_BYTES
) -> Iterator[Batch]:
    """In-process: every row from ``start`` to the end of the file, one batch at a time."""
    broken = [False]
    lines = _decoded_lines(_line_blocks(handle, start, block), broken)
    yield from iter_batches(layout, lines, first_line, broken)
