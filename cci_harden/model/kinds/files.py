"""File-system kinds: a managed file, a directory, the mode of an existing path, setuid bits."""

from __future__ import annotations

import base64
import hashlib
import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from ..control import Finding
from ..hostinfo import HostInfo
from ..interruption import Interruption, unit_restart
from ..resource import Resource


def quoted(paths: Sequence[str]) -> str:
    return " ".join(shlex.quote(p) for p in sorted(set(paths)))


@dataclass(frozen=True)
class PathState:
    type: str  # stat's %F: "regular file", "directory", "socket", "symbolic link", ...
    mode: int  # permission bits with setuid/setgid/sticky (stat's %a)
    user: str
    group: str


def stat_command(paths: Sequence[str]) -> str:
    """One ``stat`` for every path: ``type|mode|user|group|path``; a missing path prints nothing."""
    return f"stat -c '%F|%a|%U|%G|%n' -- {quoted(paths)} 2>/dev/null; true"


def parse_stat(output: str) -> dict[str, PathState]:
    found = {}
    for line in output.splitlines():
        parts = line.split("|", 4)
        if len(parts) == 5 and parts[1].isdigit():
            found[parts[4]] = PathState(parts[0], int(parts[1], 8), parts[2], parts[3])
    return found


def _owner(user: str, group: str) -> str:
    return f"{user}:{group}"


def exact_mode_owner(resource, state) -> list[Finding]:
    """Findings for a path whose mode and owner must be exactly the resource's."""
    findings = []
    if state.mode != resource.mode:
        findings.append(
            resource.finding(f"{resource.path} mode", f"{resource.mode:04o}", f"{state.mode:04o}")
        )
    if (state.user, state.group) != (resource.user, resource.group):
        findings.append(
            resource.finding(
                f"{resource.path} owner",
                _owner(resource.user, resource.group),
                _owner(state.user, state.group),
            )
        )
    return findings


class _Stat:
    """Kinds whose state is one ``stat`` line per path (``PathState``, None when missing)."""

    path: str

    @property
    def key(self) -> str:
        return self.path

    @classmethod
    def gather(cls, resources) -> str:
        return stat_command([r.path for r in resources])

    @classmethod
    def parse(cls, output: str, resources) -> dict[str, PathState | None]:
        found = parse_stat(output)
        return {r.path: found.get(r.path) for r in resources}


@dataclass(frozen=True)
class FileState:
    mode: int
    user: str
    group: str
    sha256: str
    text: str | None = None  # the content, for files whose keys decide a reload or a restart


@dataclass(frozen=True)
class ManagedFile(Resource):
    """A file whose bytes, mode and owner the deploy writes (or whose absence it ensures).

    ``validate`` runs on the staged copy before it replaces the old file; ``reload`` names the
    units that restart when it changes; ``guard="sshd"`` writes it through the lockout guard.
    """

    kind = "file"
    interrupts = (
        "what restarting its units costs (see below); a reload when its units reread it live "
        "or only keys they reread on SIGHUP changed (daemon.json)"
    )
    removable = True

    path: str
    content: str = ""
    mode: int = 0o644
    user: str = "root"
    group: str = "root"
    secret: bool = False  # never shown in a diff, a log line or a report
    validate: str | None = None  # shell command, "{path}" is the staged file; must exit 0
    reload: tuple[str, ...] = ()  # systemd units to restart when the file changes
    daemon_reload: bool = False  # a systemd unit file: reload systemd when it changes
    dir_mode: int | None = None  # the parent directory's mode, set before the file is written
    guard: str = ""  # "sshd": written by the lockout-guarded sshd operation
    present: bool = True
    # absent files only: the package that creates it, so a run that installs the package
    # removes the file in the same run (the snapshot predates the install)
    created_by: str = ""
    # a JSON file whose units reread these top-level keys on ``systemctl reload`` (SIGHUP): a
    # change to them alone is a reload, anything else a restart (daemon.json)
    reloadable_keys: tuple[str, ...] = ()
    # the units reread the whole file on ``systemctl reload`` (Nomad's TLS files)
    live_reload: bool = False

    @property
    def units(self) -> tuple[str, ...]:
        return tuple(self.reload)

    @property
    def key(self) -> str:
        return self.path

    def reloads_only(self, state) -> bool:
        """The change is applied by reloading its units, not restarting them."""
        if self.live_reload:
            return True
        if not self.reloadable_keys or not isinstance(state, FileState) or state.text is None:
            return False
        try:
            old, new = json.loads(state.text), json.loads(self.content)
        except ValueError:
            return False
        if not isinstance(old, dict) or not isinstance(new, dict):
            return False
        changed = {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
        return changed <= set(self.reloadable_keys)

    def interruption(self, state) -> Interruption:
        if not self.reload:
            return Interruption.NOTHING
        cost = max(unit_restart(unit) for unit in self.reload)
        if self.reloads_only(state):
            return min(cost, Interruption.RELOAD)
        return cost

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content.encode()).hexdigest()

    def describe(self) -> str:
        if not self.present:
            return f"file {self.path} absent"
        return f"file {self.path} {self.mode:04o} {_owner(self.user, self.group)}"

    def reacts_to(self, state, changed: set[str], installing: set[str]) -> str:
        if not self.present and self.created_by in installing:
            return f"package {self.created_by} is installed in this run"
        return ""

    @classmethod
    def gather(cls, resources: Sequence[ManagedFile]) -> str:
        # Two processes for every file at once; a missing file is absent from both. ``stat``
        # does not follow links, so a link where a file belongs is reported, not read through.
        paths = [r.path for r in resources]
        shown = [r.path for r in resources if r.reloadable_keys and not r.secret]
        text = "".join(
            f"\necho @@text {shlex.quote(p)}\nbase64 -w0 -- {shlex.quote(p)} 2>/dev/null; echo"
            for p in sorted(set(shown))
        )
        return (
            f"{stat_command(paths)}\necho @@sha256\nsha256sum -- {quoted(paths)} 2>/dev/null; true"
            + text
        )

    @classmethod
    def parse(cls, output: str, resources: Sequence[ManagedFile]) -> dict[str, object]:
        stats, _, sums = output.partition("@@sha256\n")
        sums, _, shown = sums.partition("@@text ")
        texts = _texts("@@text " + shown if shown else "")
        digests = {}
        for line in sums.splitlines():
            digest, _, path = line.partition("  ")
            digests[path] = digest
        states: dict[str, object] = {}
        for path, state in parse_stat(stats).items():
            if state.type == "regular file" or state.type == "regular empty file":
                states[path] = FileState(
                    state.mode, state.user, state.group, digests.get(path, ""), texts.get(path)
                )
            else:
                states[path] = state  # something else stands where the file belongs
        return {r.path: states.get(r.path) for r in resources}

    def compare(self, state, info: HostInfo) -> list[Finding]:
        if not self.present:
            return [] if state is None else [self.finding(self.path, "absent", "present")]
        if state is None:
            return [self.finding(self.path, "present", "missing")]
        if isinstance(state, PathState):
            return [self.finding(self.path, "a regular file", state.type)]
        findings = []
        if state.sha256 != self.sha256:
            found = "content differs"
            if not self.secret:
                found += f" (sha256 {state.sha256[:12]})"
            findings.append(self.finding(self.path, "content as rendered from settings", found))
        return findings + exact_mode_owner(self, state)


def _texts(output: str) -> dict[str, str]:
    """``@@text PATH`` lines, each followed by the file's content in base64."""
    texts: dict[str, str] = {}
    lines = output.splitlines()
    for header, body in zip(lines[::2], lines[1::2], strict=False):
        if header.startswith("@@text "):
            try:
                texts[header[7:]] = base64.b64decode(body, validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                continue
    return texts


@dataclass(frozen=True)
class Directory(_Stat, Resource):
    """A directory that exists with exactly this mode and owner."""

    kind = "directory"

    path: str
    mode: int = 0o755
    user: str = "root"
    group: str = "root"

    def describe(self) -> str:
        return f"directory {self.path} {self.mode:04o} {_owner(self.user, self.group)}"

    def compare(self, state: PathState | None, info: HostInfo) -> list[Finding]:
        wanted = f"directory {self.mode:04o} {_owner(self.user, self.group)}"
        if state is None:
            return [self.finding(self.path, wanted, "missing")]
        if state.type != "directory":
            return [self.finding(self.path, wanted, state.type)]
        return exact_mode_owner(self, state)


@dataclass(frozen=True)
class Mode(_Stat, Resource):
    """The owner and the most permissive mode of a path someone else creates (a package, a
    daemon): a file, a directory or a socket. Absent is fine unless ``required``."""

    kind = "mode"

    path: str
    max_mode: int
    user: str = "root"
    group: str = "root"
    required: bool = False

    def describe(self) -> str:
        return f"mode {self.path} at most {self.max_mode:04o} {_owner(self.user, self.group)}"

    def target_mode(self, state: PathState) -> int:
        """The mode the deploy sets: the current one without the bits beyond ``max_mode``."""
        return state.mode & self.max_mode

    def compare(self, state: PathState | None, info: HostInfo) -> list[Finding]:
        if state is None:
            return [self.finding(self.path, "present", "missing")] if self.required else []
        findings = []
        if state.mode & ~self.max_mode:
            findings.append(
                self.finding(
                    f"{self.path} mode", f"{self.max_mode:04o} or stricter", f"{state.mode:04o}"
                )
            )
        if (state.user, state.group) != (self.user, self.group):
            findings.append(
                self.finding(
                    f"{self.path} owner",
                    _owner(self.user, self.group),
                    _owner(state.user, state.group),
                )
            )
        return findings


SETUID_BITS = 0o6000


@dataclass(frozen=True)
class NoSetuid(_Stat, Resource):
    """A binary that must carry neither the setuid nor the setgid bit (absent is fine)."""

    kind = "setuid"

    path: str

    def describe(self) -> str:
        return f"no setuid/setgid on {self.path}"

    def compare(self, state: PathState | None, info: HostInfo) -> list[Finding]:
        if state is None or not state.mode & SETUID_BITS:
            return []
        bits = "setuid" if state.mode & 0o4000 else "setgid"
        return [self.finding(self.path, "no setuid or setgid bit", f"{bits} ({state.mode:04o})")]
