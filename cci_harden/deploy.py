"""Apply catalogue controls to the current pyinfra host; called from the files in ``deploys/``.

Settings come from the inventory the host was loaded from (``host.data.cci_inventory``), so the
deploy and ``cci-harden verify`` always read the same file. Services restart once, at the end, and
only when something they read changed in this run.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

from pyinfra import host
from pyinfra.facts.deb import DebPackages
from pyinfra.operations import apt, server, systemd
from pyinfra.operations.util import any_changed

from .catalogue import Control
from .catalogue.model import Applied
from .hostinfo import HostInfo, HostInfoFact
from .operations import managed_file
from .settings import FleetSettings, load_settings
from .sshd import guarded_config


@lru_cache(maxsize=8)
def _settings(inventory_path: str) -> FleetSettings:
    return load_settings(inventory_path)


def current_settings() -> FleetSettings:
    path = host.data.get("cci_inventory")
    if not path:
        raise RuntimeError(
            f"host {host.name} was not loaded from a cci-harden inventory "
            "(run: pyinfra inventories/NAME deploys/...)"
        )
    return _settings(path)


def current_info() -> HostInfo:
    return replace(host.get_fact(HostInfoFact), name=host.name)


# Per host: packages an earlier control already installs in this run (facts predate the run).
_scheduled: dict[str, set[str]] = {}


def ensure_packages(control_id: str, packages: list[str], fresh_lists: bool = False) -> list:
    """Install ``packages`` (``name`` or ``name=version``); refresh apt's lists only if needed.

    An unconditional ``apt-get update`` reports a change on every run; refreshing only when
    something is missing keeps a converged host's re-run at zero changes. ``fresh_lists``: the
    packages come from a repository this run may just have added, so refresh again for them.
    """
    installed = host.get_fact(DebPackages) or {}
    scheduled = _scheduled.setdefault(host.name, set())

    def missing(spec: str) -> bool:
        name, _, version = spec.partition("=")
        if spec in scheduled:
            return False  # an earlier control of this run installs it
        return name not in installed or bool(version and version not in installed[name])

    if not any(missing(p) for p in packages):
        return []
    scheduled.update(packages)
    ops = []
    if fresh_lists or "apt-get update" not in scheduled:  # once per host and run
        scheduled.add("apt-get update")
        # Bounded and retried: a stalled mirror or proxy costs a retry, never a hung run.
        ops.append(
            server.shell(
                name=f"[{control_id}] refresh apt package lists",
                commands=["timeout 90 apt-get update -q -o Acquire::Retries=3"],
                _retries=2,
                _retry_delay=5,
            )
        )
    install = apt.packages(
        name=f"[{control_id}] install {', '.join(packages)}",
        packages=packages,
        no_recommends=True,
    )
    return [*ops, install]


def _needs_restart(restart_on: list, started: list, drifted: bool):
    def condition() -> bool:
        changed = drifted or any(op.did_change() for op in restart_on)
        return changed and not any(op.did_change() for op in started)

    return condition


def apply_controls(controls: tuple[Control, ...]) -> None:
    """Per control: packages, files, extra operations; then start or restart what changed.

    Services start at the end, after every file they read is in place, so a fresh host starts
    each one once with its final configuration, and a converged host restarts nothing.
    """
    settings = current_settings()
    info = current_info()
    restart_on: dict[str, list] = {}
    started: dict[str, list] = {}
    drifted: dict[str, bool] = {}
    services: list[str] = []
    for control in controls:
        if not control.applies(settings):
            continue
        packages = list(control.packages(settings))
        if packages:
            started_by_packages = ensure_packages(control.id, packages)
            for unit in control.services:
                started.setdefault(unit, []).extend(started_by_packages)
        unit_files = []
        for desired in control.files(settings, info):
            if desired.via == "sshd":
                op = guarded_config(
                    name=f"[{control.id}] {desired.path} (sshd -t, reload, fresh login)",
                    desired=desired,
                    login_timeout=settings.ssh.login_check_timeout,
                )
            else:
                op = managed_file(name=f"[{control.id}] {desired.path}", desired=desired)
            for unit in desired.reload:
                restart_on.setdefault(unit, []).append(op)
            if desired.daemon_reload:
                unit_files.append(op)
        if unit_files:
            systemd.daemon_reload(
                name=f"[{control.id}] reload systemd (a unit file changed)",
                _if=any_changed(*unit_files),
            )
        if control.apply is not None:
            applied = control.apply(settings, info) or Applied()
            for unit, ops in applied.restart_on.items():
                restart_on.setdefault(unit, []).extend(ops)
            for unit, ops in applied.started.items():
                started.setdefault(unit, []).extend(ops)
            for unit, flag in applied.drifted.items():
                drifted[unit] = drifted.get(unit, False) or flag
        services += [u for u in control.services if u not in services]
    for unit in services + [u for u in restart_on if u not in services]:
        start = systemd.service(
            name=f"{unit} enabled and running", service=unit, running=True, enabled=True
        )
        systemd.service(
            name=f"restart {unit} (something it reads changed)",
            service=unit,
            running=True,
            restarted=True,
            _if=_needs_restart(
                restart_on.get(unit, []), [*started.get(unit, []), start], drifted.get(unit, False)
            ),
        )
