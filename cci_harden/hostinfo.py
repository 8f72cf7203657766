"""What a control needs to know about a host: CPUs, memory, distribution.

The same command serves the deploy (as a pyinfra fact) and the verify stage (as a probe in the
snapshot), so both render a host's files from the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyinfra.api import FactBase

COMMAND = (
    "nproc; awk '/^MemTotal:/ {print $2}' /proc/meminfo; "
    '. /etc/os-release; echo "$ID $VERSION_ID"; hostname'
)


@dataclass(frozen=True)
class HostInfo:
    cpus: int
    memory_mb: int
    os_id: str
    os_version: str
    hostname: str

    @classmethod
    def parse(cls, lines: list[str]) -> HostInfo:
        cpus, mem_kb, os_line, hostname = (line.strip() for line in lines[:4])
        os_id, _, os_version = os_line.partition(" ")
        return cls(int(cpus), int(mem_kb) // 1024, os_id, os_version, hostname)


class HostInfoFact(FactBase):
    """CPUs, memory (MB), distribution and host name, in one command."""

    def command(self) -> str:
        return COMMAND

    def process(self, output) -> HostInfo:
        return HostInfo.parse(list(output))
