"""Validate audit-log rows a batch at a time, column by column.

Checking every field of every row with its own regex or JSON decode costs a Python call per
field, which is most of the ingest time. Here each column is checked in one pass over the batch:
character positions of the joined ids and times, one msgspec decode of the joined JSON blobs. A
stretch of rows that fails is halved until the rows at fault are found, and those rows go through
``parse_row``, the reference, which words the error. A row is accepted here exactly when
``parse_row`` accepts it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence

import msgspec
import numpy as np

from .events import (
    _ACTION,
    _DECODERS,
    _UUID,
    COLUMNS,
    Event,
    RowError,
    normalise_time,
    parse_row,
)

WIDTH = len(COLUMNS)
_NOT_UTF8 = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8 (surrogateescape)
_SPLIT_BELOW = 32  # a failing stretch shorter than this is checked row by row

_STAND_IN = _DECODERS["actor"].decode('{"id": "", "type": ""}')
_valid_actions: set[str] = set()  # distinct actions are few; remember the ones that passed


def _checked(
    values: Sequence[str],
    whole: Callable[[Sequence[str]], list | None],
    one: Callable[[str], object],
    bad: set[int],
    offset: int = 0,
    usual_length: int = 0,
) -> list:
    """``whole(values)``, or where it fails (None), halves of the stretch down to single rows.

    ``one`` gives a single value's result or raises ValueError; such rows get None and their
    indices (plus ``offset``) go into ``bad``. With ``usual_length``, values of another length
    are set aside for ``one`` first, which spares the halving when only they are at fault.
    """
    result = whole(values) if values else []
    if result is not None:
        return result
    if usual_length:
        usual = [i for i, value in enumerate(values) if len(value) == usual_length]
        if len(usual) < len(values):
            found = whole([values[i] for i in usual])
            if found is not None:
                out: list = [None] * len(values)
                for i, value in zip(usual, found, strict=True):
                    out[i] = value
                for i in set(range(len(values))) - set(usual):
                    try:
                        out[i] = one(values[i])
                    except (ValueError, RecursionError):
                        bad.add(offset + i)
                return out
    if len(values) < _SPLIT_BELOW:
        out = []
        for i, value in enumerate(values):
            try:
                out.append(one(value))
            except (ValueError, RecursionError):  # RecursionError: JSON nested too deep
                out.append(None)
                bad.add(offset + i)
        return out
    half = len(values) // 2
    return _checked(values[:half], whole, one, bad, offset) + _checked(
        values[half:], whole, one, bad, offset + half
    )


def _uuid_keys(ids: Sequence[str]) -> list[bytes] | None:
    """Each id's 16 bytes if every id is a well-formed UUID, else None.

    Checked on the joined column: a dash every 36 characters where UUIDs have them, and the rest
    hex that decodes to exactly 16 bytes per id.
    """
    count = len(ids)
    joined = "".join(ids)
    dashes = "-" * count
    if len(joined) != 36 * count or not (
        joined[8::36] == joined[13::36] == joined[18::36] == joined[23::36] == dashes
    ):
        return None
    digits = joined.replace("-", "")
    try:
        raw = bytes.fromhex(digits)
    except ValueError:
        return None
    if len(digits) != 32 * count or len(raw) != 16 * count:  # fromhex skips spaces
        return None
    return [raw[i : i + 16] for i in range(0, 16 * count, 16)]


def _uuid_key(value: str) -> bytes:
    if not _UUID.fullmatch(value):
        raise ValueError(value)
    return bytes.fromhex(value.replace("-", ""))


_TIME_SHAPE = np.frombuffer(b"0000-00-00T00:00:00.000Z", dtype=np.uint8)
_TIME_DIGITS = _TIME_SHAPE == ord("0")  # where a digit goes; the rest must match exactly


def _millisecond_times(times: Sequence[str]) -> list[str] | None:
    """Normalised times if every one is ``YYYY-MM-DDTHH:MM:SS.fffZ`` (what CircleCI writes).

    The same rules as ``events._TIME``, checked on the joined column as one array of bytes,
    a row of 24 per time.
    """
    count = len(times)
    j = "".join(times)
    if len(j) != 24 * count or not j.isascii():
        return None
    grid = np.frombuffer(j.encode("ascii"), dtype=np.uint8).reshape(count, 24)
    digits = grid[:, _TIME_DIGITS] - np.uint8(ord("0"))  # wraps below "0": then over 9
    if (digits > 9).any() or (grid[:, ~_TIME_DIGITS] != _TIME_SHAPE[~_TIME_DIGITS]).any():
        return None
    # digit columns: YYYY MM DD HH MM SS fff -> 0-3, 4-5, 6-7, 8-9, 10-11, 12-13
    month = digits[:, 4] * 10 + digits[:, 5]
    day = digits[:, 6] * 10 + digits[:, 7]
    if (
        (month < 1).any()
        or (month > 12).any()
        or (day < 1).any()
        or (day > 31).any()
        or (digits[:, 8] * 10 + digits[:, 9] > 23).any()
        or (digits[:, 10] > 5).any()
        or (digits[:, 12] > 5).any()
    ):
        return None
    return [j[i : i + 23] + "000000Z" for i in range(0, 24 * count, 24)]


def _bad_actions(actions: Sequence[str]) -> set[int]:
    wrong = set()
    for action in set(actions) - _valid_actions:
        if _ACTION.fullmatch(action):
            if len(_valid_actions) < 10_000:
                _valid_actions.add(action)
        else:
            wrong.add(action)
    return {i for i, a in enumerate(actions) if a in wrong} if wrong else set()


def _bad_by_value(values: Sequence[str], ok: Callable[[str], bool]) -> set[int]:
    wrong = {v for v in set(values) if not ok(v)}
    return {i for i, v in enumerate(values) if v in wrong} if wrong else set()


def _framed(joined: str, count: int, single_lines: bool) -> bool:
    """One JSON object per line: then no value can run across lines (see decode_blobs)."""
    return (
        joined.startswith("{")
        and joined.endswith("}")
        and (single_lines or joined.count("\n") == count - 1)
        and joined.count("}\n{") == count - 1
    )


def decode_blobs(
    name: str,
    texts: Sequence[str],
    optional: bool,
    single_lines: bool = False,
    repeated: bool = False,
) -> tuple[list, set[int]]:
    """Decode one JSON column; (values, indices of rows whose blob is invalid).

    The blobs are joined with newlines and decoded in one call. That is only trusted when every
    blob is a single line that starts with ``{`` and ends with ``}``: then no value can span two
    lines (after a closing ``}`` JSON allows no ``{``, and a string cannot hold a raw newline),
    so n values from n lines means one value per line, each the row's own. ``single_lines`` says
    the caller knows no blob holds a line break. Empty optional blobs decode to None.
    ``repeated``: the column repeats a few values (an organisation's scope, its users), so each
    distinct text is decoded once and rows with the same text share its value.
    """
    if repeated:
        distinct = list(dict.fromkeys(texts))
        if len(distinct) < len(texts):
            found, wrong = decode_blobs(name, distinct, optional, single_lines)
            by_text = dict(zip(distinct, found, strict=True))
            shared = [by_text[text] for text in texts]
            if not wrong:
                return shared, set()
            invalid = {distinct[i] for i in wrong}
            return shared, {i for i, text in enumerate(texts) if text in invalid}
    decoder = _DECODERS[name]

    def whole(stretch: Sequence[str]) -> list | None:
        joined = "\n".join(stretch)
        if not _framed(joined, len(stretch), single_lines):
            return None
        try:
            values = decoder.decode_lines(joined)
        except (ValueError, RecursionError):
            return None
        return values if len(values) == len(stretch) else None

    bad: set[int] = set()
    if not optional or all(texts):
        return _checked(texts, whole, decoder.decode, bad), bad
    where = [i for i, text in enumerate(texts) if text]
    found = _checked([texts[i] for i in where], whole, decoder.decode, bad)
    values: list = [None] * len(texts)
    for i, value in zip(where, found, strict=True):
        values[i] = value
    return values, {where[i] for i in bad}


def parse_batch(
    rows: Sequence[list[str]],
    starts: Sequence[int],
    path: str,
    check_utf8: bool = False,
    single_lines: bool = False,
    salt: bytes = b"",
) -> tuple[list[Event], list[tuple[int, str]], bytes]:
    """Events, (line, reason) problems and the events' content digests for ``rows``, which begin
    at lines ``starts``.

    Blank rows are skipped; events keep the rows' order. ``single_lines``: no row spans lines.
    Each digest (8 bytes, salted per run) covers every field of the event's row, so a repeated
    id whose row differs can be told from a repeated delivery.
    """
    problems: list[tuple[int, str]] = []
    if set(map(len, rows)) == {WIDTH}:
        whole, lines = rows, starts
    else:
        whole, lines = [], []
        for row, line in zip(rows, starts, strict=True):
            if len(row) == WIDTH:
                whole.append(row)
                lines.append(line)
            elif row:
                problems.append((line, f"has {len(row)} fields, expected {WIDTH}"))
    if check_utf8:
        clean = [i for i, row in enumerate(whole) if not any(map(_NOT_UTF8.search, row))]
        if len(clean) < len(whole):
            problems += [
                (lines[i], "contains bytes that are not UTF-8")
                for i in sorted(set(range(len(whole))) - set(clean))
            ]
            whole, lines = [whole[i] for i in clean], [lines[i] for i in clean]
    if not whole:
        problems.sort()
        return [], problems, b""
    (actions, actors, targets, payloads, times, metas, ids, versions, scopes, flags, requests) = (
        zip(*whole, strict=True)
    )
    bad = _bad_actions(actions)
    keys = _checked(ids, _uuid_keys, _uuid_key, bad, usual_length=36)
    normal_times = _checked(times, _millisecond_times, normalise_time, bad, usual_length=24)
    bad |= _bad_by_value(versions, str.isdigit)
    bad |= _bad_by_value(flags, lambda v: v.lower() in ("true", "false"))
    actor_blobs, wrong = decode_blobs("actor", actors, False, single_lines, repeated=True)
    bad |= wrong
    target_blobs, wrong = decode_blobs("target", targets, False, single_lines, repeated=True)
    bad |= wrong
    payload_blobs, wrong = decode_blobs("payload", payloads, True, single_lines)
    bad |= wrong
    bad |= decode_blobs("scope", scopes, True, single_lines, repeated=True)[1]
    bad |= decode_blobs("metadata", metas, True, single_lines, repeated=True)[1]
    request_blobs, wrong = decode_blobs("request", requests, True, single_lines)
    bad |= wrong

    if bad:
        for i in sorted(bad):
            try:
                parse_row(whole[i])
            except RowError as exc:
                problems.append((lines[i], str(exc)))
            else:  # cannot happen: parse_row and these checks accept the same rows
                raise AssertionError(f"{path}:{lines[i]}: batch and row checks disagree")
        # rows at fault get stand-ins, so the columns stay aligned; their events are dropped
        actor_blobs = [_STAND_IN if a is None else a for a in actor_blobs]
        target_blobs = [_STAND_IN if t is None else t for t in target_blobs]
    problems.sort()
    events = list(
        map(
            Event,
            keys,
            actions,
            normal_times,
            [str(a.id) for a in actor_blobs],
            [a.name or "" for a in actor_blobs],
            [t.type for t in target_blobs],
            [str(t.id) for t in target_blobs],
            [t.name or "" for t in target_blobs],
            [f == "true" or f.lower() == "true" for f in flags],
            [(r.ip_address or "") if r is not None else "" for r in request_blobs],
            [p if p is not None else {} for p in payload_blobs],
        )
    )
    if bad:
        events = [event for i, event in enumerate(events) if i not in bad]
        whole = [row for i, row in enumerate(whole) if i not in bad]
    return events, problems, content_digests(whole, salt)


_ROW_ENCODER = msgspec.msgpack.Encoder()


def content_digests(rows: Sequence[list[str]], salt: bytes) -> bytes:
    """Each row's 8-byte digest, end to end: SHA-256 (in hardware on most CPUs) of the run's
    secret salt then the row, cut to 8 bytes. msgpack frames every field with its length, so no
    two different rows encode alike; the salt is never shown, so no export can be crafted to
    give two rows one digest."""
    salted = hashlib.sha256(salt)
    digests = []
    for encoded in map(_ROW_ENCODER.encode, rows):
        state = salted.copy()
        state.update(encoded)
        digests.append(state.digest()[:8])
    return b"".join(digests)
