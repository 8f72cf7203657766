"""One verify run as data: outcomes per host, waivers applied, drift since the previous run.

The JSON report is this structure; the JUnit and Markdown reports and the terminal table are views
of it. A previous JSON report feeds ``since``: how long each failure has been failing.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from .. import __version__
from ..model.control import Outcome, Status
from ..model.errors import CciHardenError
from ..model.waivers import Waiver, deciding_waiver
from .hosts import HostReport

REPORT_FORMAT = 1


@dataclass
class Cell:
    host: str
    outcome: Outcome
    waiver: Waiver | None = None
    since: str | None = None  # ISO time this failure was first seen


@dataclass
class Drift:
    newly_failing: list[tuple[str, str]] = field(default_factory=list)
    newly_fixed: list[tuple[str, str]] = field(default_factory=list)
    still_failing: list[tuple[str, str, str]] = field(default_factory=list)  # host, control, since
    joined: list[str] = field(default_factory=list)  # hosts not in the previous report
    vanished: list[str] = field(default_factory=list)  # hosts only in the previous report


@dataclass
class VerifyRun:
    inventory: str
    generated_at: str
    shard: str
    reports: list[HostReport]
    cells: list[Cell]
    expired_waivers: list[Waiver]
    drift: Drift | None = None
    warnings: list[str] = field(default_factory=list)  # the inventory's, not a host's
    server_line: str = ""  # the CircleCI Server line the inventory's settings name

    @property
    def unreachable(self) -> list[HostReport]:
        return [r for r in self.reports if not r.reachable]

    def failing(self) -> list[Cell]:
        return [c for c in self.cells if c.outcome.status is Status.FAIL]

    def exit_code(self) -> int:
        if self.unreachable:
            return 2
        return 1 if self.failing() or self.expired_waivers else 0


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def build_run(
    inventory: str,
    reports: list[HostReport],
    waivers: list[Waiver],
    shard: str = "1/1",
    today: dt.date | None = None,
    generated_at: str | None = None,
) -> VerifyRun:
    today = today or dt.datetime.now(dt.UTC).date()
    generated_at = generated_at or now_iso()
    cells: list[Cell] = []
    expired: list[Waiver] = [w for w in waivers if w.expired(today)]
    for report in reports:
        for outcome in report.outcomes:
            cell = Cell(report.host, outcome)
            if outcome.status is Status.FAIL:
                waiver = deciding_waiver(waivers, outcome.control_id, report.host, outcome, today)
                if waiver is not None and not waiver.expired(today):
                    cell.outcome = replace(outcome, status=Status.WAIVED)
                    cell.waiver = waiver
                elif waiver is not None:
                    cell.waiver = waiver  # expired: still a failure, and named
                cell.since = generated_at
            cells.append(cell)
    return VerifyRun(inventory, generated_at, shard, reports, cells, expired)


def failing_since(previous: dict) -> dict[tuple[str, str], str]:
    found = {}
    for host in previous.get("hosts", []):
        for outcome in host.get("outcomes", []):
            if outcome.get("status") in ("fail", "waived"):
                found[(host["name"], outcome["control"])] = outcome.get("since") or previous.get(
                    "generated_at", ""
                )
    return found


def load_previous(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CciHardenError(f"--previous {path}: not a readable JSON report ({exc})") from None
    if data.get("format") != REPORT_FORMAT:
        raise CciHardenError(f"--previous {path}: not a cci-harden verify report")
    return data


def apply_history(run: VerifyRun, previous: dict) -> None:
    """Carry each failure's first-seen time forward, and list what changed since."""
    before = failing_since(previous)
    hosts_now = {r.host for r in run.reports if r.reachable}
    drift = Drift()
    now_failing = set()
    for cell in run.cells:
        if cell.outcome.status in (Status.FAIL, Status.WAIVED):
            key = (cell.host, cell.outcome.control_id)
            now_failing.add(key)
            if key in before:
                cell.since = before[key]
                drift.still_failing.append((*key, before[key]))
            else:
                drift.newly_failing.append(key)
    drift.newly_fixed = sorted(k for k in before if k[0] in hosts_now and k not in now_failing)

    # an autoscaled fleet changes between nights: say which hosts came and went
    def whole(shard: str) -> bool:  # "INDEX/TOTAL": only an unsharded run sees every host
        return shard.rpartition("/")[2] == "1"

    if whole(run.shard) and whole(str(previous.get("shard", "0/1"))):
        then = {h["name"] for h in previous.get("hosts", [])}
        now = {r.host for r in run.reports}
        drift.joined, drift.vanished = sorted(now - then), sorted(then - now)
    run.drift = drift


def _controls_of(run: VerifyRun) -> dict[str, dict]:
    """Each control of the run with its title and framework ids (CIS, NIST SP 800-53)."""
    from ..controls import by_id, known_control_ids

    known = known_control_ids()
    found = {}
    for cell in run.cells:
        cid = cell.outcome.control_id
        if cid in known and cid not in found:
            control = by_id(cid)
            found[cid] = {"title": control.title, "frameworks": control.frameworks()}
    return found


def to_json(run: VerifyRun) -> dict:
    by_host: dict[str, list[Cell]] = {}
    for cell in run.cells:
        by_host.setdefault(cell.host, []).append(cell)
    hosts = []
    for report in run.reports:
        hosts.append(
            {
                "name": report.host,
                "reachable": report.reachable,
                "error": report.error,
                "remote_commands": report.remote_commands,
                "outcomes": [
                    {
                        "control": c.outcome.control_id,
                        "status": c.outcome.status.value,
                        "note": c.outcome.note,
                        "findings": [
                            {
                                "resource": f.resource,
                                "what": f.what,
                                "expected": f.expected,
                                "found": f.found,
                                "verifiable": f.verifiable,
                            }
                            for f in c.outcome.findings
                        ],
                        "waiver": c.waiver.describe() if c.waiver else None,
                        "since": c.since,
                    }
                    for c in by_host.get(report.host, [])
                ],
            }
        )
    counts: dict[str, int] = {}
    for cell in run.cells:
        counts[cell.outcome.status.value] = counts.get(cell.outcome.status.value, 0) + 1
    document = {
        "format": REPORT_FORMAT,
        "tool": f"cci-harden {__version__}",
        "inventory": run.inventory,
        "server_line": run.server_line,
        "generated_at": run.generated_at,
        "shard": run.shard,
        "exit_code": run.exit_code(),
        "summary": {
            "hosts": len(run.reports),
            "unreachable": [r.host for r in run.unreachable],
            "statuses": dict(sorted(counts.items())),
            "expired_waivers": [w.describe() for w in run.expired_waivers],
        },
        "warnings": run.warnings,
        "controls": _controls_of(run),
        "hosts": hosts,
    }
    if run.drift is not None:
        document["drift"] = {
            "newly_failing": [list(k) for k in run.drift.newly_failing],
            "newly_fixed": [list(k) for k in run.drift.newly_fixed],
            "still_failing": [list(k) for k in run.drift.still_failing],
            "joined": run.drift.joined,
            "vanished": run.drift.vanished,
        }
    return document


def from_json(document: dict) -> VerifyRun:
    """A saved JSON report as the run it was written from, to render it again (html, md,
    Prometheus): what ``to_json`` writes, read back field by field."""
    from ..model.control import Finding

    def waiver(described: dict | None) -> Waiver | None:
        return Waiver(**described) if described else None

    try:
        reports, cells = [], []
        for host in document["hosts"]:
            outcomes = []
            for item in host["outcomes"]:
                findings = tuple(
                    Finding(f["what"], f["expected"], f["found"], f["verifiable"], f["resource"])
                    for f in item["findings"]
                )
                outcome = Outcome(item["control"], Status(item["status"]), findings, item["note"])
                outcomes.append(outcome)
                cells.append(Cell(host["name"], outcome, waiver(item["waiver"]), item["since"]))
            reports.append(
                HostReport(
                    host["name"], host["reachable"], host["error"],
                    [replace(o, status=Status.FAIL) if o.status is Status.WAIVED else o
                     for o in outcomes],
                    host["remote_commands"],
                )
            )  # fmt: skip
        summary = document["summary"]
        run = VerifyRun(
            document["inventory"],
            document["generated_at"],
            document["shard"],
            reports,
            cells,
            [Waiver(**w) for w in summary["expired_waivers"]],
            warnings=list(document.get("warnings", [])),
            server_line=document.get("server_line", ""),
        )
        if "drift" in document:
            drift = document["drift"]
            run.drift = Drift(
                [tuple(k) for k in drift["newly_failing"]],
                [tuple(k) for k in drift["newly_fixed"]],
                [tuple(k) for k in drift["still_failing"]],
                list(drift["joined"]),
                list(drift["vanished"]),
            )
    except (KeyError, TypeError, ValueError) as exc:
        raise CciHardenError(
            f"not a cci-harden verify report ({type(exc).__name__}: {exc})"
        ) from None
    return run
