"""Whether the kernel still holds the firewall rules cci-harden loaded.

The loader records ``nft list table`` right after loading each table, under a first line naming the
checksum of the file it loaded. One shell command reads a table's state; the deploy (as a fact)
and the verify stage (as a probe) both run it and read it with :func:`parse_state`, so the two can
never disagree about drift.
"""

from __future__ import annotations

from dataclasses import dataclass

FIREWALL_DIR = "/etc/cci-harden/firewall"
STATE_DIR = "/var/lib/cci-harden/firewall"


@dataclass(frozen=True)
class TableState:
    present: bool  # the table is in the kernel
    from_current_file: bool  # what was loaded is the file as it is now
    changed_at_runtime: bool  # the live rules differ from what was loaded


def state_command(stem: str) -> str:
    """Four lines: file checksum, record header, whether the live rules are the recorded ones
    (``same`` / ``changed``), presence. One ``nft``, one ``tail``, one ``sha256sum``: this runs on
    every host at every verify and deploy."""
    config, record = f"{FIREWALL_DIR}/{stem}.nft", f"{STATE_DIR}/{stem}.loaded"
    return (
        f"live=$(nft list table inet cci_{stem} 2>/dev/null) && p=present || p=absent; "
        f'set -- $(sha256sum < {config} 2>/dev/null); echo "${{1:-}}"; '
        f'h=; read -r h 2>/dev/null < {record}; echo "$h"; '
        f'[ "$live" = "$(tail -n +2 {record} 2>/dev/null)" ] && echo same || echo changed; '
        'echo "$p"'
    )


def parse_state(lines: list[str]) -> TableState:
    config_sha, record_head, live, presence = ([line.strip() for line in lines] + [""] * 4)[:4]
    return TableState(
        present=presence == "present",
        from_current_file=record_head == f"loaded {config_sha}",
        changed_at_runtime=live != "same",
    )
