"""``cci-harden artifacts audit``: stored artifact types against the allowlist, optionally fixed."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ...model.errors import EXIT_DRIFT, EXIT_OK, CciHardenError
from ...model.outputs import require_writable
from ...model.text import printable


def _cmd_audit(args: argparse.Namespace) -> int:
    from ...config.settings import load_settings
    from .bucket_audit import audit_bucket, s3_client

    require_writable("--output", args.output)
    settings = load_settings(args.inventory)
    buckets = args.bucket or settings.storage.buckets
    if not buckets:
        raise CciHardenError("no bucket: pass --bucket NAME or set [storage] buckets")
    endpoint = args.endpoint_url or settings.storage.endpoint_url
    client = s3_client(endpoint, settings.storage.region)
    examined, flagged = 0, []
    for bucket in buckets:
        try:
            count, found = audit_bucket(
                client, bucket, settings.artifacts, prefix=args.prefix, fix=args.fix
            )
        except Exception as exc:  # botocore's errors: say which bucket, not a traceback
            if exc.__class__.__module__.startswith("botocore"):
                raise CciHardenError(f"bucket {bucket}: {str(exc).splitlines()[0]}") from None
            raise
        examined += count
        flagged += found
    vanished = [f for f in flagged if f.vanished]
    flagged = [f for f in flagged if not f.vanished]
    lines = []
    if args.json or args.format == "jsonl":
        lines = [json.dumps(item.__dict__, sort_keys=True) for item in flagged + vanished]
    else:
        for item in flagged + vanished:
            if item.vanished:
                state = "vanished"
            elif item.fixed:
                state = "fixed"
            else:
                state = f"FAILED: {item.error}" if item.error else "unsafe"
            where = printable(f"s3://{item.bucket}/{item.key}")
            lines.append(f"{state:<8} {where}  {item.stored_type} -> {item.safe_type}")
    text = "".join(line + "\n" for line in lines)
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    left = [f for f in flagged if not f.fixed]
    gone = f"; {len(vanished)} vanished while being read" if vanished else ""
    print(
        f"cci-harden: {examined} object(s) examined in {len(buckets)} bucket(s); "
        f"{len(flagged)} outside the allowlist; {len(flagged) - len(left)} fixed{gone}",
        file=sys.stderr,
    )
    return EXIT_DRIFT if left else EXIT_OK


def add_parser(commands) -> None:
    artifacts = commands.add_parser("artifacts", help="artifact content types in object storage")
    actions = artifacts.add_subparsers(dest="artifacts_command", required=True)
    audit = actions.add_parser(
        "audit",
        help="list objects whose stored Content-Type is outside the allowlist; exit 1 if any "
        "remain",
    )
    audit.add_argument("inventory", help="inventory file, e.g. inventories/prod")
    audit.add_argument("--bucket", action="append", help="bucket (default: [storage] buckets)")
    audit.add_argument("--prefix", default="", help="only keys starting with this")
    audit.add_argument("--endpoint-url", help="S3-compatible endpoint (default: settings, or AWS)")
    audit.add_argument(
        "--fix", action="store_true", help="rewrite each flagged object's type to the safe one"
    )
    audit.add_argument(
        "--format",
        choices=("table", "jsonl"),
        default="table",
        help="table (default), or one JSON object per flagged object",
    )
    audit.add_argument("--output", help="write the result here instead of standard output")
    audit.add_argument("--json", action="store_true", help="the same as --format jsonl")
    audit.set_defaults(func=_cmd_audit)
