"""The one pyinfra fact the deploy reads: the host's snapshot script's output, as text.

The script is planned once per run and asked for once per host (twice at most, when the host's
real facts add resources), so a host costs one remote command whatever the number of resources.
"""

from __future__ import annotations

from pyinfra.api import FactBase

from ..model.nomad_api import NodeWork, parse_status, status_command


class SnapshotText(FactBase):
    """The raw output of a snapshot script (see ``cci_harden.model.snapshot``)."""

    def command(self, script: str) -> str:
        return script

    def process(self, output) -> str:
        return "\n".join(output)


class NomadWork(FactBase):
    """What the host's own Nomad agent says of its node: drain state and running allocations
    (``cci_harden.model.nomad_api``); asked only when the deploy would interrupt builds."""

    def command(self) -> str:
        return status_command()

    def process(self, output) -> NodeWork:
        return parse_status("\n".join(output))
