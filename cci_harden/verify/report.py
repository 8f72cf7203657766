"""Views of a verify run: the terminal table and a Markdown summary (JUnit is pytest's own)."""

from __future__ import annotations

import re

from .. import __version__
from ..model.control import Status
from ..model.text import printable
from .results import VerifyRun

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#+!|~])")


def markdown_text(text: str) -> str:
    """Text shown as itself in Markdown: no link, image, HTML or table cell a host could start."""
    return _MARKDOWN.sub(r"\\\1", printable(text))


_MARK = {
    Status.PASS: "ok",
    Status.FAIL: "FAIL",
    Status.NOT_VERIFIABLE: "n/v",
    Status.NOT_APPLICABLE: "-",
    Status.WAIVED: "waived",
}


def _grid(run: VerifyRun) -> dict[str, dict[str, Status]]:
    """control id -> host -> status, controls in catalogue order."""
    grid: dict[str, dict[str, Status]] = {}
    for cell in run.cells:
        grid.setdefault(cell.outcome.control_id, {})[cell.host] = cell.outcome.status
    return grid


def _failure_lines(run: VerifyRun) -> list[str]:
    lines = []
    for report in run.unreachable:
        lines.append(f"UNREACHABLE {report.host}: {printable(report.error)}")
    for waiver in run.expired_waivers:
        lines.append(
            f"EXPIRED WAIVER {waiver.control} on {', '.join(waiver.hosts)} "
            f"(owner {waiver.owner}, expired {waiver.expires})"
        )
    for cell in run.failing():
        for finding in cell.outcome.findings:
            lines.append(f"FAIL {cell.host} {cell.outcome.control_id} {finding.line()}")
    return lines


def render_table(run: VerifyRun) -> str:
    """Failures first (expected vs found), then a compact hosts x controls grid."""
    lines = _failure_lines(run)
    if run.drift is not None:
        lines.append(
            f"drift since the previous report: {len(run.drift.newly_failing)} newly failing, "
            f"{len(run.drift.newly_fixed)} newly fixed, {len(run.drift.still_failing)} "
            "still failing"
        )
        for host, control in run.drift.newly_failing:
            lines.append(f"  newly failing: {host} {control}")
        for host, control in run.drift.newly_fixed:
            lines.append(f"  newly fixed:   {host} {control}")
        for host, control, since in run.drift.still_failing:
            lines.append(f"  still failing: {host} {control} since {since}")
        for host in run.drift.joined:
            lines.append(f"  host joined:   {host}")
        for host in run.drift.vanished:
            lines.append(f"  host vanished: {host}")
    reachable = [r for r in run.reports if r.reachable]
    if reachable:
        grid = _grid(run)
        width = max([len(i) for i in grid] + [7])
        widths = [max(len(r.host), 6) for r in reachable]
        lines.append("")
        lines.append(
            "control".ljust(width)
            + "  "
            + "  ".join(r.host.ljust(w) for r, w in zip(reachable, widths, strict=True))
        )
        order = sorted(grid, key=lambda cid: 0 if Status.FAIL in grid[cid].values() else 1)
        for control_id in order:
            cells = [
                _MARK[grid[control_id][r.host]].ljust(w)
                for r, w in zip(reachable, widths, strict=True)
            ]
            lines.append(control_id.ljust(width) + "  " + "  ".join(cells).rstrip())
    return "\n".join(lines)


def render_markdown(run: VerifyRun) -> str:
    verdict = {0: "all controls pass", 1: "drift found", 2: "hosts unreachable"}[run.exit_code()]
    lines = [
        f"# cci-harden verify: {run.inventory}",
        "",
        f"{run.generated_at}, shard {run.shard}: **{verdict}** (exit {run.exit_code()}); "
        f"cci-harden {__version__}"
        + (f", CircleCI Server {run.server_line}" if run.server_line else "")
        + ".",
        "",
    ]
    if run.warnings:
        lines += ["## Warnings", ""] + [f"- {w}" for w in run.warnings] + [""]
    problems = _failure_lines(run)
    if problems:
        lines += ["## Problems", ""] + [f"- {markdown_text(line)}" for line in problems] + [""]
    if run.drift is not None:
        lines += [
            "## Since the previous report",
            "",
            f"- newly failing: {', '.join(f'{h} {c}' for h, c in run.drift.newly_failing) or '-'}",
            f"- newly fixed: {', '.join(f'{h} {c}' for h, c in run.drift.newly_fixed) or '-'}",
            "- still failing: "
            + (", ".join(f"{h} {c} (since {s})" for h, c, s in run.drift.still_failing) or "-"),
            f"- hosts that joined: {', '.join(run.drift.joined) or '-'}",
            f"- hosts that vanished: {', '.join(run.drift.vanished) or '-'}",
            "",
        ]
    waived = [c for c in run.cells if c.outcome.status is Status.WAIVED]
    if waived:
        lines += [
            "## Waived",
            "",
            "| host | control | owner | expires | why |",
            "|---|---|---|---|---|",
        ]
        for cell in waived:
            w = cell.waiver
            if w is None:
                continue
            lines.append(
                f"| {cell.host} | {cell.outcome.control_id} | {w.owner} | {w.expires} | "
                f"{w.justification} |"
            )
        lines.append("")
    reachable = [r for r in run.reports if r.reachable]
    if reachable:
        lines += [
            "## Controls",
            "",
            "| control | " + " | ".join(r.host for r in reachable) + " |",
            "|---|" + "---|" * len(reachable),
        ]
        for control_id, row in _grid(run).items():
            lines.append(
                f"| {control_id} | " + " | ".join(_MARK[row[r.host]] for r in reachable) + " |"
            )
    return "\n".join(lines) + "\n"


def render_run(run: VerifyRun, fmt: str, history: list | None = None) -> str:
    """The run in one of verify's views: table, json, md, html or prom."""
    if fmt == "table":
        return render_table(run) + "\n"
    if fmt == "json":
        import json

        from .results import to_json

        return json.dumps(to_json(run), indent=2) + "\n"
    if fmt == "md":
        return render_markdown(run)
    if fmt == "prom":
        from .prometheus import render_prometheus

        return render_prometheus(run)
    from .html import render_html

    return render_html(run, history or [])
