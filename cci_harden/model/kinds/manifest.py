"""The lifecycle manifest: what each profile's deploy wrote and installed, so a control that is
dropped or switched off leaves nothing behind (CCI-TK-01)."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..control import Finding
from ..hostinfo import HostInfo
from ..interruption import Interruption, package_change, unit_restart
from ..resource import Resource, blocks


@dataclass(frozen=True)
class ManifestEntry:
    kind: str
    key: str
    control: str
    reload: tuple[str, ...] = ()  # a file's units: restarted once it is removed, if still there


_UNIT = re.compile(r"[A-Za-z0-9@._-]{1,128}")


def _units(names) -> tuple[str, ...]:
    """Unit names read back from the host's manifest: anything that is not one is dropped."""
    if not isinstance(names, list):
        return ()
    return tuple(n for n in names if isinstance(n, str) and _UNIT.fullmatch(n))


@dataclass(frozen=True)
class Manifest(Resource):
    """What this profile's deploy manages and may remove later: our files, and packages it
    installed. An entry that the catalogue no longer declares (a control dropped or switched
    off) is removed from the host by the next deploy, which says so."""

    kind = "manifest"
    interrupts = "what removing a dropped control's packages and files costs (as above)"

    path: str
    entries: tuple[ManifestEntry, ...] = field(default=())

    @property
    def key(self) -> str:
        return self.path

    def describe(self) -> str:
        return f"{self.path} lists what the deploy manages; nothing dropped is left behind"

    def content(self) -> str:
        rows = [
            {"kind": e.kind, "key": e.key, "control": e.control}
            | ({"reload": list(e.reload)} if e.reload else {})
            for e in sorted(self.entries, key=lambda e: (e.kind, e.key))
        ]
        return json.dumps({"format": 1, "managed": rows}, indent=1) + "\n"

    @classmethod
    def gather(cls, resources: Sequence[Manifest]) -> str:
        return (
            "; ".join(
                f"echo {shlex.quote('@@' + r.path)}; cat {shlex.quote(r.path)} 2>/dev/null"
                for r in resources
            )
            + "; true"
        )

    @classmethod
    def parse(cls, output: str, resources: Sequence[Manifest]) -> dict[str, object]:
        found = blocks(output)
        states: dict[str, object] = {}
        for r in resources:
            text = "\n".join(found.get(r.path, []))
            if not text.strip():
                states[r.path] = None
                continue
            try:
                rows = json.loads(text)["managed"]
                states[r.path] = (
                    tuple(
                        ManifestEntry(
                            row["kind"], row["key"], row["control"], _units(row.get("reload", []))
                        )
                        for row in rows
                    ),
                    text + "\n",
                )
            except (ValueError, KeyError, TypeError):
                states[r.path] = ((), text + "\n")  # unreadable: rewritten, nothing removed
        return states

    def stale(self, state) -> list[ManifestEntry]:
        """Entries the host's manifest lists that the catalogue no longer declares."""
        if state is None:
            return []
        current = {(e.kind, e.key) for e in self.entries}
        return [e for e in state[0] if (e.kind, e.key) not in current]

    def reacts_to(self, state, changed: set[str], installing: set[str]) -> str:
        return "the list of what this deploy manages changed" if self.needs_write(state) else ""

    def interruption(self, state) -> Interruption:
        """Removing what a dropped control managed: its packages, and its files' units."""
        cost = Interruption.NOTHING
        for entry in self.stale(state):
            if entry.kind == "package":
                cost = max(cost, package_change(entry.key, installed=True))
            cost = max(cost, *(unit_restart(unit) for unit in entry.reload), Interruption.NOTHING)
        return cost

    def needs_write(self, state) -> bool:
        return state is None or state[1] != self.content()

    def compare(self, state, info: HostInfo) -> list[Finding]:
        return [
            self.finding(
                f"{e.kind} {e.key}",
                f"removed ({e.control} no longer applies)",
                "still managed on the host; the next deploy removes it",
            )
            for e in self.stale(state)
        ]
