"""Network kinds: an nftables table as loaded, and the set of listening sockets."""

from __future__ import annotations

import ipaddress
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from ..control import Finding
from ..firewall_state import parse_state, state_command
from ..hostinfo import HostInfo
from ..interruption import Interruption
from ..resource import Resource, blocks


@dataclass(frozen=True)
class NftTable(Resource):
    """Our nftables table ``inet cci_<stem>`` is in the kernel, loaded from the current file, and
    unchanged since (a rule deleted at runtime is drift). Repaired by reloading ``unit``."""

    kind = "nft-table"
    interrupts = "a reload: the table is replaced in one nft transaction"
    runtime = True

    stem: str
    unit: str

    @property
    def units(self) -> tuple[str, ...]:
        return (self.unit,)

    @property
    def key(self) -> str:
        return self.stem

    def describe(self) -> str:
        return f"nftables table inet cci_{self.stem} loaded from {self.stem}.nft"

    def interruption(self, state) -> Interruption:
        return Interruption.RELOAD  # the table is replaced in one nft transaction

    @classmethod
    def gather(cls, resources: Sequence[NftTable]) -> str:
        return "; ".join(
            f"echo {shlex.quote('@@' + r.stem)}; {state_command(r.stem)}" for r in resources
        )

    @classmethod
    def parse(cls, output: str, resources: Sequence[NftTable]) -> dict[str, object]:
        found = blocks(output)
        return {r.stem: parse_state(found.get(r.stem, [])) for r in resources}

    def compare(self, state, info: HostInfo) -> list[Finding]:
        table = f"nftables table inet cci_{self.stem}"
        if not state.present:
            return [self.finding(table, "loaded in the kernel", "absent")]
        findings = []
        if not state.from_current_file:
            findings.append(
                self.finding(table, f"loaded from the current {self.stem}.nft", "an older file")
            )
        if state.changed_at_runtime:
            findings.append(self.finding(table, "rules as loaded", "changed at runtime"))
        return findings


@dataclass(frozen=True)
class Listener:
    proto: str
    address: str
    port: int
    process: str


def parse_listeners(output: str) -> list[Listener]:
    """Each listening socket in ``ss -Hlntup`` output."""
    found = []
    for line in output.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        proto, local = fields[0], fields[4]
        address, _, port = local.rpartition(":")
        if not port.isdigit():
            continue
        process = ""
        if len(fields) > 6 and 'users:(("' in fields[6]:
            process = fields[6].split('"')[1]
        found.append(Listener(proto, address.strip("[]").split("%")[0], int(port), process))
    return found


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False  # "*" and "0.0.0.0"-style wildcards are every address


@dataclass(frozen=True)
class Listeners(Resource):
    """Nothing listens on a non-loopback address but the allowed (proto, first, last) ports.

    Check only: the deploy never stops a process it does not know."""

    kind = "listeners"
    runtime = True
    repairable = False

    allowed: tuple[tuple[str, int, int], ...]

    @property
    def key(self) -> str:
        return "network"

    def describe(self) -> str:
        ports = ", ".join(f"{p}/{a}" + (f"-{b}" if b != a else "") for p, a, b in self.allowed)
        return f"listening sockets only on {ports} (and loopback)"

    @classmethod
    def gather(cls, resources: Sequence[Listeners]) -> str:
        return "ss -Hlntup 2>/dev/null || ss -Hlntu"

    @classmethod
    def parse(cls, output: str, resources: Sequence[Listeners]) -> dict[str, list[Listener]]:
        listeners = parse_listeners(output)
        return {r.key: listeners for r in resources}

    def strays(self, state: list[Listener]) -> list[Listener]:
        return [
            s
            for s in state
            if not _is_loopback(s.address)
            and not any(s.proto == p and a <= s.port <= b for p, a, b in self.allowed)
        ]

    def compare(self, state: list[Listener], info: HostInfo) -> list[Finding]:
        return [
            self.finding(
                f"{s.proto} {s.address}:{s.port}" + (f" ({s.process})" if s.process else ""),
                "no listener (not in network.allowed_listeners)",
                "listening",
            )
            for s in self.strays(state)
        ]
