"""The local test bed: real booted Debian hosts, reached over SSH with strict host keys."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cci_harden import testbed
from cci_harden.testbed import network, process
from cci_harden.testbed.layout import Layout

from .conftest import TESTBED_HOSTS, ssh

pytestmark = pytest.mark.testbed


def test_hosts_are_booted_debian_with_their_own_identity(testbed):
    assert len(testbed.hosts) == TESTBED_HOSTS
    seen = set()
    for host in testbed.hosts:
        out = ssh(
            testbed,
            host.name,
            "systemctl is-system-running; hostname; . /etc/os-release; echo $VERSION_ID; "
            "cat /etc/machine-id; ip -4 -o addr show eth0",
        ).stdout.split("\n")
        assert out[0] == "running"
        assert out[1] == host.name
        assert out[2] == "12"
        assert f"inet {host.address}/" in out[4]
        seen.add(out[3])
    assert len(seen) == TESTBED_HOSTS  # machine ids differ


def test_hosts_reach_packages_only_through_the_proxy(testbed):
    host = testbed.hosts[0].name
    proxied = ssh(
        testbed,
        host,
        f"apt-get -o Acquire::http::Proxy={testbed.settings.apt.proxy} update",
        check=False,
    )
    assert proxied.returncode == 0, proxied.stderr
    # no default route: nothing but the bridge subnet is reachable from a test host
    assert "default" not in ssh(testbed, host, "ip route").stdout


def test_unknown_host_key_is_refused(testbed, tmp_path):
    host = testbed.hosts[0]
    wrong = tmp_path / "known_hosts"
    other = testbed.known_hosts.read_text().splitlines()[1].split()[1:]
    wrong.write_text(f"{host.address} {' '.join(other)}\n")
    proc = subprocess.run(
        [
            "ssh",
            "-o",
            "BatchMode=yes",
            "-o",
            f"UserKnownHostsFile={wrong}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "ControlPath=none",
            "-i",
            str(testbed.ssh_key),
            f"root@{host.address}",
            "true",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 255
    assert "HOST IDENTIFICATION HAS CHANGED" in proc.stderr or "verification failed" in proc.stderr


def test_up_twice_gives_the_same_hosts(testbed):
    before = {h.name: h.address for h in testbed.hosts}
    report = _up_again()
    assert {r.name: r.address for r in report.hosts} == before
    assert all(r.pid for r in report.hosts)


def _up_again():
    return testbed.up(
        TESTBED_HOSTS, Path(__file__).resolve().parents[1] / "inventories", log=lambda _msg: None
    )


def _leftovers(layout: Layout) -> list[str]:
    found = []
    found += [f"netns {n}" for n in network.list_netns(layout.prefix)]
    if network.link_exists(layout.bridge):
        found.append(f"link {layout.bridge}")
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    found += [
        f"veth {ln.split(':')[1].strip()}"
        for ln in links.splitlines()
        if f" {layout.prefix}-" in ln
    ]
    with open("/proc/mounts") as mounts:
        found += [f"mount {ln.split()[1]}" for ln in mounts if str(layout.state_dir) in ln]
    found += [
        f"nspawn {p}" for p in process.find_processes(str(layout.state_dir), "systemd-nspawn")
    ]
    found += [f"proxy {p}" for p in process.find_processes(str(layout.state_dir), "apt-cacher-ng")]
    found += [
        f"qemu {p}" for p in process.find_processes(str(layout.state_dir), "qemu-system-x86_64")
    ]
    python = os.path.basename(sys.executable)
    found += [f"mirror {p}" for p in process.find_processes(str(layout.state_dir), python)]
    for directory in (layout.state_dir, layout.control_dir):
        if directory.exists():
            found.append(f"dir {directory}")
    return found


@pytest.fixture
def scratch_layout(tmp_path):
    """A second, independent test bed: its own bridge, subnet, names and state directory."""
    import ipaddress

    layout = Layout(
        state_dir=tmp_path / "state",
        subnet=ipaddress.IPv4Network("10.231.9.0/24"),
        bridge="ccidn0",
        prefix="ccidn",
    )
    yield layout
    testbed.down(layout)


def test_down_leaves_nothing(scratch_layout, tmp_path):
    report = testbed.up(
        1, tmp_path / "inv", scratch_layout, log=lambda _m: None, vms=1, vm_bootloader=False
    )
    assert report.hosts[0].pid and report.vms[0].pid
    found = _leftovers(scratch_layout)  # the detector sees a running bed, its VM and tap
    assert any(f.startswith("qemu ") for f in found) and "veth ccidn-tbv1" in found
    testbed.down(scratch_layout)
    assert _leftovers(scratch_layout) == []
    assert not (tmp_path / "inv" / "testbed").exists()


def test_down_after_a_crashed_up_leaves_nothing(scratch_layout, tmp_path):
    testbed.up(1, tmp_path / "inv", scratch_layout, log=lambda _m: None, vms=1, vm_bootloader=False)
    scratch_layout.state_file.unlink()  # the record is lost, as if `up` died mid-way
    testbed.down(scratch_layout)
    assert _leftovers(scratch_layout) == []


def test_not_root_or_missing_program_is_explained(tmp_path):
    from .conftest import BIN

    as_nobody = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            str(BIN / "python"),
            "-m",
            "cci_harden.cli",
            "testbed",
            "up",
            "--hosts",
            "1",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert as_nobody.returncode == 2 and "needs root" in as_nobody.stderr
    no_tools = subprocess.run(
        [str(BIN / "python"), "-m", "cci_harden.cli", "testbed", "up"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        env={"PATH": str(tmp_path)},
    )
    assert no_tools.returncode == 2
    assert "'debootstrap' was not found on PATH; install it with: apt-get install debootstrap" in (
        no_tools.stderr
    )
