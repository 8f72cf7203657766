"""Turn a host's snapshot into one outcome per control."""

from __future__ import annotations

from ..catalogue.model import Control, DesiredFile, Finding, Outcome, Status
from ..hostinfo import HostInfo
from ..settings import FleetSettings
from .snapshot import Snapshot


def compare_file(desired: DesiredFile, snapshot: Snapshot) -> list[Finding]:
    """The differences between a managed file on the host and what the deploy writes."""
    if desired.path not in snapshot.files:
        return [Finding(desired.path, "gathered", "not gathered (verify stage defect)")]
    state = snapshot.files[desired.path]
    if state is None:
        return [Finding(desired.path, "present", "missing")]
    findings = []
    if state.sha256 != desired.sha256:
        expected = "content as rendered from settings"
        found = (
            "content differs" if desired.secret else f"content differs (sha256 {state.sha256[:12]})"
        )
        findings.append(Finding(desired.path, expected, found))
    if state.mode != desired.mode:
        findings.append(Finding(f"{desired.path} mode", f"{desired.mode:04o}", f"{state.mode:04o}"))
    if (state.user, state.group) != (desired.user, desired.group):
        findings.append(
            Finding(
                f"{desired.path} owner",
                f"{desired.user}:{desired.group}",
                f"{state.user}:{state.group}",
            )
        )
    return findings


def evaluate(
    control: Control, settings: FleetSettings, info: HostInfo, snapshot: Snapshot
) -> Outcome:
    if not control.applies(settings):
        return Outcome(control.id, Status.NOT_APPLICABLE)
    findings: list[Finding] = []
    for desired in control.files(settings, info):
        findings += compare_file(desired, snapshot)
    if control.check is not None:
        findings += control.check(settings, info, snapshot)
    if findings and all(not f.verifiable for f in findings):
        return Outcome(control.id, Status.NOT_VERIFIABLE, tuple(findings))
    return Outcome(control.id, Status.FAIL if findings else Status.PASS, tuple(findings))
