"""What a control is: an id, a title, where it comes from, how it is applied and how verified.

Most controls manage files. A control lists its :class:`DesiredFile` objects once; the deploy
writes exactly those bytes, modes and owners, and the verify stage compares the host against the
very same objects, so the two can never disagree about what "hardened" means.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..hostinfo import HostInfo
    from ..settings import FleetSettings
    from ..verify.snapshot import Snapshot


@dataclass(frozen=True)
class Source:
    """Where a control comes from: a seed section, a CIS Docker id, a dev-sec id, or CircleCI."""

    kind: str  # "seed", "cis-docker", "dev-sec", "circleci", "toolkit"
    ref: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.ref}"


@dataclass(frozen=True)
class DesiredFile:
    """A file as the deploy writes it and the verify stage expects it."""

    path: str
    content: str
    mode: int = 0o644
    user: str = "root"
    group: str = "root"
    secret: bool = False  # never shown in a diff, a log line or a report
    validate: str | None = None  # shell command, "{path}" is the staged file; must exit 0
    reload: tuple[str, ...] = ()  # systemd units to restart when the file changes
    daemon_reload: bool = False  # a systemd unit file: reload systemd when it changes
    dir_mode: int | None = None  # the parent directory's mode, set before the file is written
    via: str = "file"  # "sshd": written by the lockout-guarded sshd operation

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content.encode()).hexdigest()


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_VERIFIABLE = "not-verifiable"  # the check needs something this host cannot show
    NOT_APPLICABLE = "not-applicable"  # the settings turn this control off
    WAIVED = "waived"  # failed, but a current waiver accepts it


@dataclass(frozen=True)
class Finding:
    """One difference between what a control expects and what a host has.

    ``verifiable=False`` marks a check this host cannot answer (a test host without a real Nomad
    agent, a container that cannot load audit rules): reported as such, never as passed.
    """

    what: str
    expected: str
    found: str
    verifiable: bool = True


@dataclass
class Applied:
    """What a control's extra operations tell the deploy about services.

    ``restart_on``: unit -> operations whose change means the unit must restart.
    ``started``: unit -> operations that started the unit afresh in this run, making a restart
    redundant (a new package that started its daemon with the new configuration already).
    ``drifted``: unit -> True when the unit's runtime state no longer matches its files (read
    from facts), so it must restart even though no file changed.
    """

    restart_on: dict[str, list] = field(default_factory=dict)
    started: dict[str, list] = field(default_factory=dict)
    drifted: dict[str, bool] = field(default_factory=dict)  # unit -> runtime state drifted


@dataclass(frozen=True)
class Outcome:
    control_id: str
    status: Status
    findings: tuple[Finding, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class Probe:
    """A read-only command the verify stage runs on a host to gather state for checks."""

    key: str
    command: str


def no_files(settings: FleetSettings, info: HostInfo) -> tuple[DesiredFile, ...]:
    """The default for controls that manage no file."""
    return ()


Files = Callable[["FleetSettings", "HostInfo"], Sequence[DesiredFile]]
Apply = Callable[["FleetSettings", "HostInfo"], "Applied | None"]
Check = Callable[["FleetSettings", "HostInfo", "Snapshot"], Sequence[Finding]]


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    sources: tuple[Source, ...]
    rationale: str
    files: Files = no_files
    apply: Apply | None = None  # pyinfra operations beyond writing ``files``
    packages: Callable[[FleetSettings], Sequence[str]] = lambda settings: ()  # before the files
    services: tuple[str, ...] = ()  # units the deploy keeps enabled and running
    probes: tuple[Probe, ...] | Callable[[FleetSettings], tuple[Probe, ...]] = ()
    check: Check | None = None  # checks beyond comparing ``files``
    applies: Callable[[FleetSettings], bool] = lambda settings: True
    circleci_impact: str = ""  # how the control keeps CircleCI jobs working, if it touches them
    testbed: str = "verified"  # what the local test bed can show: verified / files-only / none
    tags: tuple[str, ...] = field(default_factory=tuple)

    def probes_for(self, settings: FleetSettings) -> tuple[Probe, ...]:
        return self.probes(settings) if callable(self.probes) else self.probes

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "sources": [str(s) for s in self.sources],
            "rationale": self.rationale,
            "circleci_impact": self.circleci_impact,
            "testbed": self.testbed,
        }
