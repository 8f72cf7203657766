"""The HTML fleet report, its content and escaping (fast), and in a real browser."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from cci_harden.model.control import Finding, Outcome, Status
from cci_harden.model.waivers import load_waivers
from cci_harden.testbed.browser import HEADLESS_FLAGS
from cci_harden.verify.hosts import HostReport
from cci_harden.verify.html import history_line, read_history, render_html
from cci_harden.verify.results import apply_history, build_run, to_json

from .conftest import REPO
from .test_verify_reports import KNOWN, TODAY, reports, write_waivers

HOSTILE = "<script>alert(1)</script>"


def sample_run(tmp_path: Path, hostile: bool = True):
    waivers = load_waivers(write_waivers(tmp_path, "2026-12-31"), KNOWN)
    previous = to_json(build_run("acme", reports()[1:2], [], generated_at="2026-11-20T02:30:00Z"))
    hostile_host = HostReport(
        "client-4",
        True,
        outcomes=[
            Outcome("CCI-NET-04", Status.PASS),
            Outcome("CCI-DKR-02", Status.FAIL, (Finding(HOSTILE, "nothing", f"'\"{HOSTILE}"),)),
        ],
    )
    hosts = [*reports(), hostile_host] if hostile else reports()
    run = build_run("acme", hosts, waivers, today=TODAY)
    apply_history(run, previous)
    return run


def test_the_report_shows_failures_grid_waivers_drift_and_escapes_everything(tmp_path):
    run = sample_run(tmp_path)
    page = render_html(
        run, [{"generated_at": "a", "failing": 3}, {"generated_at": "b", "failing": 1}]
    )
    assert HOSTILE not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    failures = page[page.index("<h2>Failures") : page.index("<h2>Unreachable")]
    assert "client-2" in failures and "/etc/docker/daemon.json" in failures
    assert "differs" in failures and "content as rendered" in failures
    assert "client-3: Connection timed out" in page  # unreachable, said as such
    assert "platform@example.com" in page and "2026-12-31" in page  # waiver owner and expiry
    assert "<h2>Since the previous report</h2>" in page and "still failing" in page
    assert "<svg id=trend" in page
    # no network: nothing is loaded, and only this file's own style and script may run
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", page)
    policy = re.search(r"script-src '(sha256-[^']+)'", page).group(1)
    script = re.search(r"<script>(.*)</script>", page, re.DOTALL).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert policy == f"sha256-{digest}"


def test_the_trend_reads_the_recorded_runs_and_skips_damaged_lines(tmp_path):
    run = sample_run(tmp_path)
    history = tmp_path / "verify-history.jsonl"
    history.write_text(history_line(run) + "\n{not json\n" + history_line(run) + "\n")
    runs = read_history(tmp_path)
    assert len(runs) == 2 and runs[0]["failing"] == 2 and runs[0]["unreachable"] == 1


CHROMIUM = shutil.which("chromium")


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            CHROMIUM,
            *HEADLESS_FLAGS,
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="bootstrap.sh installs Debian's chromium")
def test_the_report_renders_and_filters_in_a_real_browser(tmp_path):
    run = sample_run(tmp_path)
    report = tmp_path / "verify.html"
    report.write_text(
        render_html(run, [{"generated_at": "a", "failing": 3}, {"generated_at": "b", "failing": 2}])
    )
    dom = chromium(
        "--dump-dom", f"{report.as_uri()}#filter=client-2&failing", profile=tmp_path / "p1"
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    grid = dom.stdout[dom.stdout.index('<table class="grid"') :]
    rows = re.findall(
        r"<tr data-row=\"([^\"]*)\"[^>]*?class=\"([^\"]*)\"|<tr data-row=\"([^\"]*)\"", grid
    )
    hidden = {m[0].split()[0] for m in rows if m[0] and "hidden" in m[1]}
    assert hidden == {"client-1", "client-3", "client-4"}, rows  # the script ran: filtered
    assert re.search(r'<span id="shown">1</span>', dom.stdout)
    shot = tmp_path / "report.png"
    plain = tmp_path / "plain.html"  # the operator guide's picture: no test payloads in it
    history = [{"generated_at": f"n{i}", "failing": f} for i, f in enumerate((4, 3, 3, 2))]
    plain.write_text(render_html(sample_run(tmp_path, hostile=False), history))
    taken = chromium(
        f"--screenshot={shot}", "--window-size=1280,900", plain.as_uri(), profile=tmp_path / "p2"
    )
    assert taken.returncode == 0 and shot.stat().st_size > 10_000, taken.stderr[-2000:]
    if os.environ.get("CCI_UPDATE_SCREENSHOT"):
        shutil.copy(shot, REPO / "docs" / "img" / "verify-report.png")
