"""Write findings and the secrets inventory as a terminal table, JSON lines, CSV or Markdown."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence

from ..model.text import printable

FORMATS = ("table", "jsonl", "csv", "md")


def render(
    kind: str, rows: Iterable[dict], columns: Sequence[str], fmt: str, summary: dict | None = None
) -> str:
    """``rows`` as ``fmt``, as one text (see render_lines)."""
    return "".join(render_lines(kind, rows, columns, fmt, summary))


def render_lines(
    kind: str, rows: Iterable[dict], columns: Sequence[str], fmt: str, summary: dict | None = None
) -> Iterator[str]:
    """``rows`` as ``fmt``, a line at a time: JSON lines, CSV and Markdown take one row at a
    time, so a report of findings holding a million event ids is never held whole; the table
    keeps its cells, each cut to its column's width. ``summary`` (ingest counts) leads JSON
    lines and Markdown."""
    if fmt == "jsonl":
        # JSON escapes every control character itself; ensure_ascii also escapes bidi overrides
        if summary:
            yield json.dumps({"type": "summary", **summary}) + "\n"
        for row in rows:
            yield json.dumps({"type": kind, **row}, sort_keys=True) + "\n"
        return
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(columns)
        yield out.getvalue()
        for row in rows:
            out.seek(0)
            out.truncate()
            writer.writerow([_cell(row[c]) for c in columns])
            yield out.getvalue()
        return
    if fmt == "md":
        if summary:
            yield ", ".join(f"{k}: {_cell(v)}" for k, v in summary.items()) + "\n\n"
        yield "| " + " | ".join(map(printable, columns)) + " |\n"
        yield "|" + "---|" * len(columns) + "\n"
        for row in rows:
            yield "| " + " | ".join(_cell(row[c]).replace("|", "\\|") for c in columns) + " |\n"
        return
    # "why" names the address or action a responder acts on: never cut short like the rest
    caps = [240 if c == "why" else 60 for c in columns]
    cells = [[_cell(line[c])[:cap] for c, cap in zip(columns, caps, strict=True)] for line in rows]
    widths = [
        max([min(cap, len(c))] + [len(r[i]) for r in cells])
        for i, (c, cap) in enumerate(zip(columns, caps, strict=True))
    ]
    yield "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + "\n"
    for cut in cells:
        yield "  ".join(v.ljust(w) for v, w in zip(cut, widths, strict=True)) + "\n"
    if not cells:
        yield f"(no {kind}s)\n"


def _cell(value) -> str:
    if isinstance(value, list):
        return printable(" ".join(str(v) for v in value))
    return printable(str(value))
