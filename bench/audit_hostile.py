"""Benchmark: hostile audit exports, read with bounded memory and every row counted.

    .venv/bin/python bench/audit_hostile.py [--scale 1.0] [--cache DIR]

Writes the hostile files (300 MB of malformed rows; one 200 MB row; one 100 MB line
among valid rows; a quote never closed, 200 MB long), then hunts each with ``--jobs 1`` and
``--jobs 2`` in a child process. For each it prints the time, the peak memory of the process tree
(sampled PSS, as bench/audit_ingest.py does) and the row accounting, and says whether both job
counts gave the same summary. ``--scale 0.1`` gives a quick look at a tenth of the sizes.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from audit_ingest import _pss_mb  # noqa: E402

from cci_harden.audit.events import COLUMNS  # noqa: E402
from cci_harden.audit.generate import numbered_row  # noqa: E402

MB = 10**6
WHEN = datetime(2022, 12, 22, 3, 4, 5, 678000, tzinfo=UTC)


def _row(n: int, **changes: str) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(numbered_row(n, WHEN, **changes))
    return out.getvalue()


def _header() -> str:
    out = io.StringIO()
    csv.writer(out).writerow(COLUMNS)
    return out.getvalue()


def _write(path: Path, parts) -> None:
    with open(path, "w", newline="") as out:
        out.write(_header())
        for part in parts:
            out.write(part)


def _repeat(text: str, size: int):
    block = text * max(1, 1_000_000 // len(text))
    for _ in range(max(1, size // len(block))):
        yield block


def make_files(folder: Path, scale: float) -> dict[str, Path]:
    files = {
        "malformed rows, 300 MB": folder / "malformed.csv",
        "one 200 MB row": folder / "one-row.csv",
        "a 100 MB line among valid rows": folder / "long-line.csv",
        "a quote never closed, 200 MB": folder / "open-quote.csv",
    }
    if all(p.exists() for p in files.values()):
        return files
    bad = _row(1, version="x")
    _write(files["malformed rows, 300 MB"], _repeat(bad, int(300 * MB * scale)))
    big = '{"name": "' + "x" * int(200 * MB * scale) + '"}'
    _write(files["one 200 MB row"], [_row(1, payload=big)])
    long_line = _row(50, payload='{"name": "' + "y" * int(100 * MB * scale) + '"}')
    valid = [_row(n) for n in range(100)]
    _write(files["a 100 MB line among valid rows"], [*valid[:50], long_line, *valid[50:]])
    _write(
        files["a quote never closed, 200 MB"],
        [*valid[:10], '"', *_repeat("z" * 99 + "\n", int(200 * MB * scale))],
    )
    return files


def hunt(path: Path, jobs: int) -> dict:
    """One run in a child process; its summary line, time and peak memory."""
    command = [
        sys.executable,
        "-m",
        "cci_harden.cli",
        "audit",
        "hunt",
        str(path),
        "--format",
        "jsonl",
        "--jobs",
        str(jobs),
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, _pss_mb(proc.pid))
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    out = proc.stdout.read() if proc.stdout else ""
    summary = json.loads(out.splitlines()[0]) if out else {}
    summary.pop("files", None)
    return {"rc": proc.returncode, "seconds": seconds, "peak_mb": peak, "summary": summary}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--cache", help="keep the files here between runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cci-hostile-") as tmp:
        folder = Path(args.cache) if args.cache else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        files = make_files(folder, args.scale)
        worst = 0.0
        for label, path in files.items():
            one, two = hunt(path, 1), hunt(path, 2)
            worst = max(worst, one["peak_mb"], two["peak_mb"])
            same = one["summary"] == two["summary"]
            s = one["summary"]
            print(
                f"{label} ({path.stat().st_size / MB:.0f} MB): rows {s.get('rows', '?'):,}, "
                f"events {s.get('events', '?'):,}, malformed {s.get('malformed', '?'):,}; "
                f"--jobs 1 {one['seconds']:.1f} s, {one['peak_mb']:.0f} MiB; "
                f"--jobs 2 {two['seconds']:.1f} s, {two['peak_mb']:.0f} MiB; "
                f"exit {one['rc']}/{two['rc']}; same summary: {'yes' if same else 'NO'}"
            )
        print(f"peak memory over every run: {worst:.0f} MiB (goal: under 200 MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
