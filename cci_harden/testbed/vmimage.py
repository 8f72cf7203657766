"""The VM hosts' disk image: Debian with its own kernel, built once with debootstrap and cached.

The tree is made with debootstrap, then packed into an ext4 image with ``mkfs.ext4 -d`` (no loop
mount); the kernel and initrd are copied beside it for a direct kernel boot. Each VM boots from a
copy-on-write overlay of that image, so the cache is never written by a VM. The image carries no
identity: a VM's name, address, SSH host key and admin key come from a small seed disk read once at
its first boot (see ``vm.py``).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from . import mirror
from .image import _lock
from .layout import DEFAULT_RELEASE, Layout
from .system import run

# What a CircleCI Nomad client VM needs to boot and be reached, plus what the deploy would
# otherwise install under software emulation (minutes each): Docker, nftables, auditd, AppArmor.
# busybox-static makes job images without a registry; lynis judges the hardening (bench/).
VM_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "udev",
    "dbus",
    "kmod",
    "procps",
    "iproute2",
    "openssh-server",
    "python3",
    "sudo",
    "ca-certificates",
    "linux-image-amd64",
    "initramfs-tools",
    "systemd-timesyncd",
    "auditd",
    "apparmor",
    "nftables",
    "docker.io",
    "busybox-static",
    "lynis",
    # GRUB for BIOS, without grub-pc's install-device questions: the test bed installs it on
    # the VM's own disk at its first boot, and every boot after goes through it
    "grub-pc-bin",
    "grub2-common",
)
# Bump when _customise changes: the kept tree is customised and packed again, no debootstrap.
REVISION = "2"
DISK_SIZE = "8G"
DISK_MIB = 8192
PARTITION_START_MIB = 1  # room before the partition for GRUB's core image
ROOT_LABEL = "cci-testbed"
GRUB_DEFAULTS = """\
# The test bed's VM: GRUB on the serial console, no menu wait. The operator's (and cci-harden's)
# kernel arguments come from /etc/default/grub.d/*.cfg.
GRUB_DEFAULT=0
GRUB_TIMEOUT=0
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT="console=ttyS0"
GRUB_CMDLINE_LINUX=""
GRUB_TERMINAL=serial
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
GRUB_DISABLE_OS_PROBER=true
"""
MARKER = "etc/cci-testbed-vm-image"
SEED_LABEL = "ccitbseed"

SEED_SCRIPT = f"""\
#!/bin/sh
# First boot of a test-bed VM: copy its identity from the seed disk, once.
set -eu
[ -e /var/lib/cci-testbed-seeded ] && exit 0
mkdir -p /run/cci-testbed-seed
mount -o ro LABEL={SEED_LABEL} /run/cci-testbed-seed
cp -a /run/cci-testbed-seed/root/. /
umount /run/cci-testbed-seed
cat /etc/hostname > /proc/sys/kernel/hostname
touch /var/lib/cci-testbed-seeded
"""

SEED_UNIT = """\
[Unit]
Description=Test-bed VM identity from the seed disk (first boot only)
DefaultDependencies=no
After=local-fs.target systemd-udev-settle.service
Wants=systemd-udev-settle.service
Before=sysinit.target systemd-networkd.service ssh.service systemd-timesyncd.service
ConditionPathExists=!/var/lib/cci-testbed-seeded

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/cci-testbed-seed

[Install]
WantedBy=sysinit.target
"""


def image_dir(layout: Layout, release: str = DEFAULT_RELEASE) -> Path:
    return layout.cache_dir / f"vm-{release}"


def _marker_text(release: str) -> str:
    return f"suite={release}\npackages={','.join(VM_PACKAGES)}\nrevision={REVISION}\n"


def _tree_marker(tree: Path) -> str:
    marker = tree / MARKER
    return marker.read_text() if marker.is_file() else ""


def ready(layout: Layout, release: str = DEFAULT_RELEASE) -> bool:
    directory = image_dir(layout, release)
    return all((directory / f).is_file() for f in ("disk.raw", "vmlinuz", "initrd.img")) and (
        _tree_marker(directory / "root") == _marker_text(release)
    )


def _enable(root: Path, unit: str, target: str) -> None:
    wants = root / "etc/systemd/system" / f"{target}.wants"
    wants.mkdir(parents=True, exist_ok=True)
    link = wants / Path(unit).name
    link.unlink(missing_ok=True)
    link.symlink_to(unit)


def _customise(root: Path, sources: list[mirror.AptSource], release: str) -> None:
    """A template: no identity, the machine's own apt sources, networkd, the seed unit."""
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "etc/machine-id").write_text("")
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    (root / "etc/apt/sources.list").unlink(missing_ok=True)
    (root / "etc/apt/sources.list.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/apt/sources.list.d/debian.sources").write_text(mirror.render_deb822(sources))
    (root / "etc/fstab").write_text(f"LABEL={ROOT_LABEL} / ext4 defaults,errors=remount-ro 0 1\n")
    (root / "etc/default").mkdir(parents=True, exist_ok=True)
    (root / "etc/default/grub").write_text(GRUB_DEFAULTS)
    (root / "etc/hostname").write_text("localhost\n")
    script = root / "usr/local/sbin/cci-testbed-seed"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(SEED_SCRIPT)
    script.chmod(0o755)
    (root / "etc/systemd/system/cci-testbed-seed.service").write_text(SEED_UNIT)
    _enable(root, "/etc/systemd/system/cci-testbed-seed.service", "sysinit.target")
    _enable(root, "/lib/systemd/system/systemd-networkd.service", "multi-user.target")
    # the VM has one console, the serial line the test bed logs; no virtual terminals
    link = root / "etc/systemd/system/getty@tty1.service"
    link.unlink(missing_ok=True)
    link.symlink_to("/dev/null")
    (root / "root/.ssh").mkdir(mode=0o700, exist_ok=True)
    (root / MARKER).write_text(_marker_text(release))


def _kernel_files(root: Path) -> tuple[Path, Path]:
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    initrds = sorted((root / "boot").glob("initrd.img-*"))
    if not kernels or not initrds:
        from ..model.errors import TestbedError

        raise TestbedError("the VM image has no kernel or initrd under /boot")
    return kernels[-1], initrds[-1]


def _pack(directory: Path) -> None:
    """The ext4 disk, kernel and initrd, written beside the tree and renamed into place."""
    tree = directory / "root"
    partial = directory / "disk.raw.partial"
    partial.unlink(missing_ok=True)
    run(["truncate", "-s", DISK_SIZE, str(partial)])
    # an MBR with one partition from 1 MiB (GRUB's core image goes in the gap before it), then
    # the file system written at that offset: no loop device, no mount
    run(
        ["sfdisk", "--quiet", "--wipe", "never", str(partial)],
        input=f"label: dos\nstart={PARTITION_START_MIB}MiB, type=83, bootable\n",
    )
    size_kib = (DISK_MIB - PARTITION_START_MIB) * 1024
    run(
        [
            "mkfs.ext4", "-q", "-F", "-L", ROOT_LABEL,
            "-E", f"offset={PARTITION_START_MIB * 1024 * 1024}",
            "-d", str(tree), str(partial), f"{size_kib}k",
        ]
    )  # fmt: skip
    kernel, initrd = _kernel_files(tree)
    shutil.copyfile(kernel, directory / "vmlinuz")
    shutil.copyfile(initrd, directory / "initrd.img")
    partial.rename(directory / "disk.raw")


def build(layout: Layout, release: str = DEFAULT_RELEASE, *, log=print) -> float:
    """Build the release's VM image if missing or stale; return the seconds it took (0 when
    cached)."""
    directory = image_dir(layout, release)
    with _lock(layout.cache_dir / f"vm-{release}.lock"):
        if ready(layout, release):
            return 0.0
        started = time.monotonic()
        sources = mirror.debian_sources(release)
        tree = directory / "root"
        debootstrapped = f"packages={','.join(VM_PACKAGES)}\n" in _tree_marker(tree)
        if not debootstrapped:
            staging = directory / "root.partial"
            if staging.exists():
                shutil.rmtree(staging)
            directory.mkdir(parents=True, exist_ok=True)
            log(f"building the VM image with debootstrap ({release}, with a kernel): 2 minutes")
            run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--include={','.join(VM_PACKAGES)}",
                    release,
                    str(staging),
                    mirror.debian_mirror(release, sources),
                ]
            )
            if tree.exists():
                shutil.rmtree(tree)
            staging.rename(tree)
        (directory / "disk.raw").unlink(missing_ok=True)
        _customise(tree, sources, release)
        _pack(directory)
        return time.monotonic() - started
