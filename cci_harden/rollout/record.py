"""What a rollout did, host by host: the JSON record (``--report``) and the lines it prints."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .survey import Survey

RECORD_FORMAT = 1


@dataclass
class HostRecord:
    host: str
    batch: int
    interruption: str = "nothing"
    why: str = ""
    would_drain: bool = False
    changes: bool = False
    nomad: str = ""  # what its agent said before the rollout
    outcome: str = "pending"  # unchanged, applied, deferred, failed, not reached
    deployed: bool = False
    drain_started: str = ""
    drain_ended: str = ""
    released: str = ""  # when it was made eligible again
    rebooted: bool = False
    verify: str = ""  # pass, fail, unreachable; "" when not verified in this run
    eligible_again: bool | None = None  # None: never made ineligible by this run
    note: str = ""
    deploy_log: str = ""

    @classmethod
    def planned(cls, host: str, batch: int, survey: Survey) -> HostRecord:
        return cls(
            host,
            batch,
            interruption=survey.interruption.label if survey.changes else "nothing (no change)",
            why=survey.error or survey.why(),
            would_drain=survey.needs_drain,
            changes=survey.changes,
            nomad=survey.work.describe() if not survey.error else "",
        )

    @property
    def failed(self) -> bool:
        return self.outcome == "failed"

    def fail(self, why: str) -> None:
        self.outcome = "failed"
        self.note = why if not self.note else f"{self.note}; {why}"
        if self.drain_started and self.eligible_again is None:
            self.eligible_again = False


@dataclass
class RolloutRecord:
    inventory: str
    started: str
    sizes: list[str]
    max_unavailable: int
    drain_deadline_seconds: int
    dry: bool = False
    batches: list[list[str]] = field(default_factory=list)
    hosts: dict[str, HostRecord] = field(default_factory=dict)
    ended: str = ""
    stopped: str = ""
    capacity_stop: str = ""

    def finish(self, ended: str, stopped: str) -> None:
        self.ended, self.stopped = ended, stopped

    def exit_code(self) -> int:
        if self.dry:
            return 0
        settled = all(h.outcome in ("unchanged", "applied") for h in self.hosts.values())
        return 0 if settled and not self.stopped else 1

    def to_json(self) -> dict:
        return {
            "format": RECORD_FORMAT,
            "inventory": self.inventory,
            "started": self.started,
            "ended": self.ended,
            "dry": self.dry,
            "batch_sizes": self.sizes,
            "max_unavailable": self.max_unavailable,
            "drain_deadline_seconds": self.drain_deadline_seconds,
            "batches": self.batches,
            "stopped": self.stopped,
            "hosts": [asdict(h) for h in self.hosts.values()],
            "exit_code": self.exit_code(),
        }

    def lines(self) -> list[str]:
        out = []
        for number, batch in enumerate(self.batches, 1):
            out.append(f"batch {number}: {', '.join(batch)}")
            for name in batch:
                h = self.hosts[name]
                if self.dry:
                    action = (
                        "unreachable"
                        if not h.nomad and h.why and not h.changes
                        else "drain, then deploy"
                        if h.would_drain
                        else "deploy, no drain"
                        if h.changes
                        else "nothing to do"
                    )
                    out.append(
                        f"  {name}: {action}; needs {h.interruption}"
                        + (f" ({h.why})" if h.why else "")
                        + (f"; Nomad: {h.nomad}" if h.nomad else "")
                    )
                else:
                    extra = f": {h.note}" if h.note else ""
                    eligible = {None: "", True: "; eligible again", False: "; LEFT INELIGIBLE"}[
                        h.eligible_again
                    ]
                    out.append(f"  {name}: {h.outcome}{eligible}{extra}")
        if self.stopped:
            out.append(self.stopped)
        return out
