"""Write findings and the secrets inventory as a terminal table, JSON lines, CSV or Markdown."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence

from ..model.text import printable

FORMATS = ("table", "jsonl", "csv", "md")


def render(
    kind: str, rows: Sequence[dict], columns: Sequence[str], fmt: str, summary: dict | None = None
) -> str:
    """``rows`` as ``fmt``; ``summary`` (ingest counts) leads JSON lines and Markdown."""
    if fmt == "jsonl":
        # JSON escapes every control character itself; ensure_ascii also escapes bidi overrides
        lines = [json.dumps({"type": "summary", **summary})] if summary else []
        lines += [json.dumps({"type": kind, **row}, sort_keys=True) for row in rows]
        return "\n".join(lines) + "\n"
    cells = [[_cell(row[c]) for c in columns] for row in rows]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows(cells)
        return out.getvalue()
    if fmt == "md":
        head = []
        if summary:
            head = [", ".join(f"{k}: {_cell(v)}" for k, v in summary.items()), ""]
        lines = ["| " + " | ".join(map(printable, columns)) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
        return "\n".join(head + lines) + "\n"
    # "why" names the address or action a responder acts on: never cut short like the rest
    caps = [240 if c == "why" else 60 for c in columns]
    widths = [
        min(cap, max([len(c)] + [len(r[i]) for r in cells]))
        for i, (c, cap) in enumerate(zip(columns, caps, strict=True))
    ]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    for row in cells:
        lines.append("  ".join(v[:w].ljust(w) for v, w in zip(row, widths, strict=True)))
    if not cells:
        lines.append(f"(no {kind}s)")
    return "\n".join(lines) + "\n"


def _cell(value) -> str:
    if isinstance(value, list):
        return printable(" ".join(str(v) for v in value))
    return printable(str(value))
