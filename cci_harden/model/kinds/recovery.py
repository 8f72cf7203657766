"""What an interrupted earlier run leaves behind: a dpkg transaction cut short, staged files.

A host killed or cut off in the middle of an apt run keeps dpkg's journal (``/var/lib/dpkg/
updates``) and half-installed packages, and apt then refuses every later install until someone
runs ``dpkg --configure -a`` by hand. A managed file is written beside its target first
(``NAME.cci-new``) and renamed into place only when whole and valid; a run cut short between the
two leaves that staged copy. Both are gathered like any resource, so verify reports them and the
next deploy repairs them before it does any other work.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass

from ..control import Finding
from ..hostinfo import HostInfo
from ..resource import Resource, blocks
from ..text import printable
from .files import quoted

DPKG_JOURNAL = "/var/lib/dpkg/updates"
STAGED_SUFFIX = ".cci-new"  # apply.operations.managed_file stages NAME.cci-new
UPLOAD_SUFFIX = ".cci-upload"  # and uploads a secret as .NAME.cci-upload beside it
# apply.sshd keeps the previous sshd file (or notes there was none) until a fresh login passes
GUARD_SUFFIXES = (".cci-previous", ".cci-absent")


DPKG_LOCK = "/var/lib/dpkg/lock-frontend"


@dataclass(frozen=True)
class DpkgState:
    journal_entries: int  # files in dpkg's journal: a transaction was cut short
    audit: tuple[str, ...]  # what `dpkg --audit` says is half-installed or unconfigured
    lock_holder: str = ""  # "PID (command)" of a process holding dpkg's lock now, if any


@dataclass(frozen=True)
class PackageSystem(Resource):
    """dpkg is not left mid-transaction: no pending journal, nothing half-installed."""

    kind = "dpkg"

    @property
    def key(self) -> str:
        return "packages"

    def describe(self) -> str:
        return "dpkg: no interrupted transaction, no half-installed package"

    @classmethod
    def gather(cls, resources: Sequence[PackageSystem]) -> str:
        # who holds dpkg's lock: /proc/locks names the holder of the lock file's inode
        return "\n".join(
            [
                f"echo @@journal; ls -A {DPKG_JOURNAL} 2>/dev/null | wc -l",
                "echo @@audit; dpkg --audit 2>&1 | head -n 40",
                f"echo @@lock; inode=$(stat -c %i {DPKG_LOCK} 2>/dev/null) &&",
                """awk -v i=":$inode" '$6 ~ i"$" {print $5}' /proc/locks 2>/dev/null |""",
                """while read -r pid; do echo "$pid ($(cat /proc/$pid/comm 2>/dev/null))"; done""",
                "true",
            ]
        )

    @classmethod
    def parse(cls, output: str, resources: Sequence[PackageSystem]) -> dict[str, DpkgState]:
        found = blocks(output)
        count = "".join(found.get("journal", [])).strip()
        audit = tuple(line for line in found.get("audit", []) if line.strip())
        holders = [printable(line.strip()) for line in found.get("lock", []) if line.strip()]
        state = DpkgState(int(count) if count.isdigit() else 0, audit, ", ".join(holders[:3]))
        return {r.key: state for r in resources}

    def compare(self, state: DpkgState, info: HostInfo) -> list[Finding]:
        findings = []
        if state.journal_entries:
            findings.append(
                self.finding(
                    "dpkg journal",
                    "no interrupted transaction",
                    f"{state.journal_entries} pending entries (dpkg --configure -a)",
                )
            )
        if state.audit:
            findings.append(
                self.finding(
                    "dpkg --audit",
                    "every package fully installed",
                    printable(" ".join(state.audit))[:200],
                )
            )
        return findings


@dataclass(frozen=True)
class StagedFiles(Resource):
    """No staged copy of a managed file is left beside it by a run that was cut short."""

    kind = "staged-files"
    removable = False

    directories: tuple[str, ...]

    @property
    def key(self) -> str:
        return "managed-directories"

    def describe(self) -> str:
        return (
            f"no *{STAGED_SUFFIX} or .*{UPLOAD_SUFFIX} left in {len(self.directories)} directories"
        )

    @classmethod
    def gather(cls, resources: Sequence[StagedFiles]) -> str:
        directories = sorted({d for r in resources for d in r.directories})
        if not directories:
            return "true"
        names = " -o ".join(f"-name '*{suffix}'" for suffix in (STAGED_SUFFIX, *GUARD_SUFFIXES))
        return (
            f"find {quoted(directories)} -maxdepth 1 -type f "
            f"\\( {names} -o -name '.*{UPLOAD_SUFFIX}' \\) -print 2>/dev/null; true"
        )

    @classmethod
    def parse(cls, output: str, resources: Sequence[StagedFiles]) -> dict[str, tuple[str, ...]]:
        paths = tuple(sorted(line for line in output.splitlines() if line.startswith("/")))
        return {
            r.key: tuple(p for p in paths if posixpath.dirname(p) in r.directories)
            for r in resources
        }

    def compare(self, state: tuple[str, ...], info: HostInfo) -> list[Finding]:
        return [
            self.finding(printable(path), "absent", "left by an interrupted run") for path in state
        ]
