"""This machine's inotify limit, raised while the test bed runs many hosts, put back by ``down``.

Each booted host's systemd, journald, logind and dbus take inotify instances from root's one
allowance on this machine; Debian's default of 128 runs out at about 20 hosts, and the next
host's systemd exits at once ("Failed to allocate manager object: Too many open files").
"""

from __future__ import annotations

from pathlib import Path

INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances")
BASE = 128
PER_HOST = 8  # measured: about 6 per booted host, plus headroom


def ensure_inotify_for(hosts: int, state, save) -> None:
    """Raise the limit to fit ``hosts``; the value found first is recorded before it changes."""
    wanted = BASE + PER_HOST * hosts
    current = int(INSTANCES.read_text())
    if current >= wanted:
        return
    if state.inotify_instances_before is None:
        state.inotify_instances_before = current
        save()
    INSTANCES.write_text(f"{wanted}\n")


def restore_inotify(state) -> int | None:
    """Put back the value ``up`` found; return it (None: never changed)."""
    before = state.inotify_instances_before
    if before is not None:
        INSTANCES.write_text(f"{before}\n")
    return before
