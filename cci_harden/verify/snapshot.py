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
cci_file() {
  if [ -f "$1" ]; then
    printf '@@file %s\n' "$1"; stat -c '%a %U %G' "$1"; sha256sum < "$1" | cut -c1-64
  else
    printf '@@file %s\nmissing\n-\n' "$1"
  fi
}
cci_probe() {
  printf '@@probe %s\n' "$1"
  out=$(sh -c "$2" 2>&1); rc=$?
  printf '%s' "$out" | base64 -w0; printf '\n%s\n' "$rc"
}
"""


def build_script(paths: Iterable[str], probes: Iterable[Probe]) -> str:
    lines = [_PRELUDE.strip()]
    lines += [f"cci_file {shlex.quote(p)}" for p in sorted(set(paths))]
    seen = set()
    for probe in probes:
        if probe.key in seen:
            continue
        seen.add(probe.key)
        lines.append(f"cci_probe {shlex.quote(probe.key)} {shlex.quote(probe.command)}")
    return "\n".join(lines) + "\n"


def parse_output(text: str) -> Snapshot:
    snapshot = Snapshot()
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("@@file "):
            path = line[len("@@file ") :]
            meta, digest = lines[index + 1], lines[index + 2]
            if meta == "missing":
                snapshot.files[path] = None
            else:
                mode, user, group = meta.split()
                snapshot.files[path] = FileState(int(mode, 8), user, group, digest.strip())
            index += 3
        elif line.startswith("@@probe "):
            key = line[len("@@probe ") :]
            encoded, rc = lines[index + 1], lines[index + 2]
            output = base64.b64decode(encoded).decode(errors="replace")
            snapshot.probes[key] = ProbeResult(int(rc), output)
            index += 3
        else:
            index += 1
    return snapshot
