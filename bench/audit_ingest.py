"""Benchmark: audit-log ingest and hunt on a generated export; rows/s, peak memory, DuckDB ratio.

    .venv/bin/python bench/audit_ingest.py [--rows 1000000] [--jobs N] [--runs 3] [--cache DIR]

Each side runs in its own process. Memory is sampled every 100 ms as the proportional set size
(PSS) of that process and its children, so pages a forked worker shares with the main process
count once; the RSS bound beside it (main peak + workers x largest worker peak) counts them
twice. Time is the best of
``--runs`` runs on the same file, so a busy neighbour on the machine does not decide the figure.
DuckDB does the same work in SQL in the same run (read, drop malformed rows, keep the first
delivery of each id, the incident window, group by actor and action), with as many threads as
we have workers, and optionally a memory cap (``--duckdb-memory-mb``); the ratio is our time
over DuckDB's. Its validation is coarser than ours (JSON that parses, not the fields each blob
must hold), so the ratio flatters it a little.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OURS = """
import json, os, resource, sys, time
from pathlib import Path
from cci_harden.audit.hunt import Hunter, Options
from cci_harden.audit.ingest import IngestStats, read_export_batches
from cci_harden.audit.rules import load_rules
from cci_harden.audit.command import FINDING_COLUMNS
from cci_harden.audit.output import render_lines
stats = IngestStats()
hunter = Hunter(load_rules(), Options(since="2022-12-21T00:00:00.000000000Z",
                                      until="2023-01-05T00:00:00.000000000Z"))
start = time.perf_counter()
for events in read_export_batches([Path(sys.argv[1])], stats, jobs=int(sys.argv[2])):
    hunter.feed_many(events)
findings = hunter.findings()
elapsed = time.perf_counter() - start
# the report as `cci-harden audit hunt --format jsonl` writes it, outside the time (DuckDB's
# side writes none) but inside the memory sampled: every finding's event ids spelled out
with open(os.devnull, "w") as sink:
    sink.writelines(render_lines("finding", (f.as_dict() for f in findings), FINDING_COLUMNS,
                                 "jsonl", stats.as_dict()))
cpu = os.times()
jobs = int(sys.argv[2])
largest_worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
workers_mb = largest_worker * jobs if jobs > 1 else 0
print(json.dumps({"seconds": elapsed, "rows": stats.rows, "events": stats.events,
                  "cpu": cpu.user + cpu.system + cpu.children_user + cpu.children_system,
                  "workers_mb": workers_mb,
                  "duplicates": stats.duplicates, "malformed": stats.malformed_count,
                  "findings": len(findings),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

DUCK = """
import json, resource, sys, time
import duckdb
con = duckdb.connect()
con.sql("SET enable_progress_bar = false")
con.sql(f"SET threads = {int(sys.argv[2])}")
if sys.argv[3] != "0":
    con.sql(f"SET memory_limit = '{sys.argv[3]}MB'")
start = time.perf_counter()
# the same work as the hunt's ingest: read, drop malformed rows (a required column empty, a
# JSON blob that does not parse, a time that is not one), keep the first delivery of each id,
# the incident window, events grouped by actor and action
query = (
    "WITH raw AS (SELECT * FROM read_csv(?, header = true, all_varchar = true, "
    "ignore_errors = true, strict_mode = false, max_line_size = 10000000)), "
    "valid AS (SELECT * FROM raw WHERE id IS NOT NULL AND action IS NOT NULL "
    "AND version = '1' AND json_valid(actor) AND json_valid(target) AND json_valid(scope) "
    "AND json_valid(payload) AND json_valid(metadata) AND json_valid(request) "
    "AND try_cast(occurred_at AS TIMESTAMPTZ) IS NOT NULL), "
    "first AS (SELECT * FROM valid QUALIFY row_number() OVER (PARTITION BY id) = 1), "
    "windowed AS (SELECT * FROM first WHERE occurred_at >= '2022-12-21T00:00:00' "
    "AND occurred_at < '2023-01-05T00:00:00'), "
    "grouped AS (SELECT json_extract_string(actor, '$.name') AS who, action, count(*) AS n "
    "FROM windowed GROUP BY ALL) "
    "SELECT (SELECT count(*) FROM valid), (SELECT count(*) FROM first), "
    "(SELECT count(*) FROM windowed), (SELECT count(*) FROM grouped)"
)
valid, distinct, in_window, groups = con.execute(query, [sys.argv[1]]).fetchall()[0]
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "rows": valid, "distinct_ids": distinct,
                  "in_window": in_window, "groups": groups,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _pss_mb(pid: int) -> float:
    """Proportional set size of a process and its children: shared pages split between them."""
    total = 0.0
    pids = [pid]
    try:
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return 0.0
    for each in pids:
        try:
            for line in Path(f"/proc/{each}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


def run(code: str, path: Path, *extra: str) -> dict:
    """Run one side; sample the memory of its process tree every 100 ms while it runs."""
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(path), *extra], stdout=subprocess.PIPE, text=True
    )
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, _pss_mb(proc.pid))
        time.sleep(0.1)
    out = proc.stdout.read() if proc.stdout else ""
    if proc.returncode:
        raise SystemExit(f"benchmark side failed with exit {proc.returncode}")
    return {**json.loads(out.strip().splitlines()[-1]), "pss_peak_mb": peak}


def best(code: str, path: Path, runs: int, *extra: str) -> dict:
    return min((run(code, path, *extra) for _ in range(runs)), key=lambda r: r["seconds"])


def _export(directory: Path, rows: int):
    """A generated export of ``rows`` rows in ``directory``, and the generator's truth about it;
    reused when a finished one is there."""
    from cci_harden.audit.generate import Truth, generate

    directory.mkdir(parents=True, exist_ok=True)
    path, known = directory / f"export-{rows}.csv", directory / f"export-{rows}.truth.json"
    if path.exists() and known.exists():
        return path, Truth(**json.loads(known.read_text()))
    truth = generate(path, rows)
    known.write_text(json.dumps(dataclasses.asdict(truth)))  # last: marks the export finished
    return path, truth


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: CPUs)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--duckdb-memory-mb", type=int, default=0, help="DuckDB's memory_limit (0: its default)"
    )
    parser.add_argument(
        "--cache",
        type=Path,
        help="keep the generated export (and what the generator knows of it) in this directory, "
        "and reuse it on later runs with the same --rows",
    )
    args = parser.parse_args()
    from cci_harden.audit.ingest import default_jobs

    jobs = args.jobs or default_jobs()
    with tempfile.TemporaryDirectory() as tmp:
        path, truth = _export(args.cache or Path(tmp), args.rows)
        size_mb = path.stat().st_size / 2**20
        os.sync()  # the export's write-back must not run during the timed reads
        ours = best(OURS, path, args.runs, str(jobs))
        duck = best(DUCK, path, args.runs, str(jobs), str(args.duckdb_memory_mb))
    print(
        f"export: {truth.rows:,} rows, {size_mb:.0f} MiB, {truth.duplicates:,} duplicates, "
        f"{truth.malformed:,} malformed"
    )
    print(
        f"cci-harden audit ({jobs} workers on {os.cpu_count()} CPUs): {ours['seconds']:.2f} s, "
        f"{ours['rows'] / ours['seconds']:,.0f} rows/s, {ours['cpu']:.2f} CPU-s; memory peak "
        f"{ours['pss_peak_mb']:.0f} MiB (sampled PSS of all its processes; RSS bound "
        f"{ours['peak_mb'] + ours['workers_mb']:.0f} = main {ours['peak_mb']:.0f} + {jobs} x "
        f"largest worker); {ours['events']:,} events, {ours['duplicates']:,} "
        f"duplicates, {ours['malformed']:,} malformed, {ours['findings']:,} findings"
    )
    print(
        f"duckdb, the same work ({jobs} threads): {duck['seconds']:.2f} s, "
        f"{truth.rows / duck['seconds']:,.0f} rows/s, memory peak {duck['pss_peak_mb']:.0f} MiB "
        f"(RSS {duck['peak_mb']:.0f}); {duck['rows']:,} valid rows, {duck['distinct_ids']:,} "
        f"distinct ids, {duck['in_window']:,} in the window, {duck['groups']:,} groups"
    )
    print(f"ratio (ours / duckdb, time): {ours['seconds'] / duck['seconds']:.1f}x")


if __name__ == "__main__":
    main()
