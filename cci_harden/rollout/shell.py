"""Commands on the fleet's hosts over OpenSSH, with the same ssh_config verify writes (strict
host keys, the inventory's bastion, one multiplexed connection per host)."""

from __future__ import annotations

import shlex
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..config.settings import HostEntry
from ..fleet.host_trust import write_ca_known_hosts
from ..fleet.inventory import Inventory
from ..fleet.sshconfig import write_ssh_config


@dataclass(frozen=True)
class Result:
    rc: int
    stdout: str
    stderr: str

    @property
    def unreachable(self) -> bool:
        return self.rc == 255

    def reason(self) -> str:
        text = (self.stderr or self.stdout).strip()
        return text.splitlines()[-1] if text else f"exit status {self.rc}"


class FleetShell:
    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self._tmp = tempfile.TemporaryDirectory(prefix="cci-rollout-")
        folder = Path(self._tmp.name)
        control_dir = folder / "cm"
        control_dir.mkdir(mode=0o700)
        ca_known_hosts = None
        if inventory.settings.ssh.host_ca_file is not None:
            ca_known_hosts = write_ca_known_hosts(inventory, folder)
        self._used: set[str] = set()
        self.ssh_config = folder / "ssh_config"
        write_ssh_config(inventory, self.ssh_config, control_dir, ca_known_hosts)

    def run(self, host: HostEntry, script: str, timeout: float = 120) -> Result:
        """``script`` through ``sh`` on the host, as root (``sudo -n`` for another user)."""
        command = f"sh -c {shlex.quote(script)}"
        if self.inventory.user_for(host) != "root":
            command = f"sudo -n {command}"
        self._used.add(host.name)
        try:
            proc = subprocess.run(
                ["ssh", "-F", str(self.ssh_config), "--", host.name, command],
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            return Result(255, "", f"no answer within {timeout:.0f} s")
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def forget(self, host: HostEntry) -> None:
        """Close the shared connection (after a reboot it is dead)."""
        subprocess.run(
            ["ssh", "-F", str(self.ssh_config), "-O", "exit", "--", host.name],
            capture_output=True,
            timeout=30,
        )

    def close(self) -> None:
        for host in self.inventory.hosts:
            if host.name in self._used:
                self.forget(host)
        self._tmp.cleanup()
