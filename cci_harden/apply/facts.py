"""The one pyinfra fact the deploy reads: the host's snapshot script's output, as text.

pyinfra caches facts per command, so the script (planned once per run) is one remote command per
host whatever the number of resources.
"""

from __future__ import annotations

from pyinfra.api import FactBase


class SnapshotText(FactBase):
    """The raw output of a snapshot script (see ``cci_harden.model.snapshot``)."""

    def command(self, script: str) -> str:
        return script

    def process(self, output) -> str:
        return "\n".join(output)
