"""One host before (and after) a step of the rollout: what its deploy would change, what that
interrupts, and what its Nomad agent is doing. Read with the deploy's own snapshot script."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..config.settings import HostEntry
from ..controls import PROFILES
from ..model.disruption import host_disruptions
from ..model.gather import GatherPlan, first_gather, gather_host
from ..model.interruption import Disruption, Interruption, worst
from ..model.nomad_api import NodeWork, parse_status, status_command
from .shell import FleetShell

_NODE_MARK = "@@cci-rollout-node"


class HostUnreachable(Exception):
    pass


@dataclass
class Survey:
    host: str
    disruptions: list[Disruption] = field(default_factory=list)
    work: NodeWork = field(default_factory=NodeWork)
    error: str = ""  # the host could not be read

    @property
    def interruption(self) -> Interruption:
        return worst(self.disruptions)

    @property
    def changes(self) -> bool:
        return bool(self.disruptions)

    @property
    def needs_drain(self) -> bool:
        """A change would kill builds and a Nomad agent runs (none: nothing to drain)."""
        return self.interruption.kills_builds and self.work.agent

    @property
    def needs_reboot(self) -> bool:
        return self.interruption >= Interruption.REBOOT

    def why(self) -> str:
        killing = [d for d in self.disruptions if d.interruption.kills_builds]
        return "; ".join(d.describe() for d in killing or self.disruptions)


class Surveyor:
    def __init__(self, shell: FleetShell, profile: str, waivers: Sequence[Any]) -> None:
        self.shell = shell
        self.profile = profile
        self.settings = shell.inventory.settings
        self.waivers = waivers
        self._first: GatherPlan | None = None

    def _run(self, host: HostEntry, script: str) -> str:
        result = self.shell.run(host, script)
        if result.unreachable:
            raise HostUnreachable(result.reason())
        return result.stdout

    def plan(self) -> GatherPlan:
        """The first gather script, planned once for every host (before any thread asks)."""
        if self._first is None:
            self._first = first_gather(PROFILES[self.profile], self.settings, self.profile)
        return self._first

    def survey(self, host: HostEntry) -> Survey:
        node_output: list[str] = []

        def run(script: str) -> str:
            # the first script also asks the agent: one round trip per host for both
            if node_output:
                return self._run(host, script)
            text = self._run(host, f"{script}\necho {_NODE_MARK}\n{status_command()}\n")
            text, _, node = text.partition(f"{_NODE_MARK}\n")
            node_output.append(node)
            return text

        try:
            state = gather_host(
                run,
                PROFILES[self.profile],
                self.settings,
                self.profile,
                host.name,
                self.plan(),
                host.address,
            )
            work = parse_status(node_output[0])
        except (HostUnreachable, RuntimeError) as exc:
            return Survey(host.name, error=str(exc) or "unreachable")
        today = dt.datetime.now(dt.UTC).date()
        disruptions = host_disruptions(state.plans, state.snapshot, state.info, self.waivers, today)
        return Survey(host.name, disruptions, work)

    def node(self, host: HostEntry) -> NodeWork:
        return parse_status(self._run(host, status_command()))
