"""Reports that describe themselves: framework ids, the server line and the toolkit version;
the Prometheus file; a saved JSON report rendered again without a host."""

from __future__ import annotations

import json
import re

from cci_harden.controls import ALL_CONTROLS
from cci_harden.model.waivers import load_waivers
from cci_harden.verify.prometheus import render_prometheus, write_prometheus
from cci_harden.verify.report import render_markdown
from cci_harden.verify.results import build_run, from_json, to_json

from .conftest import cli_here
from .test_verify_reports import KNOWN, TODAY, reports, write_waivers

# one sample: metric{labels} value
SAMPLE = re.compile(r'^[a-z_]+\{([a-z_]+="(?:[^"\\\n]|\\.)*",?)*\} -?[0-9]+$')


def sample_run(tmp_path):
    waivers = load_waivers(write_waivers(tmp_path, "2026-12-31"), KNOWN)
    run = build_run("acme", reports(), waivers, today=TODAY, generated_at="2026-11-22T02:30:00Z")
    run.server_line = "4.10"
    return run


def test_every_control_carries_nist_ids_and_its_cis_items():
    for control in ALL_CONTROLS:
        frameworks = control.frameworks()
        assert frameworks.get("NIST SP 800-53 Rev. 5"), control.id
        for ident in frameworks["NIST SP 800-53 Rev. 5"]:
            assert re.fullmatch(r"[A-Z]{2}-\d{1,2}(\(\d+\))?", ident), (control.id, ident)
    by_id = {c.id: c.frameworks() for c in ALL_CONTROLS}
    assert "2.14" in by_id["CCI-DKR-02"]["CIS Docker"]  # live-restore, from its sources
    listed = json.loads(cli_here("controls", "--format", "json").stdout)
    assert all(row["frameworks"] == by_id[row["id"]] for row in listed)


def test_the_json_and_markdown_reports_say_what_made_them(tmp_path):
    run = sample_run(tmp_path)
    document = to_json(run)
    assert document["server_line"] == "4.10" and document["tool"].startswith("cci-harden ")
    assert document["controls"]["CCI-NET-04"]["frameworks"]["NIST SP 800-53 Rev. 5"] == ["CM-7"]
    assert "cci-harden 0." in render_markdown(run) and "CircleCI Server 4.10" in render_markdown(
        run
    )


def test_the_prometheus_file_has_one_series_per_status_and_parses(tmp_path):
    run = sample_run(tmp_path)
    text = render_prometheus(run)
    samples = [line for line in text.splitlines() if not line.startswith("#")]
    assert all(SAMPLE.match(line) for line in samples), [s for s in samples if not SAMPLE.match(s)]
    waived = 'inventory="acme",host="client-1",control="CCI-NET-04",status="waived"} 1'
    assert f"cci_harden_control_status{{{waived}" in text
    assert 'host="client-2",control="CCI-DKR-02",status="fail"} 1' in text
    assert 'cci_harden_host_reachable{inventory="acme",host="client-3"} 0' in text
    assert 'cci_harden_verify_exit_code{inventory="acme"} 2' in text
    assert 'cci_harden_verify_timestamp_seconds{inventory="acme"} 1795314600' in text
    run.inventory = 'odd"name\\x'
    assert 'inventory="odd\\"name\\\\x"' in render_prometheus(run)  # quoted as the format says
    target = tmp_path / "textfile" / "verify.prom"
    write_prometheus(run, target)
    assert target.read_text() == render_prometheus(run)
    assert [p.name for p in target.parent.iterdir()] == ["verify.prom"]  # nothing left staged


def test_a_saved_report_renders_again_as_it_was(tmp_path):
    run = sample_run(tmp_path)
    saved = tmp_path / "verify.json"
    saved.write_text(json.dumps(to_json(run)))
    again = from_json(json.loads(saved.read_text()))
    assert to_json(again) == to_json(run)
    md = cli_here("report", str(saved), "--format", "md")
    assert md.returncode == 0 and md.stdout == render_markdown(run)
    html = cli_here("report", str(saved), "--format", "html", "-o", str(tmp_path / "r.html"))
    assert html.returncode == 0 and "client-2" in (tmp_path / "r.html").read_text()
    saved.write_text('{"format": "something else"}')
    assert cli_here("report", str(saved)).returncode == 2
