"""What a host's deploy would interrupt: each resource the deploy would act on, with its class.

The same decision the deploy makes (a verifiable finding, not waived, on a control switched on),
so the deploy's refusal on a busy host, ``cci-harden rollout`` and its ``--dry`` agree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from .hostinfo import HostInfo
from .interruption import Disruption, Interruption
from .plan import ControlPlan, findings_of, is_waived, waived_resources
from .resource import NOT_GATHERED
from .snapshot import Snapshot


def host_disruptions(
    plans: Sequence[ControlPlan],
    snapshot: Snapshot,
    info: HostInfo,
    waivers: Sequence[Any] = (),
    today: dt.date | None = None,
) -> list[Disruption]:
    """Every change the deploy would apply on this host, with what it interrupts."""
    today = today or dt.datetime.now(dt.UTC).date()
    found: list[Disruption] = []
    seen: set[str] = set()
    for plan in plans:
        if plan.off:
            continue
        accepted = waived_resources(waivers, plan.control.id, info.name, today)
        for resource in plan.resources:
            if resource.id in seen:
                continue
            seen.add(resource.id)
            state = snapshot.state(resource)
            if state is NOT_GATHERED:
                continue  # the deploy never acts blind
            findings = [f for f in findings_of(resource, snapshot, info) if f.verifiable]
            if not findings or is_waived(resource.id, accepted):
                continue
            found.append(
                Disruption(
                    resource.interruption(state),
                    plan.control.id,
                    resource.id,
                    findings[0].what if len(findings) == 1 else f"{len(findings)} differences",
                )
            )
    return found


def needs(disruptions: Sequence[Disruption], at_least: Interruption) -> list[Disruption]:
    return [d for d in disruptions if d.interruption >= at_least]
