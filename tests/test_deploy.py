"""The main deploy over SSH on the test bed: converges, then changes nothing; verify agrees."""

from __future__ import annotations

import subprocess

import pytest
import testinfra

from cci_harden.controls.apt import APT_PROXY_FILE
from cci_harden.model.control import Status
from cci_harden.verify.runner import verify_inventory

from .conftest import changed_hosts, pyinfra_json, run_cli, ssh

pytestmark = pytest.mark.testbed


def test_first_run_succeeds_on_every_host(deployed):
    inventory, result = deployed
    assert result["results"]["failed_hosts"] == []
    operations = result["results"]["operations"]
    if operations:  # none when the test bed was already converged by an earlier session
        last = operations[-1]  # every host got to the end of the deploy
        hosts = sorted(last["success"] + last["no_change"])
        assert hosts == sorted(h.name for h in inventory.hosts)


def test_second_run_changes_nothing(deployed):
    inventory, _ = deployed
    result = pyinfra_json(inventory.path, "deploys/nomad.py")
    assert changed_hosts(result) == {}
    assert all(not op["hosts_with_change"] for op in result["plan"])


def test_testinfra_over_ssh_with_connection_reuse(deployed):
    inventory, _ = deployed
    name = inventory.hosts[1].name
    host = testinfra.get_host(f"ssh://{name}", ssh_config=str(inventory.ssh_config))
    proxy_file = host.file(APT_PROXY_FILE)
    assert proxy_file.is_file and proxy_file.user == "root" and proxy_file.mode == 0o644
    assert proxy_file.contains(
        f'Acquire::http::Proxy "{str(inventory.settings.apt.proxy).rstrip("/")}"'
    )
    master = subprocess.run(
        ["ssh", "-F", str(inventory.ssh_config), "-O", "check", name],
        capture_output=True,
        text=True,
    )
    assert master.returncode == 0, master.stderr  # one multiplexed connection serves every command


def test_verify_passes_after_deploy(deployed):
    inventory, _ = deployed
    reports = verify_inventory(inventory)  # the pytest plugin, in process
    for report in reports:
        assert report.reachable, report.error
        bad = [o for o in report.outcomes if o.status is Status.FAIL]
        assert bad == [], (report.host, bad)
    assert run_cli("verify", str(inventory.path)).returncode == 0


def test_verify_names_drift_and_deploy_repairs_it(deployed):
    inventory, _ = deployed
    drifted = inventory.hosts[2].name
    ssh(inventory, drifted, f"chmod 0666 {APT_PROXY_FILE}")
    proc = run_cli("verify", str(inventory.path))
    assert proc.returncode == 1
    failures = [ln for ln in proc.stdout.splitlines() if ln.startswith("FAIL ")]
    assert failures == [
        f"FAIL {drifted} CCI-APT-01 {APT_PROXY_FILE} mode: expected 0644, found 0666"
    ]
    result = pyinfra_json(inventory.path, "deploys/nomad.py")
    assert changed_hosts(result) == {f"[CCI-APT-01] {APT_PROXY_FILE}": [drifted]}
    assert run_cli("verify", str(inventory.path)).returncode == 0


def copy_with_unreachable_host(inventory, tmp_path):
    """A copy of the inventory with one host moved to an unused address on the test bed's
    bridge: (the copy's path, the moved host)."""
    unused = str(inventory.settings.inventory.hosts[0].address).rsplit(".", 1)[0] + ".250"
    moved = inventory.hosts[1]
    text = inventory.path.with_name("testbed.toml").read_text()
    text = text.replace(f'address = "{moved.address}"', f'address = "{unused}"')
    text = text.replace('known_hosts = "testbed.known_hosts"', f'known_hosts = "{tmp_path}/kh"')
    text = text.replace('ssh_config = "testbed.ssh_config"\n', "")
    known = inventory.known_hosts.read_text().replace(moved.address, unused)
    (tmp_path / "kh").write_text(known)
    (tmp_path / "moved").write_text(inventory.path.read_text())
    (tmp_path / "moved.toml").write_text(text)
    return tmp_path / "moved", moved


def test_unreachable_host_is_reported_and_others_go_on(deployed, tmp_path):
    inventory, _ = deployed
    moved_inventory, moved = copy_with_unreachable_host(inventory, tmp_path)
    proc = run_cli("verify", str(moved_inventory))
    assert proc.returncode == 2
    assert f"UNREACHABLE {moved.name}" in proc.stdout
    assert proc.stdout.count("ok") >= 2  # the reachable hosts were still verified
