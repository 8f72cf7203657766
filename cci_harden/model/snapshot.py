"""One read-only script gathers a host's facts and the state of every resource; both the deploy
(as a pyinfra fact) and verify (over testinfra) run it and parse it here.

Each kind's command runs in its own ``sh -c`` and its output is base64-encoded, so no output can
be mistaken for the script's own framing and no kind can break another's.
"""

from __future__ import annotations

import base64
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .hostinfo import COMMAND as HOSTINFO_COMMAND
from .hostinfo import HostInfo
from .resource import NOT_GATHERED, REGISTRY, Resource

HOSTINFO = "@hostinfo"

_PRELUDE = r"""cci_probe() {
  printf '@@probe %s\n' "$1"
  out=$(eval "$2" 2>&1); rc=$?
  printf '%s' "$out" | base64 -w0; printf '\n%s\n' "$rc"
}"""


def by_kind(resources: Iterable[Resource]) -> dict[str, list[Resource]]:
    groups: dict[str, list[Resource]] = {}
    seen: set[str] = set()
    for resource in resources:
        if resource.id in seen:
            continue  # two controls may declare the same thing (a package, a service)
        seen.add(resource.id)
        groups.setdefault(resource.kind, []).append(resource)
    return groups


def build_script(resources: Iterable[Resource], hostinfo: bool = True) -> str:
    lines = [_PRELUDE]
    if hostinfo:
        lines.append(f"cci_probe {HOSTINFO} {shlex.quote(HOSTINFO_COMMAND)}")
    for kind, group in by_kind(resources).items():
        command = REGISTRY[kind].gather(group)
        lines.append(f"cci_probe {shlex.quote(kind)} {shlex.quote(command)}")
    return "\n".join(lines) + "\n"


def split_probes(text: str) -> dict[str, str]:
    """The script's output -> probe name -> that probe's output."""
    outputs = {}
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("@@probe ") and index + 1 < len(lines):
            outputs[line[len("@@probe ") :]] = base64.b64decode(lines[index + 1]).decode(
                errors="replace"
            )
            index += 3
        else:
            index += 1
    return outputs


@dataclass
class Snapshot:
    info: HostInfo | None = None
    states: dict[str, dict[str, Any]] = field(default_factory=dict)

    def state(self, resource: Resource) -> Any:
        return self.states.get(resource.kind, {}).get(resource.key, NOT_GATHERED)

    def has(self, resource: Resource) -> bool:
        return resource.key in self.states.get(resource.kind, {})

    def merge(self, other: Snapshot) -> None:
        for kind, states in other.states.items():
            self.states.setdefault(kind, {}).update(states)
        self.info = self.info or other.info


def parse_output(text: str, resources: Sequence[Resource]) -> Snapshot:
    outputs = split_probes(text)
    snapshot = Snapshot()
    if HOSTINFO in outputs:
        snapshot.info = HostInfo.parse(outputs[HOSTINFO].splitlines())
    for kind, group in by_kind(resources).items():
        if kind in outputs:
            snapshot.states[kind] = REGISTRY[kind].parse(outputs[kind], group)
    return snapshot


def missing(resources: Sequence[Resource], snapshot: Snapshot) -> list[Resource]:
    """Resources the snapshot holds nothing for (planned with stand-in facts, the real ones
    added a path): gathered by a second, smaller script."""
    return [r for r in resources if not snapshot.has(r)]
