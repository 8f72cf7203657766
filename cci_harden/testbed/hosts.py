"""One test host: an overlay over the base image, booted by systemd-nspawn in its own namespace.

Each host has its own SSH host key, generated on this machine before boot, so its known_hosts entry
is written without ever trusting a key on first use.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

from ..model.errors import TestbedError
from . import process
from .layout import Layout
from .state import HostRecord, VmRecord
from .system import run

NSPAWN_ENV = {"SYSTEMD_NSPAWN_API_VFS_WRITABLE": "network"}


def ensure_client_key(layout: Layout) -> Path:
    """The SSH key this machine uses to reach every test host."""
    key = layout.client_key
    if not key.is_file():
        key.parent.mkdir(parents=True, exist_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "cci-testbed", "-f", str(key)])
    return key


def ensure_host_key(layout: Layout, name: str, directory: Path | None = None) -> Path:
    key = (directory or layout.host_dir(name)) / "ssh_host_ed25519_key"
    if not key.is_file():
        key.parent.mkdir(parents=True, exist_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{name}", "-f", str(key)])
    return key


def known_hosts_line(layout: Layout, record: HostRecord | VmRecord) -> str:
    if isinstance(record, VmRecord):
        directory = Path(record.directory)
    else:
        directory = layout.host_dir(record.name)
    public = (directory / "ssh_host_ed25519_key.pub").read_text().split()
    return f"{record.name},{record.address} {public[0]} {public[1]}"


def is_mounted(path: Path) -> bool:
    target = str(path)
    with open("/proc/mounts") as mounts:
        return any(line.split()[1] == target for line in mounts)


def mount_overlay(layout: Layout, record: HostRecord) -> None:
    host_dir = layout.host_dir(record.name)
    merged = Path(record.merged)
    for sub in ("upper", "work", "merged"):
        (host_dir / sub).mkdir(parents=True, exist_ok=True)
    if not is_mounted(merged):
        options = (
            f"lowerdir={layout.base_image(record.release)},"
            f"upperdir={host_dir / 'upper'},workdir={host_dir / 'work'}"
        )
        run(["mount", "-t", "overlay", "overlay", "-o", options, str(merged)])


def unmount(path: Path) -> None:
    if is_mounted(path):
        if run(["umount", str(path)], check=False) or is_mounted(path):
            run(["umount", "--lazy", str(path)], check=False)


def personalise(layout: Layout, record: HostRecord, client_key: Path) -> None:
    """Write the host's identity into its overlay: name, machine id, host key, admin key."""
    root = Path(record.merged)
    (root / "etc/hostname").write_text(record.name + "\n")
    (root / "etc/hosts").write_text(f"127.0.0.1 localhost\n{record.address} {record.name}\n")
    (root / "etc/machine-id").write_text(uuid.uuid5(uuid.NAMESPACE_DNS, record.name).hex + "\n")
    host_key = ensure_host_key(layout, record.name)
    for suffix, mode in (("", 0o600), (".pub", 0o644)):
        target = root / "etc/ssh" / f"ssh_host_ed25519_key{suffix}"
        target.write_bytes(Path(f"{host_key}{suffix}").read_bytes())
        target.chmod(mode)
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    authorized = ssh_dir / "authorized_keys"
    authorized.write_text(Path(f"{client_key}.pub").read_text())
    authorized.chmod(0o600)


def nspawn_marker(record: HostRecord) -> str:
    return record.merged


def boot(layout: Layout, record: HostRecord) -> int:
    cmd = [
        "systemd-nspawn",
        "--quiet",
        "--boot",
        "--register=no",
        "--keep-unit",
        "--console=passive",
        f"--directory={record.merged}",
        f"--machine={record.name}",
        f"--network-namespace-path=/run/netns/{record.netns}",
        "--capability=CAP_NET_ADMIN",
    ]
    return process.spawn(cmd, layout.host_dir(record.name) / "console.log", env=NSPAWN_ENV)


def running(record: HostRecord) -> bool:
    return process.owns(record.pid, nspawn_marker(record))


def wait_for_ssh(record: HostRecord, timeout: float = 90.0) -> None:
    """Wait until sshd on the host answers with its protocol banner."""
    outcome = process.wait_for_banner(record.address, lambda: running(record), timeout)
    if outcome == "stopped":
        raise TestbedError(
            f"host {record.name} stopped while booting; see its console.log under the state "
            "directory"
        )
    if outcome:
        raise TestbedError(
            f"host {record.name} ({record.address}) did not answer on SSH in {timeout}s"
        )


def stop(record: HostRecord) -> None:
    process.stop(record.pid, nspawn_marker(record), timeout=20.0)


def memory_bytes(record: HostRecord) -> int:
    """Proportional resident memory of everything running inside the host."""
    if not running(record):
        return 0
    assert record.pid is not None
    return process.pss_bytes(process.descendants(record.pid)[1:])


# Early units of a container's boot can lose a race for their cgroup (exit 219/CGROUP) on a
# machine with hybrid cgroups; which unit loses varies. Failed units are restarted, three tries.
_BOOT_CHECK = """
state=$(systemctl is-system-running --wait)
for attempt in 1 2 3; do
  [ "$state" = degraded ] || break
  failed=$(systemctl list-units --state=failed --plain --no-legend | awk '{print $1}')
  systemctl restart $failed
  sleep 0.5
  state=$(systemctl is-system-running)
done
echo "$state"
"""


def wait_for_boot(ssh_config: Path, record: HostRecord | VmRecord, timeout: float = 90.0) -> str:
    """Wait over SSH until systemd finished booting; return its state (running, degraded)."""
    proc = subprocess.run(
        ["ssh", "-F", str(ssh_config), record.name, _BOOT_CHECK],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    state = proc.stdout.strip() or proc.stderr.strip()
    if state not in ("running", "degraded"):
        raise TestbedError(f"host {record.name} did not finish booting: {state}")
    return state
