"""Verify as pytest tests, one per host and control, with operators' own checks beside.

Run on the test bed through pytest itself (``pytest --cci-inventory``) and through the front door
(``cci-harden verify``), which runs the same plugin in process: the outcomes must agree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from .conftest import BIN, REPO, run_cli, ssh
from .test_deploy import copy_with_unreachable_host

pytestmark = pytest.mark.testbed

SITE_CHECKS = '''\
"""An operator's own checks: testinfra's host fixture, the inventory's hosts."""


def test_hostname_file(host):
    assert host.file("/etc/hostname").exists


def test_monitoring_agent_installed(host):
    assert host.package("cci-site-monitoring-agent").is_installed, "monitoring agent missing"
'''


def run_pytest(*args: str, cwd=REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "pytest"), "-p", "no:cacheprovider", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ},
        timeout=600,
    )


def results(report: dict) -> list[dict]:
    """Every (host, control, status) row of a verify JSON report."""
    return [
        {"host": h["name"], "control": o["control"], "status": o["status"], "outcome": o}
        for h in report["hosts"]
        for o in h["outcomes"]
    ]


def junit_cases(path) -> dict[str, str]:
    """testcase name -> passed, failure, error or skipped."""
    cases = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        state = "passed"
        for kind in ("failure", "error", "skipped"):
            if case.find(kind) is not None:
                state = kind
        cases[case.get("name")] = state
    return cases


@pytest.fixture
def site_checks(deployed):
    inventory, _ = deployed
    folder = inventory.path.with_name(inventory.path.name + ".checks")
    folder.mkdir(exist_ok=True)
    (folder / "test_site.py").write_text(SITE_CHECKS)
    yield folder
    shutil.rmtree(folder)


def test_a_clean_fleet_passes_as_pytest_tests(deployed, tmp_path):
    inventory, _ = deployed
    proc = run_pytest("--cci-inventory", str(inventory.path), f"--junitxml={tmp_path / 'j.xml'}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    cases = junit_cases(tmp_path / "j.xml")
    names = {h.name for h in inventory.hosts}
    assert {f"CCI-SSH-01[{n}]" for n in names} <= set(cases)
    assert {f"CCI-TK-02[{n}]" for n in names} <= set(cases)
    assert set(cases.values()) <= {"passed", "skipped"}  # not verifiable in a container: skipped


def test_drift_fails_naming_the_resource_and_k_selects(deployed):
    inventory, _ = deployed
    path = "/etc/docker/daemon.json"
    ssh(inventory, "tb2", f"cp -p {path} /tmp/daemon.json.keep && echo >> {path}")
    try:
        proc = run_pytest("--cci-inventory", str(inventory.path), "-k", "CCI-DKR", "-rf")
        assert proc.returncode == 1
        assert f"CCI-DKR-02 fails on tb2:\n  file:{path}" in proc.stdout, proc.stdout[-3000:]
        assert "CCI-SSH" not in proc.stdout and "passed" in proc.stdout
        failed = [ln for ln in proc.stdout.splitlines() if ln.startswith("FAILED")]
        assert len(failed) == 1 and "CCI-DKR-02[tb2]" in failed[0]
    finally:
        ssh(inventory, "tb2", f"mv /tmp/daemon.json.keep {path}")


def test_an_unreachable_host_is_an_error_not_a_failure(deployed, tmp_path):
    inventory, _ = deployed
    moved_inventory, moved = copy_with_unreachable_host(inventory, tmp_path)
    proc = run_pytest("--cci-inventory", str(moved_inventory), f"--junitxml={tmp_path / 'j.xml'}")
    assert proc.returncode == 1
    cases = junit_cases(tmp_path / "j.xml")
    of_moved = {k: v for k, v in cases.items() if k.endswith(f"[{moved.name}]")}
    assert of_moved and set(of_moved.values()) == {"error"}
    others = {k: v for k, v in cases.items() if not k.endswith(f"[{moved.name}]")}
    assert others and set(others.values()) <= {"passed", "skipped"}


def test_site_checks_run_on_every_host_and_land_in_every_report(deployed, site_checks, tmp_path):
    inventory, _ = deployed
    reports = tmp_path / "reports"
    proc = run_cli("verify", str(inventory.path), "--report-dir", str(reports))
    assert proc.returncode == 1, proc.stdout[-3000:]  # the failing site check is drift
    data = json.loads((reports / "verify.json").read_text())
    site = [r for r in results(data) if r["control"].startswith("SITE:test_site.py::")]
    by_check = {}
    for row in site:
        by_check.setdefault(row["control"], {})[row["host"]] = row["status"]
    names = {h.name for h in inventory.hosts}
    assert by_check["SITE:test_site.py::test_hostname_file"] == dict.fromkeys(names, "pass")
    agent = by_check["SITE:test_site.py::test_monitoring_agent_installed"]
    assert agent == dict.fromkeys(names, "fail")
    cases = junit_cases(reports / "verify.junit.xml")
    assert cases["test_monitoring_agent_installed[ssh://tb1]"] == "failure"
    assert cases["CCI-SSH-01[tb1]"] == "passed"
    assert "test_monitoring_agent_installed" in (reports / "verify.md").read_text()
    page = (reports / "verify.html").read_text()
    assert "SITE:test_site.py::test_monitoring_agent_installed" in page
    assert "monitoring agent missing" in page
    assert "monitoring agent missing" in (reports / "verify.json").read_text()
    # the run for alerting, and saying what made it
    prom = (reports / "verify.prom").read_text()
    assert 'control="SITE:test_site.py::test_monitoring_agent_installed",status="fail"} 1' in prom
    assert data["server_line"] == inventory.settings.server.version
    assert data["controls"]["CCI-SSH-01"]["frameworks"]["NIST SP 800-53 Rev. 5"]


def test_pytest_and_the_front_door_agree(deployed, tmp_path):
    """The same outcome for every host and control, whichever way verify is run."""
    inventory, _ = deployed
    ssh(
        inventory,
        "tb3",
        "cp -p /etc/docker/daemon.json /tmp/keep && echo >> /etc/docker/daemon.json",
    )
    try:
        direct = run_pytest(
            "--cci-inventory", str(inventory.path), f"--junitxml={tmp_path / 'd.xml'}"
        )
        front = run_cli("verify", str(inventory.path), "--json", str(tmp_path / "f.json"))
    finally:
        ssh(inventory, "tb3", "mv /tmp/keep /etc/docker/daemon.json")
    assert direct.returncode == 1 and front.returncode == 1
    pytest_view = {
        name: {"passed": "pass", "failure": "fail", "skipped": "skip"}[state]
        for name, state in junit_cases(tmp_path / "d.xml").items()
    }
    front_view = {
        f"{r['control']}[{r['host']}]": (
            "skip" if r["status"] in ("not-verifiable", "not-applicable") else r["status"]
        )
        for r in results(json.loads((tmp_path / "f.json").read_text()))
    }
    assert pytest_view == front_view
    assert front_view["CCI-DKR-02[tb3]"] == "fail"


def test_two_workers_across_hosts_give_the_same_outcomes(deployed, tmp_path):
    """pytest-xdist: each host's tests go to one worker (loadgroup), which reads it once."""
    inventory, _ = deployed
    one = run_pytest("--cci-inventory", str(inventory.path), f"--junitxml={tmp_path / '1.xml'}")
    two = run_pytest(
        "--cci-inventory",
        str(inventory.path),
        "-n",
        "2",
        "--dist",
        "loadgroup",
        f"--junitxml={tmp_path / '2.xml'}",
    )
    assert one.returncode == two.returncode == 0, two.stdout[-2000:]
    assert junit_cases(tmp_path / "1.xml") == junit_cases(tmp_path / "2.xml")


def test_a_truncated_previous_report_is_a_warning_and_a_new_one_is_written(deployed, tmp_path):
    """The nightly unit always passes --previous: a report cut short must not stop every later
    night."""
    inventory, _ = deployed
    broken = tmp_path / "last-night.json"
    broken.write_text('{"format": 1, "hosts": [{"name": "tb1", "outc')
    new = tmp_path / "tonight.json"
    proc = run_cli("verify", str(inventory.path), "--previous", str(broken), "--json", str(new))
    assert proc.returncode == 0, proc.stderr
    assert "warning:" in proc.stderr and "drift history starts again" in proc.stderr
    assert json.loads(new.read_text())["exit_code"] == 0
