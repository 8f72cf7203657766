"""Hunt through audit events: rule matches in a time window, and three behavioural heuristics.

Heuristics compare the window with what came before it (the baseline): an address an actor had
not used before, an actor never seen before, and activity at an hour the actor was never active
in. State is kept per actor (addresses, hours), never per event, so it stays small.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from .events import Event
from .rules import SEVERITIES, Rule

MAX_IDS = 1000  # event ids kept per finding; the count is always exact


@dataclass
class Options:
    since: str | None = None  # normalised times (events.normalise_time)
    until: str | None = None
    actors: frozenset[str] = frozenset()
    projects: frozenset[str] = frozenset()
    min_baseline_events: int = 5  # fewer, and "unusual hours" has nothing to compare with


@dataclass
class Finding:
    rule: str
    severity: str
    actor: str
    why: str
    count: int = 0
    first: str = ""
    last: str = ""
    event_ids: list[str] = field(default_factory=list)

    def add(self, event: Event) -> None:
        self.count += 1
        if self.count <= MAX_IDS:
            self.event_ids.append(event.id)
        when = event.occurred_at
        if when > self.last:
            self.last = when
        if when < self.first or not self.first:
            self.first = when

    def as_dict(self) -> dict:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "actor": self.actor,
            "why": self.why,
            "count": self.count,
            "first": self.first,
            "last": self.last,
            "event_ids": sorted(self.event_ids),
        }


@dataclass
class _Baseline:
    ips: set[str] = field(default_factory=set)
    hours: list[int] = field(default_factory=lambda: [0] * 24)
    events: int = 0


class Hunter:
    def __init__(self, rules: Iterable[Rule], options: Options):
        self.rules = list(rules)
        self.options = options
        self._findings: dict[tuple[str, str], Finding] = {}
        self._baseline: dict[str, _Baseline] = defaultdict(_Baseline)
        self._window_ips: dict[tuple[str, str], Finding] = {}
        self._window_actors: dict[str, Finding] = {}
        self._window_hours: dict[tuple[str, int], Finding] = {}
        self.in_window = 0
        self._rules_for: dict[str, list[Rule]] = {}  # action -> rules whose patterns match it

    def _selected(self, event: Event) -> bool:
        if self.options.actors and not ({event.actor_name, event.actor_id} & self.options.actors):
            return False
        if self.options.projects:
            names = {event.payload.get("project"), event.payload.get("project_name")}
            if event.target_type == "project":
                names |= {event.target_name, event.target_id}
            if not (names & self.options.projects):
                return False
        return True

    def feed(self, event: Event) -> None:
        self.feed_many((event,))

    def feed_many(self, events: Iterable[Event]) -> None:
        """Take events in time order or not: the baseline is everything before ``since``."""
        since, until = self.options.since, self.options.until
        filtered = bool(self.options.actors or self.options.projects)
        baseline = self._baseline
        rules_for = self._rules_for
        findings = self._findings
        for event in events:
            when = event.occurred_at
            actor = event.actor_name or event.actor_id
            if since is not None and when < since:
                base = baseline[actor]
                if event.ip:
                    base.ips.add(event.ip)
                base.hours[int(when[11:13])] += 1
                base.events += 1
                continue
            if until is not None and when >= until:
                continue
            if filtered and not self._selected(event):
                continue
            self.in_window += 1
            candidates = rules_for.get(event.action)
            if candidates is None:
                candidates = [r for r in self.rules if r.matches_action(event.action)]
                rules_for[event.action] = candidates
            for rule in candidates:
                if rule.success is None or rule.success == event.success:
                    finding = findings.get((rule.id, actor))
                    if finding is None:
                        finding = findings[(rule.id, actor)] = Finding(
                            rule.id, rule.severity, actor, rule.why
                        )
                    finding.add(event)
            if since is not None:
                self._heuristics(event, actor, int(when[11:13]))

    def _heuristics(self, event: Event, actor: str, hour: int) -> None:
        """Collect window activity per address, actor and hour; findings() compares it with the
        baseline once the baseline is complete."""
        if event.ip:
            finding = self._window_ips.get((actor, event.ip))
            if finding is None:
                finding = self._window_ips[(actor, event.ip)] = Finding(
                    "heuristic.new_ip",
                    "high",
                    actor,
                    f"address {event.ip} was not used by this actor before the window",
                )
            finding.add(event)
        finding = self._window_actors.get(actor)
        if finding is None:
            finding = self._window_actors[actor] = Finding(
                "heuristic.new_actor", "medium", actor, "actor was never seen before the window"
            )
        finding.add(event)
        finding = self._window_hours.get((actor, hour))
        if finding is None:
            finding = self._window_hours[(actor, hour)] = Finding(
                "heuristic.unusual_hour",
                "medium",
                actor,
                f"activity at {hour:02d}:00 UTC, an hour this actor was never active in before "
                "the window",
            )
        finding.add(event)

    def findings(self) -> list[Finding]:
        found = list(self._findings.values())
        for (actor, ip), finding in self._window_ips.items():
            base = self._baseline.get(actor)
            if base is not None and base.events and ip not in base.ips:
                found.append(finding)
        for actor, finding in self._window_actors.items():
            if actor not in self._baseline:
                found.append(finding)
        for (actor, hour), finding in self._window_hours.items():
            base = self._baseline.get(actor)
            if base is not None and base.events >= self.options.min_baseline_events:
                if base.hours[hour] == 0:
                    found.append(finding)
        rank = {s: i for i, s in enumerate(SEVERITIES)}
        found.sort(key=lambda f: (-rank[f.severity], f.rule, f.actor, f.first))
        return found


def at_or_above(findings: Iterable[Finding], severity: str) -> list[Finding]:
    floor = SEVERITIES.index(severity)
    return [f for f in findings if SEVERITIES.index(f.severity) >= floor]
