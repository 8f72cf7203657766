"""The local test bed: booted Debian 12 hosts on this machine, reached over SSH like production.

``up`` builds (once) a base image, then gives each host an overlay, a network namespace on one
bridge, its own SSH host key and a booted systemd; apt goes through a caching proxy on the bridge.
VM hosts (``vms``) boot their own kernel under QEMU from a cached image, on the same bridge; a
service namespace answers time, DNS and the addresses job-egress tests need (servicenet.py).
``down`` removes every process, mount, namespace, link and file that ``up`` made, by the record
``up`` keeps, and sweeps by name for anything a crashed ``up`` did not get to record.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import hosts, image, limits, network, pki, process, proxy, servicenet, vm, vmimage
from . import release as standin_release
from .layout import DEFAULT_RELEASE, RELEASES, Layout
from .state import HostRecord, TestbedState, VmRecord
from .system import require_programs, require_root
from .writer import write_inventory

__all__ = ["Layout", "up", "down", "status", "UpReport"]


MAX_VMS = 8
_STATE_LOCK = threading.Lock()


@dataclass
class UpReport:
    hosts: list[HostRecord]
    image_seconds: float
    total_seconds: float
    inventory: Path
    vms: list[VmRecord]
    vm_image_seconds: float = 0.0
    accel: str = ""


def _record(layout: Layout, index: int, release: str) -> HostRecord:
    name = layout.host_name(index)
    return HostRecord(
        release=release,
        name=name,
        index=index,
        address=str(layout.host_address(index)),
        netns=layout.netns(name),
        veth=layout.veth(name),
        merged=str(layout.host_dir(name) / "merged"),
    )


def up(
    count: int,
    inventory_dir: Path,
    layout: Layout | None = None,
    log=print,
    vms: int | None = None,
    release: str = DEFAULT_RELEASE,
    vm_bootloader: bool = True,
) -> UpReport:
    """Bring ``count`` container hosts and ``vms`` VM hosts of Debian ``release`` up (``None``:
    keep the VMs running), keeping those already running that run it (a host of another
    release is made again), and write the inventory. ``vm_bootloader=False`` leaves new VMs on
    the direct kernel boot (the test bed's own tests of up and down need no GRUB)."""
    from ..model.errors import TestbedError

    layout = layout or Layout()
    require_root()
    require_programs()
    if not 1 <= count <= 200:
        raise TestbedError("--hosts must be between 1 and 200")
    if vms is not None and not 0 <= vms <= MAX_VMS:
        raise TestbedError(f"--vms must be between 0 and {MAX_VMS} (each VM takes 1 GiB)")
    if release not in RELEASES:
        known = ", ".join(f"{name} (Debian {version})" for name, version in RELEASES.items())
        raise TestbedError(f"--release {release}: the test bed boots {known}")
    started = time.monotonic()
    image_seconds = image.build_image(layout, release, log=log)
    state = TestbedState.load(layout.state_file)
    client_key = hosts.ensure_client_key(layout)

    state.bridge = layout.bridge
    state.save(layout.state_file)
    network.ensure_bridge(layout.bridge, layout.bridge_address, layout.subnet)

    if not proxy.running(layout, state.proxy_pid):
        state.proxy_pid = proxy.start(layout)
        state.save(layout.state_file)
    standin = standin_release.prepare(layout)
    if not standin_release.mirror_running(layout, state.mirror_pid):
        state.mirror_pid = standin_release.start_mirror(layout)
        state.save(layout.state_file)
    tls = pki.ensure_pki(layout)
    if not servicenet.running(layout, state.services_pid):
        state.services_pid = servicenet.start(layout)
        state.save(layout.state_file)

    limits.ensure_inotify_for(count, state, lambda: state.save(layout.state_file))
    wanted = [_record(layout, i, release) for i in range(1, count + 1)]
    for name in sorted(set(state.hosts) - {r.name for r in wanted}):
        _remove_host(layout, state.hosts.pop(name))
        state.save(layout.state_file)
    for fresh in wanted:
        kept = state.hosts.get(fresh.name)
        if kept is not None and kept.release != release:  # made again from the other image
            _remove_host(layout, state.hosts.pop(fresh.name))
            state.save(layout.state_file)

    for fresh in wanted:
        record = state.hosts.setdefault(fresh.name, fresh)
        if hosts.running(record):
            continue
        state.save(layout.state_file)
        network.ensure_host_network(
            record.netns,
            record.veth,
            layout.bridge,
            layout.host_address(record.index),
            layout.subnet,
        )
        hosts.mount_overlay(layout, record)
        hosts.personalise(layout, record, client_key)
        record.pid = hosts.boot(layout, record)
        state.save(layout.state_file)

    vm_count = len(state.vms) if vms is None else vms
    vm_image_seconds, accel = 0.0, ""
    if vm_count:
        require_programs(("qemu-system-x86_64", "qemu-img", "mkfs.ext4", "sfdisk"))
        vm_image_seconds = vmimage.build(layout, release, log=log)
        accel = vm.probe_kvm(layout, release, log=log)
        cores = os.cpu_count() or 1
        if accel == "tcg" and vm_count * vm.CPUS > cores:
            # measured: two VMs on two cores stall (RCU stalls, no SSH within minutes)
            raise TestbedError(
                f"--vms {vm_count} needs {vm_count * vm.CPUS} cores under software emulation "
                f"({vm.CPUS} vCPUs each); this machine has {cores}"
            )
    vm_records = _bring_vms_up(layout, state, vm_count, client_key, accel, release)

    records = [state.hosts[r.name] for r in wanted]
    with ThreadPoolExecutor(max_workers=len(records) + len(vm_records)) as pool:
        # hosts boot side by side on this machine's few cores: more hosts, longer to boot
        timeout = max(90.0, 4.0 * len(records))
        vm_timeout = 120.0 + 60.0 * len(vm_records)
        waits = [pool.submit(hosts.wait_for_ssh, record, timeout) for record in records]
        waits += [
            pool.submit(
                _wait_for_vm,
                layout,
                state,
                record,
                client_key,
                accel,
                vm_timeout,
                log,
                vm_bootloader,
            )  # fmt: skip
            for record in vm_records
        ]
        for wait in waits:
            wait.result()

    inventory = write_inventory(layout, records, vm_records, inventory_dir, standin, tls)
    state.written_files = sorted({*state.written_files, *(str(p) for p in inventory.written)})
    state.save(layout.state_file)
    ssh_config = inventory.path.with_name(inventory.path.name + ".ssh_config")
    every: list[HostRecord | VmRecord] = [*records, *vm_records]
    with ThreadPoolExecutor(max_workers=len(every)) as pool:
        states = list(
            pool.map(
                lambda r: hosts.wait_for_boot(
                    ssh_config, r, 300.0 if isinstance(r, VmRecord) else 90.0
                ),
                every,
            )
        )
    for member, boot_state in zip(every, states, strict=True):
        if boot_state != "running":
            log(f"host {member.name} booted {boot_state}: some unit failed (systemctl --failed)")
    return UpReport(
        hosts=records,
        image_seconds=image_seconds,
        total_seconds=time.monotonic() - started,
        inventory=inventory.path,
        vms=vm_records,
        vm_image_seconds=vm_image_seconds,
        accel=accel,
    )


def _wait_for_vm(layout, state, record, client_key, accel, timeout, log, bootloader) -> None:
    """Wait for the VM's SSH; a VM that exits while booting is booted once more (an emulated
    boot can die early), with what qemu said the first time."""

    def fresh_overlay() -> None:
        _boot_vm(layout, state, record, client_key, accel)

    def through_grub() -> None:
        record.pid = vm.boot(layout, record, accel)
        state.save(layout.state_file)

    _wait_or_boot_again(record, timeout, log, fresh_overlay, "once more")
    if record.bootloader or not bootloader:
        return
    # first boot done (direct kernel): GRUB on its own disk, then every boot goes through it
    vm.install_bootloader(layout, record, client_key, timeout)
    with _STATE_LOCK:
        record.bootloader = True
        through_grub()
    # seen once: the boot through GRUB right after the power-off ended at once, with nothing
    # from qemu; the disk is whole (GRUB is on it), so it is booted once more as it is
    _wait_or_boot_again(record, timeout, log, through_grub, "through GRUB once more")


def _wait_or_boot_again(record, timeout: float, log, boot_again, how: str) -> None:
    from ..model.errors import TestbedError

    try:
        vm.wait_for_ssh(record, timeout)
    except TestbedError as exc:
        if vm.running(record):
            raise
        log(f"{exc}; booting {record.name} {how}")
        time.sleep(2)
        with _STATE_LOCK:  # VMs are waited for side by side; the record is saved by one at a time
            boot_again()
        vm.wait_for_ssh(record, timeout)


def _boot_vm(layout, state, record, client_key, accel) -> None:
    vm.stop(record)  # nothing else may hold the disk about to be made again
    state.save(layout.state_file)
    Path(record.directory).mkdir(parents=True, exist_ok=True, mode=0o700)
    vm.create_disk(layout, record)
    record.bootloader = False  # a fresh disk: its first boot is direct
    vm.write_seed(layout, record, client_key)
    vm.ensure_tap(layout, record)
    record.pid = vm.boot(layout, record, accel)
    state.save(layout.state_file)


def _bring_vms_up(
    layout: Layout, state: TestbedState, count: int, client_key: Path, accel: str, release: str
) -> list[VmRecord]:
    """Keep or boot VMs 1..count of ``release``; remove the rest. Each is recorded before it is
    made."""
    wanted = [vm.record_for(layout, i, release) for i in range(1, count + 1)]
    for name, kept in sorted(state.vms.items()):
        if name not in {r.name for r in wanted} or kept.release != release:
            vm.remove(state.vms.pop(name))
            state.save(layout.state_file)
    for fresh in wanted:
        record = state.vms.setdefault(fresh.name, fresh)
        if not vm.running(record):
            _boot_vm(layout, state, record, client_key, accel)
    return [state.vms[r.name] for r in wanted]


def _close_ssh_masters(layout: Layout) -> None:
    control_dir = layout.control_dir
    if not control_dir.is_dir():
        return
    for socket_path in control_dir.iterdir():
        subprocess.run(
            ["ssh", "-O", "exit", "-o", f"ControlPath={socket_path}", "cci-testbed"],
            capture_output=True,
            timeout=10,
        )
    shutil.rmtree(control_dir, ignore_errors=True)


def _remove_host(layout: Layout, record: HostRecord) -> None:
    hosts.stop(record)
    hosts.unmount(Path(record.merged))
    network.delete_host_network(record.netns, record.veth)
    shutil.rmtree(layout.host_dir(record.name), ignore_errors=True)


def down(layout: Layout | None = None, log=print) -> list[str]:
    """Remove everything ``up`` made; return what was removed, for the operator to read."""
    layout = layout or Layout()
    require_root()
    removed: list[str] = []
    state = TestbedState.load(layout.state_file)
    _close_ssh_masters(layout)

    for record in state.hosts.values():
        _remove_host(layout, record)
        removed.append(f"host {record.name}")
    for vm_record in state.vms.values():
        vm.remove(vm_record)
        removed.append(f"VM {vm_record.name}")

    # Sweep: anything a failed `up` started before it could record it.
    hosts_root = str(layout.state_dir / "hosts")
    for pid in process.find_processes(hosts_root, "systemd-nspawn"):
        process.stop(pid, hosts_root)
        removed.append(f"systemd-nspawn pid {pid}")
    with open("/proc/mounts") as mounts:
        ours = [line.split()[1] for line in mounts if line.split()[1].startswith(hosts_root)]
    for mount_point in sorted(ours, reverse=True):
        hosts.unmount(Path(mount_point))
        removed.append(f"mount {mount_point}")
    vms_root = str(layout.state_dir / "vms")
    for pid in process.find_processes(vms_root, vm.QEMU):
        process.stop(pid, vms_root)
        removed.append(f"qemu pid {pid}")
    for tap in network.list_links(layout.prefix + "-tbv"):
        network.delete_link(tap)
        removed.append(f"tap {tap}")
    if servicenet.running(layout, state.services_pid) or process.find_processes(
        servicenet.marker(layout), servicenet.process_name()
    ):
        removed.append("stand-in services")
    servicenet.stop(layout, state.services_pid)
    for netns in network.list_netns(layout.prefix):
        subprocess.run(["ip", "netns", "del", netns], capture_output=True)
        removed.append(f"netns {netns}")

    if proxy.running(layout, state.proxy_pid) or process.find_processes(
        str(proxy.config_dir(layout)), "apt-cacher-ng"
    ):
        removed.append("apt-cacher-ng")
    proxy.stop(layout, state.proxy_pid)
    if standin_release.mirror_running(layout, state.mirror_pid):
        removed.append("release mirror")
    standin_release.stop_mirror(layout, state.mirror_pid)
    if network.link_exists(layout.bridge):
        network.delete_link(layout.bridge)
        removed.append(f"bridge {layout.bridge}")

    restored = limits.restore_inotify(state)
    if restored is not None:
        removed.append(f"raised inotify limit (back to {restored})")
    for written in state.written_files:
        Path(written).unlink(missing_ok=True)
    if layout.state_dir.exists():
        shutil.rmtree(layout.state_dir)
    return removed


@dataclass
class HostStatus:
    name: str
    address: str
    pid: int | None
    running: bool
    ssh: bool
    memory_bytes: int
    vm: bool = False


def status(layout: Layout | None = None) -> tuple[bool, list[HostStatus]]:
    """Whether the proxy runs, and each recorded host's state and memory (one loop for the
    container hosts and the VMs: each module says whether its host runs and what it uses)."""
    layout = layout or Layout()
    state = TestbedState.load(layout.state_file)
    members: list[tuple[HostRecord | VmRecord, Any, float]] = [
        *((record, hosts, 2.0) for record in state.hosts.values()),
        *((record, vm, 3.0) for record in state.vms.values()),
    ]
    result = []
    for record, kind, wait in members:
        alive = kind.running(record)
        ssh_ok = alive and not process.wait_for_banner(record.address, lambda: True, wait, poll=0.2)
        memory = kind.memory_bytes(record)
        result.append(
            HostStatus(
                record.name, record.address, record.pid, alive, ssh_ok, memory, vm=kind is vm
            )
        )
    return proxy.running(layout, state.proxy_pid), result
