"""The catalogue of controls: the one list that the deploys apply and the verify stage checks."""

from __future__ import annotations

from ..model.control import Control, Finding, Outcome, Source, Status
from ..model.plan import LIFECYCLE, RECOVERY
from ..model.profiles import PROFILE_NAMES
from . import apt, artifacts, baseline, central_logging, docker, network, nomad, platform, ssh

# Deploy order: what a later control needs (a package, a directory, the binary its validator
# runs) comes from an earlier one. The gates are first (the platform, then capacity), so a host
# that cannot serve is left untouched.
CATALOGUE: tuple[Control, ...] = (
    platform.OS_GATE,
    nomad.CAPACITY,
    *apt.CONTROLS,
    *ssh.CONTROLS,
    *baseline.CONTROLS,
    *central_logging.CONTROLS,
    *docker.CONTROLS,
    *network.CONTROLS,
    *(c for c in nomad.CONTROLS if c is not nomad.CAPACITY),
)

# The host that serves artifacts through nginx (deploys/artifacts.py).
ARTIFACT_SERVER: tuple[Control, ...] = (platform.OS_GATE, *apt.CONTROLS, *artifacts.CONTROLS)

# The OS baseline alone (deploys/baseline.py): every host class gets it, Nomad clients included.
BASELINE: tuple[Control, ...] = (
    platform.OS_GATE,
    *apt.CONTROLS,
    *ssh.CONTROLS,
    *baseline.CONTROLS,
    *central_logging.CONTROLS,
)

# What each deploy applies and ``cci-harden verify --profile`` checks.
PROFILES: dict[str, tuple[Control, ...]] = {
    "nomad": CATALOGUE,
    "baseline": BASELINE,
    "artifacts": ARTIFACT_SERVER,
}

if tuple(PROFILES) != PROFILE_NAMES:
    raise RuntimeError("the profiles and their names in model.profiles differ")

_BY_ID: dict[str, Control] = {}
for _profile in PROFILES.values():
    if len({c.id for c in _profile}) != len(_profile):
        raise RuntimeError("a profile lists a control twice")
    for _control in _profile:
        if _BY_ID.setdefault(_control.id, _control) is not _control:
            raise RuntimeError(f"{_control.id} is not unique")
_BY_ID[RECOVERY.id] = RECOVERY  # every profile's deploy starts with it, after the gates
_BY_ID[LIFECYCLE.id] = LIFECYCLE  # every profile's deploy ends with it (model.plan)
ALL_CONTROLS: tuple[Control, ...] = tuple(_BY_ID.values())


def known_control_ids() -> set[str]:
    return set(_BY_ID)


def by_id(control_id: str) -> Control:
    return _BY_ID[control_id]


def select(
    tags: tuple[str, ...] = (), ids: tuple[str, ...] = (), profile: str = "nomad"
) -> tuple[Control, ...]:
    """A profile's controls with any of ``tags`` (all when none) and, when given, only ``ids``."""
    chosen = [c for c in PROFILES[profile] if not tags or set(tags) & set(c.tags)]
    if ids:
        chosen = [c for c in chosen if c.id in ids]
    return tuple(chosen)


__all__ = [
    "ALL_CONTROLS",
    "ARTIFACT_SERVER",
    "BASELINE",
    "CATALOGUE",
    "PROFILES",
    "Control",
    "Finding",
    "LIFECYCLE",
    "RECOVERY",
    "Outcome",
    "Source",
    "Status",
    "by_id",
    "known_control_ids",
    "select",
]
