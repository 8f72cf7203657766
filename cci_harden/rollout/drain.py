"""The drain protocol on one host's own Nomad agent: ineligible, drained, waited for, eligible
again; each step an HTTP request the host makes to its agent on loopback."""

from __future__ import annotations

import time
from collections.abc import Callable

from ..config.settings import HostEntry
from ..model.nomad_api import (
    NodeWork,
    action_command,
    drain_body,
    eligibility_body,
    parse_action,
    undrain_body,
)
from .shell import FleetShell


class DrainError(Exception):
    """The agent refused or could not be asked."""


class Drainer:
    def __init__(self, shell: FleetShell, node: Callable[[HostEntry], NodeWork]) -> None:
        self.shell = shell
        self.node = node

    def _put(self, host: HostEntry, action: str, body: dict) -> None:
        result = self.shell.run(host, action_command(action, body))
        ok, said = parse_action(result.stdout)
        if result.rc != 0 or not ok:
            raise DrainError(f"{action}: {said if result.stdout else result.reason()}")

    def ineligible(self, host: HostEntry) -> None:
        self._put(host, "eligibility", eligibility_body(False))

    def drain(self, host: HostEntry, deadline_seconds: int | None) -> None:
        """``None``: Nomad never stops a build; the rollout's own wait decides."""
        self._put(host, "drain", drain_body(deadline_seconds))

    def release(self, host: HostEntry) -> None:
        """Drain off and eligible again, in one request."""
        self._put(host, "drain", undrain_body(eligible=True))

    def wait_idle(
        self, host: HostEntry, until: float, poll: float, stop: Callable[[], bool] = lambda: False
    ) -> NodeWork:
        """Poll until no allocation runs or ``until`` (a monotonic time) passes."""
        while True:
            work = self.node(host)
            if work.error:
                raise DrainError(work.error)
            if not work.running or time.monotonic() >= until or stop():
                return work
            time.sleep(min(poll, max(0.0, until - time.monotonic())))
