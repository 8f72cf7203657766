"""Gather everything the checks need from one host in a single remote command.

Each check reads from the snapshot instead of asking the host itself, so verifying the whole
catalogue costs one SSH round trip per host. Outputs are base64-encoded so no output can be
mistaken for the script's own framing.
"""

from __future__ import annotations

import base64
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..catalogue.model import Probe


@dataclass(frozen=True)
class FileState:
    mode: int
    user: str
    group: str
    sha256: str


@dataclass(frozen=True)
class ProbeResult:
    rc: int
    output: str


@dataclass
class Snapshot:
    files: dict[str, FileState | None] = field(default_factory=dict)
    probes: dict[str, ProbeResult] = field(default_factory=dict)

    def probe(self, key: str) -> ProbeResult:
        return self.probes[key]


_PRELUDE = r"""
cci_probe() {
  printf '@@probe %s\n' "$1"
  out=$(sh -c "$2" 2>&1); rc=$?
  printf '%s' "$out" | base64 -w0; printf '\n%s\n' "$rc"
}
"""


def build_script(paths: Iterable[str], probes: Iterable[Probe]) -> str:
    lines = [_PRELUDE.strip()]
    quoted = " ".join(shlex.quote(p) for p in sorted(set(paths)))
    if quoted:
        # Two processes for every file at once: a missing file is simply absent from both.
        lines += [
            "printf '@@stat\\n'",
            f"stat -c '%a %U %G %n' -- {quoted} 2>/dev/null",
            "printf '@@sha256\\n'",
            f"sha256sum -- {quoted} 2>/dev/null",
            "printf '@@end\\n'",
        ]
    seen = set()
    for probe in probes:
        if probe.key in seen:
            continue
        seen.add(probe.key)
        lines.append(f"cci_probe {shlex.quote(probe.key)} {shlex.quote(probe.command)}")
    return "\n".join(lines) + "\n"


def _file_states(stats: list[str], sums: list[str]) -> dict[str, FileState]:
    digests = {}
    for line in sums:
        digest, _, path = line.partition("  ")
        digests[path] = digest
    states = {}
    for line in stats:
        mode, user, group, path = line.split(" ", 3)
        if path in digests:  # a regular file; sha256sum skips what is not one
            states[path] = FileState(int(mode, 8), user, group, digests[path])
    return states


def parse_output(text: str, paths: Iterable[str] = ()) -> Snapshot:
    """Parse a gather's output; every path in ``paths`` the host lacks maps to None."""
    snapshot = Snapshot()
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line == "@@stat":
            sha_at = lines.index("@@sha256", index)
            end = lines.index("@@end", sha_at)
            snapshot.files.update(_file_states(lines[index + 1 : sha_at], lines[sha_at + 1 : end]))
            index = end + 1
        elif line.startswith("@@probe "):
            key = line[len("@@probe ") :]
            encoded, rc = lines[index + 1], lines[index + 2]
            output = base64.b64decode(encoded).decode(errors="replace")
            snapshot.probes[key] = ProbeResult(int(rc), output)
            index += 3
        else:
            index += 1
    for path in paths:
        snapshot.files.setdefault(path, None)
    return snapshot
