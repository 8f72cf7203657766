"""Cut an export into byte ranges that start on a row, and parse one range into events.

Worker processes parse ranges side by side. A range is cut after a newline, which is a row
boundary unless a quoted field holds a newline (CircleCI writes its JSON blobs on one line, so
that is rare). Whether a cut was right is proven, not assumed: the worker reads its range followed
by a sentinel line, and the cut was on a row boundary exactly when the sentinel comes back as a row
of its own. A wrong cut is reported and the reader goes on from the last proven boundary in order.

No row is ever held whole past a limit (``Layout.row_limit``, 1 MiB by default): a physical line
longer than that is skipped as it is read and reported as a malformed row, and a quoted field
that grows past it (a quote never closed) ends its row as malformed, so neither memory nor time
grows with a row's length.
"""

from __future__ import annotations

import bisect
import csv
import io
import pickle
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, islice

import msgspec

from .batch import parse_batch
from .events import Event
from .limits import ROW_LIMIT

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
    row_limit: int = ROW_LIMIT
    # keys each row's content digest (see row_digests): made per run, so no export can be
    # crafted offline to give two different rows the same digest
    salt: bytes = field(default_factory=lambda: secrets.token_bytes(16))


@dataclass
class Batch:
    rows: int
    lines: int  # physical lines the rows took
    events: list[Event]
    problems: list[tuple]  # (line, reason), or (first line, reason, last line) for a span
    keys: bytes | None = None  # the events' keys end to end, when a worker sent them
    digests: bytes = b""  # each event's 8-byte content digest, end to end
    position: int = -1  # bytes of the file read when this batch was made (progress), if known


@dataclass
class RangeResult:
    """What a worker sends back: events packed, since many small objects pickle slowly."""

    rows: int = 0
    lines: int = 0  # problems count lines from 1 at the range's start; this says how many
    packed: bytes = b""
    keys: bytes = b""  # the events' keys end to end: the main process checks them as one array
    digests: bytes = b""  # each event's content digest, end to end (Batch.digests)
    problems: list[tuple] = field(default_factory=list)  # as Batch.problems
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
        skipped = 0  # bytes passed without a newline: counted, never kept (a line can be huge)
        while True:
            block = handle.read(65536)
            if not block:
                return
            cut = block.find(b"\n")
            if cut >= 0:
                position = position + chunk + skipped + cut + 1
                break
            skipped += len(block)
        if position >= size:
            return
        yield position


class _Overlong:
    """Stands, in the stream of blocks, for a line longer than the row limit (never bytes, so no
    export can forge it)."""


_OVERLONG = _Overlong()


def _decoded_lines(
    blocks: Iterable[bytes | _Overlong], broken: list[bool], overlong: list[int], first_line: int
) -> Iterator[str]:
    """Lines as csv wants them (line endings kept) from blocks that each end after a newline.

    Bytes that are not UTF-8 are kept escaped and ``broken[0]`` is set, so the rows holding them
    are reported instead of the whole file failing. A line skipped for its length becomes an empty
    line, and its number (counted from ``first_line``) is appended to ``overlong``.
    """
    line = [first_line]

    def lines(block: bytes | _Overlong) -> list[str]:
        if isinstance(block, _Overlong):
            overlong.append(line[0])
            line[0] += 1
            return ["\n"]
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError:
            broken[0] = True
            text = block.decode("utf-8", "surrogateescape")
        if text.isascii() and not any(c in text for c in _OTHER_LINE_BREAKS):
            found = text.splitlines(keepends=True)  # the same lines, three times faster
        else:
            found = io.StringIO(text, newline="").readlines()
        line[0] += len(found)
        return found

    return chain.from_iterable(map(lines, blocks))


def iter_batches(
    layout: Layout,
    lines: Iterable[str],
    first_line: int,
    broken: list[bool],
    overlong: list[int],
    sentinel: bool = False,
) -> Iterator[Batch]:
    """Parse ``lines`` (which begin at physical line ``first_line``) in batches of rows.

    ``overlong`` fills, as lines are read, with the numbers of lines skipped for their length.
    With ``sentinel``, a last batch with rows=-1 says the text did not end on a row boundary, or
    that a row broke the CSV reader, after which a range's proof cannot be trusted.
    """
    csv.field_size_limit(layout.row_limit)
    lines = iter(lines)
    if sentinel:
        lines = chain(lines, [_SENTINEL + "\n"])
    reader = csv.reader(lines)
    line = first_line - 1  # the last physical line consumed
    ended_on_row = not sentinel
    while True:
        rows: list[list[str]] = []
        failure = None
        try:
            rows.extend(islice(reader, BATCH_ROWS))  # keeps the rows read before a failure
        except csv.Error as exc:
            if sentinel:
                yield Batch(-1, 0, [], [])
                return
            failure = str(exc)
        if not rows and failure is None:
            break
        consumed = first_line - 1 + reader.line_num - line
        if sentinel and rows[-1] == [_SENTINEL]:
            rows.pop()
            consumed -= 1
            ended_on_row = True
        single_lines = failure is None and consumed == len(rows)
        if single_lines:
            starts: Sequence[int] = range(line + 1, line + 1 + len(rows))
            after = line + 1 + len(rows)
        else:
            starts, after = _row_starts(rows, line + 1)
        problems: list[tuple] = []
        last = line + consumed
        if failure is not None:  # the row after the good ones: it took the lines up to here,
            # and any rows in them (a quote never closed swallows what follows): its span says so
            problems.append((after, _csv_reason(failure, layout.row_limit), max(after, last)))
        line = last
        if overlong and overlong[0] <= last:
            rows, starts, skipped = _without_overlong(rows, starts, after, overlong, last)
            problems += [(at, f"row is longer than {layout.row_limit:,} bytes") for at in skipped]
            single_lines = False
        if layout.order is not None:
            order, width = layout.order, layout.width
            rows = [[row[i] for i in order] if len(row) == width else row for row in rows]
        events, found, digests = parse_batch(
            rows, starts, layout.path, broken[0], single_lines, layout.salt
        )
        if problems:
            found = sorted(found + problems)
        yield Batch(len(rows) + len(problems), consumed, events, found, None, digests)
    if not ended_on_row:
        yield Batch(-1, 0, [], [])


def _csv_reason(message: str, limit: int) -> str:
    if "field larger than field limit" in message:
        return f"row is longer than {limit:,} bytes (a quoted field that never ends?)"
    return f"cannot be read as CSV ({message})"


def _without_overlong(
    rows: list[list[str]], starts: Sequence[int], after: int, overlong: list[int], last: int
) -> tuple[list[list[str]], list[int], list[int]]:
    """Drop the rows that hold a line skipped for its length (taken from the front of
    ``overlong`` up to line ``last``); return the rows kept, their starts, and the dropped rows'
    start lines. A skipped line inside a row that already failed is that row's problem."""
    spans = list(starts) + [after]
    dropped: set[int] = set()
    while overlong and overlong[0] <= last:
        at = overlong.pop(0)
        index = bisect.bisect_right(spans, at) - 1
        if 0 <= index < len(rows):
            dropped.add(index)
    kept = [i for i in range(len(rows)) if i not in dropped]
    return [rows[i] for i in kept], [spans[i] for i in kept], [spans[i] for i in sorted(dropped)]


def _row_starts(rows: list[list[str]], first: int) -> tuple[list[int], int]:
    """Start lines when some row spans several lines (a quoted field holding line breaks), and
    the line after the last row."""
    starts = []
    line = first
    for row in rows:
        starts.append(line)
        line += 1
        for value in row:
            if "\n" in value or "\r" in value:
                line += value.count("\n") + value.count("\r") - value.count("\r\n")
    return starts, line


def parse_range(layout: Layout, start: int, end: int) -> RangeResult:
    """Worker: every row in bytes [start, end) of the file, with proof the range ended on a row."""
    result = RangeResult()
    events: list[Event] = []
    digests: list[bytes] = []
    broken = [False]
    overlong: list[int] = []
    with open(layout.path, "rb") as handle:
        blocks = _line_blocks(handle, start, end, layout.row_limit)
        lines = _decoded_lines(blocks, broken, overlong, 1)
        for batch in iter_batches(layout, lines, 1, broken, overlong, True):
            if batch.rows < 0:
                return RangeResult(ends_on_row=False)
            result.rows += batch.rows
            result.lines += batch.lines
            events.extend(batch.events)
            digests.append(batch.digests)
            result.problems.extend(batch.problems)
    result.keys = b"".join([event.key for event in events])
    result.digests = b"".join(digests)
    try:
        result.packed = b"m" + _ENCODER.encode(events)
    except (OverflowError, TypeError):  # a payload number msgpack cannot hold
        result.packed = b"p" + pickle.dumps(events, protocol=pickle.HIGHEST_PROTOCOL)
    return result


def _line_blocks(
    handle, start: int, end: int | None, limit: int, size: int = CHUNK_BYTES
) -> Iterator[bytes | _Overlong]:
    """Bytes [start, end) of the file in blocks that end after a newline (or at the end), with
    ``_OVERLONG`` in place of each line longer than ``limit`` bytes. At most ``limit`` bytes of a
    line are ever held, and each byte is read and searched once."""
    handle.seek(start)
    left = None if end is None else end - start
    carry = b""
    skipping = False  # inside a line already known to be too long
    while left is None or left > 0:
        block = handle.read(size if left is None else min(size, left))
        if not block:
            break
        if left is not None:
            left -= len(block)
        if skipping:
            cut = block.find(b"\n")
            if cut < 0:
                continue
            skipping = False
            yield _OVERLONG
            block = block[cut + 1 :]
        block = carry + block
        cut = block.rfind(b"\n") + 1
        carry = block[cut:]
        if cut:
            yield from _bounded(block[:cut] if carry else block, limit)
        if len(carry) > limit:
            carry, skipping = b"", True
    if skipping:
        yield _OVERLONG
    elif carry:
        yield from _bounded(carry, limit)


def _bounded(data: bytes, limit: int) -> Iterator[bytes | _Overlong]:
    """``data`` (whole lines) with each line over ``limit`` bytes replaced by ``_OVERLONG``.
    Jumps from the last newline within ``limit`` bytes to the next, so a block of short lines
    takes a search or two, not one per line."""
    if len(data) <= limit:
        yield data
        return
    kept = at = 0
    while len(data) - at > limit:
        newline = data.rfind(b"\n", at, at + limit + 1)
        if newline >= 0:
            at = newline + 1
            continue
        # no line break within limit bytes of ``at``: the line starting there is too long
        if at > kept:
            yield data[kept:at]
        yield _OVERLONG
        newline = data.find(b"\n", at)
        if newline < 0:
            return
        kept = at = newline + 1
    if kept < len(data):
        yield data[kept:]


def stream_range(
    layout: Layout, handle, start: int, first_line: int, block: int = CHUNK_BYTES
) -> Iterator[Batch]:
    """In-process: every row from ``start`` to the end of the file, one batch at a time."""
    broken = [False]
    overlong: list[int] = []
    blocks = _line_blocks(handle, start, None, layout.row_limit, block)
    lines = _decoded_lines(blocks, broken, overlong, first_line)
    yield from iter_batches(layout, lines, first_line, broken, overlong)
