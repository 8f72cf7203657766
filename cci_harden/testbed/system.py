"""Small helpers for running the machine's own programs while building the test bed."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

from ..model.errors import MissingProgramError, TestbedError

# The Debian package that provides each program the test bed runs on this machine.
PROGRAM_PACKAGES = {
    "debootstrap": "debootstrap",
    "systemd-nspawn": "systemd-container",
    "ip": "iproute2",
    "apt-cacher-ng": "apt-cacher-ng",
    "ssh-keygen": "openssh-client",
    "ssh": "openssh-client",
    "mount": "mount",
    "umount": "mount",
}


def require_root() -> None:
    if os.geteuid() != 0:
        raise TestbedError(
            "the test bed needs root (it creates network namespaces, a bridge, overlay mounts "
            "and containers); run it as root, e.g. with sudo"
        )


def require_programs(programs: Sequence[str] = tuple(PROGRAM_PACKAGES)) -> None:
    for program in programs:
        if shutil.which(program) is None:
            raise MissingProgramError(program, PROGRAM_PACKAGES.get(program, program))


def run(cmd: Sequence[str], *, check: bool = True, input: str | None = None) -> str:
    """Run a command and return its stdout; on failure raise with the command and its stderr."""
    proc = subprocess.run(list(cmd), capture_output=True, text=True, input=input)
    if check and proc.returncode != 0:
        raise TestbedError(
            f"command failed (exit {proc.returncode}): {' '.join(cmd)}\n{proc.stderr.strip()}"
        )
    return proc.stdout


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie still answers kill(0); treat it as gone
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def pid_cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [part.decode() for part in f.read().split(b"\0") if part]
    except OSError:
        return []
