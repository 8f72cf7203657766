"""Render verify results for people: a compact table, failures first."""

from __future__ import annotations

from collections.abc import Sequence

from ..catalogue.model import Status
from .runner import HostReport

_MARK = {
    Status.PASS: "ok",
    Status.FAIL: "FAIL",
    Status.NOT_VERIFIABLE: "n/v",
    Status.NOT_APPLICABLE: "-",
}


def render_table(reports: Sequence[HostReport]) -> str:
    lines = []
    for report in reports:
        if not report.reachable:
            lines.append(f"UNREACHABLE {report.host}: {report.error}")
    for report in reports:
        for outcome in report.outcomes:
            if outcome.status is Status.FAIL:
                for finding in outcome.findings:
                    lines.append(
                        f"FAIL {report.host} {outcome.control_id} {finding.what}: "
                        f"expected {finding.expected}, found {finding.found}"
                    )
    reachable = [r for r in reports if r.reachable]
    if reachable:
        ids = [o.control_id for o in reachable[0].outcomes]
        width = max([len(i) for i in ids] + [7])
        lines.append("")
        lines.append("control".ljust(width) + "  " + "  ".join(r.host for r in reachable))
        for index, control_id in enumerate(ids):
            cells = [_MARK[r.outcomes[index].status].ljust(len(r.host)) for r in reachable]
            lines.append(control_id.ljust(width) + "  " + "  ".join(cells))
    return "\n".join(lines)
