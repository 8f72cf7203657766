"""``cci-harden verify``: its options, and the run they ask for.

The inventory and its waivers are loaded once here and handed to the pytest plugin in process
(``runner.verify_inventory``); the plugin reads hosts once; every report (JSON, JUnit,
Markdown, HTML, Prometheus) is written from that one run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..model.errors import CciHardenError
from ..model.outputs import colour, emit, note, require_writable
from ..model.profiles import PROFILE_NAMES


def parse_shard(value: str | None) -> tuple[int, int]:
    """``INDEX/TOTAL`` (INDEX from 0, as CIRCLE_NODE_INDEX); default from CircleCI's variables."""
    if value is None:
        node, nodes = os.environ.get("CIRCLE_NODE_INDEX"), os.environ.get("CIRCLE_NODE_TOTAL")
        value = f"{node}/{nodes}" if node is not None and nodes is not None else "0/1"
    index_text, sep, total_text = value.partition("/")
    if not sep or not index_text.isdigit() or not total_text.isdigit():
        raise CciHardenError(f"--shard {value}: expected INDEX/TOTAL, e.g. 0/4")
    index, total = int(index_text), int(total_text)
    if total < 1 or not 0 <= index < total:
        raise CciHardenError(f"--shard {value}: INDEX must be 0..TOTAL-1 and TOTAL at least 1")
    return index, total


def shard_hosts(hosts: list, index: int, total: int) -> list:
    """Hosts by name, dealt round-robin: every host in exactly one shard, stable across runs."""
    ordered = sorted(hosts, key=lambda h: h.name)
    return [h for position, h in enumerate(ordered) if position % total == index]


def run_verify(args: argparse.Namespace) -> int:
    """`cci-harden verify`: checked outputs, the inventory loaded once, the plugin run in
    process on this shard's hosts, then every report written from the one run."""
    from .. import controls as catalogue
    from ..fleet.inventory import Inventory
    from ..fleet.preflight import require_ready, warnings
    from ..model.waivers import load_waivers, waivers_path
    from .report import render_markdown, render_run
    from .results import apply_history, build_run, load_previous, to_json
    from .runner import verify_inventory

    def say(message: str) -> None:
        note(message, quiet=args.quiet)

    for option, value in (
        ("--json", args.json),
        ("--junit", args.junit),
        ("--markdown", args.markdown),
        ("--html", args.html),
        ("--prometheus", args.prometheus),
        ("--output", args.output),
    ):
        require_writable(option, value)
    require_writable("--report-dir", args.report_dir, directory=True)
    inventory = Inventory.load(args.inventory)
    inventory.check_runnable()
    hosts = inventory.select(args.limit)
    index, total = parse_shard(args.shard)
    hosts = shard_hosts(hosts, index, total)
    require_ready(inventory.settings)
    controls = catalogue.PROFILES[args.profile]
    known = {c.id for c in controls} | {catalogue.LIFECYCLE.id, catalogue.RECOVERY.id}
    if args.control:
        unknown = sorted(set(args.control) - known)
        if unknown:
            raise CciHardenError(
                f"unknown control id(s) for profile {args.profile}: {', '.join(unknown)}"
            )
    waiver_file = Path(args.waivers) if args.waivers else waivers_path(inventory.path)
    if args.waivers and not waiver_file.is_file():
        raise CciHardenError(f"--waivers {waiver_file}: no such file")
    waivers = load_waivers(
        waiver_file, catalogue.known_control_ids(), [h.name for h in inventory.hosts]
    )
    previous = None
    if args.previous and Path(args.previous).is_file():
        try:
            previous = load_previous(Path(args.previous))
        except CciHardenError as exc:  # a truncated report must not stop every later night
            say(f"warning: {exc}; drift history starts again with this run")
    elif args.previous:
        say(f"no previous report at {args.previous}; drift history starts with this run")
    outputs = {
        "json": args.json,
        "junit": args.junit,
        "markdown": args.markdown,
        "html": args.html,
        "prometheus": args.prometheus,
    }
    if args.report_dir:
        directory = Path(args.report_dir)
        directory.mkdir(parents=True, exist_ok=True)
        suffix = "" if total == 1 else f"-{index}"
        defaults = {
            "json": "verify.json",
            "junit": "verify.junit.xml",
            "markdown": "verify.md",
            "html": "verify.html",
            "prometheus": "verify.prom",
        }
        for kind, name in defaults.items():
            stem, dot, ext = name.partition(".")
            outputs[kind] = outputs[kind] or str(directory / f"{stem}{suffix}{dot}{ext}")
    # the pytest plugin's run, in process; JUnit is pytest's own
    reports = verify_inventory(
        inventory,
        hosts,
        profile=args.profile,
        control_ids=tuple(args.control or ()),
        waivers=waiver_file if waiver_file.is_file() else None,
        junit=Path(outputs["junit"]) if outputs["junit"] else None,
        progress=args.verbose or (sys.stderr.isatty() and not args.quiet),
    )
    run = build_run(inventory.name, reports, waivers, shard=f"{index}/{total}")
    run.server_line = inventory.settings.server.version
    run.warnings = warnings(inventory.settings)
    for warning in run.warnings:
        say(f"warning: {warning}")
    if previous is not None:
        apply_history(run, previous)
    if outputs["json"]:
        Path(outputs["json"]).write_text(json.dumps(to_json(run), indent=2) + "\n")
    if outputs["markdown"]:
        Path(outputs["markdown"]).write_text(render_markdown(run))
    if outputs["prometheus"]:
        from .prometheus import write_prometheus

        write_prometheus(run, Path(outputs["prometheus"]))
    if outputs["html"]:
        from .html import HISTORY_FILE, history_line, read_history, render_html

        folder = Path(outputs["html"]).parent
        if args.report_dir:  # the folder keeps the trend, one line per run
            with open(folder / HISTORY_FILE, "a") as history:
                history.write(history_line(run) + "\n")
        Path(outputs["html"]).write_text(render_html(run, read_history(folder)))
    if not hosts:
        say(f"shard {index}/{total} has no host; nothing to verify")
    text = render_run(run, args.format)
    emit(colour(text) if args.format == "table" and not args.output else text, args.output)
    return run.exit_code()


def add_parser(commands) -> None:
    verify = commands.add_parser(
        "verify", help="check every control on every host; exit 1 on drift, 2 if unreachable"
    )
    verify.add_argument("inventory", help="inventory file, e.g. inventories/prod")
    verify.add_argument("--limit", action="append", help="host name or glob (repeatable)")
    verify.add_argument("--control", action="append", help="control id (repeatable)")
    verify.add_argument(
        "--profile",
        default="nomad",
        choices=PROFILE_NAMES,
        help="which deploy's controls to check: deploys/nomad.py (default), deploys/baseline.py "
        "or deploys/artifacts.py",
    )
    verify.add_argument(
        "--shard",
        help="INDEX/TOTAL: verify only this share of the hosts (INDEX from 0); default "
        "CIRCLE_NODE_INDEX/CIRCLE_NODE_TOTAL when set, else 0/1",
    )
    verify.add_argument(
        "--waivers", help="waivers file (default: INVENTORY.waivers.toml when it exists)"
    )
    verify.add_argument("--previous", help="previous JSON report: report drift since then")
    verify.add_argument("--json", help="write the JSON report here")
    verify.add_argument("--junit", help="write JUnit XML here")
    verify.add_argument("--markdown", help="write a Markdown summary here")
    verify.add_argument("--html", help="write the fleet report (one self-contained HTML file) here")
    verify.add_argument(
        "--prometheus",
        help="write the run as Prometheus text format here (node_exporter's textfile collector)",
    )
    verify.add_argument(
        "--format",
        choices=("table", "json", "md", "html"),
        default="table",
        help="what goes to standard output (or --output): the table (default), or a report",
    )
    verify.add_argument("--output", help="write the --format output here instead of stdout")
    verify.add_argument(
        "--report-dir",
        help="write verify.json, verify.junit.xml, verify.md, verify.html and verify.prom into "
        "this directory (it keeps verify-history.jsonl for the HTML report's trend)",
    )
    verify.set_defaults(func=run_verify)
