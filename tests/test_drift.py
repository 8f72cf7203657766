"""Drift scenarios on the test bed: verify names exactly what changed, and the deploy repairs it."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from cci_harden.controls.nomad import CONFIG, KEY_FILE
from cci_harden.controls.seccomp import PROFILE_PATH
from cci_harden.controls.ssh import DROPIN

from .conftest import INVENTORIES, REPO, pyinfra_json, run_cli, run_pyinfra, ssh

pytestmark = pytest.mark.testbed

STRAY_PORT = 8089


def failing(proc) -> set[tuple[str, str]]:
    return {
        (line.split()[1], line.split()[2])
        for line in proc.stdout.splitlines()
        if line.startswith("FAIL ")
    }


def test_each_drift_is_named_on_its_host_and_the_deploy_repairs_it(deployed, tmp_path):
    inventory, _ = deployed
    one, two, three = (h.name for h in inventory.hosts)
    drop_rule = (
        "nft delete rule inet cci_ingress input handle $(nft -a list chain inet cci_ingress input"
        " | awk '/Nomad RPC/ {print $NF; exit}')"
    )
    ssh(
        inventory,
        one,
        'sed -i \'s/"live-restore": true/"live-restore": false/\' /etc/docker/daemon.json',
    )
    ssh(inventory, one, f"chmod 0644 {KEY_FILE}")
    ssh(
        inventory,
        two,
        f"python3 -c \"import json; p='{PROFILE_PATH}'; d=json.load(open(p)); "
        "d['syscalls'].pop(); json.dump(d, open(p, 'w'), indent=2)\"",
    )
    ssh(inventory, two, "systemctl stop nomad")
    ssh(inventory, two, f"systemd-run --unit cci-stray python3 -m http.server {STRAY_PORT}")
    ssh(inventory, three, f"sed -i 's/memory         = 4096/memory         = 1024/' {CONFIG}")
    ssh(inventory, three, drop_rule)
    ssh(inventory, three, f"sed -i 's/^MaxAuthTries 3/MaxAuthTries 6/' {DROPIN}")
    time.sleep(1)  # the stray listener binds

    proc = run_cli("verify", str(inventory.path), "--json", str(tmp_path / "night1.json"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert failing(proc) == {
        (one, "CCI-DKR-02"),
        (one, "CCI-NMD-03"),
        (two, "CCI-DKR-03"),
        (two, "CCI-NMD-05"),
        (two, "CCI-NET-04"),
        (three, "CCI-NMD-04"),
        (three, "CCI-NET-01"),
        (three, "CCI-SSH-01"),
    }
    assert f"FAIL {one} CCI-NMD-03 {KEY_FILE} mode: expected 0600, found 0644" in proc.stdout
    assert f"FAIL {two} CCI-NMD-05 nomad now: expected active, found inactive" in proc.stdout
    assert f"FAIL {two} CCI-NET-04 tcp 0.0.0.0:{STRAY_PORT} (python3)" in proc.stdout
    # the file and what sshd actually does (MaxAuthTries is read at connection time)
    assert f"FAIL {three} CCI-SSH-01 {DROPIN}: expected content as rendered" in proc.stdout
    assert f"FAIL {three} CCI-SSH-01 sshd maxauthtries: expected 3, found 6" in proc.stdout

    result = pyinfra_json(inventory.path, "deploys/nomad.py")
    assert result["results"]["failed_hosts"] == []
    # the deploy never stops a process it does not know: the stray listener is the operator's
    after = run_cli("verify", str(inventory.path), "--previous", str(tmp_path / "night1.json"))
    assert after.returncode == 1
    assert failing(after) == {(two, "CCI-NET-04")}
    assert "7 newly fixed" in after.stdout and "1 still failing" in after.stdout
    ssh(inventory, two, "systemctl stop cci-stray")
    assert run_cli("verify", str(inventory.path)).returncode == 0


def test_nightly_units_pass_systemd_analyze_on_a_host(deployed):
    inventory, _ = deployed
    host = inventory.hosts[0].name
    for name in ("cci-harden-verify@.service", "cci-harden-verify@.timer"):
        subprocess.run(
            [
                "scp",
                "-F",
                str(inventory.ssh_config),
                str(REPO / "templates/nightly" / name),
                f"{host}:/etc/systemd/system/{name}",
            ],
            check=True,
            capture_output=True,
        )
    try:
        proc = ssh(
            inventory,
            host,
            "useradd --system cci-harden 2>/dev/null; mkdir -p /opt/cci-harden/.venv/bin && "
            "ln -sf /bin/true /opt/cci-harden/.venv/bin/cci-harden && "
            "systemd-analyze verify cci-harden-verify@prod.service cci-harden-verify@prod.timer",
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        schedule = ssh(inventory, host, "systemd-analyze calendar '*-*-* 02:30:00'").stdout
        assert "Next elapse" in schedule
    finally:
        ssh(
            inventory,
            host,
            "rm -rf /etc/systemd/system/cci-harden-verify@.* /opt/cci-harden; "
            "userdel cci-harden 2>/dev/null; true",
        )


def test_init_then_config_check_then_deploy_and_verify_a_new_inventory(deployed, tmp_path):
    """Onboarding: a fresh `init`, filled in through environment overrides, reaches the hosts."""
    inventory, _ = deployed
    assert run_cli("init", "onboard", "--inventory-dir", str(tmp_path)).returncode == 0
    bed = inventory.settings
    tls = bed.nomad.tls
    subnet = json.dumps([str(c) for c in bed.network.admin_cidrs])
    env = {
        "CCI_INVENTORY__HOSTS": json.dumps(
            [{"name": h.name, "address": h.address} for h in bed.inventory.hosts]
        ),
        "CCI_INVENTORY__SSH_KEY": str(bed.inventory.ssh_key),
        "CCI_INVENTORY__KNOWN_HOSTS": str(INVENTORIES / "testbed.known_hosts"),
        "CCI_APT__PROXY": str(bed.apt.proxy),
        "CCI_NETWORK__ADMIN_CIDRS": subnet,
        "CCI_NETWORK__NOMAD_SERVER_CIDRS": subnet,
        "CCI_NETWORK__CLUSTER_CIDRS": subnet,
        "CCI_NETWORK__RERUN_SSH_CIDRS": subnet,
        "CCI_NETWORK__VM_SUBNET_CIDRS": subnet,
        "CCI_NETWORK__NTP_SERVERS": json.dumps([str(s) for s in bed.network.ntp_servers]),
        "CCI_NETWORK__BLOCKED_JOB_CIDRS": json.dumps(
            [str(c) for c in bed.network.blocked_job_cidrs]
        ),
        "CCI_NOMAD__INSTALL_SOURCE": "mirror",
        "CCI_NOMAD__VERSION": str(bed.nomad.version),  # what the test bed's mirror holds
        "CCI_NOMAD__RELEASE_URL": str(bed.nomad.release_url),
        "CCI_NOMAD__GPG_FINGERPRINT": bed.nomad.gpg_fingerprint,
        "CCI_NOMAD__GPG_KEY_FILE": str(bed.nomad.gpg_key_file),
        "CCI_NOMAD__SERVERS": json.dumps(bed.nomad.servers),
        "CCI_NOMAD__RESERVED_CPU_CORES": str(bed.nomad.reserved_cpu_cores),
        "CCI_NOMAD__TLS__CA_FILE": str(tls.ca_file),
        "CCI_NOMAD__TLS__CERT_FILE": str(tls.cert_file),
        "CCI_NOMAD__TLS__KEY_FILE": str(tls.key_file),
        "CCI_DOCKER__STORAGE_DRIVER": "vfs",
    }
    new = tmp_path / "onboard"
    check = run_cli("config", "check", str(new), env=env)
    assert check.returncode == 0, check.stderr
    assert "ready to deploy" in check.stderr
    deploy = run_pyinfra(new, "deploys/nomad.py", "--json", env=env)
    assert deploy.returncode == 0, deploy.stderr[-2000:]
    changed = [
        op["name"] for op in json.loads(deploy.stdout)["results"]["operations"] if op["success"]
    ]
    assert changed == []  # same settings as the test bed's own inventory: nothing to change
    verify = run_cli("verify", str(new), "--report-dir", str(tmp_path / "reports"), env=env)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    report = json.loads((tmp_path / "reports" / "verify.json").read_text())
    assert report["exit_code"] == 0 and report["summary"]["hosts"] == len(bed.inventory.hosts)
