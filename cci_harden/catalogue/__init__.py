"""The catalogue of controls: the one list that the deploys apply and the verify stage checks."""

from __future__ import annotations

from . import apt, docker, network, nomad, ssh
from .model import Control, DesiredFile, Finding, Outcome, Probe, Source, Status

# Deploy order: what a later control needs (a package, a directory, the binary its validator
# runs) comes from an earlier one. Capacity is first, so a host that cannot serve is left untouched.
CATALOGUE: tuple[Control, ...] = (
    nomad.CAPACITY,
    *apt.CONTROLS,
    *ssh.CONTROLS,
    *docker.CONTROLS,
    *network.CONTROLS,
    *(c for c in nomad.CONTROLS if c is not nomad.CAPACITY),
)

_IDS = [c.id for c in CATALOGUE]
assert len(_IDS) == len(set(_IDS)), "control ids must be unique"


def by_id(control_id: str) -> Control:
    for control in CATALOGUE:
        if control.id == control_id:
            return control
    raise KeyError(control_id)


def select(tags: tuple[str, ...] = (), ids: tuple[str, ...] = ()) -> tuple[Control, ...]:
    """Controls carrying any of ``tags`` (all when none) and, when given, only ``ids``."""
    chosen = [c for c in CATALOGUE if not tags or set(tags) & set(c.tags)]
    if ids:
        chosen = [c for c in chosen if c.id in ids]
    return tuple(chosen)


__all__ = [
    "CATALOGUE",
    "Control",
    "DesiredFile",
    "Finding",
    "Outcome",
    "Probe",
    "Source",
    "Status",
    "by_id",
    "select",
]
