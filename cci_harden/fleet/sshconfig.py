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

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from ..config.materials import load_revoked_host_keys
from ..model.errors import InventoryError

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
    revoked = load_revoked_host_keys(inventory.settings)
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
            # no command may vouch for a key; the name keys are looked up by is the address
            "  KnownHostsCommand none",
            *([f"  HostKeyAlias {host.address}"] if host.port == 22 else []),
            *([f"  RevokedHostKeys {quoted(revoked.resolve())}"] if revoked else []),
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


# what an included ssh_config must leave as ours: OpenSSH's own reading of the file decides
PINNED = (
    "hostname",
    "port",
    "userknownhostsfile",
    "globalknownhostsfile",
    "stricthostkeychecking",
    "knownhostscommand",
    "hostkeyalias",
    "revokedhostkeys",
)


def _effective(config: Path, name: str) -> dict[str, str]:
    proc = subprocess.run(
        ["ssh", "-G", "-F", str(config), "--", name], capture_output=True, text=True, timeout=30
    )
    if proc.returncode != 0:
        raise InventoryError(f"{config}: OpenSSH cannot read it: {proc.stderr.strip()[:200]}")
    found: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key in PINNED:
            found[key] = value
    return found


def check_included_config(
    inventory: Inventory, config: Path, control_dir: Path, ca_known_hosts: Path | None = None
) -> None:
    """Refuse an inventory ssh_config that changes, for any host, how its key is trusted.

    Options of ours come first and win; an included file can still set what we leave unset:
    ``HostKeyAlias`` on a port other than 22 (there the address alone would break
    ``[address]:port`` lines and no certificate names ``[address]:port``), ``RevokedHostKeys``
    when no list is set. ``ssh -G`` with and without the inventory's file, following its
    ``Include`` and ``Match`` as OpenSSH does, must agree on each pinned option."""
    if inventory.ssh_config is None:
        return
    own = config.with_name(config.name + ".own")
    own.write_text(render_ssh_config(inventory, control_dir, False, ca_known_hosts))
    try:
        for host in inventory.hosts:
            expected, effective = _effective(own, host.name), _effective(config, host.name)
            changed = sorted(k for k in PINNED if expected.get(k) != effective.get(k))
            if changed:
                raise InventoryError(
                    f"{inventory.ssh_config}: sets {', '.join(changed)} for {host.name}; "
                    "host keys are the toolkit's to check: remove those options"
                )
    finally:
        own.unlink(missing_ok=True)


def write_ssh_config(
    inventory: Inventory, path: Path, control_dir: Path, ca_known_hosts: Path | None = None
) -> Path:
    """The ssh_config verify and the rollout use, written to ``path`` and checked."""
    path.write_text(render_ssh_config(inventory, control_dir, ca_known_hosts=ca_known_hosts))
    check_included_config(inventory, path, control_dir, ca_known_hosts)
    return path
