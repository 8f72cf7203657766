"""Kernel kinds: a sysctl (persisted, effective, not overridden) and audit rules loaded.

Both need a kernel of their own to be fully shown: in a container, kernel-wide sysctls are
read-only and auditd cannot load rules, so those parts are reported as not verifiable there.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from ..control import Finding
from ..hostinfo import HostInfo
from ..interruption import Interruption
from ..resource import Resource, blocks

# systemd-sysctl's directories, highest priority first: a file name in an earlier directory hides
# the same name in a later one; files are then applied in file-name order, and the last setting
# of a key wins. /etc/sysctl.conf (procps) is read after all of them.
SYSCTL_DIRS = (
    "/etc/sysctl.d",
    "/run/sysctl.d",
    "/usr/local/lib/sysctl.d",
    "/usr/lib/sysctl.d",
    "/lib/sysctl.d",
)
SYSCTL_CONF = "/etc/sysctl.conf"
_ASSIGNMENT = r"^[[:space:]]*-?[A-Za-z0-9_./*-]+[[:space:]]*="


def proc_path(key: str) -> str:
    return "/proc/sys/" + key.replace(".", "/")


@dataclass(frozen=True)
class SysctlState:
    access: str  # "rw", "ro" (a container's kernel-wide key), "absent" (no such key)
    runtime: str
    settings: tuple[tuple[str, str], ...]  # (file, value) in the order they are applied

    @property
    def persisted(self) -> tuple[str, str] | None:
        """The (file, value) that wins at boot, or None when no file sets the key."""
        return self.settings[-1] if self.settings else None


def _normal(value: str) -> str:
    return " ".join(value.split())


def order_settings(lines: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    """``path:key = value`` lines (grep -H) -> key -> [(file, value)] in the order applied."""
    chosen: dict[str, str] = {}  # file name -> the path that provides it
    entries: dict[str, list[tuple[str, str]]] = {}
    for line in lines:
        path, sep, assignment = line.partition(":")
        if not sep:
            continue
        key, sep, value = assignment.partition("=")
        if not sep:
            continue
        key = key.strip().lstrip("-").replace("/", ".")
        entries.setdefault(path, []).append((key, _normal(value)))
        name = posixpath.basename(path)
        if path != SYSCTL_CONF and name not in chosen:
            chosen[name] = path  # lines arrive in directory priority order
    ordered = [chosen[name] for name in sorted(chosen)]
    if SYSCTL_CONF in entries:
        ordered.append(SYSCTL_CONF)
    result: dict[str, list[tuple[str, str]]] = {}
    for path in ordered:
        for key, value in entries[path]:
            result.setdefault(key, []).append((path, value))
    return result


@dataclass(frozen=True)
class Sysctl(Resource):
    """A kernel parameter: persisted in ``file``, effective now, and not overridden by any other
    file of the sysctl directories (a later file setting it differently wins at boot)."""

    kind = "sysctl"
    runtime = True
    needs_kernel = True

    name: str
    value: str
    file: str
    # Debian 13's systemd no longer reads /etc/sysctl.conf: a line there overrides nothing
    reads_sysctl_conf: bool = True

    @property
    def key(self) -> str:
        return self.name

    def describe(self) -> str:
        return f"sysctl {self.name} = {self.value}"

    @classmethod
    def gather(cls, resources: Sequence[Sysctl]) -> str:
        # shell builtins only (test, read, parameter expansion): no process per key
        entries = " ".join(shlex.quote(f"{r.name}|{proc_path(r.name)}") for r in resources)
        runtime = (
            f'for e in {entries}; do k=${{e%%|*}}; p=${{e#*|}}; if [ -e "$p" ]; then '
            '[ -w "$p" ] && w=rw || w=ro; v=; read -r v 2>/dev/null < "$p"; echo "$k|$w|$v"; '
            'else echo "$k|absent|"; fi; done'
        )
        pattern = shlex.quote(_ASSIGNMENT)
        dirs = " ".join(SYSCTL_DIRS)
        # every file in directory-priority order, one grep; /etc/sysctl.conf (and its usual
        # 99-sysctl.conf link) last
        files = (
            f'set --; for d in {dirs}; do for f in "$d"/*.conf; do [ -f "$f" ] || continue; '
            f'[ "$f" -ef {SYSCTL_CONF} ] || set -- "$@" "$f"; done; done; '
            f'[ -f {SYSCTL_CONF} ] && set -- "$@" {SYSCTL_CONF}; '
            f'[ "$#" -gt 0 ] && grep -HE {pattern} "$@"; true'
        )
        return f"{runtime}\necho @@files\n{files}"

    @classmethod
    def parse(cls, output: str, resources: Sequence[Sysctl]) -> dict[str, SysctlState]:
        runtime_text, _, files_text = output.partition("@@files\n")
        runtime: dict[str, tuple[str, str]] = {}
        for line in runtime_text.splitlines():
            key, _, rest = line.partition("|")
            access, _, value = rest.partition("|")
            runtime[key] = (access, _normal(value))
        persisted = order_settings(files_text.splitlines())
        return {
            r.name: SysctlState(
                *runtime.get(r.name, ("absent", "")), tuple(persisted.get(r.name, ()))
            )
            for r in resources
        }

    def overriding(self, state: SysctlState) -> list[tuple[str, str]]:
        """Other files whose differing value for this key is applied after ours."""
        ours = max((i for i, (f, _) in enumerate(state.settings) if f == self.file), default=-1)
        return [
            (f, v)
            for f, v in state.settings[ours + 1 :]
            if f != self.file and v != self.value and (self.reads_sysctl_conf or f != SYSCTL_CONF)
        ]

    def compare(self, state: SysctlState, info: HostInfo) -> list[Finding]:
        findings = []
        for path, value in self.overriding(state):
            findings.append(
                self.finding(
                    f"{self.name} at boot",
                    f"{self.value} (from {self.file})",
                    f"{value} from {path}",
                )
            )
        if state.access == "absent" or state.runtime == self.value:
            return findings  # this kernel has no such knob, or it is as desired now
        writable = state.access == "rw"
        found = state.runtime if writable else f"{state.runtime} (read-only here: {info.container})"
        findings.append(self.finding(f"{self.name} now", self.value, found, verifiable=writable))
        return findings


@dataclass(frozen=True)
class AuditState:
    present: frozenset[str]  # watched paths that exist on this host
    loaded: frozenset[str]  # paths of loaded watches (our keys only)
    enabled: str = ""  # the kernel's audit flag (auditctl -s): 0 off, 1 on, 2 locked; "" unread


def loaded_watch_paths(text: str) -> set[str]:
    """Paths of loaded watches, as `-w PATH` or as the syscall rule auditctl may list instead."""
    paths = set()
    for line in text.splitlines():
        match = re.search(r"(?:^-w |-F (?:dir|path)=)(\S+)", line)
        if match:
            paths.add(match.group(1).rstrip("/"))
    return paths


@dataclass(frozen=True)
class AuditRules(Resource):
    """The watches of ``rules_file`` loaded in the kernel, one for every watched path present
    (the file skips absent ones with ``-i``, docker-ce vs docker.io)."""

    kind = "audit-rules"
    runtime = True
    needs_kernel = True
    converges_last = True

    rules_file: str
    watched: tuple[str, ...]
    key_prefix: str = "cci-"

    @property
    def key(self) -> str:
        return self.rules_file

    def describe(self) -> str:
        return f"audit watches of {self.rules_file} loaded ({len(self.watched)} paths)"

    @classmethod
    def gather(cls, resources: Sequence[AuditRules]) -> str:
        parts = []
        for r in resources:
            paths = " ".join(shlex.quote(p) for p in r.watched)
            prefix = shlex.quote(f"key={r.key_prefix}|-k {r.key_prefix}")
            parts.append(
                f"echo {shlex.quote('@@' + r.key)}; "
                f'for p in {paths}; do [ -e "$p" ] && echo "present $p"; done; '
                f"auditctl -l 2>/dev/null | grep -E {prefix} | sed 's/^/loaded /'; "
                "auditctl -s 2>/dev/null | grep '^enabled '; true"
            )
        return "; ".join(parts)

    @classmethod
    def parse(cls, output: str, resources: Sequence[AuditRules]) -> dict[str, AuditState]:
        found = blocks(output)
        states = {}
        for r in resources:
            lines = found.get(r.key, [])
            present = frozenset(ln[8:] for ln in lines if ln.startswith("present "))
            loaded = "\n".join(ln[7:] for ln in lines if ln.startswith("loaded "))
            enabled = next((ln[8:].strip() for ln in lines if ln.startswith("enabled ")), "")
            states[r.key] = AuditState(present, frozenset(loaded_watch_paths(loaded)), enabled)
        return states

    def reacts_to(self, state, changed: set[str], installing: set[str]) -> str:
        if self.rules_file in changed:
            return "its rules file changes in this run"
        # a watch on a path that did not exist when the rules were loaded was skipped (-i)
        created = [
            path
            for path in self.watched
            if path not in state.present
            and any(c == path.rstrip("/") or c.startswith(path.rstrip("/") + "/") for c in changed)
        ]
        return f"watched path(s) made in this run: {', '.join(created)}" if created else ""

    def missing(self, state: AuditState) -> list[str]:
        return sorted(p.rstrip("/") for p in state.present if p.rstrip("/") not in state.loaded)

    def compare(self, state: AuditState, info: HostInfo) -> list[Finding]:
        if info.in_container:
            return [
                self.finding(
                    "audit rules loaded in the kernel",
                    f"the rules of {self.rules_file}",
                    f"not checkable: host is a container ({info.container}): auditd cannot run",
                    verifiable=False,
                )
            ]
        findings = []
        # rules loaded while the kernel's flag is 0 record nothing (Debian's auditd leaves it 0)
        if state.enabled not in ("1", "2"):
            findings.append(
                self.finding(
                    "auditing enabled in the kernel",
                    "1 (the rules file ends with -e 1)",
                    state.enabled or "unknown: auditctl -s gave no answer",
                )
            )
        missing = self.missing(state)
        if missing:
            findings.append(
                self.finding(
                    "audit watches loaded", "every watched path present", ", ".join(missing)
                )
            )
        return findings


@dataclass(frozen=True)
class BootState:
    dropin: str | None  # the drop-in's content; None when it is absent
    running: tuple[str, ...]  # /proc/cmdline, split
    cgroup_fs: str  # stat -f of /sys/fs/cgroup: tmpfs (v1) or cgroup2fs (v2)
    update_grub: bool  # the host has update-grub
    in_container: bool = False  # its kernel is the machine's: nothing to reboot for


def cgroup_mode(cgroup_fs: str) -> str:
    return {"cgroup2fs": "v2", "tmpfs": "v1"}.get(cgroup_fs, cgroup_fs or "unknown")


@dataclass(frozen=True)
class KernelCmdline(Resource):
    """Arguments on the kernel command line, through a GRUB drop-in (``update-grub`` after it
    changes): the drop-in is what is configured, /proc/cmdline what runs. Running differs until
    the host reboots, which is a reboot-class change (the rollout drains the host first).

    ``cgroup``: the cgroup mode these arguments give; verify reports the running one."""

    kind = "kernel-cmdline"
    needs_kernel = True  # a container's /proc/cmdline is the machine's
    interrupts = "a reboot, when the running command line differs (writing the drop-in: nothing)"

    dropin: str
    content: str  # "" when the drop-in must be absent
    wanted: tuple[str, ...] = ()
    unwanted: tuple[str, ...] = ()
    cgroup: str = ""

    @property
    def key(self) -> str:
        return self.dropin

    def describe(self) -> str:
        args = " ".join(self.wanted) or "no argument of ours"
        return f"kernel command line {args} (GRUB drop-in {self.dropin}), cgroup {self.cgroup}"

    @classmethod
    def gather(cls, resources: Sequence[KernelCmdline]) -> str:
        parts = []
        for r in resources:
            path = shlex.quote(r.dropin)
            # a missing drop-in prints no header of its own
            parts.append(
                f"if [ -e {path} ]; then echo {shlex.quote('@@' + r.dropin)}; cat -- {path}; fi"
            )
        return "; ".join(
            [
                *parts,
                "echo @@cmdline; cat /proc/cmdline",
                "echo @@cgroup; stat -fc %T /sys/fs/cgroup/",
                "echo @@grub; command -v update-grub || true",
                "echo @@container; systemd-detect-virt --container 2>/dev/null || true",
            ]
        )

    @classmethod
    def parse(cls, output: str, resources: Sequence[KernelCmdline]) -> dict[str, BootState]:
        found = blocks(output)
        running = tuple(" ".join(found.get("cmdline", [])).split())
        cgroup_fs = " ".join(found.get("cgroup", [])).strip()
        grub = bool(" ".join(found.get("grub", [])).strip())
        container = " ".join(found.get("container", [])).strip() not in ("", "none")
        states = {}
        for r in resources:
            lines = found.get(r.dropin)
            text = None if lines is None else "".join(f"{line}\n" for line in lines)
            states[r.key] = BootState(text, running, cgroup_fs, grub, container)
        return states

    def configured(self, state: BootState) -> bool:
        return (state.dropin or "") == self.content

    def running_ok(self, state: BootState) -> bool:
        return all(a in state.running for a in self.wanted) and not any(
            a in state.running for a in self.unwanted
        )

    def interruption(self, state: BootState) -> Interruption:
        if state.in_container or self.running_ok(state):
            return Interruption.NOTHING
        return Interruption.REBOOT

    def compare(self, state: BootState, info: HostInfo) -> list[Finding]:
        findings = []
        if not self.configured(state):
            found = "absent" if state.dropin is None else "other content"
            expected = "absent" if not self.content else " ".join(self.wanted)
            findings.append(self.finding(f"{self.dropin}", expected, found))
        if not self.running_ok(state) or (
            self.cgroup and cgroup_mode(state.cgroup_fs) != self.cgroup
        ):
            findings.append(
                self.finding(
                    "running kernel command line and cgroup mode",
                    f"cgroup {self.cgroup} ({' '.join(self.wanted) or 'the default'})",
                    f"cgroup {cgroup_mode(state.cgroup_fs)}; reboot needed"
                    if self.configured(state)
                    else f"cgroup {cgroup_mode(state.cgroup_fs)}",
                    verifiable=not info.in_container,
                )
            )
        return findings
