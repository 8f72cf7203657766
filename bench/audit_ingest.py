"""Benchmark: audit-log ingest and hunt on a generated export; rows/s, peak memory, DuckDB ratio.

    .venv/bin/python bench/audit_ingest.py [--rows 1000000] [--jobs N] [--runs 3]

Each side runs in its own process so peak memory (max RSS) is its own. Ours is the main process
plus its worker processes: the figure printed is the main process's peak plus, for each worker,
the largest worker's peak (an upper bound on what the ingest holds at once). Time is the best of
``--runs`` runs on the same file, so a busy neighbour on the machine does not decide the figure.
DuckDB's CSV reader counts the same things (rows, distinct event ids) without validating the JSON
blobs; the ratio says how many times longer our validating, de-duplicating, hunting pass takes
than DuckDB's count.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

OURS = """
import json, os, resource, sys, time
from pathlib import Path
from cci_harden.audit.hunt import Hunter, Options
from cci_harden.audit.ingest import IngestStats, read_export_batches
from cci_harden.audit.rules import load_rules
stats = IngestStats()
hunter = Hunter(load_rules(), Options(since="2022-12-21T00:00:00.000000000Z",
                                      until="2023-01-05T00:00:00.000000000Z"))
start = time.perf_counter()
for events in read_export_batches([Path(sys.argv[1])], stats, jobs=int(sys.argv[2])):
    hunter.feed_many(events)
findings = hunter.findings()
elapsed = time.perf_counter() - start
cpu = os.times()
jobs = int(sys.argv[2])
largest_worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
workers_mb = largest_worker * jobs if jobs > 1 else 0
print(json.dumps({"seconds": elapsed, "rows": stats.rows, "events": stats.events,
                  "cpu": cpu.user + cpu.system + cpu.children_user + cpu.children_system,
                  "workers_mb": workers_mb,
                  "duplicates": stats.duplicates, "malformed": len(stats.malformed),
                  "findings": len(findings),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

DUCK = """
import json, resource, sys, time
import duckdb
start = time.perf_counter()
rows, distinct = duckdb.sql(
    f"SELECT count(*), count(DISTINCT id) FROM read_csv('{sys.argv[1]}', header=true, "
    "all_varchar=true, ignore_errors=true, strict_mode=false)").fetchall()[0]
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "rows": rows, "distinct_ids": distinct,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(code: str, path: Path, *extra: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code, str(path), *extra], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def best(code: str, path: Path, runs: int, *extra: str) -> dict:
    return min((run(code, path, *extra) for _ in range(runs)), key=lambda r: r["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: CPUs)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from cci_harden.audit.generate import generate
    from cci_harden.audit.ingest import default_jobs

    jobs = args.jobs or default_jobs()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.csv"
        truth = generate(path, args.rows)
        size_mb = path.stat().st_size / 2**20
        os.sync()  # the export's write-back must not run during the timed reads
        ours = best(OURS, path, args.runs, str(jobs))
        duck = best(DUCK, path, args.runs)
    print(
        f"export: {truth.rows:,} rows, {size_mb:.0f} MiB, {truth.duplicates:,} duplicates, "
        f"{truth.malformed:,} malformed"
    )
    print(
        f"cci-harden audit ({jobs} workers on {os.cpu_count()} CPUs): {ours['seconds']:.2f} s, "
        f"{ours['rows'] / ours['seconds']:,.0f} rows/s, {ours['cpu']:.2f} CPU-s; peak "
        f"{ours['peak_mb'] + ours['workers_mb']:.0f} MiB (main {ours['peak_mb']:.0f} + workers "
        f"{ours['workers_mb']:.0f}); {ours['events']:,} events, {ours['duplicates']:,} "
        f"duplicates, {ours['malformed']:,} malformed, {ours['findings']:,} findings"
    )
    print(
        f"duckdb read_csv count: {duck['seconds']:.2f} s, {duck['rows'] / duck['seconds']:,.0f} "
        f"rows/s, peak {duck['peak_mb']:.0f} MiB; {duck['rows']:,} rows, "
        f"{duck['distinct_ids']:,} distinct ids"
    )
    print(f"ratio (ours / duckdb, time): {ours['seconds'] / duck['seconds']:.1f}x")


if __name__ == "__main__":
    main()
