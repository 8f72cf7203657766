"""Apply a profile's controls to the current pyinfra host; called from the files in ``deploys/``.

Settings come from the inventory the host was loaded from (``host.data.cci_inventory``), so the
deploy and ``cci-harden verify`` read the same file, the same switches and the same waivers. The
host is gathered once (one remote command, two at most) and an operation is emitted only for a
resource whose state differs, so a converged host gets none. Services restart once, at the end,
and only when something they read changed in this run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from pyinfra import host, logger

from ..config.settings import FleetSettings, load_settings
from ..controls import PROFILES, known_control_ids
from ..model.disruption import host_disruptions, needs
from ..model.gather import GatherPlan, HostState, first_gather, gather_host
from ..model.interruption import Interruption
from ..model.kinds import Package, Service
from ..model.kinds.recovery import DpkgState, PackageSystem
from ..model.plan import IMAGE, STAGES
from ..model.verdict import Decision, Verdict, plan_verdicts
from ..model.waivers import Waiver, load_waivers, waivers_path
from .converge import Run, converge, install_packages, repairs, settle_services, units_of
from .facts import NomadWork, SnapshotText
from .first_boot import install_first_boot_unit
from .lock import DeployLock, holder_text
from .operations import refuse


@lru_cache(maxsize=8)
def _settings(inventory_path: str) -> FleetSettings:
    return load_settings(inventory_path)  # checked (switches too) when pyinfra loaded it


@lru_cache(maxsize=8)
def _waivers(inventory_path: str) -> tuple[Waiver, ...]:
    return tuple(load_waivers(waivers_path(Path(inventory_path)), known_control_ids()))


@lru_cache(maxsize=8)
def _first_gather(inventory_path: str, profile: str, stage: str) -> GatherPlan:
    return first_gather(PROFILES[profile], _settings(inventory_path), profile, stage=stage)


def stage() -> str:
    """The local run's stage (``--data cci_stage=image``), "" for every other run."""
    found = str(host.data.get("cci_stage") or "")
    if found not in STAGES:
        raise RuntimeError(f"cci_stage {found!r} is not one of {', '.join(STAGES[1:])}")
    return found


def is_local() -> bool:
    """Run on the host itself (``pyinfra @local``): no SSH connection of ours to check."""
    return host.name == "@local"


def inventory_path() -> str:
    path = host.data.get("cci_inventory")
    if not path:
        raise RuntimeError(
            f"host {host.name} was not loaded from a cci-harden inventory "
            "(run: pyinfra inventories/NAME deploys/...)"
        )
    return path


def current_settings() -> FleetSettings:
    return _settings(inventory_path())


def gather_current_host(profile: str) -> HostState:
    path = inventory_path()
    return gather_host(
        lambda script: host.get_fact(SnapshotText, script=script) or "",
        PROFILES[profile],
        _settings(path),
        profile,
        host.name,
        _first_gather(path, profile, stage()),
        "" if is_local() else str(host.data.get("ssh_hostname") or host.name),
    )


def apply_profile(profile: str) -> None:
    """Converge every resource of the profile's controls that differs on this host."""
    path = inventory_path()
    settings = _settings(path)
    # before anything is read or changed: this deploy alone on this host (apply/lock.py)
    lock = host.get_fact(
        DeployLock,
        wait=settings.deploy.lock_wait_seconds,
        holder=holder_text(),
        local=is_local(),
    )
    if lock != "locked":
        return  # the host failed with the holder named; the other hosts go on
    state = gather_current_host(profile)
    _say_who_holds_dpkg(state, settings)
    waivers = _waivers(path)
    today = dt.datetime.now(dt.UTC).date()
    in_the_way = _builds_in_the_way(state, settings, waivers, today)
    if in_the_way:
        refuse(name="running builds are not interrupted", reason=in_the_way)
        return
    run = Run(
        settings,
        state.info,
        login_timeout=settings.ssh.login_check_timeout,
        stage=stage(),
        local=is_local(),
    )
    converge_host(state, run, waivers, today)
    if run.stage == IMAGE:
        install_first_boot_unit(path, profile)


NOT_REPAIRABLE = "differs; the deploy cannot repair it (verify names it)"


def converge_host(
    state: HostState, run: Run, waivers: Sequence[Waiver], today: dt.date
) -> dict[str, str]:
    """The host's verdicts (``model.verdict``) as operations on the current host, and nothing
    else; returns the resources left as they are, with why. Beyond the verdicts the deploy adds
    only what the same run causes: a resource whose snapshot matched acts when something this
    run changed makes it differ (``reacts_to``), unless it is waived."""
    left: dict[str, str] = {}
    services: list[tuple[str, Service, Any]] = []
    installing: set[str] = set()
    last: list[Verdict] = []
    verdicts = plan_verdicts(state.plans, state.snapshot, state.info, waivers, today, host.name)
    # host.loop: an operation's identity is its control's and resource's position, the same on
    # every host, so hosts converging different resources never share an operation
    for plan, found in host.loop(verdicts):
        if plan.off:
            continue
        run.control_id = plan.control.id
        missing_packages: list[Package] = []
        for verdict in host.loop(found):
            resource, current = verdict.resource, verdict.state
            if verdict.decision is Decision.DECLARED_EARLIER:
                continue
            if verdict.decision is Decision.NOT_GATHERED:  # verify reports it; never act blind
                logger.warning(f"{host.print_prefix}[{plan.control.id}] {resource.id} not gathered")
                left[resource.id] = verdict.decision.value
                continue
            if resource.converges_last:
                last.append(verdict)
                continue
            acts = _acts(verdict, run, installing)
            if acts and verdict.waived:
                logger.info(
                    f"{host.print_prefix}[{plan.control.id}] {resource.id} left as it is: waived"
                )
                left[resource.id] = Decision.WAIVED.value
                continue
            if isinstance(resource, Service):
                services.append((plan.control.id, resource, current))
                continue
            if not acts:
                left[resource.id] = verdict.decision.value
                continue
            if isinstance(resource, Package) and resource.present:
                missing_packages.append(resource)  # one apt transaction per control
                installing.add(resource.name)
                continue
            if not repairs(resource):
                left[resource.id] = NOT_REPAIRABLE  # converge() logs that verify reports it
            if missing_packages:
                install_packages(missing_packages, run)
                missing_packages = []
            converge(resource, current, run)
        if missing_packages:
            install_packages(missing_packages, run)
    run.control_id = ""
    left.update(settle_services(services, run, units_of(state.plans)))
    for verdict in host.loop(last):
        run.control_id = verdict.control_id
        acts = _acts(verdict, run, installing)
        if acts and verdict.waived:
            left[verdict.resource.id] = Decision.WAIVED.value
        elif not acts:
            left[verdict.resource.id] = verdict.decision.value
        else:
            converge(verdict.resource, verdict.state, run)
    run.control_id = ""
    return left


def _builds_in_the_way(state: HostState, settings: FleetSettings, waivers, today) -> str:
    """Why this host must not be changed now: the plan would kill builds the host's Nomad agent
    is running (or cannot say it is not). "" when the change may go ahead: nothing kills a
    build, nothing runs, the host is drained, an image or first boot (Nomad not running yet),
    or the operator allows it (deploy.allow_build_interruption)."""
    if stage() or settings.deploy.allow_build_interruption:
        return ""
    disruptions = host_disruptions(state.plans, state.snapshot, state.info, waivers, today)
    killing = needs(disruptions, Interruption.RESTART_KILLS_BUILDS)
    if not killing:
        return ""
    work = host.get_fact(NomadWork)
    if work.error:
        busy = f"whether builds run cannot be told ({work.error})"
    elif work.running:
        busy = f"{len(work.running)} allocation(s) are running"
    else:
        return ""
    changes = "; ".join(d.describe() for d in killing[:3])
    more = f" and {len(killing) - 3} more" if len(killing) > 3 else ""
    return (
        f"{changes}{more}, and {busy}: drain it first with `cci-harden rollout "
        f"{inventory_path()}`, or set deploy.allow_build_interruption = true"
    )


def _acts(verdict: Verdict, run: Run, installing: set[str]) -> bool:
    """The verdict acts, or what this run changed makes the resource differ (a waived one is
    left as it is by the caller). What the host cannot show (a container's kernel) is never
    acted on."""
    if verdict.decision in (Decision.ACT, Decision.WAIVED):
        return True
    return bool(verdict.resource.reacts_to(verdict.state, run.changed_paths, installing))


def _say_who_holds_dpkg(state: HostState, settings: FleetSettings) -> None:
    for plan in state.plans:
        for resource in plan.resources:
            if isinstance(resource, PackageSystem):
                current = state.snapshot.state(resource)
                if isinstance(current, DpkgState) and current.lock_holder:
                    logger.warning(
                        f"{host.print_prefix}dpkg's lock is held by {current.lock_holder}: apt "
                        f"and dpkg wait up to {settings.deploy.apt_lock_wait_seconds} s for it "
                        "(deploy.apt_lock_wait_seconds)"
                    )
