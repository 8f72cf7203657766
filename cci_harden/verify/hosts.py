"""Reaching a host for verify: testinfra's ``ssh://`` backend with the toolkit's ssh_config,
which checks host keys strictly and multiplexes one connection per host."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import testinfra

from ..config.settings import HostEntry
from ..fleet.inventory import Inventory
from ..model.control import Outcome


@dataclass
class HostReport:
    host: str
    reachable: bool
    error: str = ""
    outcomes: list[Outcome] = field(default_factory=list)
    remote_commands: int = 0


def testinfra_host(inventory: Inventory, host: HostEntry, ssh_config: Path):
    sudo = inventory.user_for(host) != "root"
    return testinfra.get_host(f"ssh://{host.name}", ssh_config=str(ssh_config), sudo=sudo)


class Unreachable(Exception):
    """SSH could not reach the host or authenticate it (exit 255)."""


def run_script(conn, script: str) -> str:
    """Run the gather script through a testinfra host; its standard output."""
    try:
        result = conn.run(script)
    except RuntimeError as exc:  # testinfra's ssh backend raises on exit 255
        stderr = getattr(exc.args[0], "stderr", "") if exc.args else ""
        raise Unreachable(stderr.strip() or "ssh failed") from None
    if result.rc == 255:
        raise Unreachable(result.stderr.strip() or "ssh failed")
    return result.stdout
