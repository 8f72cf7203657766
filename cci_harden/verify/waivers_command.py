"""``cci-harden waivers list|lint INVENTORY``: the accepted failures beside an inventory.

``list`` shows each waiver with the hosts it covers today; ``lint`` is the review before a
waiver lands: every problem at once (fields, unknown controls, waivers that overlap on a host,
host patterns no host matches, waivers past or near their end). Exit 0 clean, 1 when a waiver
has expired or covers no host, 2 when the file cannot be used.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from ..model.errors import EXIT_DRIFT, EXIT_OK
from ..model.text import printable

SOON_DAYS = 14


def _load(args: argparse.Namespace):
    from ..controls import known_control_ids
    from ..fleet.inventory import Inventory
    from ..model.waivers import load_waivers, waivers_path

    inventory = Inventory.load(args.inventory)
    path = Path(args.waivers) if args.waivers else waivers_path(inventory.path)
    hosts = [h.name for h in inventory.hosts]
    return path, hosts, load_waivers(path, known_control_ids(), hosts)


def _covered(waiver, hosts: list[str]) -> list[str]:
    return [h for h in hosts if waiver.covers(waiver.control, h)]


def _cmd_list(args: argparse.Namespace) -> int:
    path, hosts, waivers = _load(args)
    today = dt.datetime.now(dt.UTC).date()
    rows = [
        {**w.describe(), "covers": _covered(w, hosts), "expired": w.expired(today)} for w in waivers
    ]
    if args.format == "json":
        print(json.dumps({"file": str(path), "waivers": rows}, indent=2))
        return EXIT_OK
    if not rows:
        print(f"no waivers ({path})")
    for row in rows:
        state = "EXPIRED" if row["expired"] else f"until {row['expires']}"
        covers = ", ".join(row["covers"]) or "no host"
        print(printable(f"{row['control']}  {state}  {row['owner']}  on {covers}"))
        print(printable(f"    {row['justification']}"))
    return EXIT_OK


def _cmd_lint(args: argparse.Namespace) -> int:
    path, hosts, waivers = _load(args)  # fields, controls and overlaps: exit 2 naming each
    today = dt.datetime.now(dt.UTC).date()
    problems, notes = [], []
    for number, waiver in enumerate(waivers, 1):
        where = f"waiver {number} ({waiver.control})"
        if waiver.expired(today):
            problems.append(f"{where}: expired on {waiver.expires}: renew it or fix the host")
        elif (waiver.expires - today).days <= SOON_DAYS:
            notes.append(f"{where}: expires on {waiver.expires}, within {SOON_DAYS} days")
        if not _covered(waiver, hosts):
            problems.append(f"{where}: its hosts {waiver.hosts} match no host of the inventory")
    for line in notes:
        print(f"note: {printable(line)}", file=sys.stderr)
    for line in problems:
        print(printable(f"{path}: {line}"))
    if not problems:
        print(f"{path}: {len(waivers)} waiver(s), no problem")
    return EXIT_DRIFT if problems else EXIT_OK


def add_parser(commands) -> None:
    waivers = commands.add_parser(
        "waivers", help="list or lint the accepted failures beside an inventory"
    )
    actions = waivers.add_subparsers(dest="waivers_command", required=True)
    for name, func, help_text in (
        ("list", _cmd_list, "each waiver, its owner, its end and the hosts it covers today"),
        ("lint", _cmd_lint, "every problem at once; exit 1 if one has expired or covers no host"),
    ):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("inventory", help="inventory file, e.g. inventories/prod")
        action.add_argument("--waivers", help="waivers file (default: INVENTORY.waivers.toml)")
        if name == "list":
            action.add_argument("--format", choices=("table", "json"), default="table")
        action.set_defaults(func=func)
