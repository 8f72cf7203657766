"""``cci-harden plan INVENTORY``: what a deploy would do, read from the settings alone.

No host is contacted: each host is planned with stand-in facts (a 64-CPU, 64 GiB Debian host of
the inventory's release, named as the inventory names it), so everything that depends on the
settings is shown as the deploy would write it: each control's state on each host (on, switched
off, not applicable, waived until a date, left to first boot, or waiting for material the
operator has not supplied), every resource it manages with what applying it interrupts, and,
with ``--output``, every file the deploy would write, under ``DIR/HOST/PATH`` for review.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path, PurePosixPath
from typing import Any

from .. import __version__
from ..config.settings import FleetSettings, HostEntry
from ..controls import PROFILES
from ..model.errors import CciHardenError
from ..model.hostinfo import STAND_IN
from ..model.kinds import ManagedFile
from ..model.plan import IMAGE, is_waived, plan_host, waived_resources
from ..model.text import printable
from ..model.waivers import Waiver

HIDDEN = "(a secret: not written by plan)\n"


def _facts(host: HostEntry):
    return dataclasses.replace(STAND_IN, name=host.name, address=str(host.address))


def _resource_row(resource, accepted) -> dict:
    row = {"id": resource.id, "kind": resource.kind, "interrupts": type(resource).interrupts}
    if accepted and is_waived(resource.id, accepted):
        row["waived"] = True
    return row


def host_plan(
    settings: FleetSettings,
    host: HostEntry,
    profile: str,
    waivers: list[Waiver],
    stage: str = "",
    today: dt.date | None = None,
) -> dict:
    """One host's plan: every control with its state and resources, and the files to write."""
    today = today or dt.datetime.now(dt.UTC).date()
    info = _facts(host)
    controls, files = [], {}
    for control in PROFILES[profile]:
        row: dict[str, Any] = {
            "id": control.id,
            "title": control.title,
            "frameworks": control.frameworks(),
        }
        try:
            (plan,) = plan_host([control], settings, info, profile, lifecycle=False, stage=stage)
        except CciHardenError as exc:  # material the settings name is not here yet
            controls.append({**row, "state": "needs material", "why": str(exc), "resources": []})
            continue
        accepted = waived_resources(waivers, control.id, host.name, today)
        if plan.off:
            state, why = ("not applicable", plan.off) if "not applicable" in plan.off else (
                "off", plan.off)  # fmt: skip
        elif plan.deferred:
            state, why = "first boot", "its material is not in an image: first boot applies it"
        elif accepted == {"*"}:
            waiver = next(w for w in waivers if w.covers(control.id, host.name))
            state, why = "waived", f"until {waiver.expires} by {waiver.owner}"
        else:
            state, why = "on", ""
        controls.append(
            {
                **row,
                "state": state,
                "why": why,
                "resources": [_resource_row(r, accepted) for r in plan.resources],
            }
        )
        for resource in plan.resources:
            if isinstance(resource, ManagedFile) and resource.present:
                files[resource.path] = HIDDEN if resource.secret else resource.content
    return {
        "name": host.name,
        "address": str(host.address),
        "facts": f"stand-in: {STAND_IN.cpus} CPUs, {STAND_IN.memory_mb >> 10} GiB, Debian "
        f"{STAND_IN.os_version} (no host is contacted)",
        "controls": controls,
        "files": files,
    }


def fleet_plan(
    settings: FleetSettings,
    hosts: list[HostEntry],
    profile: str,
    waivers: list[Waiver],
    stage: str = "",
    today: dt.date | None = None,
) -> dict:
    return {
        "toolkit_version": __version__,
        "inventory": settings.name,
        "server_line": settings.server.version,
        "profile": profile,
        "stage": stage or "full",
        "generated_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "hosts": [host_plan(settings, h, profile, waivers, stage, today) for h in hosts],
    }


def write_files(plan: dict, directory: Path) -> list[Path]:
    """Each host's files under DIRECTORY/HOST/PATH; a path that would leave it is refused."""
    written = []
    for host in plan["hosts"]:
        root = (directory / host["name"]).resolve()
        for path, content in sorted(host["files"].items()):
            posix = PurePosixPath(path)
            if not posix.is_absolute() or ".." in posix.parts:
                raise CciHardenError(f"plan: {path!r} is not a plain absolute path")
            relative = posix.relative_to("/")
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
            written.append(target)
    return written


def table(plan: dict) -> str:
    lines = [
        f"plan of inventory {plan['inventory']} (Server {plan['server_line']}, profile "
        f"{plan['profile']}, cci-harden {plan['toolkit_version']}); no host was contacted"
    ]
    for host in plan["hosts"]:
        lines += ["", f"{host['name']} ({host['address']}): {host['facts']}"]
        for control in host["controls"]:
            count = len(control["resources"])
            why = f"  {control['why']}" if control["why"] else ""
            head = f"  {control['id']:<11} {control['state']:<14} {count:>3} resource(s)"
            lines.append(printable(head + why))
        lines.append(f"  {len(host['files'])} file(s) to write")
    return "\n".join(lines) + "\n"


def markdown(plan: dict) -> str:
    lines = [
        f"# Plan of inventory {plan['inventory']}",
        "",
        f"Server {plan['server_line']}, profile {plan['profile']}, cci-harden "
        f"{plan['toolkit_version']}, {plan['generated_at']}; no host was contacted.",
    ]
    for host in plan["hosts"]:
        lines += ["", f"## {host['name']} ({host['address']})", "", host["facts"], ""]
        lines += ["| control | state | why | resources |", "|---|---|---|---|"]
        for control in host["controls"]:
            cells = [
                control["id"],
                control["state"],
                control["why"],
                ", ".join(r["id"] for r in control["resources"]),
            ]
            lines.append("| " + " | ".join(printable(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


__all__ = ["IMAGE", "fleet_plan", "host_plan", "markdown", "table", "write_files"]
