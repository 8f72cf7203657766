"""Generate docs/controls.md from the catalogue, so the documented controls are the applied ones.

python -m cci_harden.controls.docs > docs/controls.md

Resources are listed as the example inventory (``inventories/prod``) declares them on a typical
host; another inventory's settings change paths and values, never the kinds.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from ..model.control import Control
from ..model.errors import CciHardenError
from ..model.hostinfo import STAND_IN
from ..model.interruption import (
    DOCKERD_RELOADABLE_KEYS,
    RUNTIME_PACKAGES,
    Interruption,
    unit_classes,
)
from ..model.plan import LIFECYCLE, RECOVERY
from ..model.resource import REGISTRY, Resource
from . import ALL_CONTROLS, PROFILES
from .sources import LEGEND

EXAMPLE = Path(__file__).resolve().parents[2] / "inventories" / "prod"


def _example_settings():
    from ..config.settings import load_settings

    return load_settings(EXAMPLE)


def declared(control: Control, settings) -> list[Resource] | None:
    if control is LIFECYCLE:
        return []
    if control is RECOVERY:
        return None  # built from the plan: the directories of every managed file
    try:
        if not control.applies(settings):
            return None
        return list(control.resources(settings, STAND_IN))
    except (CciHardenError, OSError, ValueError):
        return None  # material the example inventory does not ship (keys, certificates)


def frameworks_text(control) -> str:
    """``CIS Docker 2.14; NIST SP 800-53 Rev. 5 CM-6, SC-39``: the ids, one framework each."""
    return "; ".join(f"{name} {', '.join(ids)}" for name, ids in control.frameworks().items())


def _summary(resources: list[Resource] | None) -> str:
    if resources is None:
        return "built from settings"
    counts = Counter(r.kind for r in resources)
    return ", ".join(f"{kind} x{n}" if n > 1 else kind for kind, n in counts.items()) or "manifest"


def interruptions_markdown() -> list[str]:
    """What applying a change costs a running build: the classes, per kind, per unit."""
    lines = [
        "",
        "## What a change interrupts",
        "",
        "Each difference the deploy would apply has a class; a host's plan needs the worst of its",
        "differences. A plain deploy refuses a host whose plan kills builds while its Nomad agent",
        "runs allocations; `cci-harden rollout` drains such a host first (operator guide,",
        '"Changing a live fleet").',
        "",
        "| class | what a running build sees |",
        "|---|---|",
    ]
    meaning = {
        Interruption.NOTHING: "nothing: a file no daemon reads live, a live sysctl, a start",
        Interruption.RELOAD: "nothing: the daemon rereads its configuration in place",
        Interruption.RESTART_KEEPS_BUILDS: "nothing: Nomad restarts with KillMode=process and "
        "its task executors carry on",
        Interruption.RESTART_KILLS_BUILDS: "killed: dockerd, containerd or runc go away under "
        "its containers; drained first",
        Interruption.REBOOT: "killed: the host reboots; drained first",
    }
    lines += [f"| {c.label} | {meaning[c]} |" for c in Interruption]
    lines += ["", "| resource kind | a change costs |", "|---|---|"]
    lines += [f"| `{kind}` | {cls.interrupts} |" for kind, cls in sorted(REGISTRY.items())]
    lines += ["", "| unit restarted | costs |", "|---|---|"]
    lines += [f"| `{unit}` | {cost.label} |" for unit, cost in unit_classes()]
    lines += [
        "| any other unit | a restart builds survive |",
        "",
        f"Packages whose change kills builds: {', '.join(sorted(RUNTIME_PACKAGES))}. daemon.json "
        f"keys dockerd rereads on SIGHUP (a change to these alone is a reload): "
        f"{', '.join(DOCKERD_RELOADABLE_KEYS)}.",
    ]
    return lines


def controls_markdown() -> str:
    settings = _example_settings()
    lines = [
        "# Controls",
        "",
        "Generated from the catalogue (`cci_harden/controls/`) by",
        "`python -m cci_harden.controls.docs`; do not edit by hand. Every control is applied by",
        "the deploys and checked by `cci-harden verify`, through its resources: the deploy",
        "converges a resource only when the host's snapshot differs from it, and verify reports",
        "the same difference.",
        "",
        "| id | title | deploys | source | frameworks | resources | test bed | CircleCI jobs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    resources = {c.id: declared(c, settings) for c in ALL_CONTROLS}
    for control in ALL_CONTROLS:
        deploys = ", ".join(
            f"`deploys/{name}.py`"
            for name, profile in PROFILES.items()
            if control in profile or control in (LIFECYCLE, RECOVERY)
        )
        lines.append(
            f"| {control.id} | {control.title} | {deploys} | "
            f"{'; '.join(str(s) for s in control.sources)} | {frameworks_text(control)} | "
            f"{_summary(resources[control.id])} | "
            f"{control.testbed} | {control.circleci_impact or 'not affected'} |"
        )
    lines += ["", "## Sources", "", "Each source is `kind:reference`. The kinds:", ""]
    lines += [f"- `{kind}`: {meaning}" for kind, meaning in LEGEND]
    lines += [
        "",
        "A `circleci-page` or `server-4x` citation names a section that exists in that "
        "document, word for word; `tests/test_sources.py` checks each one against the documents.",
    ]
    lines += ["", "## Resource kinds", ""]
    for kind, cls in REGISTRY.items():
        doc = " ".join((cls.__doc__ or "").split())
        flags = []
        if not cls.repairable:
            flags.append("reported, not repaired")
        if cls.removable:
            flags.append("removed when its control is dropped")
        if cls.needs_kernel:
            flags.append("needs a kernel of its own: not verifiable in a container")
        lines.append(f"- `{kind}`: {doc}" + (f" ({'; '.join(flags)})" if flags else ""))
    lines += interruptions_markdown()
    lines += ["", "## Each control", ""]
    for control in ALL_CONTROLS:
        lines += [f"### {control.id}: {control.title}", "", control.rationale, ""]
        listed = resources[control.id]
        if listed is None:
            lines += ["Resources: built from the inventory's settings (see the table above).", ""]
            continue
        if control is LIFECYCLE:
            listed = []
            lines += [f"- manifest `{'/var/lib/cci-harden/managed/PROFILE.json'}`"]
        lines += [f"- {r.describe()}" for r in listed]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(controls_markdown(), end="")
