"""One verdict per resource on one host: the decision the deploy, the rollout and verify share.

For a host's plans, its snapshot and the waivers, each resource gets exactly one verdict: act
(with what acting interrupts), as desired, waived, not gathered, not verifiable here, switched
off, or declared by an earlier control. The deploy turns ``act`` verdicts into operations, the
rollout and ``plan --diff`` list them with their interruption, and verify turns the findings of
the same verdicts into a control's outcome. Nothing else decides.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .control import Finding, Outcome, Status
from .hostinfo import HostInfo
from .interruption import Disruption, Interruption
from .plan import ControlPlan, findings_of, is_waived, waived_resources
from .resource import NOT_GATHERED, Resource
from .snapshot import Snapshot


class Decision(StrEnum):
    ACT = "act"
    AS_DESIRED = "as desired"
    WAIVED = "waived"
    NOT_GATHERED = "not gathered"
    NOT_VERIFIABLE = "not verifiable here"  # this host cannot show it (a container's kernel)
    SWITCHED_OFF = "switched off"
    DECLARED_EARLIER = "declared by an earlier control"


@dataclass(frozen=True)
class Verdict:
    control_id: str
    resource: Resource
    state: Any  # the resource's snapshot state (NOT_GATHERED when the snapshot lacks it)
    decision: Decision
    findings: tuple[Finding, ...] = ()  # every finding, the ones this host cannot show too
    waived: bool = False  # a current waiver accepts this resource (whatever its findings)
    interruption: Interruption = Interruption.NOTHING  # what acting costs a running build

    @property
    def acts(self) -> bool:
        return self.decision is Decision.ACT

    def disruption(self) -> Disruption:
        actionable = [f for f in self.findings if f.verifiable]
        what = actionable[0].what if len(actionable) == 1 else f"{len(actionable)} differences"
        return Disruption(self.interruption, self.control_id, self.resource.id, what)


def resource_verdict(
    control_id: str,
    resource: Resource,
    snapshot: Snapshot,
    info: HostInfo,
    accepted: set[str] | None,
) -> Verdict:
    """The verdict on one resource of a control that is switched on (``accepted``: what the
    current waivers accept for the control on this host, ``waived_resources``)."""
    state = snapshot.state(resource)
    findings = tuple(findings_of(resource, snapshot, info))
    waived = is_waived(resource.id, accepted)
    if state is NOT_GATHERED:
        return Verdict(control_id, resource, state, Decision.NOT_GATHERED, findings, waived)
    actionable = [f for f in findings if f.verifiable]
    if actionable and waived:
        decision = Decision.WAIVED
    elif actionable:
        decision = Decision.ACT
    elif findings:
        decision = Decision.NOT_VERIFIABLE
    else:
        decision = Decision.AS_DESIRED
    interruption = resource.interruption(state) if decision is Decision.ACT else None
    return Verdict(
        control_id,
        resource,
        state,
        decision,
        findings,
        waived,
        interruption or Interruption.NOTHING,
    )


def plan_verdicts(
    plans: Sequence[ControlPlan],
    snapshot: Snapshot,
    info: HostInfo,
    waivers: Sequence[Any] = (),
    today: dt.date | None = None,
    host: str | None = None,
) -> list[tuple[ControlPlan, list[Verdict]]]:
    """Every plan with one verdict per declared resource, in declaration order (the same
    positions on every host): a resource two controls declare is decided once, by the first."""
    today = today or dt.datetime.now(dt.UTC).date()
    host = info.name if host is None else host
    seen: set[str] = set()
    result = []
    for plan in plans:
        cid = plan.control.id
        if plan.off:
            result.append(
                (plan, [Verdict(cid, r, None, Decision.SWITCHED_OFF) for r in plan.resources])
            )
            continue
        accepted = waived_resources(waivers, cid, host, today)
        found = []
        for resource in plan.resources:
            if resource.id in seen:
                found.append(Verdict(cid, resource, None, Decision.DECLARED_EARLIER))
                continue
            seen.add(resource.id)
            found.append(resource_verdict(cid, resource, snapshot, info, accepted))
        result.append((plan, found))
    return result


def evaluate(plan: ControlPlan, snapshot: Snapshot, info: HostInfo) -> Outcome:
    """A control's outcome for verify, from the verdicts on its resources (each decided for
    this control, so a resource two controls declare counts in both reports); waivers are
    applied to outcomes by the report (``model.waivers.deciding_waiver``)."""
    control = plan.control
    if plan.off:
        return Outcome(control.id, Status.NOT_APPLICABLE, note=plan.off)
    verdicts = [resource_verdict(control.id, r, snapshot, info, None) for r in plan.resources]
    findings = tuple(f for v in verdicts for f in v.findings)
    if findings and all(v.decision is Decision.NOT_VERIFIABLE for v in verdicts if v.findings):
        return Outcome(control.id, Status.NOT_VERIFIABLE, findings)
    return Outcome(control.id, Status.FAIL if findings else Status.PASS, findings)


def acting(verdicts: Sequence[tuple[ControlPlan, list[Verdict]]]) -> list[Verdict]:
    return [v for _, found in verdicts for v in found if v.acts]
