"""Stream audit-log exports: validate each row, drop duplicate deliveries, count what is wrong.

Rows are read one at a time, so memory does not grow with the file; the only state that grows is
the set of event ids seen (duplicates share an id), kept as 128-bit integers and moved to an
on-disk index past a budget, so a very large export cannot exhaust memory either.
"""

from __future__ import annotations

import csv
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CciHardenError
from .events import COLUMNS, Event, RowError, parse_row

csv.field_size_limit(sys.maxsize)


class NotAnAuditExport(CciHardenError):
    """The file does not have the audit-log export's columns."""


@dataclass
class Malformed:
    source: str
    reason: str


@dataclass
class IngestStats:
    rows: int = 0
    events: int = 0
    duplicates: int = 0
    malformed: list[Malformed] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "files": self.files,
            "rows": self.rows,
            "events": self.events,
            "duplicates": self.duplicates,
            "malformed": len(self.malformed),
        }


class SeenIds:
    """Which event ids were already delivered: a memory set up to ``budget``, then SQLite."""

    def __init__(self, budget: int = 1_500_000):
        self._memory: set[int] = set()
        self._budget = budget
        self._db: sqlite3.Connection | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None

    def add(self, event_id: str) -> bool:
        """Record ``event_id``; False if it was seen before."""
        key = int(event_id.replace("-", ""), 16)
        if key in self._memory:
            return False
        if self._db is not None:
            cur = self._db.execute("INSERT OR IGNORE INTO ids VALUES (?)", (key.to_bytes(16),))
            if cur.rowcount == 0:
                return False
        self._memory.add(key)
        if len(self._memory) >= self._budget:
            self._spill()
        return True

    def _spill(self) -> None:
        if self._db is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="cci-audit-")
            self._db = sqlite3.connect(Path(self._tmp.name) / "ids.sqlite")
            self._db.execute("PRAGMA journal_mode=OFF")
            self._db.execute("CREATE TABLE ids (k BLOB PRIMARY KEY) WITHOUT ROWID")
        self._db.executemany(
            "INSERT OR IGNORE INTO ids VALUES (?)", ((k.to_bytes(16),) for k in self._memory)
        )
        self._memory.clear()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
        if self._tmp is not None:
            self._tmp.cleanup()


def _open_rows(path: Path) -> tuple[Iterator[list[str]], csv.reader]:
    handle = open(path, newline="", encoding="utf-8-sig")
    reader = csv.reader(handle)
    try:
        header = next(reader)
    except StopIteration:
        handle.close()
        raise NotAnAuditExport(f"{path}: empty file, not an audit-log export") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        handle.close()
        raise NotAnAuditExport(f"{path}: not a CSV audit-log export ({exc})") from None
    names = [name.strip().lower() for name in header]
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        handle.close()
        raise NotAnAuditExport(
            f"{path}: not a CircleCI audit-log export (missing columns: {', '.join(missing)})"
        )
    order = [names.index(c) for c in COLUMNS]
    identity = order == list(range(len(COLUMNS))) and len(names) == len(COLUMNS)

    def rows() -> Iterator[list[str]]:
        with handle:
            for row in reader:
                if identity or len(row) != len(names):
                    yield row
                else:
                    yield [row[i] for i in order]

    return rows(), reader


def read_exports(
    paths: Iterable[Path], stats: IngestStats, progress=None, seen: SeenIds | None = None
) -> Iterator[Event]:
    """Valid, de-duplicated events from every file in turn; problems are counted in ``stats``."""
    seen = seen or SeenIds()
    last_report = time.monotonic()
    try:
        for path in paths:
            rows, reader = _open_rows(Path(path))
            stats.files.append(str(path))
            line = 1
            for row in rows:
                start, line = line + 1, reader.line_num
                stats.rows += 1
                if not row:
                    continue
                try:
                    event = parse_row(row, f"{path}:{start}")
                except RowError as exc:
                    stats.malformed.append(Malformed(f"{path}:{start}", str(exc)))
                    continue
                if not seen.add(event.id):
                    stats.duplicates += 1
                    continue
                stats.events += 1
                if progress is not None and stats.rows % 100_000 == 0:
                    now = time.monotonic()
                    if now - last_report >= 1:
                        progress(stats)
                        last_report = now
                yield event
    finally:
        seen.close()
