"""One VM host: QEMU booting the VM image's kernel, on the test bed's bridge through a tap device.

A VM has its own kernel, so what a container host cannot show (kernel sysctls, auditd's rules,
containers, time sync) is real on it. Its disk is a copy-on-write overlay of the cached image; its
identity (name, address, SSH host key made here before boot, the admin key, time server and
resolver on the test bed) comes from a small seed disk the image reads at first boot. The VM has no
default route: the bridge is all it can reach.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from ..model.errors import TestbedError
from . import network, process, vmimage
from .layout import DEFAULT_RELEASE, Layout
from .state import VmRecord
from .system import run

QEMU = "qemu-system-x86_64"
# The smallest client the capacity check accepts with the test bed's one reserved core: room for
# the reservation (4 GiB) plus one job (1 CPU, 2 GiB). Guest memory is backed only as it is
# touched, so a VM stays near 1 GiB resident.
MEMORY_MIB = 6656
CPUS = 2


def record_for(layout: Layout, index: int, release: str = DEFAULT_RELEASE) -> VmRecord:
    name = layout.vm_name(index)
    return VmRecord(
        release=release,
        name=name,
        index=index,
        address=str(layout.vm_address(index)),
        tap=layout.tap(name),
        mac=f"52:54:00:cc:00:{index:02x}",
        directory=str(layout.vm_dir(name)),
    )


def marker(record: VmRecord) -> str:
    return str(Path(record.directory) / "disk.qcow2")


def running(record: VmRecord) -> bool:
    return process.owns(record.pid, marker(record))


def _network_file(layout: Layout, record: VmRecord) -> str:
    return (
        f"[Match]\nMACAddress={record.mac}\n\n"
        f"[Network]\nAddress={record.address}/{layout.subnet.prefixlen}\n"
        "LinkLocalAddressing=no\nIPv6AcceptRA=no\n\n"
        # the cloud metadata address answers on the bridge, as on a cloud VM's own link
        f"[Route]\nDestination={layout.metadata_address}/32\nScope=link\n"
    )


def write_seed(layout: Layout, record: VmRecord, client_key: Path) -> Path:
    """The seed disk: the files the VM copies into place at its first boot."""
    from .hosts import ensure_host_key

    directory = Path(record.directory)
    tree = directory / "seed" / "root"
    if tree.parent.exists():
        shutil.rmtree(tree.parent)
    host_key = ensure_host_key(layout, record.name, directory)
    files = {
        "etc/hostname": record.name + "\n",
        "etc/hosts": f"127.0.0.1 localhost\n{record.address} {record.name}\n",
        "etc/resolv.conf": f"nameserver {layout.resolver_address}\n",
        "etc/systemd/network/10-testbed.network": _network_file(layout, record),
        "etc/systemd/timesyncd.conf.d/10-testbed.conf": (
            f"[Time]\nNTP={layout.service_address}\nFallbackNTP=\n"
        ),
        "etc/ssh/ssh_host_ed25519_key.pub": Path(f"{host_key}.pub").read_text(),
        "root/.ssh/authorized_keys": Path(f"{client_key}.pub").read_text(),
    }
    for relative, text in files.items():
        target = tree / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    private = tree / "etc/ssh/ssh_host_ed25519_key"
    private.write_bytes(host_key.read_bytes())
    for path, mode in ((private, 0o600), (tree / "root/.ssh", 0o700), (tree / "root", 0o700)):
        path.chmod(mode)
    (tree / "root/.ssh/authorized_keys").chmod(0o600)
    seed = directory / "seed.img"
    seed.unlink(missing_ok=True)
    run(["truncate", "-s", "16M", str(seed)])
    seed.chmod(0o600)  # it carries the VM's private host key
    run(["mkfs.ext4", "-q", "-F", "-L", vmimage.SEED_LABEL, "-d", str(tree.parent), str(seed)])
    shutil.rmtree(tree.parent)  # the disk is the one copy the VM needs
    return seed


def create_disk(layout: Layout, record: VmRecord) -> None:
    disk = Path(marker(record))
    disk.unlink(missing_ok=True)
    base = vmimage.image_dir(layout, record.release) / "disk.raw"
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "raw", str(disk)])
    disk.chmod(0o600)  # the VM writes its host key and everything else into it


def ensure_tap(layout: Layout, record: VmRecord) -> None:
    if not network.link_exists(record.tap):
        run(["ip", "tuntap", "add", "dev", record.tap, "mode", "tap"])
    run(["ip", "link", "set", record.tap, "master", layout.bridge, "up"])


def _accel_arguments(accel: str) -> list[str]:
    if accel == "kvm":
        return ["-accel", "kvm", "-cpu", "host"]
    return ["-accel", "tcg,tb-size=256", "-cpu", "max"]


def boot(layout: Layout, record: VmRecord, accel: str) -> int:
    """The VM's first boot loads the image's kernel directly; once GRUB is on its disk
    (``record.bootloader``) it boots from the disk, as a cloud instance does, so the kernel
    command line is the one its own GRUB configuration gives (and a reboot reads it again)."""
    image = vmimage.image_dir(layout, record.release)
    directory = Path(record.directory)
    direct = [
        "-kernel",
        str(image / "vmlinuz"),
        "-initrd",
        str(image / "initrd.img"),
        "-append",
        f"root=LABEL={vmimage.ROOT_LABEL} rw console=ttyS0 systemd.hostname={record.name}",
    ]
    cmd = [
        QEMU,
        "-name",
        record.name,
        *_accel_arguments(accel),
        "-smp",
        str(CPUS),
        "-m",
        str(MEMORY_MIB),
        "-nodefaults",
        "-display",
        "none",
        "-monitor",
        "none",
        "-serial",
        f"file:{directory / 'console.log'}",
        *([] if record.bootloader else direct),
        "-drive",
        f"file={marker(record)},if=virtio,format=qcow2",
        "-drive",
        f"file={directory / 'seed.img'},if=virtio,format=raw,readonly=on",
        "-netdev",
        f"tap,id=net0,ifname={record.tap},script=no,downscript=no",
        "-device",
        f"virtio-net-pci,netdev=net0,mac={record.mac}",
        "-device",
        "virtio-rng-pci",
    ]
    return process.spawn(cmd, directory / "qemu.log")


def wait_for_ssh(record: VmRecord, timeout: float) -> None:
    """Wait until sshd on the VM answers with its protocol banner."""
    outcome = process.wait_for_banner(
        record.address, lambda: running(record), timeout, poll=0.5, read_timeout=5.0
    )
    if outcome == "stopped":
        raise TestbedError(
            f"VM {record.name} stopped while booting; qemu said: {_last_words(record)}"
        )
    if not outcome:
        return
    raise TestbedError(
        f"VM {record.name} ({record.address}) did not answer on SSH in {timeout:.0f}s; "
        f"see {record.directory}/console.log"
    )


INSTALL_BOOTLOADER = (
    "set -e; grub-install --target=i386-pc /dev/vda >/dev/null 2>&1 || grub-install "
    "--target=i386-pc /dev/vda; update-grub >/dev/null 2>&1; sync; systemctl poweroff"
)


def install_bootloader(layout: Layout, record: VmRecord, client_key: Path, timeout: float) -> None:
    """GRUB on the VM's own disk, its configuration made by the guest's update-grub; the VM is
    powered off for the test bed to boot it from the disk."""
    from .hosts import known_hosts_line

    known = Path(record.directory) / "known_hosts"
    known.write_text(known_hosts_line(layout, record))
    proc = subprocess.run(
        [
            "ssh", "-i", str(client_key), "-o", f"UserKnownHostsFile={known}",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-l", "root",
            "--", record.address, INSTALL_BOOTLOADER,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
    )  # fmt: skip
    if proc.returncode not in (0, 255):  # 255: the connection closed as the VM powered off
        raise TestbedError(f"VM {record.name}: installing GRUB failed: {proc.stderr.strip()}")
    deadline = time.monotonic() + timeout
    while running(record) and time.monotonic() < deadline:
        time.sleep(0.5)
    if running(record):
        raise TestbedError(f"VM {record.name} did not power off after installing GRUB")


def _last_words(record: VmRecord) -> str:
    """The end of qemu's own output and of the console, for the error (down removes both)."""
    words = []
    for name in ("qemu.log", "console.log"):
        path = Path(record.directory) / name
        lines = path.read_text(errors="replace").splitlines() if path.is_file() else []
        words.append(f"{name}: " + (" | ".join(lines[-3:]) or "(empty)"))
    return "; ".join(words)


def stop(record: VmRecord) -> None:
    """The recorded qemu, then any other qemu on this VM's disk (a crashed run's, unrecorded)."""
    process.stop(record.pid, marker(record), timeout=10.0)
    for stray in process.find_processes(marker(record), QEMU):
        process.stop(stray, marker(record), timeout=10.0)


def remove(record: VmRecord) -> None:
    stop(record)
    network.delete_link(record.tap)
    shutil.rmtree(record.directory, ignore_errors=True)


def memory_bytes(record: VmRecord) -> int:
    return process.pss_bytes([record.pid]) if running(record) and record.pid else 0


def probe_kvm(layout: Layout, release: str = DEFAULT_RELEASE, log=print) -> str:
    """ "kvm" when /dev/kvm boots this kernel fast, else "tcg"; the verdict is cached per kernel.

    Some machines expose /dev/kvm without hardware virtualisation (a nested PVM module): there a
    guest aborts or crawls. The probe boots the kernel with no root file system, which panics at
    once; under 15 s to that panic proves KVM usable.
    """
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg"
    image = vmimage.image_dir(layout, release)
    kernel = image / "vmlinuz"
    verdict_file = image / "kvm-probe"
    stamp = f"{kernel.stat().st_size}:{kernel.stat().st_mtime_ns}"
    if verdict_file.is_file():
        cached_stamp, _, verdict = verdict_file.read_text().strip().partition(" ")
        if cached_stamp == stamp:
            return verdict
    cmd = [
        QEMU,
        *_accel_arguments("kvm"),
        "-m",
        "256",
        "-nodefaults",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-no-reboot",
        "-kernel",
        str(kernel),
        "-append",
        "console=ttyS0 panic=-1",
    ]
    verdict = "tcg"
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=15)
        if "Kernel panic" in proc.stdout:
            verdict = "kvm"
    except subprocess.TimeoutExpired:
        pass
    log(f"KVM probe: {'usable' if verdict == 'kvm' else 'not usable here'}; using {verdict}")
    verdict_file.write_text(f"{stamp} {verdict}\n")
    return verdict
