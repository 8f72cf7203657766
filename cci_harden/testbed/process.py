"""Start background daemons for the test bed and stop them by PID, never by name."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .system import pid_alive, pid_cmdline


def spawn(cmd: Sequence[str], log_file: Path, env: dict[str, str] | None = None) -> int:
    """Start ``cmd`` in its own session with output to ``log_file``; return its PID."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    return proc.pid


def owns(pid: int | None, marker: str) -> bool:
    """True when ``pid`` is alive and its command line mentions ``marker`` (guards PID reuse)."""
    if not pid:
        return False
    return pid_alive(pid) and any(marker in part for part in pid_cmdline(pid))


def stop(pid: int | None, marker: str, timeout: float = 15.0) -> None:
    """SIGTERM the process if it is still ours, wait, then SIGKILL it."""
    if not owns(pid, marker):
        return
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not pid_alive(pid):
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    while pid_alive(pid):
        _reap(pid)
        time.sleep(0.05)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def find_processes(marker: str, executable: str) -> list[int]:
    """PIDs whose command line starts with ``executable`` and mentions ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        cmdline = pid_cmdline(int(entry.name))
        if cmdline and os.path.basename(cmdline[0]) == executable:
            if any(marker in part for part in cmdline):
                found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    result, todo = [], [pid]
    while todo:
        current = todo.pop()
        result.append(current)
        todo.extend(children.get(current, []))
    return result


def pss_bytes(pids: Sequence[int]) -> int:
    """Proportional set size of the processes: their fair share of resident memory."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
        except OSError:
            continue
    return total


def wait_for_banner(
    address: str,
    alive: Callable[[], bool],
    timeout: float,
    poll: float = 0.2,
    read_timeout: float = 2.0,
) -> str:
    """Wait until sshd at ``address`` answers with its protocol banner: "" when it does,
    "stopped" when ``alive()`` says the host's process ended first, "timeout" otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            return "stopped"
        try:
            with socket.create_connection((address, 22), timeout=1) as conn:
                conn.settimeout(read_timeout)
                if conn.recv(64).startswith(b"SSH-2.0-"):
                    return ""
        except OSError:
            pass
        time.sleep(poll)
    return "timeout"
