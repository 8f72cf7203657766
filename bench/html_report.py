"""Benchmark: the HTML fleet report for 500 hosts: render time, size, and time to open in Chromium.

    .venv/bin/python bench/html_report.py [--hosts 500] [--runs 3]

Builds a verify run of HOSTS hosts x the catalogue's controls (one host in fifty failing two
controls, one unreachable), renders the report, then loads it in headless Chromium with the
filter set (so the page's script runs over every row) and prints the medians. Opening includes
Chromium's own start-up, which is measured alone on a blank page and printed beside it.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from cci_harden.controls import PROFILES
from cci_harden.model.control import Finding, Outcome, Status
from cci_harden.testbed.browser import HEADLESS_FLAGS
from cci_harden.verify.hosts import HostReport
from cci_harden.verify.html import render_html
from cci_harden.verify.results import build_run

FLAGS = list(HEADLESS_FLAGS)


def fleet(hosts: int) -> list[HostReport]:
    ids = [c.id for c in PROFILES["nomad"]]
    reports = []
    for n in range(hosts):
        name = f"nomad-client-{n:03d}"
        if n == 7:
            reports.append(HostReport(name, False, "Connection timed out"))
            continue
        outcomes = [Outcome(i, Status.PASS) for i in ids]
        if n % 50 == 3:
            drift = Finding(
                "/etc/docker/daemon.json",
                "content as rendered",
                "differs",
                True,
                "file:/etc/docker/daemon.json",
            )
            outcomes[5] = Outcome(ids[5], Status.FAIL, (drift,))
            outcomes[9] = Outcome(ids[9], Status.FAIL, (drift,))
        reports.append(HostReport(name, True, outcomes=outcomes))
    return reports


def timed(command: list[str]) -> float:
    started = time.monotonic()
    subprocess.run(command, capture_output=True, check=True, timeout=120)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("needs Debian's chromium package (bootstrap.sh installs it)")
    run = build_run("bench", fleet(args.hosts), [])
    started = time.monotonic()
    page = render_html(run, [{"generated_at": str(i), "failing": i % 5} for i in range(30)])
    render_seconds = time.monotonic() - started
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "verify.html"
        report.write_text(page)
        blank = Path(tmp) / "blank.html"
        blank.write_text("<!doctype html><title>blank</title>")
        opens, starts = [], []
        for i in range(args.runs):
            profile = f"--user-data-dir={tmp}/p{i}"
            starts.append(timed([chromium, *FLAGS, profile, "--dump-dom", blank.as_uri()]))
            opens.append(
                timed(
                    [
                        chromium,
                        *FLAGS,
                        profile,
                        "--dump-dom",
                        f"{report.as_uri()}#filter=client&failing",
                    ]
                )
            )
    cells = sum(len(r.outcomes) for r in run.reports)
    print(
        f"{args.hosts} hosts, {cells} cells: rendered in {render_seconds:.2f} s, "
        f"{len(page) / 1024:.0f} KiB; opened and filtered in Chromium: median "
        f"{statistics.median(opens):.2f} s (a blank page: {statistics.median(starts):.2f} s, "
        f"Chromium's own start-up)"
    )


if __name__ == "__main__":
    main()
