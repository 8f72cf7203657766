"""One read-only script gathers a host's facts and the state of every resource; both the deploy
(as a pyinfra fact) and verify (over testinfra) run it and parse it here.

Each kind's command runs in a block of its own with stdin closed; its output is framed by lines
carrying a random token made for this run, so no output can be mistaken for the framing (the
host, which alone could see the token, can lie about itself anyway, never about another host).
No process is started for the framing itself: the script costs only what its probes cost.
"""

from __future__ import annotations

import secrets
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .hostinfo import COMMAND as HOSTINFO_COMMAND
from .hostinfo import HostInfo
from .resource import NOT_GATHERED, REGISTRY, Resource

HOSTINFO = "@hostinfo"

START = "@@cci-snapshot"


def by_kind(resources: Iterable[Resource]) -> dict[str, list[Resource]]:
    groups: dict[str, list[Resource]] = {}
    seen: set[str] = set()
    for resource in resources:
        if resource.id in seen:
            continue  # two controls may declare the same thing (a package, a service)
        seen.add(resource.id)
        groups.setdefault(resource.kind, []).append(resource)
    return groups


def build_script(
    resources: Iterable[Resource], hostinfo: bool = True, token: str | None = None
) -> str:
    token = token or secrets.token_hex(12)
    lines = [f"echo {START} {token}"]
    probes = [(HOSTINFO, HOSTINFO_COMMAND)] if hostinfo else []
    probes += [(kind, REGISTRY[kind].gather(group)) for kind, group in by_kind(resources).items()]
    for name, command in probes:
        lines += [
            f"echo @@probe {shlex.quote(name)} {token}",
            "{",
            command,
            "} </dev/null 2>&1",
            f'printf "\\n@@end %s {token}\\n" "$?"',
        ]
    return "\n".join(lines) + "\n"


def split_probes(text: str) -> dict[str, str]:
    """The script's output -> probe name -> that probe's output (exactly as printed)."""
    lines = text.split("\n")
    token = next((ln.split()[1] for ln in lines if ln.startswith(START + " ")), None)
    if token is None:
        return {}
    outputs: dict[str, str] = {}
    name: str | None = None
    body: list[str] = []
    for line in lines:
        parts = line.split(" ")
        if len(parts) == 3 and parts[0] == "@@probe" and parts[2] == token:
            name, body = parts[1], []
        elif len(parts) == 3 and parts[0] == "@@end" and parts[2] == token and name is not None:
            outputs[name] = "\n".join(body)
            name = None
        elif name is not None:
            body.append(line)
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
