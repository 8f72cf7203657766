"""``cci-harden rollout INVENTORY [DEPLOY]``: the command line of the rollout."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..model.errors import CciHardenError
from ..model.outputs import inventory_command, require_writable
from ..model.profiles import DEFAULT_PROFILE, PROFILE_NAMES
from .batches import parse_sizes


def add_parser(commands) -> None:
    rollout = inventory_command(
        commands,
        "rollout",
        "change a fleet that runs builds: batches with a canary, drain before anything that "
        "would kill a build, a cap on hosts out of service; exit 0/1/2",
    )
    rollout.add_argument(
        "deploy", nargs="?", default="deploys/nomad.py", help="deploy file (default: %(default)s)"
    )
    rollout.add_argument(
        "--batches",
        help="batch sizes, a count or a share each, e.g. 1,10%%,100%% (default: rollout.batches)",
    )
    rollout.add_argument(
        "--limit", action="append", help="only these hosts or groups (glob; repeatable)"
    )
    rollout.add_argument(
        "--dry",
        action="store_true",
        help="print the batches and, per host, whether it would drain and why; change nothing",
    )
    rollout.add_argument("--report", help="write the JSON record of the run to this file")
    rollout.add_argument(
        "--profile", choices=[p for p in PROFILE_NAMES if p != "artifacts"], default=DEFAULT_PROFILE
    )
    rollout.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    from .run import Options, Rollout

    require_writable("--report", args.report)
    deploy = Path(args.deploy)
    if not deploy.is_file():
        raise CciHardenError(f"deploy file {deploy}: no such file (run from the checkout)")
    sizes = parse_sizes(args.batches) if args.batches else ()
    options = Options(
        Path(args.inventory), deploy, args.profile, sizes, tuple(args.limit or ()), args.dry
    )
    rollout = Rollout(options, log=lambda line: print(line, file=sys.stderr, flush=True))
    record = rollout.run()
    if args.report:
        Path(args.report).write_text(json.dumps(record.to_json(), indent=2) + "\n")
    print("\n".join(record.lines()))
    return record.exit_code()
