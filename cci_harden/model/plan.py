"""Which resources a host gets: controls switched on for it, built from settings and its facts,
plus the lifecycle manifest; and what its snapshot says about each. Deploy and verify both start
here, so a switch or a waiver has one meaning on both sides.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from .control import Control, Finding, Source
from .errors import CciHardenError
from .hostinfo import HostInfo
from .kinds import ManagedFile, Manifest, ManifestEntry, Package
from .kinds.recovery import PackageSystem, StagedFiles
from .resource import NOT_GATHERED, Resource
from .snapshot import Snapshot

MANIFEST_DIR = "/var/lib/cci-harden/managed"

# Stages of a local run (``cci-harden apply --local``): an image bake, then the instance's first
# boot. "" is every other run: an SSH deploy, or local mode without a stage, which do everything.
IMAGE = "image"
FIRST_BOOT = "first-boot"
STAGES = ("", IMAGE, FIRST_BOOT)


def in_image(resource: Resource) -> bool:
    """What an image carries: what is on disk, never a private key (anyone holding the image
    would hold it) and never what runs (made at first boot, on the instance itself)."""
    if resource.runtime:
        return False
    return not (isinstance(resource, ManagedFile) and resource.secret)


LIFECYCLE = Control(
    id="CCI-TK-01",
    nist=("CM-2", "CM-8"),
    title="Nothing a dropped or switched-off control managed is left on the host",
    sources=(Source("toolkit", "lifecycle: a manifest of what each profile's deploy manages"),),
    rationale="Each profile's deploy records the files it writes and the packages it installed "
    f"(that were absent before) in {MANIFEST_DIR}/PROFILE.json. When a control is dropped from "
    "the catalogue or switched off, the next deploy removes what only that control managed and "
    "says so; verify reports it as drift until then. Directories, modes, accounts and sysctls "
    "at runtime are not reverted: their earlier state is not known.",
    tags=("lifecycle",),
)


RECOVERY = Control(
    id="CCI-TK-02",
    nist=("CP-10",),
    title="What an interrupted earlier run left is finished first: dpkg completed, staged files "
    "removed",
    sources=(Source("toolkit", "recovery: a host cut off mid-run converges on the next run"),),
    rationale="A host killed or cut off during an apt run keeps dpkg's journal and half-installed "
    "packages, and apt then refuses every install until `dpkg --configure -a` is run by hand; a "
    "run cut off between staging a file and renaming it leaves NAME.cci-new beside it. The deploy "
    "finishes both before any other work (after the gates, so a host refused for its size is "
    "left untouched), waiting a bounded time for a dpkg lock another process holds; verify "
    "reports them until then.",
    tags=("lifecycle",),
)


@dataclass(frozen=True)
class ControlPlan:
    control: Control
    resources: tuple[Resource, ...] = ()
    off: str = ""  # why the control is neither applied nor checked on this host; "" when on
    deferred: bool = False  # an image bake left it to first boot: what it managed stays listed


def switched_off(settings: Any, host_name: str) -> dict[str, str]:
    """Control id -> why it is off for this host (inventory-wide, or one of its groups)."""
    switches = settings.controls
    off = {cid: "switched off in settings (controls.disabled)" for cid in switches.disabled}
    for entry in settings.inventory.hosts:
        if entry.name != host_name:
            continue
        for group in entry.groups:
            for cid in switches.groups.get(group, _NO_GROUP).disabled:
                off.setdefault(cid, f"switched off for group {group} (controls.groups.{group})")
    return off


class _NoGroup:
    disabled: tuple[str, ...] = ()


_NO_GROUP = _NoGroup()


def plan_host(
    controls: Sequence[Control],
    settings: Any,
    info: HostInfo,
    profile: str,
    lifecycle: bool = True,
    stage: str = "",
) -> list[ControlPlan]:
    """Every control with its resources for this host; the manifest is settled later.

    ``lifecycle``: add the recovery control and the profile's manifest; only for the whole
    profile (a run limited to some controls would take every other one for dropped).
    ``stage`` "image": only what an image carries (``in_image``); a control whose material is not
    in the image (a private key cloud-init writes at boot) is left to first boot."""
    off = switched_off(settings, info.name)
    plans = []
    for control in controls:
        if not control.applies(settings):
            plans.append(ControlPlan(control, off="not applicable with these settings"))
        elif control.id in off:
            plans.append(ControlPlan(control, off=off[control.id]))
        elif stage == IMAGE:
            plans.append(_image_plan(control, settings, info))
        else:
            plans.append(ControlPlan(control, tuple(control.resources(settings, info))))
    if lifecycle:  # the whole profile: finish an interrupted run first, after the gates
        gates = next((i for i, p in enumerate(plans) if "gate" not in p.control.tags), len(plans))
        plans.insert(gates, _recovery_plan(plans, off))
    if lifecycle:
        plans.append(ControlPlan(LIFECYCLE, (Manifest(f"{MANIFEST_DIR}/{profile}.json"),)))
    return plans


def planned_control_ids(controls: Sequence[Control], lifecycle: bool = True) -> list[str]:
    """The control ids plan_host gives a host, in its order, without building any resource."""
    ids = [c.id for c in controls]
    if lifecycle:
        gates = next((i for i, c in enumerate(controls) if "gate" not in c.tags), len(controls))
        ids.insert(gates, RECOVERY.id)
        ids.append(LIFECYCLE.id)
    return ids


def _image_plan(control: Control, settings: Any, info: HostInfo) -> ControlPlan:
    try:
        resources = control.resources(settings, info)
    except CciHardenError as exc:  # its material is not in the image: first boot brings it
        return ControlPlan(control, off=f"left to first boot: {exc}", deferred=True)
    return ControlPlan(control, tuple(r for r in resources if in_image(r)))


def _recovery_plan(plans: Sequence[ControlPlan], off: dict[str, str]) -> ControlPlan:
    if RECOVERY.id in off:
        return ControlPlan(RECOVERY, off=off[RECOVERY.id])
    directories = sorted(
        {
            posixpath.dirname(r.path)
            for plan in plans
            for r in plan.resources
            if isinstance(r, ManagedFile)
        }
    )
    return ControlPlan(RECOVERY, (PackageSystem(), StagedFiles(tuple(directories))))


def resources_of(plans: Sequence[ControlPlan]) -> list[Resource]:
    return [r for plan in plans for r in plan.resources]


def settle(plans: Sequence[ControlPlan], snapshot: Snapshot) -> list[ControlPlan]:
    """Fill the lifecycle manifest from the snapshot: our files, and the packages this toolkit
    installed (absent when first seen, or already listed as ours)."""
    if not plans or plans[-1].control is not LIFECYCLE:
        return list(plans)
    *others, lifecycle = plans
    (manifest,) = lifecycle.resources
    if not isinstance(manifest, Manifest):
        raise TypeError("the lifecycle control declares the manifest and nothing else")
    previous = snapshot.state(manifest)
    ours = set()
    if previous not in (None, NOT_GATHERED):
        ours = {e.key for e in previous[0] if e.kind == Package.kind}
    entries: dict[tuple[str, str], ManifestEntry] = {}
    deferred = {plan.control.id for plan in others if plan.deferred}
    if deferred and previous not in (None, NOT_GATHERED):  # kept until first boot decides
        entries.update({(e.kind, e.key): e for e in previous[0] if e.control in deferred})
    for plan in others:
        for resource in plan.resources:
            keep = isinstance(resource, ManagedFile) and resource.present
            if isinstance(resource, Package) and resource.present:
                keep = resource.name in ours or snapshot.state(resource) is None
            if keep:
                entries.setdefault(
                    (resource.kind, resource.key),
                    ManifestEntry(
                        resource.kind,
                        resource.key,
                        plan.control.id,
                        resource.reload if isinstance(resource, ManagedFile) else (),
                    ),
                )
    settled = replace(manifest, entries=tuple(entries.values()))
    return [*others, replace(lifecycle, resources=(settled,))]


def findings_of(resource: Resource, snapshot: Snapshot, info: HostInfo) -> list[Finding]:
    state = snapshot.state(resource)
    if state is NOT_GATHERED:
        return [resource.finding(resource.id, "gathered", "not gathered (a defect of the gather)")]
    return resource.compare(state, info)


def waived_resources(waivers: Sequence[Any], control_id: str, host: str, today) -> set[str] | None:
    """Resource ids (or globs) a current waiver accepts for this control and host; ``{"*"}``
    when it covers the whole control; None when none does."""
    accepted: set[str] = set()
    for waiver in waivers:
        if waiver.covers(control_id, host) and not waiver.expired(today):
            accepted |= set(waiver.resources or ["*"])
    return accepted or None


def is_waived(resource_id: str, accepted: set[str] | None) -> bool:
    return any(fnmatch.fnmatch(resource_id, p) for p in accepted or ())
