"""Waivers: a known, accepted failure of one control on some hosts, owned and with an end date.

Kept as data beside the inventory (``inventories/NAME.waivers.toml``)::

    [[waiver]]
    control = "CCI-NET-01"
    hosts = ["nomad-client-7"]          # names or globs
    justification = "legacy monitoring agent listens on 9100 until INFRA-1234 ships"
    owner = "platform-team@example.com"
    expires = 2026-12-31

    resources = ["service:apt-daily-upgrade.timer"]   # optional: only these resources

A waived failure is reported as waived and does not fail the run; an expired waiver fails it.
The deploy reads the same file and leaves a waived deviation in place until the waiver expires.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import tomllib
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import CciHardenError


class WaiverError(CciHardenError):
    """A waivers file that cannot be used."""


class Waiver(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    control: str = Field(pattern=r"^CCI-[A-Z]+-\d{2}$")
    hosts: list[str] = Field(min_length=1)
    justification: str = Field(min_length=10)
    owner: str = Field(min_length=3)
    expires: dt.date
    # Resource ids or globs (``file:/etc/x``, ``package:*``) when only part of the control is
    # accepted; empty: the whole control.
    resources: list[str] = Field(default_factory=list)

    @field_validator("justification")
    @classmethod
    def _says_why(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must say why the failure is accepted")
        return value

    def covers(self, control_id: str, host: str) -> bool:
        return self.control == control_id and any(fnmatch.fnmatch(host, p) for p in self.hosts)

    def accepts(self, outcome) -> bool:
        """Whether every finding of ``outcome`` is on a resource this waiver names (any, when
        it names none)."""
        if not self.resources:
            return True
        return all(
            any(fnmatch.fnmatch(f.resource, pattern) for pattern in self.resources)
            for f in outcome.findings
            if f.verifiable
        )

    def expired(self, today: dt.date) -> bool:
        return today > self.expires

    def describe(self) -> dict:
        return {
            "control": self.control,
            "hosts": self.hosts,
            "justification": self.justification,
            "owner": self.owner,
            "expires": self.expires.isoformat(),
            "resources": self.resources,
        }


def waivers_path(inventory: Path) -> Path:
    return inventory.with_name(inventory.name + ".waivers.toml")


def deciding_waiver(waivers, control_id: str, host: str, outcome, today: dt.date):
    """The one waiver that decides a failing outcome, for every output alike: a current waiver
    that covers it (the outcome is waived), else an expired one (it fails, and the waiver is
    named); None when no waiver covers it."""
    covering = [w for w in waivers if w.covers(control_id, host) and w.accepts(outcome)]
    current = [w for w in covering if not w.expired(today)]
    return (current or covering or [None])[0]


def _resources_meet(one: Waiver, other: Waiver) -> bool:
    """Whether two waivers could accept the same resource (either takes the whole control, or
    they name a pattern in common, or one's pattern matches the other's)."""
    if not one.resources or not other.resources:
        return True
    return any(
        fnmatch.fnmatch(a, b) or fnmatch.fnmatch(b, a)
        for a in one.resources
        for b in other.resources
    )


def overlaps(waivers: list[Waiver], hosts: Sequence[str] = ()) -> list[str]:
    """One line per pair of waivers that cover the same control on the same host (a host
    pattern they share, or an inventory host both match) and could accept the same resource:
    which would decide is a matter of order, so it is refused; renew a waiver by editing it."""
    found = []
    for i, one in enumerate(waivers):
        for j in range(i + 1, len(waivers)):
            other = waivers[j]
            if one.control != other.control or not _resources_meet(one, other):
                continue
            shared = sorted(set(one.hosts) & set(other.hosts)) or sorted(
                h for h in hosts if one.covers(one.control, h) and other.covers(other.control, h)
            )
            if shared:
                found.append(
                    f"waivers {i + 1} and {j + 1} both cover {one.control} on {shared[0]}: keep "
                    "one (to renew a waiver, change its expires)"
                )
    return found


def load_waivers(path: Path, known_controls: set[str], hosts: Sequence[str] = ()) -> list[Waiver]:
    """The waivers file beside an inventory, every problem in it named at once."""
    if not path.is_file():
        return []
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise WaiverError(f"{path}: not valid TOML: {exc}") from None
    problems = []
    unknown_keys = set(raw) - {"waiver"}
    if unknown_keys:
        problems.append(f"unknown table(s) {', '.join(sorted(unknown_keys))}")
    waivers = []
    for index, entry in enumerate(raw.get("waiver", [])):
        try:
            waiver = Waiver(**entry)
        except (ValidationError, TypeError) as exc:
            errors = exc.errors() if isinstance(exc, ValidationError) else []
            detail = (
                "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
                or "not a table of waiver fields"
            )
            problems.append(f"waiver {index + 1}: {detail}")
            continue
        if waiver.control not in known_controls:
            problems.append(f"waiver {index + 1}: unknown control {waiver.control}")
        waivers.append(waiver)
    problems += overlaps(waivers, hosts)
    if problems:
        raise WaiverError(f"{path}:\n" + "\n".join(f"  {p}" for p in problems))
    return waivers
