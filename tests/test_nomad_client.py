"""The Nomad client deploy on the test bed: what it writes, what it refuses, what it restarts."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
from pathlib import Path

import hcl2
import pytest

from cci_harden.apply.release import BINARY, RECORD
from cci_harden.controls.nomad import CONFIG, KEY_FILE, TLS_DIR
from cci_harden.controls.seccomp import PROFILE_PATH
from cci_harden.testbed import release
from cci_harden.testbed.layout import Layout

from .conftest import changed_hosts, pyinfra_json, run_cli, run_pyinfra, ssh

pytestmark = pytest.mark.testbed


def host_json(inventory, host: str, path: str) -> dict:
    return json.loads(ssh(inventory, host, f"cat {path}").stdout)


def unquote(value: str) -> str:
    """python-hcl2 keeps the quotes of HCL strings."""
    return value.strip('"')


def main_pid(inventory, host: str, unit: str) -> str:
    return ssh(inventory, host, f"systemctl show -p MainPID --value {unit}").stdout.strip()


def test_docker_runs_with_circleci_settings_and_the_seccomp_profile(deployed):
    inventory, _ = deployed
    host = inventory.hosts[0].name
    config = host_json(inventory, host, "/etc/docker/daemon.json")
    assert config["userns-remap"] == "default"
    assert config["default-address-pools"] == [{"base": "10.10.0.0/16", "size": 24}]
    assert config["live-restore"] is True and config["no-new-privileges"] is False
    assert config["log-opts"] == {"max-size": "10m", "max-file": "3"}
    info = ssh(inventory, host, "docker info --format '{{json .SecurityOptions}}'").stdout
    assert f"profile={PROFILE_PATH}" in info and "name=userns" in info
    profile = host_json(inventory, host, PROFILE_PATH)
    assert profile["syscalls"][-1]["names"] == ["clone", "setns", "unshare"]


def test_nomad_is_the_named_stand_in_installed_with_its_checks(deployed):
    inventory, result = deployed
    host = inventory.hosts[0].name
    version = ssh(inventory, host, f"{BINARY} version").stdout
    assert "stand-in, not Nomad" in version
    record = ssh(inventory, host, f"cat {RECORD}").stdout
    binary_sha = ssh(inventory, host, f"sha256sum < {BINARY}").stdout.split()[0]
    assert f"binary_sha256={binary_sha}" in record and "version=1.6.3" in record


def test_client_hcl_carries_the_reservation_from_host_facts(deployed):
    inventory, _ = deployed
    host = inventory.hosts[1].name
    parsed = hcl2.loads(ssh(inventory, host, f"cat {CONFIG}").stdout)
    client = parsed["client"][0]
    assert unquote(client["node_class"]) == "linux-64bit" and client["enabled"] is True
    mhz = int(
        ssh(
            inventory, host, "awk -F': ' '/^cpu MHz/ {printf \"%d\", $2; exit}' /proc/cpuinfo"
        ).stdout.strip()
    )
    reserved = client["reserved"][0]
    cores = inventory.settings.nomad.reserved_cpu_cores
    assert reserved["cpu"] == cores * mhz and reserved["memory"] == 4096
    assert parsed["plugin"][0]['"raw_exec"']["config"][0]["enabled"] is True
    tls = parsed["tls"][0]
    assert tls["rpc"] is True and tls["verify_server_hostname"] is True
    assert (
        unquote(parsed["addresses"][0]["http"]) == "127.0.0.1"
    )  # the API is not exposed by default


def test_tls_key_is_root_only_in_a_root_only_directory(deployed):
    inventory, _ = deployed
    host = inventory.hosts[2].name
    assert ssh(inventory, host, f"stat -c '%a %U' {TLS_DIR} {KEY_FILE}").stdout.split() == [
        "700",
        "root",
        "600",
        "root",
    ]


def test_nomad_unit_is_ordered_after_docker_and_running(deployed):
    inventory, _ = deployed
    host = inventory.hosts[0].name
    shown = ssh(
        inventory, host, "systemctl show -p After -p LimitNOFILE -p ActiveState nomad"
    ).stdout
    assert "docker.service" in shown and "LimitNOFILE=65536" in shown
    assert "ActiveState=active" in shown


def test_public_ipv4_for_rerun_with_ssh(deployed):
    inventory, _ = deployed
    entry = inventory.hosts[1]
    assert ssh(inventory, entry.name, "cat /etc/circleci/public-ipv4").stdout == (
        f"{entry.address}\n"
    )


def _connect(address: str, port: int) -> str:
    try:
        with socket.create_connection((address, port), timeout=1.5):
            return "open"
    except ConnectionRefusedError:
        return "refused"  # reached the host: nothing listens
    except TimeoutError:
        return "dropped"


def test_ingress_admits_listed_ports_and_drops_the_rest(deployed):
    inventory, _ = deployed
    address = inventory.hosts[0].address
    assert _connect(address, 22) == "open"
    assert _connect(address, 4647) == "refused"  # allowed from the Nomad networks
    assert _connect(address, 4646) == "dropped"  # HTTP API not opened by default
    assert _connect(address, 8080) == "dropped"


def test_job_egress_rules_survive_a_docker_restart(deployed):
    inventory, _ = deployed
    host = inventory.hosts[2].name
    ssh(inventory, host, "systemctl restart docker")
    listing = ssh(inventory, host, "nft list table inet cci_jobs").stdout
    assert "169.254.0.0/16" in listing and 'iifname "br-*"' in listing
    enabled = ssh(inventory, host, "systemctl is-enabled cci-harden-firewall").stdout.strip()
    assert enabled == "enabled"
    assert run_cli("verify", str(inventory.path), "--limit", host).returncode == 0


def test_firewall_rule_deleted_at_runtime_is_drift_and_the_deploy_restores_it(deployed):
    inventory, _ = deployed
    host = inventory.hosts[1].name
    handle = ssh(
        inventory,
        host,
        "nft -a list chain inet cci_ingress input | awk '/rerun job with SSH/ {print $NF; exit}'",
    ).stdout.strip()
    ssh(inventory, host, f"nft delete rule inet cci_ingress input handle {handle}")
    proc = run_cli("verify", str(inventory.path))
    assert proc.returncode == 1
    failures = [line for line in proc.stdout.splitlines() if line.startswith("FAIL ")]
    assert failures == [
        f"FAIL {host} CCI-NET-01 nftables table inet cci_ingress: expected rules as loaded, "
        "found changed at runtime"
    ]
    result = pyinfra_json(inventory.path, "deploys/nomad.py")
    assert changed_hosts(result) == {
        "[CCI-NET-01] restart cci-harden-firewall (table cci_ingress drifted)": [host]
    }
    assert run_cli("verify", str(inventory.path)).returncode == 0


def test_a_setting_change_restarts_docker_but_not_nomad(deployed):
    inventory, _ = deployed
    host = inventory.hosts[0].name
    docker_before, nomad_before = (
        main_pid(inventory, host, "docker"),
        main_pid(inventory, host, "nomad"),
    )
    env = {"CCI_DOCKER__LOG_MAX_FILES": "5"}
    proc = run_pyinfra(inventory.path, "deploys/nomad.py", "--json", "--limit", host, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    changed = changed_hosts(json.loads(proc.stdout))
    assert set(changed) == {
        "[CCI-DKR-02] /etc/docker/daemon.json",
        "[CCI-DKR-02] restart docker (/etc/docker/daemon.json changed)",
    }
    assert main_pid(inventory, host, "docker") != docker_before
    assert main_pid(inventory, host, "nomad") == nomad_before
    restored = pyinfra_json(inventory.path, "deploys/nomad.py")
    assert set(changed_hosts(restored)) == {
        "[CCI-DKR-02] /etc/docker/daemon.json",
        "[CCI-DKR-02] restart docker (/etc/docker/daemon.json changed)",
    }


def test_reservation_edited_on_a_host_is_drift_and_repair_restarts_nomad(deployed):
    inventory, _ = deployed
    host = inventory.hosts[2].name
    nomad_before = main_pid(inventory, host, "nomad")
    ssh(inventory, host, f"sed -i 's/memory         = 4096/memory         = 512/' {CONFIG}")
    proc = run_cli("verify", str(inventory.path))
    assert proc.returncode == 1 and f"FAIL {host} CCI-NMD-04 {CONFIG}:" in proc.stdout
    result = pyinfra_json(inventory.path, "deploys/nomad.py")
    assert changed_hosts(result) == {
        f"[CCI-NMD-04] {CONFIG}": [host],
        f"[CCI-NMD-04] restart nomad ({CONFIG} changed)": [host],
    }
    assert main_pid(inventory, host, "nomad") != nomad_before


# -- refusals --------------------------------------------------------------------------------------


def _other_key_signature(sums: Path) -> None:
    """Sign ``sums`` with a key nobody pinned."""
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "GNUPGHOME": home}
        gpg = ["gpg", "--batch", "--quiet", "--passphrase", ""]
        subprocess.run(
            [*gpg, "--quick-gen-key", "intruder", "ed25519", "sign", "never"],
            env=env,
            check=True,
            capture_output=True,
        )
        sig = sums.with_name(sums.name + ".sig")
        sig.unlink(missing_ok=True)
        subprocess.run(
            [*gpg, "--detach-sign", "-o", str(sig), str(sums)],
            env=env,
            check=True,
            capture_output=True,
        )


@pytest.mark.parametrize("defect", ["tampered-archive", "unpinned-signature"])
def test_bad_release_is_refused_and_nothing_is_installed(deployed, defect):
    inventory, _ = deployed
    host = inventory.hosts[0].name
    layout = Layout()
    good = release.zip_bytes("#!/bin/sh\necho good\n")
    evil = release.zip_bytes("#!/bin/sh\necho evil\n")
    directory = layout.mirror_dir / defect
    if (
        defect == "tampered-archive"
    ):  # the signed sums list the good archive; the evil one is served
        release.publish(layout, directory, "1.6.4", evil, sums_archive=good)
        reason = "does not match its signed SHA256SUMS"
    else:
        target = release.publish(layout, directory, "1.6.4", evil, sign=False)
        _other_key_signature(target / "nomad_1.6.4_SHA256SUMS")
        reason = "has no valid signature by the pinned key"
    before = ssh(inventory, host, f"sha256sum {BINARY} {RECORD}").stdout
    env = {
        "CCI_NOMAD__VERSION": "1.6.4",
        "CCI_NOMAD__RELEASE_URL": f"{layout.mirror_url}/{defect}",
    }
    proc = run_pyinfra(inventory.path, "deploys/nomad.py", "--limit", host, env=env)
    assert proc.returncode != 0
    assert "refusing Nomad 1.6.4: nomad_1.6.4_" in proc.stdout + proc.stderr
    assert reason in proc.stdout + proc.stderr
    assert ssh(inventory, host, f"sha256sum {BINARY} {RECORD}").stdout == before
    leftovers = ssh(inventory, host, "ls /var/tmp | grep -c cci-nomad || true").stdout.strip()
    assert leftovers == "0"
    assert run_cli("verify", str(inventory.path), "--limit", host).returncode == 0


def test_host_too_small_for_the_documented_reservation_is_refused_untouched(deployed):
    inventory, _ = deployed
    host = inventory.hosts[1].name
    env = {"CCI_NOMAD__RESERVED_CPU_CORES": "2", "CCI_DOCKER__LOG_MAX_FILES": "7"}
    proc = run_pyinfra(inventory.path, "deploys/nomad.py", "--limit", host, env=env)
    assert proc.returncode != 0
    assert f"refusing host {host}: 2 CPUs" in proc.stdout + proc.stderr
    assert (
        "cannot hold the reservation (2 CPUs / 4096 MB) plus one job" in proc.stdout + proc.stderr
    )
    # the daemon.json change that came after the refusal was never made
    assert host_json(inventory, host, "/etc/docker/daemon.json")["log-opts"]["max-file"] == "3"


def test_secret_key_never_reaches_the_output_of_a_verbose_diff_run(deployed):
    inventory, _ = deployed
    host = inventory.hosts[2].name
    key_text = Path(inventory.settings.nomad.tls.key_file).read_text()
    body = [line for line in key_text.splitlines() if line and "-----" not in line]
    ssh(inventory, host, f"rm -f {KEY_FILE}")
    proc = run_pyinfra(inventory.path, "deploys/nomad.py", "-vvv", "--diff", "--limit", host)
    assert proc.returncode == 0, proc.stderr[-2000:]
    output = proc.stdout + proc.stderr
    assert f"Will create {KEY_FILE} (secret: contents not shown)" in output
    for line in body:
        assert line not in output
    report = run_cli("verify", str(inventory.path))
    assert report.returncode == 0
    for line in body:
        assert line not in report.stdout + report.stderr


def test_restricted_egress_ruleset_is_accepted_by_nft_on_a_host(deployed):
    """network.restrict_egress renders an output chain that nftables itself accepts."""
    from cci_harden.config.settings import LoggingSettings
    from cci_harden.controls.network import ingress_nft
    from cci_harden.model.hostinfo import HostInfo

    inventory, _ = deployed
    settings = inventory.settings.model_copy(
        update={
            "network": inventory.settings.network.model_copy(
                update={
                    "restrict_egress": True,
                    "vcs_cidrs": inventory.settings.network.admin_cidrs,
                }
            ),
            "logging": LoggingSettings(collector="10.231.0.250", ca_file="ca.pem"),
        }
    )
    info = HostInfo(2, 4096, "debian", "12", "tb", nameservers=("192.0.2.53",))
    text = ingress_nft(settings, info)
    assert "chain output" in text and "policy drop" in text
    assert "tcp dport 2514 ip daddr @log_collector_v4 accept" in text  # RELP by default
    assert 'dport { 22, 2376 } ip daddr @vm_v4 accept comment "VM service: SSH, Docker"' in text
    host = inventory.hosts[0].name
    check = subprocess.run(
        ["ssh", "-F", str(inventory.ssh_config), host, "nft -c -f -"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr
