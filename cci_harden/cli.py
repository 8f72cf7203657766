"""The ``cci-harden`` command line.

Exit codes: 0 success; 1 drift found (verify); 2 usage error, invalid settings, or a host that
could not be reached.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import __version__
from .model.errors import EXIT_OK, CciHardenError
from .model.outputs import note
from .model.profiles import DEFAULT_PROFILE, PROFILE_NAMES
from .verify.command import add_parser as add_verify_parser


def _cmd_config_check(args: argparse.Namespace) -> int:
    from .config.settings import overrides_in_effect
    from .config.types import redact
    from .controls import known_control_ids
    from .fleet.inventory import Inventory
    from .fleet.onboard import checklist_text
    from .fleet.preflight import require_ready, warnings
    from .model.waivers import WaiverError, load_waivers, waivers_path

    inventory = Inventory.load(args.inventory)  # every bad field at once, or exit 2
    settings = inventory.settings
    # stdout is the effective settings as JSON alone (for jq and diffs); notes go to stderr.
    # SecretStr fields are masked by pydantic; anything else that looks like key material (a
    # key pasted into a path field) is masked here.
    effective = redact(settings.model_dump(mode="json"))
    print(json.dumps(effective, indent=2, sort_keys=True))
    _info(f"effective settings of inventory {inventory.path} (secrets masked) on stdout")
    for field, variable in overrides_in_effect(os.environ):
        _info(f"{field}: set by environment variable {variable} (overrides the file)")
    line = settings.server.line
    for field, value in settings.from_server_line():
        _info(
            f"{field} = {json.dumps(value)}: default of server.version "
            f"{settings.server.version} (Server {line.name})"
        )
    for warning in warnings(settings):
        _info(f"warning: {warning}")
    _info(f"{len(inventory.hosts)} host(s); settings valid")
    if args.checklist:
        print(checklist_text(settings), file=sys.stderr)
    more = inventory.problems()
    try:  # the waivers beside it are part of what a deploy reads
        load_waivers(
            waivers_path(inventory.path), known_control_ids(), [h.name for h in inventory.hosts]
        )
    except WaiverError as exc:
        more.append(str(exc).replace("\n  ", "\n    "))
    require_ready(settings, more)  # every reason at once, exit 2
    _info("ready to deploy: keys, certificates and admin networks check out")
    return EXIT_OK


def _cmd_apply(args: argparse.Namespace) -> int:
    from .apply.local_run import apply_local

    if not args.local:
        raise CciHardenError(
            "apply: only --local is run through this command; over SSH run "
            f"pyinfra {args.inventory} deploys/{args.profile}.py"
        )
    code = apply_local(
        Path(args.inventory), args.profile, args.stage or "", log=_info, confirmed=args.yes
    )
    return EXIT_OK if code == 0 else 1


def _testbed(module: str = ""):
    """The test bed package (or one of its modules): in a checkout, not in the wheel that
    installs on hosts."""
    import importlib

    try:
        return importlib.import_module(f"{__package__}.testbed{'.' if module else ''}{module}")
    except ImportError:
        raise CciHardenError(
            "the test bed comes with the repository, not the installed package: run it from a "
            "checkout (./bootstrap.sh)"
        ) from None


def _cmd_testbed_up(args: argparse.Namespace) -> int:
    testbed = _testbed()

    report = testbed.up(
        args.hosts, Path(args.inventory_dir), log=_info, vms=args.vms, release=args.release
    )
    for record in report.hosts:
        print(f"{record.name}\t{record.address}\tpid {record.pid}")
    for vm_record in report.vms:
        print(f"{vm_record.name}\t{vm_record.address}\tpid {vm_record.pid}\tVM ({report.accel})")
    image = f"{report.image_seconds:.1f}s building the base image, " if report.image_seconds else ""
    if report.vm_image_seconds:
        image += f"{report.vm_image_seconds:.1f}s building the VM image, "
    vms = f" and {len(report.vms)} VM(s)" if report.vms else ""
    _info(
        f"{len(report.hosts)} host(s){vms} up in {report.total_seconds:.1f}s ({image}inventory "
        f"{report.inventory})"
    )
    return EXIT_OK


def _cmd_testbed_status(args: argparse.Namespace) -> int:
    testbed = _testbed()

    proxy_running, hosts = testbed.status()
    print(f"apt proxy: {'running' if proxy_running else 'not running'}")
    if not hosts:
        print("no test hosts")
    for host in hosts:
        state = "running" if host.running else "stopped"
        ssh = "ssh ok" if host.ssh else "ssh down"
        memory = f"{host.memory_bytes / 2**20:.1f} MiB"
        kind = "\tVM" if host.vm else ""
        print(f"{host.name}\t{host.address}\t{state}\t{ssh}\t{memory}{kind}")
    return EXIT_OK if all(h.running and h.ssh for h in hosts) else 2


def _cmd_testbed_down(args: argparse.Namespace) -> int:
    testbed = _testbed()

    removed = testbed.down(log=_info)
    for item in removed:
        print(f"removed {item}")
    _info("test bed is down" if removed else "nothing to remove; test bed was not up")
    return EXIT_OK


def _cmd_testbed_job(args: argparse.Namespace) -> int:
    jobs = _testbed("jobs")
    job_status, start_job = jobs.job_status, jobs.start_job

    if args.status:
        print(json.dumps(job_status(), indent=2))
        return EXIT_OK
    if not args.host:
        raise CciHardenError("testbed job: name a test host (or --status)")
    print(json.dumps(start_job(args.host, args.seconds, args.image or "")))
    return EXIT_OK


def _cmd_completion(args: argparse.Namespace) -> int:
    from .cli_reference import bash_completion

    sys.stdout.write(bash_completion(build_parser()))
    return EXIT_OK


def _cmd_man(args: argparse.Namespace) -> int:
    from .cli_reference import man_page

    sys.stdout.write(man_page(build_parser()))
    return EXIT_OK


def _cmd_init(args: argparse.Namespace) -> int:
    from .config.settings import load_settings
    from .fleet.onboard import checklist_text, init_inventory
    from .fleet.preflight import problems

    written = init_inventory(args.name, Path(args.inventory_dir))
    for path in written:
        print(f"wrote {path}")
    print()
    settings = load_settings(written[0])
    print(checklist_text(settings))
    todo = problems(settings)
    if todo:
        print()
        print("Before the first deploy, fill in:")
        for line in todo:
            print(f"  - {line}")
        print(f"  - hosts, and their host keys in {written[0]}.known_hosts")
    return EXIT_OK


def _cmd_controls(args: argparse.Namespace) -> int:
    from .controls.listing import render

    sys.stdout.write(render(args.profile, args.format))
    return EXIT_OK


_QUIET = False


def _info(message: str) -> None:
    note(message, quiet=_QUIET)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cci-harden",
        description="Install, harden and verify CircleCI Server Nomad clients.",
        epilog="Exit codes: 0 ok; 1 drift found (a failing control, or an expired waiver); "
        "2 usage error, invalid settings, or an unreachable host.",
    )
    parser.add_argument("--version", action="version", version=f"cci-harden {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="more on stderr (verify: each host as read)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    listing = commands.add_parser(
        "controls",
        help="list the controls: id and title; --format json|md adds profiles, sources, "
        "resources and CircleCI impact",
    )
    listing.add_argument("--profile", choices=PROFILE_NAMES)
    listing.add_argument("--format", choices=("table", "json", "md"), default="table")
    listing.set_defaults(func=_cmd_controls)

    init = commands.add_parser(
        "init", help="onboard a server install: write inventories/NAME and its settings"
    )
    init.add_argument("name", help="inventory name, e.g. prod-eu")
    init.add_argument("--inventory-dir", default="inventories")
    init.set_defaults(func=_cmd_init)

    config = commands.add_parser("config", help="inspect an inventory's settings")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser(
        "check", help="validate INVENTORY's settings and print them, secrets masked"
    )
    check.add_argument("inventory", help="inventory file, e.g. inventories/prod")
    check.add_argument(
        "--checklist",
        action="store_true",
        help="print CircleCI's pre-flight checklist against these settings again (as init does)",
    )
    check.set_defaults(func=_cmd_config_check)

    apply = commands.add_parser(
        "apply",
        help="apply a profile on this host itself (--local): image bakes and first boot",
    )
    apply.add_argument("inventory", help="inventory whose settings to apply, e.g. inventories/prod")
    apply.add_argument(
        "--local", action="store_true", help="on this host, as root (pyinfra @local)"
    )
    apply.add_argument(
        "--stage",
        choices=("image", "first-boot"),
        help="image: what an image carries (no private key, nothing started) and the first-boot "
        "unit; first-boot: the rest, on the instance (the unit runs it); default: everything",
    )
    apply.add_argument("--profile", default=DEFAULT_PROFILE, choices=PROFILE_NAMES, help="profile")
    apply.add_argument(
        "--yes",
        action="store_true",
        help="without --stage: harden this machine even though the inventory does not list it",
    )
    apply.set_defaults(func=_cmd_apply)

    add_verify_parser(commands)

    from .cloud.artifacts.command import add_parser as add_artifacts_parser
    from .cloud.command import add_parser as add_render_parser

    try:
        from .audit.command import add_parser as add_audit_parser
    except ImportError as exc:  # the optional extra: numpy and msgspec
        missing = exc.name or "a dependency"
        audit = commands.add_parser("audit", help="audit-log hunting (needs cci-harden[audit])")
        audit.add_argument("rest", nargs=argparse.REMAINDER)
        audit.set_defaults(func=lambda args: _missing_extra("audit", missing))
    else:
        add_audit_parser(commands)
    add_render_parser(commands)
    add_artifacts_parser(commands)

    from .fleet.known_hosts_command import add_parser as add_known_hosts_parser
    from .rollout.command import add_parser as add_rollout_parser
    from .rollout.plan_command import add_parser as add_plan_parser
    from .verify.report_command import add_parser as add_report_parser
    from .verify.waivers_command import add_parser as add_waivers_parser

    add_plan_parser(commands)
    add_known_hosts_parser(commands)
    reference = commands.add_parser(
        "completion", help='print a bash completion script (eval "$(cci-harden completion)")'
    )
    reference.set_defaults(func=_cmd_completion)
    man = commands.add_parser("man", help="print the man page (cci-harden man | man -l -)")
    man.set_defaults(func=_cmd_man)
    add_report_parser(commands)
    add_rollout_parser(commands)
    add_waivers_parser(commands)

    bed = commands.add_parser("testbed", help="local Debian 12 or 13 test hosts (needs root)")
    bed_commands = bed.add_subparsers(dest="testbed_command", required=True)
    bed_up = bed_commands.add_parser("up", help="boot test hosts and write inventories/testbed")
    bed_up.add_argument(
        "--hosts", type=int, default=3, help="number of container hosts (default 3)"
    )
    bed_up.add_argument(
        "--vms",
        type=int,
        default=None,
        help="number of VM hosts with their own kernel, in host group 'vm' (QEMU, 1 GiB and "
        "about a minute to boot each; default: keep those running)",
    )
    bed_up.add_argument(
        "--release",
        default="bookworm",
        choices=("bookworm", "trixie"),
        help="the Debian release of the hosts and VMs (bookworm: 12, the default; trixie: 13); "
        "a running host of the other release is made again",
    )
    bed_up.add_argument(
        "--inventory-dir", default="inventories", help="where to write the testbed inventory"
    )
    bed_up.set_defaults(func=_cmd_testbed_up)
    bed_commands.add_parser("status", help="show the test hosts").set_defaults(
        func=_cmd_testbed_status
    )
    bed_commands.add_parser(
        "down", help="remove every test host and VM, mount, namespace and tap"
    ).set_defaults(func=_cmd_testbed_down)
    bed_job = bed_commands.add_parser(
        "job",
        help="start a build-like job the stand-in Nomad reports as a running allocation, or "
        "list each job as running, finished or killed",
    )
    bed_job.add_argument("host", nargs="?", help="test host to start the job on")
    bed_job.add_argument("--seconds", type=int, default=60, help="how long it runs")
    bed_job.add_argument("--image", help="run a real container of this image (VM hosts)")
    bed_job.add_argument(
        "--status", action="store_true", help="list every job of every test host (JSON)"
    )
    bed_job.set_defaults(func=_cmd_testbed_job)
    _add_examples(parser)
    _quiet_and_verbose_everywhere(parser)
    return parser


def _quiet_and_verbose_everywhere(parser: argparse.ArgumentParser) -> None:
    """-q and -v are taken after any subcommand too (``cci-harden verify INV -q``); given
    there, they count as if given first (an absent one leaves the first's value alone)."""
    for action in parser._actions:  # noqa: SLF001  (argparse keeps its subparsers only here)
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for sub in set(action.choices.values()):
                sub.add_argument(
                    "-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                    help="only errors on stderr",
                )  # fmt: skip
                sub.add_argument(
                    "-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                    help="more on stderr",
                )  # fmt: skip
                _quiet_and_verbose_everywhere(sub)


# One example per command, shown at the end of its --help.
EXAMPLES = {
    "controls": "cci-harden controls --profile baseline --format md",
    "init": "cci-harden init prod-eu --inventory-dir inventories",
    "config check": "CCI_NOMAD__VERSION=1.7.7 cci-harden config check inventories/prod-eu",
    "apply": "cci-harden apply --local /etc/cci-harden/inventories/prod-eu --stage image",
    "verify": "cci-harden verify inventories/prod-eu --report-dir reports --previous "
    "reports/verify.json",
    "render iam": "cci-harden render iam --cloud aws inventories/prod-eu --output-dir iam/",
    "render seccomp": "cci-harden render seccomp inventories/prod-eu -o circleci-seccomp.json",
    "render bake": "cci-harden render bake inventories/prod-eu --format packer -o bake.pkr.hcl",
    "render artifacts": "cci-harden render artifacts inventories/prod-eu --output-dir helm/",
    "artifacts audit": "cci-harden artifacts audit inventories/prod-eu --format jsonl --output "
    "flagged.jsonl",
    "audit hunt": "cci-harden audit hunt export-*.csv.gz --since 2022-12-21 --until 2023-01-05",
    "audit secrets": "cci-harden audit secrets export.csv --since 2022-12-21 --rotate-before "
    "2023-01-04 --format md",
    "audit generate": "cci-harden audit generate sample.csv --rows 100000",
    "testbed up": "cci-harden testbed up --hosts 3 --vms 1",
    "testbed status": "cci-harden testbed status",
    "testbed down": "cci-harden testbed down",
    "testbed job": "cci-harden testbed job tb1 --seconds 60",
    "rollout": "cci-harden rollout inventories/prod-eu --batches 1,10%,100% --report rollout.json",
    "plan": "cci-harden plan inventories/prod-eu --host nomad-client-1 --output plan/",
    "report": "cci-harden report reports/verify.json --format html -o fleet.html",
    "known-hosts": "ssh-keyscan -t ed25519 ADDRESS | cci-harden known-hosts inventories/prod-eu "
    "--scan - --fingerprints console-fingerprints.txt --write",
    "completion": 'eval "$(cci-harden completion)"',
    "man": "cci-harden man | man -l -",
    "waivers list": "cci-harden waivers list inventories/prod-eu --format json",
    "waivers lint": "cci-harden waivers lint inventories/prod-eu",
}


def _add_examples(parser: argparse.ArgumentParser, path: str = "") -> None:
    """Give every command's --help its example (kept in EXAMPLES, tested for each command)."""
    for action in parser._actions:  # argparse keeps sub-commands only here
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                key = f"{path} {name}".strip()
                if key in EXAMPLES:
                    example = f"Example: {EXAMPLES[key]}"
                    sub.epilog = f"{sub.epilog}\n{example}" if sub.epilog else example
                    sub.formatter_class = argparse.RawDescriptionHelpFormatter
                _add_examples(sub, key)


def _missing_extra(extra: str, missing: str) -> int:
    print(
        f"cci-harden: error: this command needs the {extra} extra ({missing} is not installed): "
        f"pip install 'cci-harden[{extra}]'",
        file=sys.stderr,
    )
    return 2


def main(argv: list[str] | None = None) -> int:
    global _QUIET
    parser = build_parser()
    args = parser.parse_args(argv)
    _QUIET = args.quiet
    try:
        return args.func(args)
    except BrokenPipeError:  # `| head`: the reader has what it wanted; end quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
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
