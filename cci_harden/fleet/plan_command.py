"""``cci-harden plan INVENTORY``: the deploy's plan for each host, with no host contacted."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..config.settings import HostEntry, load_settings
from ..controls import known_control_ids
from ..model.errors import EXIT_OK, CciHardenError
from ..model.hostinfo import STAND_IN
from ..model.outputs import inventory_command
from ..model.waivers import load_waivers, waivers_path
from .plan_view import fleet_plan, markdown, table, write_files

EACH_INSTANCE = "each-listed-instance"


def _hosts(settings, wanted: list[str] | None) -> list[HostEntry]:
    hosts = list(settings.inventory.hosts)
    if not hosts and settings.inventory.source is not None:
        # a cloud listing is not read offline: one stand-in instance shows what each gets
        hosts = [HostEntry(name=EACH_INSTANCE, address=STAND_IN.primary_ipv4)]
    if wanted:
        unknown = sorted(set(wanted) - {h.name for h in hosts})
        if unknown:
            raise CciHardenError(f"plan: no host {', '.join(unknown)} in the inventory")
        hosts = [h for h in hosts if h.name in wanted]
    return hosts


def _cmd_plan(args: argparse.Namespace) -> int:
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
    plan.add_argument("--profile", default="nomad", choices=("nomad", "baseline", "artifacts"))
    plan.add_argument(
        "--stage", choices=("image", "first-boot"), help="plan an image bake or its first boot"
    )
    plan.add_argument("--format", choices=("table", "json", "md"), default="table")
    plan.add_argument(
        "--output", help="write every file the deploy would write under DIR/HOST/PATH"
    )
    plan.set_defaults(func=_cmd_plan)
