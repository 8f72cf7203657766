"""``cci-harden report verify.json --format html|md|prom``: a saved run, rendered again.

The nightly job keeps its JSON report; any view of it can be made later, on another machine,
without reaching a host: the HTML fleet report (with the trend of the folder's history, when
the folder keeps one), Markdown for a ticket, or the Prometheus file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..model.errors import EXIT_OK, CciHardenError
from ..model.outputs import emit, require_writable

# The report's renderers (and the settings models they reach) load when a report is made, not
# here: every cci-harden command builds this parser.


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import render_run
    from .results import from_json, load_previous

    require_writable("--output", args.output)
    source = Path(args.report)
    if not source.is_file():
        raise CciHardenError(f"report {source}: no such file")
    run = from_json(load_previous(source))
    history = None
    if args.format == "html":
        from .html import read_history

        history = read_history(source.parent)
    emit(render_run(run, args.format, history), args.output, announce=True)
    return EXIT_OK


def add_parser(commands) -> None:
    report = commands.add_parser(
        "report", help="render a saved verify JSON report again: html, md or prom"
    )
    report.add_argument("report", help="a JSON report verify wrote, e.g. reports/verify.json")
    report.add_argument("--format", choices=("html", "md", "prom"), default="md")
    report.add_argument("--output", "-o", help="file to write (default: standard output)")
    report.set_defaults(func=_cmd_report)
