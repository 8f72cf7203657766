"""Run the catalogue's checks on the hosts of an inventory, in parallel, over OpenSSH.

testinfra's ``ssh://`` backend is used with an ssh_config that checks host keys strictly and
multiplexes one connection per host. One remote command per host gathers the host's facts and
everything every check reads; a second is needed only when the facts add a file to check that a
typical host would not have (it names the missing paths only).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import testinfra

from ..catalogue.model import Control, Outcome, Probe
from ..hostinfo import COMMAND as HOSTINFO_COMMAND
from ..hostinfo import STAND_IN, HostInfo
from ..inventory import Inventory
from ..settings import HostEntry
from ..sshconfig import render_ssh_config
from .evaluate import evaluate
from .snapshot import Snapshot, build_script, parse_output

HOSTINFO_PROBE = Probe("hostinfo", HOSTINFO_COMMAND)


@dataclass
class HostReport:
    host: str
    reachable: bool
    error: str = ""
    outcomes: list[Outcome] = field(default_factory=list)
    remote_commands: int = 0


# Facts to plan the gather with before the real ones are known; only file *paths* depend on it.
PLANNING_INFO = STAND_IN


def needed_paths(controls: Sequence[Control], settings, info: HostInfo) -> list[str]:
    return [
        f.path
        for control in controls
        if control.applies(settings)
        for f in control.files(settings, info)
    ]


@dataclass(frozen=True)
class Plan:
    """What to gather from every host: the files to stat and hash, and the script doing it all."""

    paths: tuple[str, ...]
    script: str


def plan(controls: Sequence[Control], inventory: Inventory, info: HostInfo = PLANNING_INFO) -> Plan:
    """The remote script that collects host facts and what every control's check reads."""
    settings = inventory.settings
    probes: list[Probe] = [HOSTINFO_PROBE]
    for control in controls:
        if control.applies(settings):
            probes += control.probes_for(settings)
    paths = tuple(needed_paths(controls, settings, info))
    return Plan(paths, build_script(paths, probes))


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
    planned: Plan | None = None,
) -> HostReport:
    """``planned``: the gather, planned once for all hosts (see verify_inventory)."""
    report = HostReport(host=host.name, reachable=True)
    conn = testinfra_host(inventory, host, ssh_config)
    if planned is None:
        planned = plan(controls, inventory)
    try:
        snapshot: Snapshot = parse_output(_run(conn, planned.script), planned.paths)
        report.remote_commands += 1
        info = HostInfo.parse(snapshot.probe("hostinfo").output.splitlines())
        info = replace(info, name=host.name)
        missing = [
            p for p in needed_paths(controls, inventory.settings, info) if p not in snapshot.files
        ]
        if missing:
            extra = parse_output(_run(conn, build_script(missing, [])), missing)
            report.remote_commands += 1
            snapshot.files.update(extra.files)
    except Unreachable as exc:
        report.reachable, report.error = False, str(exc).splitlines()[-1]
        return report
    report.outcomes = [evaluate(c, inventory.settings, info, snapshot) for c in controls]
    return report


def verify_inventory(
    inventory: Inventory,
    controls: Sequence[Control],
    hosts: Sequence[HostEntry] | None = None,
    parallel: int = 16,
) -> list[HostReport]:
    hosts = list(hosts if hosts is not None else inventory.hosts)
    # Planned once, with the same stand-in facts for every host, before the threads start: the
    # templates compile once instead of once per thread, and only the real facts are per host.
    planned = plan(controls, inventory)
    with tempfile.TemporaryDirectory(prefix="cci-verify-") as tmp:
        ssh_config = inventory.ssh_config
        if ssh_config is None:
            ssh_config = Path(tmp) / "ssh_config"
            control_dir = Path(tmp) / "cm"
            control_dir.mkdir(mode=0o700)
            ssh_config.write_text(render_ssh_config(inventory, control_dir))
        with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(hosts)))) as pool:
            return list(
                pool.map(lambda h: verify_host(inventory, h, controls, ssh_config, planned), hosts)
            )
