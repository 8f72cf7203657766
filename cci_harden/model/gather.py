"""Gather a host and plan its resources: the same two steps for the deploy and for verify.

The first script is planned with stand-in facts (so it is the same for every host and made once);
it returns the host's real facts with the state of every resource. Only if the real facts add a
resource the stand-in plan lacked (a path that depends on the host) does a second, smaller script
run. At most two remote commands per host, whichever side asks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .control import Control
from .hostinfo import STAND_IN, HostInfo
from .plan import ControlPlan, plan_host, resources_of, settle
from .snapshot import Snapshot, build_script, missing, parse_output


@dataclass(frozen=True)
class GatherPlan:
    """The first script, planned once for every host of a run."""

    resources: tuple
    script: str
    lifecycle: bool = True
    stage: str = ""  # model.plan.STAGES


def first_gather(
    controls: Sequence[Control],
    settings: Any,
    profile: str,
    lifecycle: bool = True,
    stage: str = "",
) -> GatherPlan:
    plans = plan_host(controls, settings, STAND_IN, profile, lifecycle, stage)
    resources = tuple(resources_of(plans))
    return GatherPlan(resources, build_script(resources), lifecycle, stage)


@dataclass
class HostState:
    info: HostInfo
    snapshot: Snapshot
    plans: list[ControlPlan]
    remote_commands: int


def gather_host(
    run: Callable[[str], str],
    controls: Sequence[Control],
    settings: Any,
    profile: str,
    host_name: str,
    first: GatherPlan,
    host_address: str = "",
) -> HostState:
    """``run`` executes a script on the host and returns its standard output."""
    snapshot = parse_output(run(first.script), first.resources)
    commands = 1
    if snapshot.info is None:
        raise RuntimeError("the host's facts were not in its snapshot")
    info = replace(snapshot.info, name=host_name, address=host_address)
    plans = plan_host(controls, settings, info, profile, first.lifecycle, first.stage)
    extra = missing(resources_of(plans), snapshot)
    if extra:
        snapshot.merge(parse_output(run(build_script(extra, hostinfo=False)), extra))
        commands += 1
    return HostState(info, snapshot, settle(plans, snapshot), commands)
