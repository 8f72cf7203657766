"""What a control is: an id, where it comes from, why, and the resources it manages.

A control is a declaration. Its ``resources`` function turns settings and a host's facts into
typed resources (files, packages, services, sysctls, ...); the deploy converges exactly those and
verify compares exactly those, from the same per-host snapshot, so the two cannot disagree.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from .text import printable

if TYPE_CHECKING:
    from .hostinfo import HostInfo
    from .resource import Resource


@dataclass(frozen=True)
class Source:
    """Where a control comes from: a section of CircleCI's documents, a CIS id, a dev-sec id."""

    kind: str  # circleci-page, server-4x, circleci, cis-docker, cis-debian, dev-sec, toolkit
    ref: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.ref}"


class Status(StrEnum):
    PASS = "pass"  # noqa: S105  (a status, not a password)
    FAIL = "fail"
    NOT_VERIFIABLE = "not-verifiable"  # the check needs something this host cannot show
    NOT_APPLICABLE = "not-applicable"  # the settings turn this control off
    WAIVED = "waived"  # failed, but a current waiver accepts it


@dataclass(frozen=True)
class Finding:
    """One difference between what a resource should be and what a host has.

    ``resource`` is the resource's id (``file:/etc/x``), so a report, a waiver and the deploy
    all name the same thing. ``verifiable=False``: this host cannot answer (a container cannot
    load audit rules): reported as such, never as passed.
    """

    what: str
    expected: str
    found: str
    verifiable: bool = True
    resource: str = ""

    def line(self) -> str:
        """ "WHAT: expected X, found Y", safe to show: what a host sent (a process name from
        ``ss``, a file's content) cannot move a terminal's cursor or start a new line."""
        return printable(f"{self.what}: expected {self.expected}, found {self.found}")


@dataclass(frozen=True)
class Outcome:
    control_id: str
    status: Status
    findings: tuple[Finding, ...] = ()
    note: str = ""


Resources = Callable[[Any, "HostInfo"], Sequence["Resource"]]


def no_resources(settings: Any, info: HostInfo) -> tuple[Resource, ...]:
    return ()


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    sources: tuple[Source, ...]
    rationale: str
    resources: Resources = no_resources
    applies: Callable[[Any], bool] = lambda settings: True
    circleci_impact: str = ""  # how the control keeps CircleCI jobs working, if it touches them
    testbed: str = "verified"  # what the local test bed can show
    tags: tuple[str, ...] = field(default_factory=tuple)
    # NIST SP 800-53 Rev. 5 controls this control implements (in part), for compliance mapping
    nist: tuple[str, ...] = ()

    def frameworks(self) -> dict[str, list[str]]:
        """Framework ids by framework: the CIS benchmark items its sources name, and NIST."""
        found: dict[str, list[str]] = {}
        for name, kind in (("CIS Debian Linux", "cis-debian"), ("CIS Docker", "cis-docker")):
            ids = [i for s in self.sources if s.kind == kind for i in re.split(r"[ ,]+", s.ref)]
            ids = [i for i in ids if re.fullmatch(r"\d+(\.\d+)*(-\d+(\.\d+)*)?", i)]
            if ids:
                found[name] = ids
        if self.nist:
            found["NIST SP 800-53 Rev. 5"] = list(self.nist)
        return found

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "sources": [str(s) for s in self.sources],
            "rationale": self.rationale,
            "circleci_impact": self.circleci_impact,
            "testbed": self.testbed,
        }
