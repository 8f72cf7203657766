"""A VM host with its own kernel, converged once, then judged as a CircleCI job sees it.

Container hosts share this machine's kernel, so kernel settings, auditd, containers and time sync
are "not verifiable" there. Here they are real: a QEMU VM on the test bed's bridge, converged by
the main deploy, verified with nothing left unverifiable, and used the way CircleCI's agent uses
a Nomad client: job containers on a network from the address pools, with the installed seccomp
profile, userns-remap, the job-egress rules and sudo; docker-gc's privileged container.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from cci_harden.controls.seccomp import ENGINE_DEFAULTS, docker_default
from cci_harden.testbed.layout import Layout

from .conftest import INVENTORIES, TESTBED_HOSTS, pyinfra_json, run_cli, run_pyinfra, ssh
from .log_collector import running_collector

pytestmark = pytest.mark.testbed

VM = "tbv1"
QUICK_ROLLOUT = {"CCI_ROLLOUT__POLL_SECONDS": "2", "CCI_ROLLOUT__MAX_UNAVAILABLE": "1"}
CGROUP_V1 = "systemd.unified_cgroup_hierarchy=0"
FIXTURES = Path(__file__).parent / "fixtures" / "vm"
JOB_IMAGE = "cci-job:test"
PYTHON_IMAGE = "cci-job:test-python"
EPERM = 1


@pytest.fixture(scope="module")
def vm_bed():
    """A fresh VM host (a VM left by an earlier run is replaced), beside the container hosts."""
    run_cli("testbed", "up", "--hosts", str(TESTBED_HOSTS), "--vms", "0", timeout=900)
    proc = run_cli("testbed", "up", "--hosts", str(TESTBED_HOSTS), "--vms", "1", timeout=1800)
    assert proc.returncode == 0, f"testbed up --vms 1 failed:\n{proc.stderr}"
    from cci_harden.fleet.inventory import Inventory

    return Inventory.load(INVENTORIES / "testbed")


@pytest.fixture(scope="module")
def log_collector(vm_bed, tmp_path_factory):
    """An rsyslog collector on tb3; every deploy and verify in this module forwards the VM's
    logs to it (CCI-OS-08), by the settings' environment variables."""
    directory = tmp_path_factory.mktemp("vm-log-pki")
    with (
        running_collector(vm_bed, "tb3", directory) as collector,
        pytest.MonkeyPatch.context() as env,
    ):
        for name, value in collector.env().items():
            env.setenv(name, value)
        yield collector


@pytest.fixture(scope="module")
def converged(vm_bed, log_collector, tmp_path_factory):
    """The VM after one run of the main deploy, then the rollout that reboots it into cgroup v1
    (CCI-NMD-08), draining it first while a real container runs (shared by every test here)."""
    first = pyinfra_json(vm_bed.path, "deploys/nomad.py", "--limit", "vm")
    build = with_stdin(
        vm_bed, f"sh -s -- {JOB_IMAGE}", (FIXTURES / "build-job-image.sh").read_text()
    )
    assert build.returncode == 0, build.stderr
    container = _job(JOB_IMAGE, 25)  # a build running while the rollout starts
    report = tmp_path_factory.mktemp("vm-rollout") / "rollout.json"
    proc = run_cli(
        "rollout", str(vm_bed.path), "--limit", VM, "--report", str(report),
        env=QUICK_ROLLOUT, timeout=1800,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ROLLOUT.update(json.loads(report.read_text()), job=_job_status(container))
    return vm_bed, first


ROLLOUT: dict = {}  # the record of the rollout that brought the VM to cgroup v1


def test_the_rollout_drained_rebooted_through_grub_and_verified_the_vm(converged):
    """cgroup v1 is a reboot-class change: drain, reboot (the VM's own GRUB reads the drop-in),
    verify, eligible again; Docker runs on cgroup v1."""
    inventory, _ = converged
    (entry,) = ROLLOUT["hosts"]
    assert entry["interruption"] == "a reboot" and "CCI-NMD-08" in entry["why"], entry
    assert entry["drain_started"] and entry["rebooted"] and entry["verify"] == "pass"
    assert entry["eligible_again"] is True and entry["outcome"] == "applied"
    assert ROLLOUT["job"] == "finished"  # the drain waited for it; the reboot came after
    out = on_vm(
        inventory,
        "cat /proc/cmdline; stat -fc %T /sys/fs/cgroup/; docker info -f '{{.CgroupVersion}}'",
    ).stdout.splitlines()
    assert out[0].startswith("BOOT_IMAGE=") and CGROUP_V1 in out[0].split()  # GRUB booted it
    assert out[1:] == ["tmpfs", "1"]


def test_the_vm_group_reaches_exactly_the_vm(converged):
    """hosts[].groups are pyinfra groups: `--limit vm` converged the VM and nothing else."""
    _, first = converged
    touched = {host for op in first["results"]["operations"] for host in op["success"]}
    assert touched == {VM}


def on_vm(inventory, command: str, check: bool = True):
    return ssh(inventory, VM, command, check=check)


def with_stdin(inventory, command: str, stdin: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ssh", "-F", str(inventory.ssh_config), VM, command],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
    )


def docker_run(inventory, arguments: str, check: bool = True, stdin: str | None = None):
    """A job container as CircleCI's agent starts one: on a network from the address pools."""
    if stdin is None:
        return on_vm(inventory, f"docker run --rm --network cci-job-net {arguments}", check=check)
    proc = with_stdin(inventory, f"docker run -i --rm --network cci-job-net {arguments}", stdin)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def job_image(converged):
    inventory, _ = converged
    proc = with_stdin(
        inventory, f"sh -s -- {JOB_IMAGE}", (FIXTURES / "build-job-image.sh").read_text()
    )
    assert proc.returncode == 0, proc.stderr
    on_vm(
        inventory,
        "docker network inspect cci-job-net >/dev/null 2>&1 || docker network create cci-job-net",
    )
    return inventory


def test_vm_host_runs_its_own_kernel_with_time_from_the_test_bed(vm_bed):
    host = next(h for h in vm_bed.hosts if h.name == VM)
    assert "vm" in host.groups
    out = on_vm(
        vm_bed,
        "systemd-detect-virt; timedatectl show-timesync -p ServerAddress --value; "
        "timedatectl show -p NTPSynchronized --value; ip route",
    ).stdout.splitlines()
    assert out[0] == "qemu"  # not a container: a kernel of its own
    assert out[1] == str(Layout().service_address)
    assert out[2] == "yes"
    assert not any(line.startswith("default") for line in out[3:])


def test_a_second_converge_changes_nothing(converged):
    inventory, _ = converged
    second = pyinfra_json(inventory.path, "deploys/nomad.py", "--limit", "vm")
    changed = [op["name"] for op in second["results"]["operations"] if op["success"]]
    assert changed == []


def test_verify_leaves_nothing_unverifiable_on_the_vm(converged, tmp_path):
    inventory, _ = converged
    report_path = tmp_path / "verify.json"
    proc = run_cli("verify", str(inventory.path), "--limit", VM, "--json", str(report_path))
    report = json.loads(report_path.read_text())
    (host,) = report["hosts"]
    by_status: dict[str, list] = {}
    for outcome in host["outcomes"]:
        by_status.setdefault(outcome["status"], []).append(outcome)
    assert by_status.get("fail", []) == [], proc.stdout
    unverifiable = by_status.get("not-verifiable", [])
    # only the stand-in Nomad, which says what it is: a real agent is not in this test bed
    assert [o["control"] for o in unverifiable] == ["CCI-NMD-06"], unverifiable
    assert "stand-in" in json.dumps(unverifiable[0]["findings"])
    assert proc.returncode == 0, proc.stdout


def test_kernel_settings_and_audit_rules_are_live(converged):
    inventory, _ = converged
    values = on_vm(
        inventory,
        "sysctl -n kernel.kptr_restrict kernel.dmesg_restrict kernel.yama.ptrace_scope "
        "fs.protected_symlinks",
    ).stdout.split()
    assert values == ["2", "1", "1", "1"]
    rules = on_vm(inventory, "auditctl -l").stdout
    assert "/etc/docker" in rules, rules
    key = re.search(r"^-w /etc/docker -p \w+ -k (\S+)$", rules, re.M).group(1)
    on_vm(inventory, "touch /etc/docker/daemon.json")
    found = on_vm(inventory, f"ausearch --input-logs -k {key} -f /etc/docker/daemon.json")
    assert "daemon.json" in found.stdout


def test_an_audited_change_reaches_the_log_collector(converged, log_collector):
    """auditd -> audisp-syslog -> rsyslog -> RELP over TLS: the record of a change to
    /etc/docker is at the collector, not only in the VM's own audit log."""
    inventory, _ = converged
    name = f"cci-{uuid.uuid4().hex[:10]}"
    on_vm(inventory, f"touch /etc/docker/{name} && rm /etc/docker/{name}")
    lines = log_collector.wait_for(VM, lambda found: any(name in line for line in found))
    records = [line for line in lines if name in line]
    assert records and all(line.startswith(f"{VM} audisp-syslog ") for line in records), records
    assert any('key="cci-docker"' in line for line in lines if "type=SYSCALL" in line)
    # forwarded, and not written again to the VM's /var/log/syslog (auditd keeps its own log)
    assert on_vm(inventory, f"grep -c {name} /var/log/syslog", check=False).stdout.strip() == "0"


def test_job_namespaces_are_allowed_and_what_docker_refuses_stays_refused(job_image):
    inventory = job_image
    probe = (FIXTURES / "ns_probe.py").read_text()
    ours = json.loads(docker_run(inventory, f"{PYTHON_IMAGE} python3.11 -", stdin=probe).stdout)
    assert ours == {
        "keyctl": EPERM,
        "unshare_user": 0,
        "unshare_net_mount_uts": 0,
        "setns": 0,
        "clone": 0,
    }
    # the same probe under the engine's own default profile: CircleCI's addition is what allows
    engine = on_vm(inventory, "docker version -f '{{.Server.Version}}'").stdout.strip()
    default = next(p for p in ENGINE_DEFAULTS if engine.startswith(p.engine + "."))
    with_stdin(
        inventory, "cat > /tmp/docker-default.json", json.dumps(docker_default(default.engine))
    )
    stock = json.loads(
        docker_run(
            inventory,
            f"--security-opt seccomp=/tmp/docker-default.json {PYTHON_IMAGE} python3.11 -",
            stdin=probe,
        ).stdout
    )
    assert stock["unshare_user"] == EPERM
    unconfined = json.loads(
        docker_run(
            inventory, f"--security-opt seccomp=unconfined {PYTHON_IMAGE} python3.11 -", stdin=probe
        ).stdout
    )
    assert unconfined["keyctl"] != EPERM  # the profile, not the kernel, refuses keyctl


def test_root_in_a_job_is_an_unprivileged_uid_on_the_host(job_image):
    inventory = job_image
    uid_map = docker_run(inventory, f"{JOB_IMAGE} cat /proc/self/uid_map").stdout.split()
    assert uid_map[0] == "0" and int(uid_map[1]) >= 100000, uid_map
    host_uid = on_vm(
        inventory,
        f"id=$(docker run -d --network cci-job-net {JOB_IMAGE} sleep 60); "
        "pid=$(docker inspect -f '{{.State.Pid}}' $id); stat -c %u /proc/$pid; "
        "docker rm -f $id >/dev/null",
    ).stdout.strip()
    assert int(host_uid) == int(uid_map[1])


def test_job_network_comes_from_the_configured_pools(job_image):
    inventory = job_image
    subnet = on_vm(
        inventory, "docker network inspect -f '{{(index .IPAM.Config 0).Subnet}}' cci-job-net"
    ).stdout.strip()
    pools = [ipaddress.ip_network(p.base) for p in inventory.settings.docker.address_pools]
    assert any(ipaddress.ip_network(subnet).subnet_of(pool) for pool in pools), subnet


def test_sudo_works_in_a_job_image(job_image):
    inventory = job_image
    script = "grep NoNewPrivs /proc/self/status; sudo -n id -u"
    out = docker_run(inventory, f"--user 3434 {JOB_IMAGE} sh -c '{script}'").stdout.split()
    assert out == ["NoNewPrivs:", "0", "0"]


def test_docker_gc_runs_privileged_in_the_host_user_namespace(job_image):
    inventory = job_image
    out = on_vm(
        inventory, f"docker run --rm --privileged --userns=host {JOB_IMAGE} cat /proc/self/uid_map"
    ).stdout.split()
    assert out == ["0", "0", "4294967295"]


def _egress(inventory) -> dict[str, bool]:
    """What one job container reaches, and what the host itself reaches, on the test bed."""
    layout = Layout()
    targets = {"metadata": layout.metadata_address, "internal": layout.internal_address}
    # sh is the container's PID 1 so that `timeout` can end a wget stuck on a dropped SYN
    # (PID 1 ignores SIGTERM); the same URLs from the host, in one python
    urls = " ".join(f"http://{address}/" for address in targets.values())
    job_script = (
        f"for url in {urls}; do timeout 5 wget -q -O - $url; done; "
        f"timeout 10 nslookup build.example.test {layout.resolver_address}"
    )
    job = docker_run(inventory, f"{JOB_IMAGE} sh -c '{job_script}'", check=False).stdout
    fetch = (
        "import urllib.request as u\n"
        f"for url in {[f'http://{a}/' for a in targets.values()]!r}:\n"
        "    try: print(u.urlopen(url, timeout=5).read().decode())\n"
        "    except OSError as e: print(url, e)\n"
    )
    host = with_stdin(inventory, "python3 -", fetch).stdout
    reached = {}
    for name, address in targets.items():
        reached[f"job:{name}"] = f"cci-testbed {address}" in job
        reached[f"host:{name}"] = f"cci-testbed {address}" in host
    reached["job:dns"] = f"Address: {layout.internal_address}" in job
    return reached


EGRESS_EXPECTED = {
    "job:metadata": False,
    "job:internal": False,
    "host:metadata": True,
    "host:internal": True,
    "job:dns": True,
}


def test_job_egress_is_blocked_after_a_reboot_and_a_docker_restart(job_image):
    """The rollout rebooted the VM after the deploy: what runs now came up from boot (the
    firewall unit, Docker's rules, /etc/sysctl.d), then survives a Docker restart."""
    inventory = job_image
    (entry,) = ROLLOUT["hosts"]
    assert entry["rebooted"]
    assert _egress(inventory) == EGRESS_EXPECTED
    assert on_vm(inventory, "sysctl -n kernel.kptr_restrict").stdout.strip() == "2"
    on_vm(inventory, "systemctl restart docker")
    assert _egress(inventory) == EGRESS_EXPECTED


# -- changing the VM while a real container runs -------------------------------------------------


def _job(image: str, seconds: int) -> str:
    proc = run_cli("testbed", "job", VM, "--image", image, "--seconds", str(seconds))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["unit"]


def _job_status(unit: str) -> str:
    proc = run_cli("testbed", "job", "--status")
    assert proc.returncode == 0, proc.stderr
    return next(job["status"] for job in json.loads(proc.stdout) if job["unit"] == unit)


def _started_at(inventory, container: str) -> str:
    return on_vm(inventory, f"docker inspect -f '{{{{.State.StartedAt}}}}' {container}").stdout


def test_a_container_survives_a_reload_and_a_rollout_waits_for_it_before_a_restart(
    job_image, tmp_path
):
    inventory = job_image
    container = _job(JOB_IMAGE, 90)
    started = _started_at(inventory, container)
    mirror = {"CCI_DOCKER__REGISTRY_MIRRORS": f'["http://{Layout().service_address}:5000/"]'}
    # a key dockerd rereads on SIGHUP: the plain deploy applies it on a busy host, by a reload
    deploy = run_pyinfra(inventory.path, "deploys/nomad.py", "--limit", VM, env=mirror)
    assert deploy.returncode == 0, deploy.stderr[-3000:]
    assert "reload docker" in deploy.stdout + deploy.stderr
    mirrors = on_vm(inventory, "docker info -f '{{json .RegistryConfig.Mirrors}}'").stdout
    assert str(Layout().service_address) in mirrors
    assert _job_status(container) == "running" and _started_at(inventory, container) == started

    # a key that needs a restart: refused while the container runs, then drained by the rollout
    restart = {**mirror, "CCI_DOCKER__LOG_MAX_SIZE": "14m"}
    refused = run_pyinfra(inventory.path, "deploys/nomad.py", "--limit", VM, env=restart)
    assert refused.returncode != 0 and f"refusing host {VM}" in refused.stdout + refused.stderr
    report = tmp_path / "rollout.json"
    proc = run_cli(
        "rollout", str(inventory.path), "--limit", VM, "--report", str(report),
        env={**QUICK_ROLLOUT, **restart}, timeout=1200,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (entry,) = json.loads(report.read_text())["hosts"]
    assert entry["outcome"] == "applied" and entry["eligible_again"] and entry["drain_started"]
    assert _job_status(container) == "finished"  # it ran to its end before Docker restarted
    daemon = json.loads(on_vm(inventory, "cat /etc/docker/daemon.json").stdout)
    assert daemon["log-opts"]["max-size"] == "14m"
    # back to the inventory's settings, nothing running: the plain deploy may restart Docker
    back = run_pyinfra(inventory.path, "deploys/nomad.py", "--limit", VM)
    assert back.returncode == 0, back.stderr[-3000:]
