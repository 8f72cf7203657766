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


def load_waivers(path: Path, known_controls: set[str]) -> list[Waiver]:
    if not path.is_file():
        return []
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise WaiverError(f"{path}: not valid TOML: {exc}") from None
    unknown_keys = set(raw) - {"waiver"}
    if unknown_keys:
        raise WaiverError(f"{path}: unknown table(s) {', '.join(sorted(unknown_keys))}")
    waivers = []
    for index, entry in enumerate(raw.get("waiver", [])):
        try:
            waiver = Waiver(**entry)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise WaiverError(f"{path}: waiver {index + 1}: {problems}") from None
        if waiver.control not in known_controls:
            raise WaiverError(f"{path}: waiver {index + 1}: unknown control {waiver.control}")
        waivers.append(waiver)
    return waivers
