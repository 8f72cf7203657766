"""Whether the kernel still holds the firewall rules cci-harden loaded.

The loader records ``nft list table`` right after loading each table; a rule deleted or added at
runtime makes the live listing differ from that record. The deploy restarts the loader then, and
the verify stage reports it as drift.
"""

from __future__ import annotations

from pyinfra.api import FactBase

STATE_DIR = "/var/lib/cci-harden/firewall"


class FirewallDrift(FactBase):
    """Names of the loaded tables whose live rules differ from what was loaded."""

    def command(self, stems: list[str]) -> str:
        parts = []
        for stem in stems:
            record = f"{STATE_DIR}/{stem}.loaded"
            parts.append(
                f"if [ -f {record} ]; then "
                f"live=$(nft list table inet cci_{stem} 2>/dev/null | sha256sum); "
                f"kept=$(tail -n +2 {record} | sha256sum); "
                f'[ "$live" = "$kept" ] || echo {stem}; fi'
            )
        return "; ".join(parts) + "; true"

    def requires_command(self, stems: list[str]) -> str:
        return "nft"

    def process(self, output) -> list[str]:
        return [line.strip() for line in output if line.strip()]
