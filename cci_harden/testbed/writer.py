"""Write ``inventories/testbed`` and the files beside it that pyinfra and testinfra read."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..fleet.inventory import Inventory
from ..fleet.sshconfig import render_ssh_config
from . import hosts
from .layout import DEFAULT_RELEASE, RELEASES, Layout
from .pki import Pki
from .release import Release
from .state import HostRecord, VmRecord

INVENTORY_NAME = "testbed"
VM_GROUP = "vm"

INVENTORY_FILE = '''\
"""The local test bed, written by `cci-harden testbed up`; its settings are in testbed.toml.

Run: pyinfra inventories/testbed deploys/nomad.py
"""

from cci_harden.fleet.inventory import pyinfra_groups

# nomad_clients (every host), and a group for each name in hosts[].groups
globals().update(pyinfra_groups(__file__))
'''


@dataclass
class WrittenInventory:
    path: Path
    written: list[Path] = field(default_factory=list)


def _q(value: str) -> str:
    return json.dumps(value)


def render_settings(
    layout: Layout,
    records: list[HostRecord],
    vms: list[VmRecord],
    standin: Release,
    tls: Pki,
) -> str:
    def line(record: HostRecord | VmRecord, *groups: str) -> str:
        # a group per Debian release (debian12, debian13), for --limit and the tests
        names = ", ".join(_q(g) for g in (*groups, f"debian{RELEASES[record.release]}"))
        address = _q(record.address)
        return f"  {{ name = {_q(record.name)}, address = {address}, groups = [{names}] }}"

    host_lines = ",\n".join([line(r) for r in records] + [line(v, VM_GROUP) for v in vms])
    subnet = _q(str(layout.subnet))
    every: list[HostRecord | VmRecord] = [*records, *vms]
    newer = sorted({r.release for r in every} - {DEFAULT_RELEASE})
    cgroup = (
        "# Debian 13's systemd boots cgroup v1 (the mode CircleCI documents for Docker) only when\n"
        "# forced, and is removing it: the test bed says so explicitly, as an operator must\n"
        "allow_deprecated_cgroup_v1 = true\n"
        if newer
        else ""
    )
    return f"""\
# Settings of the local test bed, written by `cci-harden testbed up`.
name = "testbed"

[server]
version = "4.8"

[inventory]
ssh_user = "root"
ssh_key = {_q(str(layout.client_key))}
known_hosts = "testbed.known_hosts"
ssh_config = "testbed.ssh_config"
hosts = [
{host_lines},
]

[apt]
proxy = {_q(layout.proxy_url)}

[network]
admin_cidrs = [{subnet}]
nomad_server_cidrs = [{subnet}]
cluster_cidrs = [{subnet}]
rerun_ssh_cidrs = [{subnet}]
vm_subnet_cidrs = [{subnet}]
# the stand-in services' namespace: time for every host; a range jobs must not reach, with
# the hosts' resolver inside it (jobs keep DNS to it, nothing else)
ntp_servers = [{_q(str(layout.service_address))}]
blocked_job_cidrs = [{_q(str(layout.blocked_cidr))}]


[nomad]
version = {_q(standin.version)}
install_source = "mirror"
release_url = {_q(standin.base_url)}
gpg_fingerprint = {_q(standin.fingerprint)}
gpg_key_file = {_q(str(standin.public_key))}
servers = [{_q(f"{layout.bridge_address}:4647")}]
# Test-bed deviation: its hosts share this machine's {os.cpu_count()} CPUs, so one core is
# reserved instead of the two CircleCI documents (the capacity check refuses two here, as it
# should).
reserved_cpu_cores = 1
{cgroup}
[nomad.tls]
ca_file = {_q(str(tls.ca_file))}
cert_file = {_q(str(tls.cert_file))}
key_file = {_q(str(tls.key_file))}

[docker]
install_source = "docker.io"
# containers cannot start inside a test host; vfs is the driver dockerd can run with there
storage_driver = "vfs"
"""


def write_inventory(
    layout: Layout,
    records: list[HostRecord],
    vms: list[VmRecord],
    directory: Path,
    standin: Release,
    tls: Pki,
) -> WrittenInventory:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / INVENTORY_NAME
    result = WrittenInventory(path=path)

    def write(target: Path, text: str) -> None:
        target.write_text(text)
        result.written.append(target.resolve())

    write(path, INVENTORY_FILE)
    write(directory / f"{INVENTORY_NAME}.toml", render_settings(layout, records, vms, standin, tls))
    every: list[HostRecord | VmRecord] = [*records, *vms]
    write(
        directory / f"{INVENTORY_NAME}.known_hosts",
        "".join(hosts.known_hosts_line(layout, r) + "\n" for r in every),
    )
    control_dir = layout.control_dir
    control_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    inventory = Inventory.load(path)
    write(
        directory / f"{INVENTORY_NAME}.ssh_config",
        render_ssh_config(inventory, control_dir, include=False),
    )
    return result
