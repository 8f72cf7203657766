"""What applying a change costs the builds running on a host.

Every resource kind answers ``interruption(state)`` for a difference the deploy would apply; a
host's plan then needs the worst of them. The classes are ordered: a deploy that refuses
``RESTART_KILLS_BUILDS`` on a busy host refuses ``REBOOT`` too.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Interruption(IntEnum):
    NOTHING = 0  # a file no daemon reads live, a live sysctl, a start of a stopped unit
    RELOAD = 1  # the daemon rereads its configuration (SIGHUP, nft -f, sshd reload)
    RESTART_KEEPS_BUILDS = 2  # a restart builds survive (Nomad with KillMode=process)
    RESTART_KILLS_BUILDS = 3  # dockerd, containerd or runc go away under running containers
    REBOOT = 4  # the kernel or its command line

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def kills_builds(self) -> bool:
        return self >= Interruption.RESTART_KILLS_BUILDS


_LABELS = {
    Interruption.NOTHING: "nothing",
    Interruption.RELOAD: "a reload",
    Interruption.RESTART_KEEPS_BUILDS: "a restart builds survive",
    Interruption.RESTART_KILLS_BUILDS: "a restart that kills builds",
    Interruption.REBOOT: "a reboot",
}

# What restarting a unit costs a running build. Units not listed restart without touching a
# build (rsyslog, auditd, the time daemon).
_UNIT_RESTART = {
    "docker": Interruption.RESTART_KILLS_BUILDS,
    "containerd": Interruption.RESTART_KILLS_BUILDS,
    # our unit has KillMode=process: the task executors outlive the agent, which reattaches
    "nomad": Interruption.RESTART_KEEPS_BUILDS,
    # sshd and the firewall apply a new configuration in place
    "ssh": Interruption.RELOAD,
    "nftables": Interruption.RELOAD,
    "cci-harden-firewall": Interruption.RELOAD,
}

# Packages whose upgrade or removal restarts the container runtime under running builds (their
# maintainer scripts restart docker/containerd); Nomad's package restarts only the agent.
RUNTIME_PACKAGES = frozenset(
    {
        "docker.io",
        "docker-ce",
        "docker-ce-cli",
        "containerd",
        "containerd.io",
        "runc",
    }
)
NOMAD_PACKAGES = frozenset({"nomad"})

# dockerd rereads these daemon.json keys on SIGHUP (dockerd reference, "Configuration reload
# behavior"); every other key needs a restart.
DOCKERD_RELOADABLE_KEYS = (
    "debug",
    "labels",
    "live-restore",
    "max-concurrent-downloads",
    "max-concurrent-uploads",
    "max-download-attempts",
    "default-runtime",
    "runtimes",
    "authorization-plugins",
    "insecure-registries",
    "registry-mirrors",
    "shutdown-timeout",
    "features",
)


def unit_restart(unit: str) -> Interruption:
    return _UNIT_RESTART.get(unit, Interruption.RESTART_KEEPS_BUILDS)


def package_change(name: str, installed: bool) -> Interruption:
    """Installing, upgrading or removing a package: nothing runs from one not installed yet."""
    if not installed:
        return Interruption.NOTHING
    if name in RUNTIME_PACKAGES:
        return Interruption.RESTART_KILLS_BUILDS
    if name in NOMAD_PACKAGES:
        return Interruption.RESTART_KEEPS_BUILDS
    return Interruption.NOTHING


def unit_classes() -> list[tuple[str, Interruption]]:
    """The units whose restart is classed here, for the docs."""
    return sorted(_UNIT_RESTART.items())


@dataclass(frozen=True)
class Disruption:
    """One change a host's plan would apply and what it interrupts."""

    interruption: Interruption
    control: str
    resource: str
    why: str = ""

    def describe(self) -> str:
        why = f": {self.why}" if self.why else ""
        return f"[{self.control}] {self.resource} needs {self.interruption.label}{why}"


def worst(disruptions: list[Disruption]) -> Interruption:
    return max((d.interruption for d in disruptions), default=Interruption.NOTHING)
