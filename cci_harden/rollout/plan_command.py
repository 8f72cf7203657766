"""``cci-harden plan INVENTORY``: the deploy's plan for each host, with no host contacted; with
``--diff``, each host read as the rollout reads it, and only what its deploy would change, with
what each change interrupts (the deploy's own decision per resource)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .. import __version__
from ..model.errors import EXIT_OK, EXIT_USAGE, CciHardenError
from ..model.outputs import inventory_command
from ..model.profiles import DEFAULT_PROFILE, PROFILE_NAMES
from ..model.text import printable

if TYPE_CHECKING:
    from ..config.settings import HostEntry

# The settings models, the controls and the planner are imported when a plan is made, not
# here: every cci-harden command builds this parser.

EACH_INSTANCE = "each-listed-instance"
EACH_HOST = "each-host"  # an inventory that lists no host yet


def _hosts(settings, wanted: list[str] | None) -> list[HostEntry]:
    from ..config.settings import HostEntry
    from ..model.hostinfo import STAND_IN

    hosts = list(settings.inventory.hosts)
    if not hosts:
        # a cloud listing is not read offline, and a new inventory lists no host yet: one
        # stand-in host shows what each gets
        name = EACH_INSTANCE if settings.inventory.source is not None else EACH_HOST
        hosts = [HostEntry(name=name, address=STAND_IN.primary_ipv4)]
    if wanted:
        unknown = sorted(set(wanted) - {h.name for h in hosts})
        if unknown:
            raise CciHardenError(f"plan: no host {', '.join(unknown)} in the inventory")
        hosts = [h for h in hosts if h.name in wanted]
    return hosts


def host_diffs(inventory_path: Path, names: list[str] | None, profile: str) -> dict:
    """Each reachable host's changes as its deploy would make them, read over SSH."""
    from concurrent.futures import ThreadPoolExecutor

    from ..controls import known_control_ids
    from ..fleet.inventory import Inventory
    from ..model.waivers import load_waivers, waivers_path
    from .shell import FleetShell
    from .survey import Surveyor

    inventory = Inventory.load(inventory_path)
    inventory.check_runnable()
    hosts = [h for h in inventory.hosts if not names or h.name in names]
    if names and len(hosts) != len(set(names)):
        raise CciHardenError(
            f"plan: no host {', '.join(sorted(set(names) - {h.name for h in hosts}))}"
        )
    waivers = load_waivers(
        waivers_path(inventory.path), known_control_ids(), [h.name for h in inventory.hosts]
    )
    shell = FleetShell(inventory)
    try:
        surveyor = Surveyor(shell, profile, waivers)
        surveyor.plan()
        with ThreadPoolExecutor(max_workers=max(1, min(16, len(hosts)))) as pool:
            surveys = list(pool.map(surveyor.survey, hosts))
    finally:
        shell.close()
    return {
        "toolkit_version": __version__,
        "inventory": inventory.name,
        "profile": profile,
        "hosts": [
            {
                "name": s.host,
                "error": s.error,
                "interrupts": s.interruption.label,
                "changes": [
                    {
                        "control": d.control,
                        "resource": d.resource,
                        "interrupts": d.interruption.label,
                        "why": d.why,
                    }
                    for d in s.disruptions
                ],
            }
            for s in surveys
        ],
    }


def diff_table(diffs: dict) -> str:
    lines = [f"what a deploy would change on inventory {diffs['inventory']} (hosts read now)"]
    for host in diffs["hosts"]:
        if host["error"]:
            lines.append(f"{host['name']}: UNREACHABLE {printable(host['error'])}")
            continue
        if not host["changes"]:
            lines.append(f"{host['name']}: nothing to change")
            continue
        lines.append(
            f"{host['name']}: {len(host['changes'])} change(s), at worst {host['interrupts']}"
        )
        for change in host["changes"]:
            lines.append(printable(
                f"  [{change['control']}] {change['resource']}: {change['interrupts']}"
                + (f" ({change['why']})" if change["why"] else "")))  # fmt: skip
    return "\n".join(lines) + "\n"


def _cmd_plan(args: argparse.Namespace) -> int:
    if args.diff:
        diffs = host_diffs(Path(args.inventory), args.host, args.profile)
        text = json.dumps(diffs, indent=2) + "\n" if args.format == "json" else diff_table(diffs)
        sys.stdout.write(text)
        unreachable = any(h["error"] for h in diffs["hosts"])
        return EXIT_USAGE if unreachable else EXIT_OK
    from ..config.settings import load_settings
    from ..controls import known_control_ids
    from ..fleet.plan_view import fleet_plan, markdown, table, write_files
    from ..model.waivers import load_waivers, waivers_path

    inventory = Path(args.inventory)
    settings = load_settings(inventory)
    hosts = _hosts(settings, args.host)
    waivers = load_waivers(waivers_path(inventory), known_control_ids(), [h.name for h in hosts])
    plan = fleet_plan(settings, hosts, args.profile, waivers, args.stage or "")
    if args.output:
        written = write_files(plan, Path(args.output))
        print(f"cci-harden: wrote {len(written)} file(s) under {args.output}", file=sys.stderr)
    if args.format == "json":
        sys.stdout.write(json.dumps(plan, indent=2) + "\n")
    elif args.format == "md":
        sys.stdout.write(markdown(plan))
    else:
        sys.stdout.write(table(plan))
    return EXIT_OK


def add_parser(commands) -> None:
    plan = inventory_command(
        commands,
        "plan",
        "what a deploy would do on each host, from the settings alone (no host contacted)",
    )
    plan.add_argument("--host", action="append", help="only this host (repeatable)")
    plan.add_argument("--profile", default=DEFAULT_PROFILE, choices=PROFILE_NAMES)
    plan.add_argument(
        "--stage", choices=("image", "first-boot"), help="plan an image bake or its first boot"
    )
    plan.add_argument("--format", choices=("table", "json", "md"), default="table")
    plan.add_argument(
        "--diff",
        action="store_true",
        help="read each host (SSH) and show only what its deploy would change, and what each "
        "change interrupts; exit 2 if a host cannot be read",
    )
    plan.add_argument(
        "--output", help="write every file the deploy would write under DIR/HOST/PATH"
    )
    plan.set_defaults(func=_cmd_plan)
