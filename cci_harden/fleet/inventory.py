"""Inventories: the hosts of one server install, with the settings file that sits beside them.

An inventory is a small Python file (``inventories/prod``, no extension) that pyinfra loads as
written on the command line; it calls :func:`pyinfra_hosts`, which reads ``prod.toml``, validates
it, and refuses to go on with zero hosts, hosts without a known host key, or a ``--limit`` that
matches nothing. pyinfra would otherwise run against no host and exit 0.
"""

from __future__ import annotations

import fnmatch
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config.settings import FleetSettings, HostEntry, load_settings
from ..model.errors import CciHardenError, InventoryError
from .preflight import require_ready

GROUP = "nomad_clients"


@dataclass(frozen=True)
class Inventory:
    """One inventory: its path, validated settings, and how each host is reached."""

    path: Path
    settings: FleetSettings
    listed: tuple[HostEntry, ...] | None = None  # hosts a cloud source listed at load time

    @classmethod
    def load(cls, path: Path | str) -> Inventory:
        path = Path(path)
        if path.is_dir():
            raise InventoryError(
                f"{path} is a directory; name an inventory file inside it, e.g. {path}/prod"
            )
        if not path.is_file():
            raise InventoryError(f"inventory {path} does not exist")
        settings = load_settings(path)
        listed = None
        if settings.inventory.source is not None:
            from .cloud_hosts import list_hosts

            listed = tuple(list_hosts(settings.inventory.source))
        return cls(path=path, settings=settings, listed=listed)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def hosts(self) -> list[HostEntry]:
        if self.listed is not None:
            return list(self.listed)
        return list(self.settings.inventory.hosts)

    def _relative(self, value: Path | None, default: str) -> Path:
        path = value if value is not None else Path(default)
        return path if path.is_absolute() else (self.path.parent / path)

    @property
    def known_hosts(self) -> Path:
        return self._relative(self.settings.inventory.known_hosts, f"{self.name}.known_hosts")

    @property
    def ssh_key(self) -> Path | None:
        key = self.settings.inventory.ssh_key
        return None if key is None else self._relative(key, "")

    @property
    def ssh_config(self) -> Path | None:
        config = self.settings.inventory.ssh_config
        return None if config is None else self._relative(config, "")

    def user_for(self, host: HostEntry) -> str:
        return host.user or self.settings.inventory.ssh_user

    def select(self, patterns: list[str] | None) -> list[HostEntry]:
        """The hosts matching any of ``patterns`` (names, globs, or the group name)."""
        if not patterns:
            return self.hosts
        chosen = [
            host
            for host in self.hosts
            if any(
                p == GROUP or p in host.groups or fnmatch.fnmatch(host.name, p) for p in patterns
            )
        ]
        if not chosen:
            raise InventoryError(
                f"--limit {' '.join(patterns)} matches no host of inventory {self.path} "
                f"(hosts: {', '.join(h.name for h in self.hosts)})"
            )
        return chosen

    def check_switches(self) -> None:
        """Every control id the switches name exists, and every switched group has a host."""
        from ..controls import known_control_ids

        unknown = sorted(self.settings.switched_control_ids() - known_control_ids())
        if unknown:
            raise InventoryError(
                f"controls: unknown control id(s) {', '.join(unknown)} in {self.path.name}.toml; "
                "`cci-harden controls` lists the ids"
            )
        groups = {g for host in self.hosts for g in host.groups}
        empty = sorted(set(self.settings.controls.groups) - groups)
        if empty:
            raise InventoryError(
                f"controls.groups: no host is in group(s) {', '.join(empty)} in {self.path.name}"
                ".toml; add the group to hosts[].groups or remove the switch"
            )

    def problems(self) -> list[str]:
        """Every reason check_runnable would refuse, one message each (config check lists all)."""
        found = []
        for check in (self.check_switches, self._check_hosts):
            try:
                check()
            except InventoryError as exc:
                found.append(str(exc))
        return found

    def check_runnable(self) -> None:
        """Refuse an inventory that would make pyinfra do nothing or trust keys blindly."""
        self.check_switches()
        self._check_hosts()

    def _check_hosts(self) -> None:
        if not self.hosts and self.listed is not None:
            raise InventoryError(
                f"inventory {self.path}: inventory.source lists no running instance (check the "
                "group name, the tags and the region)"
            )
        if not self.hosts:
            raise InventoryError(
                f"inventory {self.path} has no hosts; add [[inventory.hosts]] entries to "
                f"{self.path.name}.toml"
            )
        missing = self.hosts_without_known_key()
        if missing and self.settings.ssh.host_ca_file is None:
            raise InventoryError(
                f"no host key for {', '.join(missing)} in {self.known_hosts}; add each host's key "
                "from a trusted source (cloud console, image build), keyed by the host's address "
                f"as the inventory gives it ({self._key_example(missing[0])}), not its name "
                "(`cci-harden known-hosts` builds it from fingerprints you vouch for) - keys are "
                "never accepted on first use (or trust them by certificate: ssh.host_ca_file)"
            )

    def _key_example(self, name: str) -> str:
        """How the known_hosts line of host ``name`` must begin."""
        host = next(h for h in self.hosts if h.name == name)
        lookup = host.address if host.port == 22 else f"[{host.address}]:{host.port}"
        return f"'{lookup} ssh-ed25519 AAAA...'"

    def _refuse_lines_paramiko_cannot_read(self) -> None:
        """paramiko 4 (pyinfra's SSH client, the lockout guard's) fails on a whole known_hosts
        file with a marker line in it: every host would fail to connect, with a traceback."""
        for number, line in enumerate(self.known_hosts.read_text().splitlines(), 1):
            if line.lstrip().startswith("@"):
                marker = line.split()[0][:32]
                raise InventoryError(
                    f"{self.known_hosts} line {number}: {marker} lines cannot be read by "
                    "paramiko (pyinfra's SSH client): list each host's own key here instead "
                    "(docs/operator-guide.md, host keys)"
                )

    def hosts_without_known_key(self) -> list[str]:
        if not self.known_hosts.is_file():
            return [host.name for host in self.hosts]
        import paramiko  # here, not at import: it costs a command that never reads keys 80 ms
        from paramiko.hostkeys import InvalidHostKey

        self._refuse_lines_paramiko_cannot_read()
        try:
            keys = paramiko.HostKeys(str(self.known_hosts))
        except (InvalidHostKey, paramiko.SSHException, ValueError) as exc:
            raise InventoryError(
                f"{self.known_hosts}: a line is not a known_hosts entry ({type(exc).__name__}); "
                "each line must be NAMES KEYTYPE BASE64KEY"
            ) from None
        missing = []
        for host in self.hosts:
            lookup = host.address if host.port == 22 else f"[{host.address}]:{host.port}"
            if keys.lookup(lookup) is None:
                missing.append(host.name)
        return missing

    def pyinfra_data(self, host: HostEntry, known_hosts: Path | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "ssh_hostname": host.address,
            "ssh_port": host.port,
            "ssh_user": self.user_for(host),
            "ssh_known_hosts_file": str(known_hosts or self.known_hosts),
            "ssh_strict_host_key_checking": "yes",
            "cci_inventory": str(self.path.resolve()),
        }
        if self.user_for(host) != "root":
            data["_sudo"] = True
        if self.ssh_key is not None:
            data["ssh_key"] = str(self.ssh_key)
        return data


def limit_patterns_from_argv(argv: list[str]) -> list[str]:
    """The --limit values pyinfra was given on its command line."""
    patterns: list[str] = []
    for index, arg in enumerate(argv):
        if arg == "--limit" and index + 1 < len(argv):
            patterns.append(argv[index + 1])
        elif arg.startswith("--limit="):
            patterns.append(arg.split("=", 1)[1])
    return [p for value in patterns for p in value.split(",") if p]


def _load_for_pyinfra(inventory_file: str) -> tuple[Inventory, Path | None]:
    """The inventory, validated, its --limit checked, or exit 2 with the reason; and the
    known_hosts file pyinfra reads when hosts are trusted by certificate (fleet.host_trust).

    pyinfra loads the inventory before it reads --limit; checking the limit here keeps a typo in
    ``--limit`` from becoming a successful run against no host.
    """
    try:
        inventory = Inventory.load(inventory_file)
        selected = inventory.select(limit_patterns_from_argv(sys.argv))
        require_ready(inventory.settings, inventory.problems())
        known_hosts = None
        missing = set(inventory.hosts_without_known_key())
        if inventory.settings.ssh.revoked_host_keys_file is not None:
            from .host_trust import refuse_revoked_keys

            refuse_revoked_keys(inventory, [h for h in selected if h.name not in missing])
        if inventory.settings.ssh.host_ca_file is not None:
            from .host_trust import trusted_known_hosts

            known_hosts = trusted_known_hosts(inventory, [h for h in selected if h.name in missing])
    except CciHardenError as exc:
        print(f"cci-harden: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    return inventory, known_hosts


def pyinfra_hosts(inventory_file: str) -> list[tuple[str, dict[str, Any]]]:
    """Called from an inventory file: validated hosts for pyinfra (one group, no host groups)."""
    inventory, known_hosts = _load_for_pyinfra(inventory_file)
    return [(host.name, inventory.pyinfra_data(host, known_hosts)) for host in inventory.hosts]


def pyinfra_groups(inventory_file: str) -> dict[str, list]:
    """Called from an inventory file: ``nomad_clients`` (every host with its connection data)
    and one pyinfra group per name in ``hosts[].groups``, so ``--limit vm`` and ``host.groups``
    mean in pyinfra what they mean to verify."""
    inventory, known_hosts = _load_for_pyinfra(inventory_file)
    groups: dict[str, list] = {
        GROUP: [(host.name, inventory.pyinfra_data(host, known_hosts)) for host in inventory.hosts]
    }
    for host in inventory.hosts:
        for name in host.groups:
            groups.setdefault(name, []).append(host.name)
    return groups
