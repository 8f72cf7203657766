"""``cci-harden render iam|seccomp|bake|artifacts``: documents operators apply with their own
tooling."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..model.errors import EXIT_OK, CciHardenError
from ..model.outputs import emit


def _settings(inventory: str):
    from ..config.settings import load_settings

    return load_settings(inventory)


def _output_dir(args: argparse.Namespace, default: str) -> Path:
    if args.output_dir:
        return Path(args.output_dir)
    return Path("rendered") / Path(args.inventory).name / default


def _write(directory: Path, command: str, settings, documents) -> None:
    from .render import manifest, write_all

    for path in write_all(directory, [*documents, manifest(command, settings, documents)]):
        print(f"wrote {path}")


def _cmd_iam(args: argparse.Namespace) -> int:
    from .iam_lint import lint, unused_suppressions
    from .render import iam_documents

    settings = _settings(args.inventory)
    documents = iam_documents(settings, args.cloud)
    findings = lint(documents)
    open_findings = [f for f in findings if f.suppressed_by is None]
    for finding in findings:
        if finding.suppressed_by:
            print(
                f"parliament: {finding.document} [{finding.sid}] {finding.issue}: suppressed "
                f"({finding.suppressed_by.justification[:80]}...; see docs/cloud-policies.md)",
                file=sys.stderr,
            )
    stale = unused_suppressions(documents, findings)
    if open_findings or stale:
        lines = [f"{f.document} [{f.sid}] {f.issue}: {f.detail}" for f in open_findings] + [
            f"suppression no longer needed: {s.document} [{s.sid}] {s.issue}" for s in stale
        ]
        raise CciHardenError("parliament does not pass; nothing written:\n  " + "\n  ".join(lines))
    _write(
        _output_dir(args, f"iam-{args.cloud}"),
        f"render iam --cloud {args.cloud}",
        settings,
        documents,
    )
    return EXIT_OK


def _seccomp_major(inventory: str | None, engine: int | None) -> int:
    """The engine to render for: the inventory's, the one named, or the newest vendored."""
    from ..controls.seccomp import ENGINE_DEFAULTS, engine_major

    if inventory:
        return engine_major(_settings(inventory))
    return engine or ENGINE_DEFAULTS[-1].major


def _cmd_seccomp(args: argparse.Namespace) -> int:
    from .render import seccomp_profile

    profile = seccomp_profile(_seccomp_major(args.inventory, args.engine))
    if args.output in (None, "-"):
        sys.stdout.write(profile.content)
    else:
        from .render import Rendered, write_all

        output = Path(args.output)
        write_all(output.parent, [Rendered(output.name, profile.content)])
        print(f"wrote {output}", file=sys.stderr)
    return EXIT_OK


def _cmd_artifacts(args: argparse.Namespace) -> int:
    from ..controls.nginx_site import nginx_site
    from .render import Rendered, helm_values

    settings = _settings(args.inventory)
    documents = [
        helm_values(settings),
        Rendered("nginx-circleci-artifacts.conf", nginx_site(settings.artifacts)),
    ]
    _write(_output_dir(args, "artifacts"), "render artifacts", settings, documents)
    return EXIT_OK


def _cmd_bake(args: argparse.Namespace) -> int:
    from .bake import check_carried_files, cloud_init, packer_build

    settings = _settings(args.inventory)
    name = Path(args.inventory).name
    if args.format == "packer":
        check_carried_files(settings)
        text = packer_build(settings, name)
    else:
        text = cloud_init(settings, name)
    emit(text, args.output, announce=True)
    return EXIT_OK


def add_parser(commands) -> None:
    render = commands.add_parser(
        "render", help="write IAM policies, the seccomp profile or artifact settings for review"
    )
    kinds = render.add_subparsers(dest="render_command", required=True)

    iam = kinds.add_parser(
        "iam", help="the VM service's IAM policy, object-storage policies and bucket policies"
    )
    iam.add_argument("--cloud", required=True, choices=("aws", "gcp"))
    iam.add_argument("inventory", help="inventory file, e.g. inventories/prod")
    iam.add_argument("--output-dir", help="default: rendered/INVENTORY/iam-CLOUD")
    iam.set_defaults(func=_cmd_iam)

    seccomp = kinds.add_parser(
        "seccomp", help="the seccomp profile deploys/nomad.py installs (Docker default + userns)"
    )
    seccomp.add_argument(
        "inventory", nargs="?", help="render for the Docker engine this inventory installs"
    )
    seccomp.add_argument(
        "--engine",
        type=int,
        metavar="MAJOR",
        help="Docker engine major version without an inventory (default: the newest vendored)",
    )
    seccomp.add_argument("--output", "-o", help="file to write (default: standard output)")
    seccomp.set_defaults(func=_cmd_seccomp)

    bake = kinds.add_parser(
        "bake", help="a Packer build and cloud-init user data for image bakes (local mode)"
    )
    bake.add_argument("inventory", help="inventory file, e.g. inventories/prod")
    bake.add_argument("--format", required=True, choices=("packer", "cloud-init"))
    bake.add_argument("--output", "-o", help="file to write (default: standard output)")
    bake.set_defaults(func=_cmd_bake)

    artifacts = kinds.add_parser(
        "artifacts", help="Server 4.x Helm values and the nginx site for artifact content types"
    )
    artifacts.add_argument("inventory", help="inventory file, e.g. inventories/prod")
    artifacts.add_argument("--output-dir", help="default: rendered/INVENTORY/artifacts")
    artifacts.set_defaults(func=_cmd_artifacts)
