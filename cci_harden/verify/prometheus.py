"""The verify run as a Prometheus text-format file, for operators who alert on drift.

Written beside the other reports (``verify.prom``) or where ``--prometheus`` says, atomically
(a temporary file renamed over the old one), so node_exporter's textfile collector never reads
half a file. One series per host and control, valued 1 for the status it had; host
reachability; the run's time and exit code; expired waivers.
"""

from __future__ import annotations

import calendar
import os
import tempfile
import time
from pathlib import Path

from ..model.control import Status
from .results import VerifyRun

STATUSES = [s.value for s in Status]


def _label(value: str) -> str:
    """A label value as the text format quotes it: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _series(name: str, labels: dict[str, str], value: int) -> str:
    inside = ",".join(f'{key}="{_label(v)}"' for key, v in labels.items())
    return f"{name}{{{inside}}} {int(value)}"


def render_prometheus(run: VerifyRun) -> str:
    base = {"inventory": run.inventory}
    lines = [
        "# HELP cci_harden_control_status Outcome of each control on each host in the last "
        "verify: 1 for the status it had, 0 for the others.",
        "# TYPE cci_harden_control_status gauge",
    ]
    for cell in run.cells:
        for status in STATUSES:
            labels = {**base, "host": cell.host, "control": cell.outcome.control_id}
            value = 1 if cell.outcome.status.value == status else 0
            lines.append(_series("cci_harden_control_status", {**labels, "status": status}, value))
    lines += [
        "# HELP cci_harden_host_reachable Whether verify reached the host (1) or not (0).",
        "# TYPE cci_harden_host_reachable gauge",
    ]
    for report in run.reports:
        lines.append(
            _series("cci_harden_host_reachable", {**base, "host": report.host}, report.reachable)
        )
    finished = calendar.timegm(time.strptime(run.generated_at, "%Y-%m-%dT%H:%M:%SZ"))
    lines += [
        "# HELP cci_harden_verify_exit_code The run's exit code: 0 clean, 1 drift, 2 unreachable.",
        "# TYPE cci_harden_verify_exit_code gauge",
        _series("cci_harden_verify_exit_code", base, run.exit_code()),
        "# HELP cci_harden_verify_timestamp_seconds When the run was made (Unix time).",
        "# TYPE cci_harden_verify_timestamp_seconds gauge",
        _series("cci_harden_verify_timestamp_seconds", base, finished),
        "# HELP cci_harden_expired_waivers Waivers past their end date (each fails the run).",
        "# TYPE cci_harden_expired_waivers gauge",
        _series("cci_harden_expired_waivers", base, len(run.expired_waivers)),
    ]
    return "\n".join(lines) + "\n"


def write_prometheus(run: VerifyRun, path: Path) -> None:
    """Replace ``path`` in one rename, so a collector reads the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, staged = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as out:
            out.write(render_prometheus(run))
        os.chmod(staged, 0o644)
        os.replace(staged, path)
    except BaseException:
        Path(staged).unlink(missing_ok=True)
        raise
