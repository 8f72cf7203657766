"""Hunt through audit events: rule matches in a time window, and three behavioural heuristics.

Heuristics compare the window with what came before it (the baseline): an address an actor had
not used before, an actor never seen before, and activity at an hour the actor was never active
in. State is kept per actor (addresses, hours), never per event, so it stays small; a finding
keeps its first MAX_IDS event ids as bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .events import Event, key_to_id
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
    # the first MAX_IDS event ids, 16 bytes each end to end (no object per id: a long export's
    # findings hold over a million); as_dict spells them out, one finding at a time
    event_keys: bytes | bytearray = b""
    targets: list[str] = field(default_factory=list)  # what they acted on (project, context...)
    addresses: list[str] = field(default_factory=list)  # where they came from

    def keys(self) -> list[bytes]:
        """The event ids kept, as 16-byte keys."""
        ids = self.event_keys
        return [bytes(ids[at : at + 16]) for at in range(0, len(ids), 16)]

    def as_dict(self) -> dict:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "actor": self.actor,
            "why": self.why,
            "count": self.count,
            "first": self.first,
            "last": self.last,
            "targets": self.targets,
            "addresses": self.addresses,
            "event_ids": [key_to_id(key) for key in sorted(self.keys())],
        }


class _Baseline:
    """What an actor did before the window: addresses, hours (as "HH") and how many events."""

    __slots__ = ("ips", "hours", "events")

    def __init__(self) -> None:
        self.ips: set[str] = set()
        self.hours: set[str] = set()
        self.events = 0


# A tally is [count, first, last, ids]: what a Finding needs, kept as a list because the window
# updates one to four of them per event and a list is the cheapest thing to update. The ids are
# the first MAX_IDS keys end to end in one bytearray: 16 bytes each, and no key objects kept
# alive, which would pin the allocator's memory long after the events are gone.
Tally = list


MAX_CONTEXT = 5  # distinct targets and addresses a finding names; the count stays exact


def _tally(table: dict, name, when: str, key: bytes, target: str = "", ip: str = "") -> None:
    tally = table.get(name)
    if tally is None:
        table[name] = [
            1,
            when,
            when,
            bytearray(key),
            {target} if target else set(),
            {ip} if ip else set(),
        ]
        return
    tally[0] += 1
    if when < tally[1]:
        tally[1] = when
    elif when > tally[2]:
        tally[2] = when
    if tally[0] <= MAX_IDS:
        tally[3] += key
    if target and len(tally[4]) < MAX_CONTEXT:
        tally[4].add(target)
    if ip and len(tally[5]) < MAX_CONTEXT:
        tally[5].add(ip)


def _finding(rule: str, severity: str, actor: str, why: str, tally: Tally) -> Finding:
    count, first, last, ids, targets, addresses = tally
    return Finding(
        rule, severity, actor, why, count, first, last, ids, sorted(targets), sorted(addresses)
    )


class Hunter:
    def __init__(self, rules: Iterable[Rule], options: Options):
        self.rules = list(rules)
        self.options = options
        self._rule_tallies: dict[tuple[str, str], Tally] = {}  # (rule id, actor)
        self._baseline: dict[str, _Baseline] = {}
        self._window_ips: dict[tuple[str, str], Tally] = {}
        self._window_actors: dict[str, Tally] = {}
        self._window_hours: dict[tuple[str, str], Tally] = {}
        self.in_window = 0
        self._rules_for: dict[str, list[Rule]] = {}  # action -> rules whose patterns match it
        self._reused_ids: dict[str, Tally] = {}  # actor -> rows that reused an earlier id
        self.matched_actors: set[str] = set()  # which of --actor matched some event
        self.matched_projects: set[str] = set()  # which of --project did

    def _selected(self, event: Event) -> bool:
        if self.options.actors:
            matched = {event.actor_name, event.actor_id} & self.options.actors
            if not matched:
                return False
            self.matched_actors |= matched
        if self.options.projects:
            # a payload's values are whatever the export holds: only a string names a project
            names = {
                value
                for value in (event.payload.get("project"), event.payload.get("project_name"))
                if isinstance(value, str)
            }
            if event.target_type == "project":
                names |= {event.target_name, event.target_id}
            matched = names & self.options.projects
            if not matched:
                return False
            self.matched_projects |= matched
        return True

    def feed(self, event: Event) -> None:
        self.feed_many((event,))

    def feed_many(self, events: Iterable[Event]) -> None:
        """Take events in any order: the baseline is everything before ``since``."""
        since, until = self.options.since, self.options.until
        filtered = bool(self.options.actors or self.options.projects)
        baseline = self._baseline
        rules_for = self._rules_for
        rule_tallies = self._rule_tallies
        heuristics = since is not None
        since_key = since or ""  # compared only when heuristics are on
        window_ips, window_actors, window_hours = (
            self._window_ips,
            self._window_actors,
            self._window_hours,
        )
        for event in events:
            when = event.occurred_at
            actor = event.actor_name or event.actor_id
            if heuristics and when < since_key:
                base = baseline.get(actor)
                if base is None:
                    base = baseline[actor] = _Baseline()
                if event.ip:
                    base.ips.add(event.ip)
                base.hours.add(when[11:13])
                base.events += 1
                continue
            if until is not None and when >= until:
                continue
            if filtered and not self._selected(event):
                continue
            self.in_window += 1
            key = event.key
            target = f"{event.target_type}:{event.target_name or event.target_id}"
            candidates = rules_for.get(event.action)
            if candidates is None:
                candidates = [r for r in self.rules if r.matches_action(event.action)]
                rules_for[event.action] = candidates
            for rule in candidates:
                if rule.success is None or rule.success == event.success:
                    _tally(rule_tallies, (rule.id, actor), when, key, target, event.ip)
            if heuristics:
                # a baseline only grows: what it already holds can never become a finding, so
                # it is not tallied (this keeps the tallies to about the findings, in number)
                base = baseline.get(actor)
                ip, hour = event.ip, when[11:13]
                if base is None:
                    _tally(window_actors, actor, when, key, target, ip)
                if ip and (base is None or ip not in base.ips):
                    _tally(window_ips, (actor, ip), when, key, target, ip)
                if base is None or hour not in base.hours:
                    _tally(window_hours, (actor, hour), when, key, target, ip)

    def feed_conflicts(self, events: Iterable[Event]) -> None:
        """Rows that reused an earlier event's id with different content, whatever their time:
        an export holding them was altered or replayed, so they are reported, never merged."""
        for event in events:
            actor = event.actor_name or event.actor_id
            target = f"{event.target_type}:{event.target_name or event.target_id}"
            _tally(self._reused_ids, actor, event.occurred_at, event.key, target, event.ip)

    def findings(self) -> list[Finding]:
        by_id = {rule.id: rule for rule in self.rules}
        found = [
            _finding(rule_id, by_id[rule_id].severity, actor, by_id[rule_id].why, tally)
            for (rule_id, actor), tally in self._rule_tallies.items()
        ]
        for actor, tally in self._reused_ids.items():
            why = (
                "event id already used by an earlier row with different content "
                "(an altered or replayed export; both rows are kept)"
            )
            found.append(_finding("integrity.id_reused", "high", actor, why, tally))
        for (actor, ip), tally in self._window_ips.items():
            base = self._baseline.get(actor)
            if base is not None and base.events and ip not in base.ips:
                why = f"address {ip} was not used by this actor before the window"
                found.append(_finding("heuristic.new_ip", "high", actor, why, tally))
        for actor, tally in self._window_actors.items():
            if actor not in self._baseline:
                why = "actor was never seen before the window"
                found.append(_finding("heuristic.new_actor", "medium", actor, why, tally))
        for (actor, hour), tally in self._window_hours.items():
            base = self._baseline.get(actor)
            if base is not None and base.events >= self.options.min_baseline_events:
                if hour not in base.hours:
                    why = (
                        f"activity at {hour}:00 UTC, an hour this actor was never active in "
                        "before the window"
                    )
                    found.append(_finding("heuristic.unusual_hour", "medium", actor, why, tally))
        rank = {s: i for i, s in enumerate(SEVERITIES)}
        found.sort(key=lambda f: (-rank[f.severity], f.rule, f.actor, f.first))
        return found


def at_or_above(findings: Iterable[Finding], severity: str) -> list[Finding]:
    floor = SEVERITIES.index(severity)
    return [f for f in findings if SEVERITIES.index(f.severity) >= floor]
