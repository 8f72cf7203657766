"""Benchmark: audit-log ingest and hunt on a generated export; rows/s, peak memory, DuckDB ratio.

    .venv/bin/python bench/audit_ingest.py [--rows 1000000]

Each side runs in its own process so peak memory (max RSS) is its own. DuckDB's CSV reader counts
the same things (rows, distinct event ids) without validating the JSON blobs; the ratio says how
many times longer our validating, de-duplicating, hunting pass takes than DuckDB's count.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

OURS = """
import json, resource, sys, time
from pathlib import Path
from cci_harden.audit.hunt import Hunter, Options
from cci_harden.audit.ingest import IngestStats, read_exports
from cci_harden.audit.rules import load_rules
stats = IngestStats()
hunter = Hunter(load_rules(), Options(since="2022-12-21T00:00:00.000000000Z",
                                      until="2023-01-05T00:00:00.000000000Z"))
start = time.perf_counter()
for event in read_exports([Path(sys.argv[1])], stats):
    hunter.feed(event)
findings = hunter.findings()
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "rows": stats.rows, "events": stats.events,
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


def run(code: str, path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    from cci_harden.audit.generate import generate

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.csv"
        truth = generate(path, args.rows)
        size_mb = path.stat().st_size / 2**20
        ours = run(OURS, path)
        duck = run(DUCK, path)
    print(
        f"export: {truth.rows:,} rows, {size_mb:.0f} MiB, {truth.duplicates:,} duplicates, "
        f"{truth.malformed:,} malformed"
    )
    print(
        f"cci-harden audit: {ours['seconds']:.2f} s, {ours['rows'] / ours['seconds']:,.0f} rows/s,"
        f" peak {ours['peak_mb']:.0f} MiB; {ours['events']:,} events, {ours['duplicates']:,} "
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
