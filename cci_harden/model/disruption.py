"""What a host's deploy would interrupt: each resource the deploy would act on, with its class.

The deploy's own verdicts (``model.verdict``): the deploy's refusal on a busy host,
``cci-harden rollout``, its ``--dry`` and ``plan --diff`` agree with what the deploy does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from .hostinfo import HostInfo
from .interruption import Disruption, Interruption
from .plan import ControlPlan
from .snapshot import Snapshot
from .verdict import acting, plan_verdicts


def host_disruptions(
    plans: Sequence[ControlPlan],
    snapshot: Snapshot,
    info: HostInfo,
    waivers: Sequence[Any] = (),
    today: dt.date | None = None,
) -> list[Disruption]:
    """Every change the deploy would apply on this host, with what it interrupts."""
    return [v.disruption() for v in acting(plan_verdicts(plans, snapshot, info, waivers, today))]


def needs(disruptions: Sequence[Disruption], at_least: Interruption) -> list[Disruption]:
    return [d for d in disruptions if d.interruption >= at_least]
