"""Verify's reports, waivers, drift history, shards and onboarding; no hosts needed."""

from __future__ import annotations

import datetime as dt
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from cci_harden.config.settings import HostEntry
from cci_harden.model.control import Finding, Outcome, Status
from cci_harden.model.errors import CciHardenError
from cci_harden.model.waivers import WaiverError, load_waivers
from cci_harden.verify.command import parse_shard, shard_hosts
from cci_harden.verify.hosts import HostReport
from cci_harden.verify.report import render_markdown, render_table
from cci_harden.verify.results import apply_history, build_run, to_json

from .conftest import REPO, run_cli

TODAY = dt.date(2026, 11, 22)
KNOWN = {"CCI-NET-04", "CCI-DKR-02", "CCI-APT-01"}


def reports() -> list[HostReport]:
    drift = Finding("tcp 0.0.0.0:9100 (node_exporter)", "no listener", "listening")
    return [
        HostReport(
            "client-1",
            True,
            outcomes=[
                Outcome("CCI-NET-04", Status.FAIL, (drift,)),
                Outcome("CCI-DKR-02", Status.PASS),
            ],
        ),
        HostReport(
            "client-2",
            True,
            outcomes=[
                Outcome("CCI-NET-04", Status.PASS),
                Outcome(
                    "CCI-DKR-02",
                    Status.FAIL,
                    (Finding("/etc/docker/daemon.json", "content as rendered", "differs"),),
                ),
            ],
        ),
        HostReport("client-3", False, error="Connection timed out"),
    ]


def write_waivers(tmp_path: Path, expires: str, hosts: str = '["client-1"]') -> Path:
    path = tmp_path / "acme.waivers.toml"
    path.write_text(
        f"""
[[waiver]]
control = "CCI-NET-04"
hosts = {hosts}
justification = "node_exporter listens on 9100 until the metrics proxy ships (INFRA-12)"
owner = "platform@example.com"
expires = {expires}
"""
    )
    return path


def test_waived_failure_is_shown_as_waived_and_does_not_fail(tmp_path):
    waivers = load_waivers(write_waivers(tmp_path, "2026-12-31"), KNOWN)
    reachable = [r for r in reports() if r.reachable]
    run = build_run("acme", reachable, waivers, today=TODAY)
    statuses = {(c.host, c.outcome.control_id): c.outcome.status for c in run.cells}
    assert statuses[("client-1", "CCI-NET-04")] is Status.WAIVED
    assert statuses[("client-2", "CCI-DKR-02")] is Status.FAIL  # not covered
    assert run.exit_code() == 1
    table = render_table(run)
    assert "FAIL client-2 CCI-DKR-02" in table and "FAIL client-1" not in table
    assert "waived" in table


def test_expired_waiver_fails_the_run_and_is_named(tmp_path):
    waivers = load_waivers(write_waivers(tmp_path, "2026-11-01"), KNOWN)
    only_first = [reports()[0]]
    run = build_run("acme", only_first, waivers, today=TODAY)
    assert run.exit_code() == 1
    assert run.cells[0].outcome.status is Status.FAIL
    assert "EXPIRED WAIVER CCI-NET-04 on client-1 (owner platform@example.com" in render_table(run)


def test_waiver_without_owner_or_for_unknown_control_is_refused(tmp_path):
    path = write_waivers(tmp_path, "2026-12-31")
    path.write_text(path.read_text().replace('owner = "platform@example.com"\n', ""))
    with pytest.raises(WaiverError, match="waiver 1: owner: Field required"):
        load_waivers(path, KNOWN)
    path = write_waivers(tmp_path, "2026-12-31")
    with pytest.raises(WaiverError, match="unknown control CCI-NET-04"):
        load_waivers(path, {"CCI-APT-01"})


def test_unreachable_host_exits_2_and_is_reported_first():
    run = build_run("acme", reports(), [], today=TODAY)
    assert run.exit_code() == 2
    table = render_table(run)
    assert "UNREACHABLE client-3" in table
    assert "daemon.json: expected content as rendered, found differs" in render_markdown(run)


def test_json_report_round_trips_drift_history():
    first = build_run("acme", reports()[:2], [], generated_at="2026-11-20T02:30:00Z")
    previous = json.loads(json.dumps(to_json(first)))
    assert previous["summary"]["statuses"] == {"fail": 2, "pass": 2}
    # next night: client-1 is fixed, client-2 still fails, a new failure on client-1
    now = reports()[:2]
    now[0].outcomes = [
        Outcome("CCI-NET-04", Status.PASS),
        Outcome("CCI-DKR-02", Status.FAIL, (Finding("x", "y", "z"),)),
    ]
    second = build_run("acme", now, [], generated_at="2026-11-21T02:30:00Z")
    apply_history(second, previous)
    assert second.drift.newly_failing == [("client-1", "CCI-DKR-02")]
    assert second.drift.newly_fixed == [("client-1", "CCI-NET-04")]
    assert second.drift.still_failing == [("client-2", "CCI-DKR-02", "2026-11-20T02:30:00Z")]
    document = to_json(second)
    since = {
        (h["name"], o["control"]): o["since"] for h in document["hosts"] for o in h["outcomes"]
    }
    assert since[("client-2", "CCI-DKR-02")] == "2026-11-20T02:30:00Z"
    markdown = render_markdown(second)
    assert "newly fixed: client-1 CCI-NET-04" in markdown
    assert "client-2 CCI-DKR-02 (since 2026-11-20T02:30:00Z)" in markdown


def test_shards_cover_every_host_exactly_once(monkeypatch):
    hosts = [HostEntry(name=f"client-{i}", address=f"192.0.2.{i}") for i in range(1, 12)]
    dealt = [shard_hosts(hosts, index, 4) for index in range(4)]
    names = sorted(h.name for share in dealt for h in share)
    assert names == sorted(h.name for h in hosts)
    assert max(len(s) for s in dealt) - min(len(s) for s in dealt) <= 1
    monkeypatch.setenv("CIRCLE_NODE_INDEX", "2")
    monkeypatch.setenv("CIRCLE_NODE_TOTAL", "4")
    assert parse_shard(None) == (2, 4)
    for bad in ("4/4", "1of2", "0/0"):
        with pytest.raises(CciHardenError):
            parse_shard(bad)


def test_init_writes_a_documented_inventory_and_refuses_to_overwrite(tmp_path):
    proc = run_cli("init", "eu-install", "--inventory-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    settings = (tmp_path / "eu-install.toml").read_text()
    # defaults are documented but left commented, so a later toolkit's defaults still apply;
    # the server line is the operator's decision and is written
    assert (
        "# Cores kept for coordination (CircleCI documents 2)\n"
        "# reserved_cpu_cores = 2   # default" in settings
    )
    assert '\n# node_class = "linux-64bit"   # default' in settings
    written = tomllib.loads(settings)
    assert written["server"]["version"] == "4.10" and "reserved_cpu_cores" not in written["nomad"]
    assert "[x] Each Nomad client keeps 2 vCPU and 4 GB" in proc.stdout
    assert "[ ] Two-factor authentication on the VCS" in proc.stdout
    assert "network.admin_cidrs: empty" in proc.stdout  # what to fill in before deploying
    again = run_cli("init", "eu-install", "--inventory-dir", str(tmp_path))
    assert again.returncode == 2 and "never overwrites" in again.stderr
    assert (tmp_path / "eu-install.toml").read_text() == settings


def test_circleci_example_is_a_scheduled_sharded_pipeline_that_keeps_reports():
    config = yaml.safe_load((REPO / "templates/nightly/circleci-config.yml").read_text())
    assert config["version"] == 2.1
    job = config["jobs"]["verify"]
    assert job["parallelism"] > 1
    steps = {next(iter(s)) if isinstance(s, dict) else s: s for s in job["steps"]}
    run_steps = [s["run"]["command"] for s in job["steps"] if isinstance(s, dict) and "run" in s]
    assert any(
        "cci-harden verify inventories/" in c and "--report-dir reports" in c for c in run_steps
    )
    assert steps["store_test_results"]["store_test_results"]["path"] == "reports"
    assert steps["store_artifacts"]["store_artifacts"]["path"] == "reports"
    workflow = config["workflows"]["nightly-verify"]
    assert workflow["when"] == {"equal": ["scheduled_pipeline", "<< pipeline.trigger_source >>"]}
    # the job holds the fleet's SSH key: its image is pinned by digest, its install locked
    (image,) = job["docker"]
    assert re.fullmatch(r"cimg/python:[0-9.]+@sha256:[0-9a-f]{64}", image["image"])
    install = next(c for c in run_steps if "pip install" in c)
    assert "--require-hashes -r requirements.lock" in install and "--no-deps" in install


def test_text_a_host_sent_is_shown_as_text_in_every_view():
    """A process name with escape codes and a line break cannot redraw the terminal, forge a
    report line, or start a link or HTML in the Markdown."""
    hostile = "\x1b[2J\x1b[32mok\r\nFAIL client-9 CCI-X [x](https://example.test) <img>"
    run = build_run(
        "acme",
        [
            HostReport(
                "client-1",
                True,
                outcomes=[
                    Outcome(
                        "CCI-NET-04", Status.FAIL, (Finding("tcp 0.0.0.0:9100", "none", hostile),)
                    ),
                ],
            )
        ],  # fmt: skip
        [],
        today=TODAY,
    )
    table, markdown = render_table(run), render_markdown(run)
    for text in (table, markdown):
        assert "\x1b" not in text and "\r" not in text
        assert sum(line.startswith(("FAIL", "- FAIL")) for line in text.splitlines()) == 1
    assert "\\x1b[2J" in table
    assert "\\[x\\]\\(https" in markdown and "\\<img\\>" in markdown
