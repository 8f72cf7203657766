"""The OS baseline on real test hosts: applied, honest about containers, drift repaired."""

from __future__ import annotations

import json

import pytest

from .conftest import pyinfra_json, run_cli, ssh

pytestmark = pytest.mark.testbed

HOST = "tb2"


def verify_baseline(testbed, tmp_path) -> dict[str, dict]:
    report = tmp_path / "baseline.json"
    proc = run_cli(
        "verify", "--profile", "baseline", str(testbed.path), "--limit", HOST, "--json", str(report)
    )
    assert proc.returncode in (0, 1), proc.stderr
    (host,) = json.loads(report.read_text())["hosts"]
    return {o["control"]: o for o in host["outcomes"]}


def test_baseline_in_a_container_is_verified_or_reported_not_verifiable(deployed, tmp_path):
    testbed, _ = deployed
    outcomes = verify_baseline(testbed, tmp_path)
    status = {cid: o["status"] for cid, o in outcomes.items()}
    for cid in ("CCI-OS-02", "CCI-OS-03", "CCI-OS-04", "CCI-OS-05"):
        assert status[cid] == "pass", outcomes[cid]
    # What a container cannot show is never reported as passed.
    for cid in ("CCI-OS-01", "CCI-OS-06", "CCI-OS-07"):
        assert status[cid] == "not-verifiable", outcomes[cid]
    kernel_keys = {f["what"] for f in outcomes["CCI-OS-01"]["findings"]}
    assert kernel_keys and not any(k.startswith("net.") for k in kernel_keys)
    # The network keys are per namespace: applied here, Docker's overlay included.
    values = ssh(
        testbed, HOST, "sysctl -n net.ipv4.ip_forward net.ipv4.conf.all.send_redirects"
    ).stdout.split()
    assert values == ["1", "0"]
    login_defs = ssh(testbed, HOST, "grep -E '^(UMASK|PASS_MAX_DAYS)' /etc/login.defs").stdout
    assert sorted(login_defs.splitlines()) == ["PASS_MAX_DAYS\t365", "UMASK\t027"]


def test_baseline_drift_is_named_and_repaired(deployed, tmp_path):
    testbed, _ = deployed
    ssh(
        testbed,
        HOST,
        "sysctl -q -w net.ipv4.conf.all.send_redirects=1 && chmod u+s /usr/bin/chfn && "
        "chmod 0644 /etc/shadow && sed -i 's/^UMASK.*/UMASK 022/' /etc/login.defs",
    )
    outcomes = verify_baseline(testbed, tmp_path)
    failing = {cid for cid, o in outcomes.items() if o["status"] == "fail"}
    assert failing == {"CCI-OS-01", "CCI-OS-04", "CCI-OS-05"}
    found = {f["what"] for cid in failing for f in outcomes[cid]["findings"]}
    assert {"net.ipv4.conf.all.send_redirects now", "/usr/bin/chfn", "/etc/shadow mode"} <= found
    assert "/etc/login.defs UMASK" in found
    repaired = pyinfra_json(testbed.path, "deploys/baseline.py", "--limit", HOST)
    assert any(op["success"] for op in repaired["results"]["operations"])
    again = pyinfra_json(testbed.path, "deploys/baseline.py", "--limit", HOST)
    assert not any(op["success"] for op in again["results"]["operations"])
    after = verify_baseline(testbed, tmp_path)
    assert not [cid for cid, o in after.items() if o["status"] == "fail"]
