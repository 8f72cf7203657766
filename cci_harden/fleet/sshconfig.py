"""OpenSSH client configuration for an inventory: strict host keys and one reused connection.

The verify stage runs its commands over testinfra's ``ssh://`` backend, which honours only what
the ssh_config says about host keys, and opens a new connection per command unless OpenSSH
multiplexes them (ControlMaster).

OpenSSH keeps the first value it reads for an option, so the toolkit's own options come first,
in a ``Host`` block per host, and an operator's ``inventory.ssh_config`` is included after them:
it can add options (a ProxyJump, a bastion) but never turn strict host-key checking off or swap
the known_hosts file. Every value is quoted as OpenSSH reads it; settings validation has already
refused newlines and quotes, so no value can start a line of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: fleet.host_trust, which inventory uses, quotes with this
    from .inventory import Inventory


def quoted(value: object) -> str:
    """An ssh_config argument: double-quoted, ``%`` doubled (tokens are expanded in paths)."""
    text = str(value)
    if any(c in text for c in '"\n\r\\') or not text.isprintable():
        raise ValueError(f"{text!r} cannot be written to an ssh_config")
    return '"' + text.replace("%", "%%") + '"'


def render_ssh_config(
    inventory: Inventory,
    control_dir: Path,
    include: bool = True,
    ca_known_hosts: Path | None = None,
) -> str:
    """``include=False``: leave the inventory's own ssh_config out (when writing that file).
    ``ca_known_hosts``: the file with the inventory's ``@cert-authority`` line, read second."""
    lines = [f"# OpenSSH client configuration for inventory {inventory.name}, by cci-harden"]
    known = quoted(inventory.known_hosts.resolve())
    if ca_known_hosts is not None:
        known += " " + quoted(ca_known_hosts.resolve())
    for host in inventory.hosts:
        lines += [
            f"Host {host.name}",
            f"  HostName {host.address}",
            f"  Port {host.port}",
            f"  User {inventory.user_for(host)}",
            f"  UserKnownHostsFile {known}",
            "  GlobalKnownHostsFile /dev/null",
            "  StrictHostKeyChecking yes",
            "  CheckHostIP no",
            "  UpdateHostKeys no",
            "  BatchMode yes",
            "  ConnectTimeout 10",
            "  ControlMaster auto",
            f"  ControlPath {quoted(Path(control_dir) / '%C')}".replace("%%C", "%C"),
            "  ControlPersist 120s",
        ]
        if inventory.ssh_key is not None:
            lines += [
                f"  IdentityFile {quoted(inventory.ssh_key.resolve())}",
                "  IdentitiesOnly yes",
            ]
    if include and inventory.ssh_config is not None:
        # After every option of ours, for every host: it can only add what we left unset.
        lines += ["Match all", f"  Include {quoted(inventory.ssh_config.resolve())}"]
    return "\n".join(lines) + "\n"
