"""OpenSSH client configuration for an inventory: strict host keys and one reused connection.

The verify stage runs many commands per host over testinfra's ``ssh://`` backend, which opens a
new connection per command unless OpenSSH multiplexes them (ControlMaster), and which honours only
what the ssh_config says about host keys.
"""

from __future__ import annotations

from pathlib import Path

from .inventory import Inventory


def render_ssh_config(inventory: Inventory, control_dir: Path) -> str:
    lines = [f"# OpenSSH client configuration for inventory {inventory.name}, by cci-harden"]
    for host in inventory.hosts:
        lines += [
            f"Host {host.name}",
            f"  HostName {host.address}",
            f"  Port {host.port}",
            f"  User {inventory.user_for(host)}",
            f"  UserKnownHostsFile {inventory.known_hosts.resolve()}",
            "  StrictHostKeyChecking yes",
            "  BatchMode yes",
            "  ConnectTimeout 10",
            "  ControlMaster auto",
            f"  ControlPath {control_dir}/%C",
            "  ControlPersist 120s",
        ]
        if inventory.ssh_key is not None:
            lines += [f"  IdentityFile {inventory.ssh_key.resolve()}", "  IdentitiesOnly yes"]
    return "\n".join(lines) + "\n"
