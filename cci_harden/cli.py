"""The ``cci-harden`` command line.

Exit codes: 0 success; 1 drift found (verify); 2 usage error, invalid settings, or a host that
could not be reached.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import EXIT_OK, CciHardenError


def _cmd_config_check(args: argparse.Namespace) -> int:
    from .inventory import Inventory
    from .preflight import require_ready

    inventory = Inventory.load(args.inventory)
    inventory.check_runnable()
    effective = inventory.settings.model_dump(mode="json")
    print(f"# effective settings of inventory {inventory.path} (secrets masked)")
    print(json.dumps(effective, indent=2, sort_keys=True))
    print(f"# {len(inventory.hosts)} host(s); settings valid", file=sys.stderr)
    require_ready(inventory.settings)  # keys, certificates, lockout: exit 2 with each reason
    print("# ready to deploy: keys, certificates and admin networks check out", file=sys.stderr)
    return EXIT_OK


def _cmd_testbed_up(args: argparse.Namespace) -> int:
    from . import testbed

    report = testbed.up(args.hosts, Path(args.inventory_dir), log=_info)
    for record in report.hosts:
        print(f"{record.name}\t{record.address}\tpid {record.pid}")
    image = f"{report.image_seconds:.1f}s building the base image, " if report.image_seconds else ""
    _info(
        f"{len(report.hosts)} host(s) up in {report.total_seconds:.1f}s ({image}inventory "
        f"{report.inventory})"
    )
    return EXIT_OK


def _cmd_testbed_status(args: argparse.Namespace) -> int:
    from . import testbed

    proxy_running, hosts = testbed.status()
    print(f"apt proxy: {'running' if proxy_running else 'not running'}")
    if not hosts:
        print("no test hosts")
    for host in hosts:
        state = "running" if host.running else "stopped"
        ssh = "ssh ok" if host.ssh else "ssh down"
        print(f"{host.name}\t{host.address}\t{state}\t{ssh}\t{host.memory_bytes / 2**20:.1f} MiB")
    return EXIT_OK if all(h.running and h.ssh for h in hosts) else 2


def _cmd_testbed_down(args: argparse.Namespace) -> int:
    from . import testbed

    removed = testbed.down(log=_info)
    for item in removed:
        print(f"removed {item}")
    _info("test bed is down" if removed else "nothing to remove; test bed was not up")
    return EXIT_OK


def _cmd_verify(args: argparse.Namespace) -> int:
    from . import catalogue
    from .errors import EXIT_DRIFT, EXIT_USAGE
    from .inventory import Inventory
    from .preflight import require_ready
    from .verify.report import render_table
    from .verify.runner import verify_inventory

    inventory = Inventory.load(args.inventory)
    inventory.check_runnable()
    hosts = inventory.select(args.limit)
    require_ready(inventory.settings)
    controls = catalogue.CATALOGUE
    if args.control:
        unknown = sorted(set(args.control) - {c.id for c in controls})
        if unknown:
            raise CciHardenError(f"unknown control id(s): {', '.join(unknown)}")
        controls = catalogue.select(ids=tuple(args.control))
    reports = verify_inventory(inventory, controls, hosts)
    print(render_table(reports))
    if any(not r.reachable for r in reports):
        return EXIT_USAGE
    if any(o.status.value == "fail" for r in reports for o in r.outcomes):
        return EXIT_DRIFT
    return EXIT_OK


def _info(message: str) -> None:
    print(f"cci-harden: {message}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cci-harden",
        description="Install, harden and verify CircleCI Server Nomad clients.",
        epilog="Exit codes: 0 ok, 1 drift found, 2 usage error / invalid settings / unreachable.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    config = commands.add_parser("config", help="inspect an inventory's settings")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser(
        "check", help="validate INVENTORY's settings and print them, secrets masked"
    )
    check.add_argument("inventory", help="inventory file, e.g. inventories/prod")
    check.set_defaults(func=_cmd_config_check)

    verify = commands.add_parser(
        "verify", help="check every control on every host; exit 1 on drift, 2 if unreachable"
    )
    verify.add_argument("inventory", help="inventory file, e.g. inventories/prod")
    verify.add_argument("--limit", action="append", help="host name or glob (repeatable)")
    verify.add_argument("--control", action="append", help="control id (repeatable)")
    verify.set_defaults(func=_cmd_verify)

    from .audit.command import add_parser as add_audit_parser

    add_audit_parser(commands)

    bed = commands.add_parser("testbed", help="local Debian 12 test hosts (needs root)")
    bed_commands = bed.add_subparsers(dest="testbed_command", required=True)
    bed_up = bed_commands.add_parser("up", help="boot test hosts and write inventories/testbed")
    bed_up.add_argument("--hosts", type=int, default=3, help="number of hosts (default 3)")
    bed_up.add_argument(
        "--inventory-dir", default="inventories", help="where to write the testbed inventory"
    )
    bed_up.set_defaults(func=_cmd_testbed_up)
    bed_commands.add_parser("status", help="show the test hosts").set_defaults(
        func=_cmd_testbed_status
    )
    bed_commands.add_parser(
        "down", help="remove every test host, mount and namespace"
    ).set_defaults(func=_cmd_testbed_down)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CciHardenError as exc:
        print(f"cci-harden: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("cci-harden: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # never let a crash look like exit 1 (drift)
        import traceback

        traceback.print_exc()
        print(f"cci-harden: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
