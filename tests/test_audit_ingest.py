"""Parallel, batched ingest reads exactly what a plain row-by-row reading reads.

The reference is ``parse_row`` over Python's csv reader, one row at a time; the ingest under test
splits files into ranges for worker processes and validates rows a column at a time.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
from datetime import UTC, datetime

import numpy as np
import pytest

from cci_harden.audit import chunks, ingest
from cci_harden.audit.batch import parse_batch
from cci_harden.audit.events import COLUMNS, RowError, parse_row
from cci_harden.audit.generate import generate, numbered_row
from cci_harden.audit.ingest import IngestStats, read_exports
from cci_harden.audit.seen import KEY, BloomFilter, SeenIds

from .conftest import cli_here, run_cli

WHEN = datetime(2022, 12, 22, 3, 4, 5, 678000, tzinfo=UTC)


def reference(path) -> tuple[list[tuple], list[tuple[str, str]], int]:
    """(events, malformed, rows) read the plain way: csv rows, parse_row, first id wins."""
    events, malformed, seen, rows = [], [], set(), 0
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as handle:
        reader = csv.reader(handle)
        next(reader)
        line = 1
        for row in reader:
            start, line = line + 1, reader.line_num
            rows += 1
            if not row:
                continue
            source = f"{path}:{start}"
            try:
                broken = any("\udc80" <= ch <= "\udcff" for field in row for ch in field)
                if broken and len(row) == len(COLUMNS):
                    raise RowError("contains bytes that are not UTF-8")
                event = parse_row(row)
            except RowError as exc:
                malformed.append((source, str(exc)))
                continue
            if event.key not in seen:
                seen.add(event.key)
                events.append(_fields(event))
    return events, malformed, rows


def _fields(event) -> tuple:
    return tuple(getattr(event, name) for name in event.__struct_fields__)


def ingested(path, jobs: int) -> tuple[list[tuple], list[tuple[str, str]], int]:
    stats = IngestStats()
    events = [_fields(e) for e in read_exports([path], stats, jobs=jobs)]
    return events, [(m.source, m.reason) for m in stats.malformed], stats.rows


@pytest.fixture
def small_ranges(monkeypatch):
    """Ranges of 2 KiB, so a small file is cut many times."""
    monkeypatch.setattr(ingest, "CHUNK_BYTES", 2048)


def test_workers_read_what_a_plain_reading_reads(tmp_path, small_ranges):
    path = tmp_path / "export.csv"
    truth = generate(path, 3000, seed=11)
    expected = reference(path)
    assert len(expected[0]) == truth.unique and len(expected[1]) == truth.malformed
    assert ingested(path, jobs=1) == expected
    assert ingested(path, jobs=3) == expected


def _row(n: int, **changes) -> list[str]:
    return numbered_row(n, WHEN, **changes)


def _multiline_export(path) -> bytes:
    """Rows whose quoted fields hold line breaks, valid ones and broken ones."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for n in range(400):
        if n % 9 == 4:  # a valid event: JSON may break lines between its tokens
            end = "\r\n" if n % 2 else "\n"
            writer.writerow(_row(n, payload=f'{{"name": "MULTI",{end} "note": "a\\nb"}}{end}'))
        elif n % 9 == 7:  # a raw line break inside a JSON string: malformed
            writer.writerow(_row(n, target='{"id": "t",\n "type": "pro\nject"}'))
        else:
            writer.writerow(_row(n))
    path.write_text(out.getvalue(), newline="")
    return path.read_bytes()


def test_a_range_cut_inside_a_quoted_line_break_says_so(tmp_path):
    path = tmp_path / "multiline.csv"
    data = _multiline_export(path)
    layout, start = ingest._layout(path)
    inside = data.index(b"\n", data.index(b"MULTI")) + 1
    after = data.index(b"\r\nproject.env_var", inside) + 2
    assert not chunks.parse_range(layout, start, inside).ends_on_row
    assert chunks.parse_range(layout, start, after).ends_on_row


def test_a_wrong_cut_falls_back_to_reading_in_order(tmp_path, monkeypatch):
    """The first cut lands inside a quoted line break; every event and line number after it must
    still be what a plain reading gives."""
    path = tmp_path / "multiline.csv"
    data = _multiline_export(path)
    _, start = ingest._layout(path)
    inside = data.index(b"\n", data.index(b"MULTI"))
    monkeypatch.setattr(ingest, "CHUNK_BYTES", inside - start - 1)
    with open(path, "rb") as handle:
        assert next(ingest._ranges(handle, start, len(data)))[1] == inside + 1
    expected = reference(path)
    assert len(expected[1]) == 44 and len(expected[0]) == 356
    assert ingested(path, jobs=1) == expected
    assert ingested(path, jobs=2) == expected


def test_many_cuts_among_line_breaks(tmp_path, small_ranges):
    path = tmp_path / "multiline.csv"
    _multiline_export(path)
    assert ingested(path, jobs=2) == reference(path)


def test_bytes_that_are_not_utf8_fail_their_row_only(tmp_path, small_ranges):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for n in range(200):
        writer.writerow(_row(n, action="@@BROKEN@@" if n == 150 else "project.env_var.create"))
    data = out.getvalue().encode().replace(b"@@BROKEN@@", b"project.env_var.cr\xe9ate")
    path = tmp_path / "latin1.csv"
    path.write_bytes(data)
    events, malformed, rows = ingested(path, jobs=2)
    assert rows == 200 and len(events) == 199
    assert malformed == [(f"{path}:152", "contains bytes that are not UTF-8")]
    assert (events, malformed, rows) == reference(path)


NASTY = {
    "upper-case id": {"id": "ABCDEF01-2345-4678-9ABC-DEF012345678"},
    "id with a space": {"id": "abcdef01-2345-4678-9abc-def01234567 "},
    "id with a unicode digit": {"id": "abcdef01-2345-4678-9abc-def01234567\u0663"},
    "nanoseconds": {"occurred_at": "2022-12-22T03:04:05.123456789Z"},
    "no fraction": {"occurred_at": "2022-12-22T03:04:05Z"},
    "offset form": {"occurred_at": "2022-12-22T03:04:05.678+00:00"},
    "hour 24": {"occurred_at": "2022-12-22T24:04:05.678Z"},
    "month 13": {"occurred_at": "2022-13-22T03:04:05.678Z"},
    "month 00": {"occurred_at": "2022-00-22T03:04:05.678Z"},
    "day 00": {"occurred_at": "2022-12-00T03:04:05.678Z"},
    "day 32": {"occurred_at": "2022-12-32T03:04:05.678Z"},
    "minute 60": {"occurred_at": "2022-12-22T03:60:05.678Z"},
    "second 60": {"occurred_at": "2022-12-22T03:04:60.678Z"},
    "slash for a digit": {"occurred_at": "2022-12-22T03:04:05.6/8Z"},
    "colon for a digit": {"occurred_at": "2022-12-22T03:04:05.6:8Z"},
    "slash for a dash": {"occurred_at": "2022/12-22T03:04:05.678Z"},
    "arabic digits": {"occurred_at": "2022-12-22T03:04:0\u0665.678Z"},
    "local time": {"occurred_at": "2022-12-22T03:04:05.678+01:00"},
    "blob with spaces around": {"actor": ' {"id": "u", "type": "user"} '},
    "two objects in one blob": {"actor": '{"id": "u", "type": "user"} {"id": "v", "type": "x"}'},
    "half an object": {"actor": '{"id": "u", "type": "user", "x": [{}'},
    "the other half": {"actor": "{}]}"},
    "blob that is a list": {"target": '[{"id": "t", "type": "project"}]'},
    "empty payload": {"payload": ""},
    "empty request": {"request": ""},
    "request without id": {"request": '{"ip_address": "1.2.3.4"}'},
    "metadata not strings": {"metadata": '{"a": 1}'},
    "version word": {"version": "one"},
    "success yes": {"success": "yes"},
    "success upper": {"success": "TRUE"},
    "action with space": {"action": "user logged_in"},
    "huge number in payload": {"payload": '{"name": "X", "n": 100000000000000000000000000}'},
    # values that used to end the whole run
    "empty actor": {"actor": ""},
    "empty target": {"target": ""},
    "payload nested a thousand deep": {"payload": '{"a":' * 1000 + "1" + "}" * 1000},
    "actor nested a thousand deep": {
        "actor": '{"id": "u", "type": "user", "x": ' + "[" * 1000 + "]" * 1000 + "}"
    },
    "project given as a list": {"payload": '{"name": "X", "project": ["a", "b"]}'},
}


def test_hostile_field_values_are_malformed_rows_never_a_crash(tmp_path, small_ranges):
    """Each hostile value becomes one counted malformed row (or a valid event), the same
    with one worker and with two; the run goes on."""
    path = tmp_path / "hostile.csv"
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for n, changes in enumerate(NASTY.values()):
        writer.writerow(_row(1000 + n, **changes))
        writer.writerow(_row(n))
    path.write_text(out.getvalue(), newline="")
    expected = reference(path)
    assert ingested(path, jobs=1) == expected == ingested(path, jobs=2)
    reasons = dict(expected[1])
    assert any("actor" in r and "empty" in r for r in reasons.values()), reasons
    assert any("too deeply nested" in r for r in reasons.values()), reasons


def test_batches_accept_and_refuse_exactly_what_parse_row_does():
    """Each nasty row among valid ones: the batch verdict equals the row-by-row one."""
    for label, changes in NASTY.items():
        rows = (
            [_row(n) for n in range(40)] + [_row(99, **changes)] + [_row(n) for n in range(40, 80)]
        )
        events, problems, _ = parse_batch(rows, range(2, 2 + len(rows)), "f")
        expected_events, expected_problems = [], []
        for line, row in enumerate(rows, start=2):
            try:
                expected_events.append(_fields(parse_row(row)))
            except RowError as exc:
                expected_problems.append((line, str(exc)))
        assert [_fields(e) for e in events] == expected_events, label
        assert problems == expected_problems, label


def test_a_bad_blob_repeated_on_many_rows_fails_every_one_of_them():
    """Columns that repeat a few values (actor, target, scope, metadata) are decoded once per
    distinct text: each row that holds a bad one is still reported on its own line."""
    bad = {"actor": '{"id": "u"}', "scope": "{", "metadata": '{"a": 1}', "target": "[]"}
    for column, text in bad.items():
        rows = [_row(n, **({column: text} if n % 7 == 3 else {})) for n in range(60)]
        events, problems, _ = parse_batch(rows, range(2, 62), "f")
        assert [line for line, _ in problems] == [n + 2 for n in range(60) if n % 7 == 3], column
        assert len(events) == 60 - len(problems), column


def test_adjacent_blobs_cannot_pair_up_across_rows():
    """A blob cut short, its end in the next row and two objects in a third: joined, they are
    three valid objects, but each row on its own is invalid and must be reported."""
    rows = [_row(1, actor='{"id": "u", "type": "user", "x":'), _row(2, actor='{"a": 1}}')]
    rows.append(_row(3, actor='{"id": "a", "type": "user"} {"id": "b", "type": "user"}'))
    events, problems, _ = parse_batch(rows, [2, 3, 4], "f")
    assert events == [] and [line for line, _ in problems] == [2, 3, 4]


def test_a_huge_payload_number_travels_from_a_worker(tmp_path, small_ranges):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for n in range(100):
        writer.writerow(_row(n, payload='{"name": "X", "n": 100000000000000000000000000}'))
    path = tmp_path / "big-number.csv"
    path.write_text(out.getvalue())
    events, malformed, _ = ingested(path, jobs=2)
    assert len(events) == 100 and not malformed
    assert {e[10]["n"] for e in events} == {10**26}  # field 10: payload


def test_jobs_option_is_checked(tmp_path):
    path = tmp_path / "e.csv"
    generate(path, 50)
    proc = run_cli("audit", "hunt", str(path), "--jobs", "0")
    assert proc.returncode == 2 and "--jobs" in proc.stderr and "from 1 to 64" in proc.stderr
    proc = run_cli("audit", "hunt", str(path), "--jobs", "2", "--format", "jsonl")
    assert proc.returncode == 0, proc.stderr


def test_ranges_cover_the_file_and_count_their_lines(tmp_path, small_ranges):
    path = tmp_path / "e.csv"
    generate(path, 300)
    data = path.read_bytes()
    layout, start = ingest._layout(path)
    with open(path, "rb") as handle:
        spans = list(ingest._ranges(handle, start, len(data)))
    assert len(spans) > 50 and spans[0][0] == start and spans[-1][1] == len(data)
    for (begin, end), following in zip(spans, spans[1:] + [(len(data), 0)], strict=True):
        assert end == following[0] and data[end - 1 : end] == b"\n"
        assert chunks.parse_range(layout, begin, end).lines == data[begin:end].count(b"\n")


@pytest.mark.parametrize(
    "limits",
    [
        pytest.param({"budget": 300}, id="set-then-runs-in-memory"),
        # a 256-bit filter rules out almost nothing, so every id is searched for exactly, in
        # runs in memory and in files of 256 keys
        pytest.param({"budget": 64, "file_keys": 256, "filter_bits_log2": 8}, id="files"),
    ],
)
def test_ids_past_the_memory_budget_are_still_deduplicated(tmp_path, small_ranges, limits):
    """The generator repeats rows from the last 64, so many duplicates straddle a spill; a second
    export that repeats the first in part is all duplicates, found in the runs and the files."""
    path = tmp_path / "export.csv"
    truth = generate(path, 3000, seed=5)
    again = tmp_path / "again.csv"
    generate(again, 1000, seed=5)  # the same first 1,000 rows: ids from the oldest runs
    assert path.read_bytes().startswith(again.read_bytes())
    stats = IngestStats()
    seen = SeenIds(**limits)
    events = [_fields(e) for e in read_exports([path, again], stats, seen=seen, jobs=2)]
    assert events == reference(path)[0]
    _, again_malformed, again_rows = reference(again)
    every_valid_row_again = again_rows - len(again_malformed)
    assert (stats.events, stats.duplicates) == (
        truth.unique,
        truth.duplicates + every_valid_row_again,
    )


@pytest.mark.parametrize("limits", [{}, {"budget": 40, "file_keys": 120, "filter_bits_log2": 8}])
def test_ids_are_checked_a_batch_at_a_time_as_one_at_a_time_would(limits):
    """Batches drawn from few ids, many sharing their first 8 bytes, repeated within a batch
    and across batches with the same or other content: what passes, and which are conflicts,
    is what a dict of first digests gives."""
    rng = random.Random(7)
    pool = [bytes([n % 5]) * 8 + rng.randbytes(8) for n in range(150)]
    seen, first = SeenIds(**limits), {}
    for _ in range(60):
        keys = [rng.choice(pool) for _ in range(rng.randrange(1, 50))]
        digests = [rng.choice([b"A" * 8, b"B" * 8]) for _ in keys]
        passed, conflicts = seen.fresh(list(range(len(keys))), b"".join(keys), b"".join(digests))
        expected, clashing = [], []
        for at, (key, digest) in enumerate(zip(keys, digests, strict=True)):
            if key not in first:
                first[key] = digest
                expected.append(at)
            elif first[key] != digest:
                expected.append(at)
                clashing.append(at)
        assert (passed, conflicts) == (expected, clashing)
    seen.close()


def test_batches_of_one_event_leave_few_runs_to_search():
    """A file whose batches each hold one valid row (the rest malformed) must not leave a run
    per batch to search for every later repeat."""
    seen = SeenIds(file_keys=2**19)
    for n in range(3000):
        key = n.to_bytes(16, "big")
        assert seen.fresh([n], key, b"A" * 8) == ([n], [])
        assert seen.fresh([n], key, b"A" * 8) == ([], [])
    assert len(seen._newest) <= 8 and len(seen._runs._memory) <= 32
    seen.close()


def test_the_bloom_filter_never_rules_out_a_key_it_holds():
    keys = np.frombuffer(np.random.default_rng(3).bytes(16 * 50_000), dtype=KEY)
    held, other = keys[:25_000], keys[25_000:]
    bloom = BloomFilter(bits_log2=20)
    bloom.add(held)
    assert bloom.might_hold(held).all()
    # 1 Mibit for 25,000 keys, 3 bits a key in one word: about 1 in 800 wrongly "maybe"
    assert bloom.might_hold(other).sum() < 100


def test_columns_in_another_order_read_the_same(tmp_path, small_ranges):
    """An export whose columns come in another order, with one more column, reads as the same
    events and the same problems, in process and in workers."""
    plain = tmp_path / "plain.csv"
    generate(plain, 1500, seed=9)
    shuffled = tmp_path / "shuffled.csv"
    order = [COLUMNS[i] for i in (6, 0, 10, 3, 1, 8, 4, 2, 9, 5, 7)] + ["note"]
    with open(plain, newline="") as source, open(shuffled, "w", newline="") as out:
        reader, writer = csv.reader(source), csv.writer(out)
        next(reader)
        writer.writerow(order)
        for row in reader:
            if len(row) == len(COLUMNS):
                row = [dict(zip(COLUMNS, row, strict=True)).get(name, "x") for name in order]
            writer.writerow(row)
    expected = ingested(plain, jobs=1)
    for jobs in (1, 2):
        events, malformed, rows = ingested(shuffled, jobs)
        assert (events, rows) == (expected[0], expected[2])
        assert [m[0].split(":")[-1] for m in malformed] == [
            m[0].split(":")[-1] for m in expected[1]
        ]


@pytest.mark.parametrize("fmt", ["table", "csv", "md", "jsonl"])
def test_audit_data_never_reaches_a_terminal_raw(tmp_path, fmt):
    """Escape sequences, line breaks and bidi overrides in audit data are printed spelled out;
    a payload whose project is a list neither matches nor crashes --project."""
    path = tmp_path / "export.csv"
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    hostile = '{"id": "u9", "type": "user", "name": "ev\\u001b[2Jil\\r\\nx\\u202e"}'
    for n in range(30):
        payload = '{"name": "X", "project": ["gh/acme/api"]}' if n % 2 else '{"name": "X"}'
        writer.writerow(_row(n, actor=hostile, payload=payload))
    path.write_text(out.getvalue(), newline="")
    proc = run_cli("audit", "hunt", str(path), "--since", "2022-12-21", "--format", fmt)
    assert proc.returncode in (0, 1), proc.stderr
    assert "\x1b" not in proc.stdout and "\r" not in proc.stdout and "\u202e" not in proc.stdout
    assert "ev\\x1b[2Jil" in proc.stdout or "ev\\u001b[2Jil" in proc.stdout  # shown, spelled out
    if fmt == "table":  # the filter is the same whatever the format
        listed = run_cli("audit", "hunt", str(path), "--project", "gh/acme/api")
        assert listed.returncode in (0, 1) and "Traceback" not in listed.stderr, listed.stderr


def test_malformed_rows_are_counted_sampled_and_streamed_not_kept(tmp_path, monkeypatch):
    """Memory does not grow with bad rows: a sample stays in memory, every row goes to the
    --malformed-out file as it is found."""
    monkeypatch.setattr(ingest, "MALFORMED_SAMPLE", 25)
    path = tmp_path / "bad.csv"
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for n in range(3000):
        writer.writerow(_row(n, version="x") if n % 3 else _row(n))
    path.write_text(out.getvalue(), newline="")
    sink = tmp_path / "malformed.tsv"
    stats = IngestStats()
    with open(sink, "w") as handle:
        stats.malformed_sink = handle
        events = [e for e in read_exports([path], stats, jobs=2)]
    assert len(events) == 1000 and stats.malformed_count == 2000
    assert len(stats.malformed) == 25
    lines = sink.read_text().splitlines()
    assert len(lines) == 2000 and all("version 'x' is not a number" in ln for ln in lines)
    proc = run_cli("audit", "hunt", str(path), "--malformed-out", str(tmp_path / "no/such/dir/x"))
    assert (
        proc.returncode == 2 and "--malformed-out" in proc.stderr and "Traceback" not in proc.stderr
    )


def _ingest_limited(path, jobs: int, limit: int) -> tuple[list[str], list[tuple[str, str]], int]:
    stats = IngestStats()
    events = [e.id for e in read_exports([path], stats, jobs=jobs, row_limit=limit)]
    return events, [(m.source, m.reason) for m in stats.malformed], stats.rows


def test_a_row_over_the_limit_is_one_malformed_row_and_the_rest_is_read(tmp_path, small_ranges):
    """A long line, a long line inside a quoted multi-line field and a quote never closed: each
    is one malformed row at its own line; every other row is read, alike with one and two
    workers."""
    limit = 4096
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for n in range(60):
        if n == 10:  # one physical line, far over the limit
            writer.writerow(_row(n, payload='{"name": "' + "x" * 50_000 + '"}'))
        elif n == 20:  # a quoted field over three lines, its middle line over the limit
            writer.writerow(_row(n, payload='{"name":\n"' + "y" * 9000 + '"\n}'))
        else:
            writer.writerow(_row(n))
    # a quote that is never closed: the field would run to the end of the file
    tail = out.getvalue() + '"' + ("z" * 100 + "\n") * 200
    path = tmp_path / "long.csv"
    path.write_text(tail, newline="")
    expected_ids = [_row(n)[COLUMNS.index("id")] for n in range(60) if n not in (10, 20)]
    for jobs in (1, 2):
        events, malformed, rows = _ingest_limited(path, jobs, limit)
        assert events == expected_ids
        assert malformed[:2] == [
            (f"{path}:12", f"row is longer than {limit:,} bytes"),
            (f"{path}:22", f"row is longer than {limit:,} bytes"),
        ]
        # the unclosed quote at line 64 (row 20 took three lines) is a malformed row; the lines
        # after the point where it passed the limit are rows of their own (each one counted)
        assert malformed[2][0].startswith(f"{path}:64-") and "never ends" in malformed[2][1]
        assert rows == 58 + len(malformed)
    assert _ingest_limited(path, 1, limit) == _ingest_limited(path, 2, limit)


def test_a_quote_never_closed_names_the_lines_and_bytes_it_swallowed(tmp_path, small_ranges):
    """The rows after an unclosed quote are lost to it: the malformed row says from which line
    to which, how many lines and which bytes, and the hunt warns that events may hide there."""
    limit = 4096
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for n in range(5):
        writer.writerow(_row(n))
    good = out.getvalue()
    swallowed = "".join(f"{n},row-{n}-inside-the-open-quote\n" for n in range(100))
    path = tmp_path / "open-quote.csv"
    path.write_text(good + '"' + swallowed + ("w" * 80 + "\n") * 60, newline="")
    for jobs in (1, 2):
        stats = IngestStats()
        list(read_exports([path], stats, jobs=jobs, row_limit=limit))
        (bad,) = [m for m in stats.malformed if m.lines > 1]
        assert bad.first == 7 and bad.source == f"{path}:7-{bad.last}"
        assert bad.last - bad.first + 1 == bad.lines > 40  # the quoted run up to the limit
        assert f"it spans {bad.lines:,} lines" in bad.reason
        assert stats.spanning == 1 and stats.spanned_lines == bad.lines
    proc = cli_here("audit", "hunt", str(path), "--since", "2022-12-21", "--row-limit", str(limit))
    assert "warning: 1 malformed row(s) span" in proc.stderr, proc.stderr
    span = re.search(r"open-quote.csv:7-(\d+) \(bytes ([\d,]+)-([\d,]+)\)", proc.stderr)
    first, end = (int(g.replace(",", "")) for g in span.groups()[1:])
    data = path.read_bytes()
    assert first == len(good.encode()) and data[first : first + 1] == b'"'
    assert data[end - 1 : end] == b"\n" and data[first:end].count(b"\n") == int(span.group(1)) - 6


def test_long_lines_are_skipped_without_being_held(tmp_path):
    """The block reader never yields a piece of a line over the limit, whatever the block size."""
    data = b"short\n" + b"L" * 10_000 + b"\nmid\n" + b"M" * 5000 + b"\nend-without-newline"
    path = tmp_path / "lines.bin"
    path.write_bytes(data)
    for block in (7, 1000, 4096, 100_000):
        with open(path, "rb") as handle:
            pieces = list(chunks._line_blocks(handle, 0, None, 1024, block))
        kept = b"".join(p if isinstance(p, bytes) else b"<long>\n" for p in pieces)
        assert kept == b"short\n<long>\nmid\n<long>\nend-without-newline", block
        assert all(len(p) <= 1024 + block for p in pieces if isinstance(p, bytes))


def _export(path, rows) -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    path.write_text(out.getvalue(), newline="")


@pytest.mark.parametrize(
    "limits",
    [
        pytest.param({}, id="newest-set"),
        pytest.param({"budget": 64, "file_keys": 256, "filter_bits_log2": 8}, id="files"),
    ],
)
def test_a_reused_id_with_other_content_is_a_finding_not_a_duplicate(tmp_path, limits):
    """A harmless row, then (much later) a deploy-key creation under the same id: the second row
    is kept and hunted, and the reuse itself is a high finding. A true repeat is still dropped."""
    rows = [_row(n) for n in range(1000)]
    reused = _row(3, action="project.ssh_key.create", target='{"id": "t", "type": "project"}')
    rows += [_row(3), reused, _row(500)]  # a true repeat, the forged row, another true repeat
    path = tmp_path / "reused.csv"
    _export(path, rows)
    for jobs in (1, 2):
        stats = IngestStats()
        conflicts: list = []
        events = list(
            read_exports(
                [path], stats, jobs=jobs, seen=SeenIds(**limits), on_conflict=conflicts.extend
            )
        )
        assert (stats.events, stats.duplicates, stats.conflicts) == (1001, 2, 1)
        assert [e.action for e in conflicts] == ["project.ssh_key.create"]
        assert events[-1].action == "project.ssh_key.create"
    proc = run_cli("audit", "hunt", str(path), "--format", "jsonl")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert lines[0]["conflicting_ids"] == 1
    findings = {f["rule"]: f for f in lines[1:]}
    reused_finding = findings["integrity.id_reused"]
    assert reused_finding["severity"] == "high"
    assert reused_finding["event_ids"] == [_row(3)[COLUMNS.index("id")]]
    # the forged row itself is hunted: it is the only deploy-key creation in the export
    assert any(
        f["event_ids"] == reused_finding["event_ids"]
        for rule, f in findings.items()
        if rule != "integrity.id_reused"
    ), findings
    assert "reuse an earlier event's id" in proc.stderr
