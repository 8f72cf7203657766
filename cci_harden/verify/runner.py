"""Run the catalogue's checks on the hosts of an inventory, in parallel, over OpenSSH.

testinfra's ``ssh://`` backend is used with an ssh_config that checks host keys strictly and
multiplexes one connection per host. The same gather as the deploy's (``model.gather``) reads the
host's facts and every resource's state in one remote command (two when the host's facts add a
resource the stand-in plan lacked); each control's outcome is its resources' comparison.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import testinfra

from ..config.settings import HostEntry
from ..fleet.inventory import Inventory
from ..fleet.sshconfig import render_ssh_config
from ..model.control import Control, Outcome
from ..model.gather import GatherPlan, first_gather, gather_host
from ..model.plan import evaluate


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


def _run(conn, script: str) -> str:
    try:
        result = conn.run(script)
    except RuntimeError as exc:  # testinfra's ssh backend raises on exit 255
        stderr = getattr(exc.args[0], "stderr", "") if exc.args else ""
        raise Unreachable(stderr.strip() or "ssh failed") from None
    if result.rc == 255:
        raise Unreachable(result.stderr.strip() or "ssh failed")
    return result.stdout


def verify_host(
    inventory: Inventory,
    host: HostEntry,
    controls: Sequence[Control],
    ssh_config: Path,
    planned: GatherPlan | None = None,
    profile: str = "nomad",
) -> HostReport:
    """``planned``: the first gather, planned once for all hosts (see verify_inventory)."""
    report = HostReport(host=host.name, reachable=True)
    conn = testinfra_host(inventory, host, ssh_config)
    if planned is None:
        planned = first_gather(controls, inventory.settings, profile)
    try:
        state = gather_host(
            lambda script: _run(conn, script),
            controls,
            inventory.settings,
            profile,
            host.name,
            planned,
        )
    except Unreachable as exc:
        report.reachable, report.error = False, str(exc).splitlines()[-1]
        return report
    report.remote_commands = state.remote_commands
    report.outcomes = [evaluate(plan, state.snapshot, state.info) for plan in state.plans]
    return report


def verify_inventory(
    inventory: Inventory,
    controls: Sequence[Control],
    hosts: Sequence[HostEntry] | None = None,
    parallel: int = 16,
    profile: str = "nomad",
    lifecycle: bool = True,
) -> list[HostReport]:
    """``lifecycle=False`` when ``controls`` is only part of the profile."""
    hosts = list(hosts if hosts is not None else inventory.hosts)
    # Planned once, with the same stand-in facts for every host, before the threads start: the
    # templates render once instead of once per thread, and only the real facts are per host.
    planned = first_gather(controls, inventory.settings, profile, lifecycle)
    with tempfile.TemporaryDirectory(prefix="cci-verify-") as tmp:
        # Always our own file, our options first; an inventory's ssh_config is included after.
        ssh_config = Path(tmp) / "ssh_config"
        control_dir = Path(tmp) / "cm"
        control_dir.mkdir(mode=0o700)
        ssh_config.write_text(render_ssh_config(inventory, control_dir))
        with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(hosts)))) as pool:
            return list(
                pool.map(
                    lambda h: verify_host(inventory, h, controls, ssh_config, planned, profile),
                    hosts,
                )
            )
