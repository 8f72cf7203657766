"""``cci-harden audit``: hunt, secrets, generate. Exit 1 when --fail-on finds something."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..model.errors import EXIT_DRIFT, EXIT_OK, CciHardenError
from ..model.outputs import emit, emit_lines, require_writable
from ..model.text import printable
from .limits import ROW_LIMIT, default_jobs
from .output import FORMATS, render, render_lines
from .rules import SEVERITIES

# The ingest (numpy, msgspec) is imported by the commands that read exports, not here: every
# cci-harden command builds this parser.

FINDING_COLUMNS = (
    "severity",
    "rule",
    "actor",
    "count",
    "first",
    "last",
    "why",
    "targets",
    "addresses",
    "event_ids",
)
SECRET_COLUMNS = (
    "severity",
    "name",
    "location",
    "last_stored",
    "stored_by",
    "rotate",
    "deleted_at",
    "deleted_by",
)


def _time(value: str | None, option: str) -> str | None:
    from .events import RowError, normalise_time

    if value is None:
        return None
    text = value if "T" in value else value + "T00:00:00Z"
    if not text.endswith("Z") and "+" not in text[10:]:
        text += "Z"
    try:
        return normalise_time(text)
    except RowError:
        raise CciHardenError(
            f"{option} {value!r}: give a UTC date or time, e.g. 2022-12-21 or 2022-12-21T00:00:00Z"
        ) from None


def _jobs(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 64:
        raise argparse.ArgumentTypeError(f"{value!r}: give a number of processes from 1 to 64")
    return int(value)


def _row_limit(value: str) -> int:
    if not value.isdigit() or not 1024 <= int(value) <= 2**30:
        raise argparse.ArgumentTypeError(f"{value!r}: give a number of bytes from 1024 to 2**30")
    return int(value)


ACTOR_COLUMNS = ("severity", "actor", "findings", "events", "first", "last", "rules")


def by_actor(findings) -> list[dict]:
    """One row per actor: the worst severity first, then the most events."""
    from .rules import SEVERITIES

    rows: dict[str, dict] = {}
    for finding in findings:
        row = rows.setdefault(
            finding.actor,
            {
                "severity": "info",
                "actor": finding.actor,
                "findings": 0,
                "events": 0,
                "first": finding.first,
                "last": finding.last,
                "rules": set(),
            },
        )
        if SEVERITIES.index(finding.severity) > SEVERITIES.index(row["severity"]):
            row["severity"] = finding.severity
        row["findings"] += 1
        row["events"] += finding.count
        row["first"] = min(row["first"], finding.first)
        row["last"] = max(row["last"], finding.last)
        row["rules"].add(finding.rule)
    ordered = sorted(
        rows.values(), key=lambda r: (-SEVERITIES.index(r["severity"]), -r["events"], r["actor"])
    )
    for row in ordered:
        row["rules"] = ", ".join(sorted(row["rules"]))
    return ordered


def _note(message: str) -> None:
    print(f"cci-harden: note: {message}", file=sys.stderr)


def _progress(stats) -> None:
    """Rows so far, the share of the bytes read and, once it is a guess worth making, the
    time left (a compressed export counts by its compressed size)."""
    import time

    line = f"cci-harden: {stats.rows:,} rows read, {stats.events:,} events"
    if stats.bytes_total:
        share = min(stats.bytes_done / stats.bytes_total, 1.0)
        line += f", {share:.0%} of {stats.bytes_total / 2**20:,.0f} MiB"
        elapsed = time.monotonic() - stats.started
        if 0.02 < share < 1:
            line += f", about {elapsed * (1 - share) / share:,.0f} s left"
    print(line, file=sys.stderr)


def _byte_spans(shown) -> dict:
    """Byte offsets of the multi-line malformed rows shown, for files that are read as they
    are on disk (a compressed export's offsets would not point into the file)."""
    from .ingest import byte_spans

    found = {}
    for path in {bad.path for bad in shown if bad.lines > 1 and not bad.path.endswith(".gz")}:
        spans = [(bad.first, bad.last) for bad in shown if bad.path == path and bad.lines > 1]
        try:
            offsets = byte_spans(path, spans)
        except OSError:
            continue
        found.update({(path, *span): where for span, where in offsets.items()})
    return found


def _report_problems(stats) -> None:
    print(
        f"cci-harden: {stats.rows:,} rows, {stats.events:,} events, {stats.duplicates:,} "
        f"duplicates dropped, {stats.malformed_count:,} malformed rows",
        file=sys.stderr,
    )
    if stats.conflicts:
        print(
            f"  {stats.conflicts:,} rows reuse an earlier event's id with different content: "
            "kept, not taken for repeats (see the integrity.id_reused finding in hunt)",
            file=sys.stderr,
        )
    if stats.spanning:
        print(
            f"  warning: {stats.spanning:,} malformed row(s) span {stats.spanned_lines:,} lines "
            "between them (a quote never closed?): events in those lines were not hunted; "
            "their spans are listed below and in --malformed-out",
            file=sys.stderr,
        )
    shown = stats.malformed[:20]
    where = _byte_spans(shown)
    for bad in shown:
        span = where.get((bad.path, bad.first, bad.last))
        at = f" (bytes {span[0]:,}-{span[1]:,})" if span else ""
        print(f"  malformed {printable(bad.source)}{at}: {printable(bad.reason)}", file=sys.stderr)
    if stats.malformed_count > 20:
        more = stats.malformed_count - 20
        print(f"  ... and {more:,} more (see --malformed-out)", file=sys.stderr)


def cmd_hunt(args: argparse.Namespace) -> int:
    require_writable("--output", args.output)  # before the ingest, not after it
    from .hunt import Hunter, Options, at_or_above
    from .ingest import IngestStats, read_export_batches
    from .rules import load_rules

    rules = load_rules(Path(args.rules) if args.rules else None)
    options = Options(
        since=_time(args.since, "--since"),
        until=_time(args.until, "--until"),
        actors=frozenset(args.actor or ()),
        projects=frozenset(args.project or ()),
    )
    if options.since and options.until and options.since >= options.until:
        raise CciHardenError(f"--since {args.since} is not before --until {args.until}")
    if options.since is None:
        _note(
            "no --since: only the rules ran; the new-address, new-actor and unusual-hour checks "
            "compare the window with what came before it, so they need the window's start"
        )
    stats = IngestStats()
    sink = _open_malformed(args.malformed_out)
    stats.malformed_sink = sink
    hunter = Hunter(rules, options)
    progress = _progress if args.progress or sys.stderr.isatty() else None
    for events in read_export_batches(
        [Path(p) for p in args.files],
        stats,
        progress,
        jobs=args.jobs,
        row_limit=args.row_limit,
        on_conflict=hunter.feed_conflicts,
    ):
        hunter.feed_many(events)
    for option, asked, matched in (
        ("--actor", options.actors, hunter.matched_actors),
        ("--project", options.projects, hunter.matched_projects),
    ):
        unmatched = sorted(asked - matched)
        if unmatched:
            raise CciHardenError(
                f"{option} {', '.join(unmatched)}: matches no event in the window "
                "(check the spelling: actors by name or id, projects as gh/ORG/REPO)"
            )
    findings = hunter.findings()
    if args.group_by == "actor":
        rows = by_actor(findings)
        summary = {**stats.as_dict(), "in_window": hunter.in_window, "actors": len(rows)}
        emit(render("actor", rows, ACTOR_COLUMNS, args.format, summary), args.output)
        _close(sink)
        _report_problems(stats)
        if args.fail_on and at_or_above(findings, args.fail_on):
            return EXIT_DRIFT
        return EXIT_OK
    summary = {
        **stats.as_dict(),
        "in_window": hunter.in_window,
        "findings": len(findings),
        "heuristics": "on" if options.since else "off (no --since)",
    }
    spelled = (finding.as_dict() for finding in findings)  # one finding's ids at a time
    emit_lines(render_lines("finding", spelled, FINDING_COLUMNS, args.format, summary), args.output)
    _close(sink)
    _report_problems(stats)
    if args.fail_on and at_or_above(findings, args.fail_on):
        return EXIT_DRIFT
    return EXIT_OK


def cmd_secrets(args: argparse.Namespace) -> int:
    require_writable("--output", args.output)  # before the ingest, not after it
    from .ingest import IngestStats, read_exports
    from .secrets import SecretsInventory, load_severity_patterns

    inventory = SecretsInventory(
        _time(args.rotate_before, "--rotate-before"),
        load_severity_patterns(Path(args.severity_rules) if args.severity_rules else None),
        exposed_since=_time(args.since, "--since"),
    )
    stats = IngestStats()
    sink = _open_malformed(args.malformed_out)
    stats.malformed_sink = sink
    files = [Path(p) for p in args.files]
    for event in read_exports(files, stats, jobs=args.jobs, row_limit=args.row_limit):
        inventory.feed(event)
    rows = [r.as_dict() for r in inventory.rows()]
    emit(render("secret", rows, SECRET_COLUMNS, args.format, stats.as_dict()), args.output)
    _close(sink)
    _report_problems(stats)
    return EXIT_OK


def cmd_generate(args: argparse.Namespace) -> int:
    from .generate import generate

    truth = generate(Path(args.out), args.rows, seed=args.seed)
    print(
        f"wrote {truth.rows:,} rows to {args.out}: {truth.unique:,} events, "
        f"{truth.duplicates:,} duplicates, {truth.malformed:,} malformed"
    )
    return EXIT_OK


def _open_malformed(path: str | None):
    """Open --malformed-out before reading anything: an unwritable path is said at once."""
    if not path:
        return None
    try:
        return open(path, "w", encoding="utf-8")  # noqa: SIM115  (closed by _close)
    except OSError as exc:
        raise CciHardenError(f"--malformed-out {path}: cannot write ({exc.strerror})") from None


def _close(sink) -> None:
    if sink is not None:
        sink.close()


def add_parser(commands) -> None:
    audit = commands.add_parser("audit", help="hunt through CircleCI audit-log exports")
    sub = audit.add_subparsers(dest="audit_command", required=True)

    def common(p):
        p.add_argument("files", nargs="+", help="audit-log CSV exports (one per window)")
        p.add_argument("--format", choices=FORMATS, default="table")
        p.add_argument("--output", help="write here instead of standard output")
        p.add_argument("--malformed-out", help="write every malformed row's file:line and reason")
        p.add_argument(
            "--row-limit",
            type=_row_limit,
            default=ROW_LIMIT,
            metavar="BYTES",
            help="a longer row is a malformed row, never read whole (default: 1048576, 1 MiB)",
        )
        p.add_argument(
            "--jobs",
            type=_jobs,
            default=default_jobs(),
            help="worker processes that parse rows (default: one per CPU, at most 8; 1: none)",
        )

    hunt = sub.add_parser(
        "hunt",
        help="find suspicious events (rules and heuristics)",
        epilog="The January 2023 incident window: --since 2022-12-21 --until 2023-01-05",
    )
    common(hunt)
    hunt.add_argument("--since", help="window start, UTC (events before it are the baseline)")
    hunt.add_argument("--until", help="window end, UTC (exclusive)")
    hunt.add_argument("--actor", action="append", help="only this actor (name or id; repeatable)")
    hunt.add_argument("--project", action="append", help="only this project (repeatable)")
    hunt.add_argument("--rules", help="TOML file of extra rules (same id replaces a default)")
    hunt.add_argument("--fail-on", choices=SEVERITIES, help="exit 1 if a finding is this severe")
    hunt.add_argument("--progress", action="store_true", help="report progress on stderr")
    hunt.add_argument(
        "--group-by",
        choices=("actor",),
        help="one row per actor (worst severity, findings, events, rules) instead of per finding",
    )
    hunt.set_defaults(func=cmd_hunt)

    secrets = sub.add_parser("secrets", help="inventory of context and project secrets")
    common(secrets)
    secrets.add_argument("--rotate-before", help="secrets stored before this UTC date: rotate")
    secrets.add_argument("--severity-rules", help="TOML [[severity]] pattern/severity overrides")
    secrets.add_argument(
        "--since",
        help="start of the exposure window, UTC: a secret deleted after it still needs rotating",
    )
    secrets.set_defaults(func=cmd_secrets)

    gen = sub.add_parser("generate", help="write a realistic synthetic export (tests, benchmarks)")
    gen.add_argument("out")
    gen.add_argument("--rows", type=int, default=10_000)
    gen.add_argument("--seed", type=int, default=7)
    gen.set_defaults(func=cmd_generate)
