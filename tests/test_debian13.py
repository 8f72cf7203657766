"""A Debian 13 (trixie) host on the test bed: refused before any change when its OS or its cgroup
mode is not one the toolkit supports, then converged and verified clean with the release's own
data (OpenSSH 10's key exchange, sysctls only under /etc/sysctl.d, Docker 26's seccomp default).

The container hosts become Debian 13 for this module (``testbed up --release trixie``) and
Debian 12 again after it; it runs after every other container-host module (conftest orders it).
"""

from __future__ import annotations

import json

import pytest

from cci_harden.controls.nomad import CGROUP_DROPIN
from cci_harden.controls.seccomp import PROFILE_PATH
from cci_harden.controls.ssh import DROPIN
from cci_harden.model.releases import CGROUP_V1_FORCE, MLKEM

from .conftest import INVENTORIES, TESTBED_HOSTS, pyinfra_json, run_cli, run_pyinfra, ssh

pytestmark = pytest.mark.testbed

HOST = "tb1"


@pytest.fixture(scope="module")
def trixie_bed():
    """tb1 made fresh from the Debian 13 image (by way of Debian 12, so a Debian 13 host an
    earlier run left is made again), the other hosts gone; Debian 12 hosts again afterwards."""
    for release in ("bookworm", "trixie"):
        proc = run_cli("testbed", "up", "--hosts", "1", "--vms", "0", "--release", release)
        assert proc.returncode == 0, proc.stderr
    from cci_harden.fleet.inventory import Inventory

    try:
        yield Inventory.load(INVENTORIES / "testbed")
    finally:
        proc = run_cli("testbed", "up", "--hosts", str(TESTBED_HOSTS), "--vms", "0", timeout=900)
        assert proc.returncode == 0, proc.stderr


def _untouched(inventory) -> bool:
    probe = ssh(inventory, HOST, f"test -e {DROPIN} || test -e /etc/docker; echo $?").stdout
    return probe.strip() == "1"


def test_the_host_is_debian_13_in_its_release_group(trixie_bed):
    (host,) = trixie_bed.hosts
    assert "debian13" in host.groups
    release = ssh(trixie_bed, HOST, ". /etc/os-release; echo $VERSION_ID $VERSION_CODENAME")
    assert release.stdout.split() == ["13", "trixie"]


def test_an_untested_release_is_refused_before_any_change(trixie_bed):
    os_release = "/etc/os-release"
    ssh(trixie_bed, HOST, f"cp --remove-destination $(readlink -f {os_release}) {os_release}")
    ssh(trixie_bed, HOST, f"sed -i 's/^VERSION_ID=.*/VERSION_ID=\"14\"/' {os_release}")
    try:
        proc = run_pyinfra(trixie_bed.path, "deploys/nomad.py", timeout=300)
    finally:
        ssh(trixie_bed, HOST, f"sed -i 's/^VERSION_ID=.*/VERSION_ID=\"13\"/' {os_release}")
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "debian 14 (trixie) is not a release this toolkit is tested on" in output
    assert "Debian 12 (bookworm), Debian 13 (trixie)" in output
    assert _untouched(trixie_bed)


def test_cgroup_v1_there_is_refused_unless_the_operator_says_so(trixie_bed):
    env = {"CCI_NOMAD__ALLOW_DEPRECATED_CGROUP_V1": "false"}
    proc = run_pyinfra(trixie_bed.path, "deploys/nomad.py", env=env, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Debian 13 (trixie): cgroup v1" in output
    assert "nomad.allow_deprecated_cgroup_v1 = true" in output
    assert _untouched(trixie_bed)


@pytest.fixture(scope="module")
def converged(trixie_bed):
    first = pyinfra_json(trixie_bed.path, "deploys/nomad.py")
    return trixie_bed, first


def test_a_second_converge_changes_nothing(converged):
    inventory, _ = converged
    second = pyinfra_json(inventory.path, "deploys/nomad.py")
    changed = [op["name"] for op in second["results"]["operations"] if op["success"]]
    assert changed == []


def test_verify_passes_with_nothing_failed(converged, tmp_path):
    inventory, _ = converged
    report_path = tmp_path / "verify.json"
    proc = run_cli("verify", str(inventory.path), "--json", str(report_path))
    (host,) = json.loads(report_path.read_text())["hosts"]
    failed = [o for o in host["outcomes"] if o["status"] == "fail"]
    assert failed == [], proc.stdout
    assert proc.returncode == 0, proc.stdout


def test_sshd_offers_openssh_10s_post_quantum_key_exchange_first(converged):
    inventory, _ = converged
    effective = ssh(inventory, HOST, "sshd -T | grep -i '^kexalgorithms'").stdout.split()
    assert effective[1].split(",")[0] == MLKEM
    version = ssh(inventory, HOST, "ssh -V 2>&1").stdout
    assert version.startswith("OpenSSH_10"), version


def test_sysctls_live_in_sysctl_d_and_no_sysctl_conf_is_relied_on(converged):
    inventory, _ = converged
    out = ssh(
        inventory,
        HOST,
        "ls /etc/sysctl.d/*cci-harden*; test -e /etc/sysctl.conf && echo present || echo absent",
    ).stdout.split()
    assert out[0].startswith("/etc/sysctl.d/") and out[-1] == "absent"


def test_docker_26_runs_with_its_own_seccomp_default_and_the_cgroup_flag_is_forced(converged):
    inventory, _ = converged
    engine = ssh(inventory, HOST, "docker version --format '{{.Server.Version}}'").stdout
    assert engine.startswith("26."), engine
    profile = json.loads(ssh(inventory, HOST, f"cat {PROFILE_PATH}").stdout)
    names = {name for rule in profile["syscalls"] for name in rule["names"]}
    assert {"cachestat", "fchmodat2"} <= names  # in Docker 26's default, not in 20.10's
    dropin = ssh(inventory, HOST, f"cat {CGROUP_DROPIN}").stdout
    assert CGROUP_V1_FORCE in dropin  # the test bed allows deprecated v1 explicitly
