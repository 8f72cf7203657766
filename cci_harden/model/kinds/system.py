"""System kinds: Debian packages, systemd units, system accounts, key-value lines in a file."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from ..control import Finding
from ..hostinfo import HostInfo
from ..interruption import Interruption, package_change, unit_restart
from ..resource import Resource
from .files import quoted


@dataclass(frozen=True)
class Package(Resource):
    """A Debian package installed (at an exact version when one is given) or absent.

    ``fresh_lists``: it comes from a repository this run may have just added, so apt's lists
    are refreshed before it is installed.
    """

    kind = "package"
    interrupts = (
        "an upgrade or removal of Docker, containerd or runc kills builds; of Nomad, a restart "
        "builds survive; a first install nothing"
    )
    removable = True  # only when the deploy installed it (see the lifecycle manifest)

    name: str
    version: str | None = None
    present: bool = True
    fresh_lists: bool = False
    reload: tuple[str, ...] = ()  # units to restart when it is installed or changes version

    @property
    def units(self) -> tuple[str, ...]:
        return tuple(self.reload)

    @property
    def key(self) -> str:
        return self.name

    @property
    def spec(self) -> str:
        return f"{self.name}={self.version}" if self.version else self.name

    def describe(self) -> str:
        if not self.present:
            return f"package {self.name} absent"
        return f"package {self.name}" + (f" = {self.version}" if self.version else "")

    @classmethod
    def gather(cls, resources: Sequence[Package]) -> str:
        names = quoted([r.name for r in resources])
        fields = "'${Package}|${db:Status-Abbrev}|${Version}\\n'"
        return f"dpkg-query -W -f {fields} {names} 2>/dev/null; true"

    @classmethod
    def parse(cls, output: str, resources: Sequence[Package]) -> dict[str, str | None]:
        """name -> installed version, or None when not installed (removed, config-files)."""
        installed: dict[str, str] = {}
        for line in output.splitlines():
            name, _, rest = line.partition("|")
            status, _, version = rest.partition("|")
            if status.startswith("ii") or status.startswith("hi"):
                installed[name.split(":")[0]] = version.strip()
        return {r.name: installed.get(r.name) for r in resources}

    def interruption(self, state: str | None) -> Interruption:
        cost = package_change(self.name, installed=state is not None)
        if state is not None and self.reload:
            cost = max(cost, *(unit_restart(unit) for unit in self.reload))
        return cost

    def compare(self, state: str | None, info: HostInfo) -> list[Finding]:
        what = f"package {self.name}"
        if not self.present:
            return [] if state is None else [self.finding(what, "absent", f"installed ({state})")]
        if state is None:
            return [self.finding(what, self.version or "installed", "absent")]
        if self.version and state != self.version:
            return [self.finding(what, self.version, state)]
        return []


@dataclass(frozen=True)
class ServiceState:
    enabled: str  # systemctl is-enabled: enabled, disabled, masked, static, not-found, ...
    active: str  # systemctl is-active: active, inactive, failed, ...


@dataclass(frozen=True)
class Service(Resource):
    """A systemd unit: enabled, disabled or masked at boot; running or stopped now.

    ``None`` leaves that side alone (a static unit has no boot state). ``container_ok=False``:
    the unit refuses to run in a container (ConditionVirtualization), so there it is reported
    as not verifiable instead of failing.
    """

    kind = "service"

    unit: str
    enabled: str | None = "enabled"
    running: bool | None = True
    container_ok: bool = True

    @property
    def units(self) -> tuple[str, ...]:
        return (self.unit,)

    @property
    def key(self) -> str:
        return self.unit

    def describe(self) -> str:
        parts = [self.enabled or "", {True: "running", False: "stopped", None: ""}[self.running]]
        return f"service {self.unit} " + " and ".join(p for p in parts if p)

    @classmethod
    def gather(cls, resources: Sequence[Service]) -> str:
        # One systemctl for every unit: blocks of Key=Value in the order asked.
        units = quoted([r.unit for r in resources])
        return f"systemctl show --property=Id,LoadState,UnitFileState,ActiveState -- {units}"

    @classmethod
    def parse(cls, output: str, resources: Sequence[Service]) -> dict[str, ServiceState]:
        by_id: dict[str, dict[str, str]] = {}
        block: dict[str, str] = {}
        for line in [*output.splitlines(), ""]:
            if not line.strip():
                if "Id" in block:
                    by_id[block["Id"]] = block
                block = {}
            elif "=" in line and not line.startswith("@@"):
                key, _, value = line.partition("=")
                block[key] = value.strip()
        states = {}
        for r in resources:
            found = by_id.get(r.unit if "." in r.unit else f"{r.unit}.service")
            if found is None or found.get("LoadState") == "not-found":
                enabled = "not-found"
            else:
                enabled = found.get("UnitFileState") or "unknown"
            active = (found or {}).get("ActiveState") or "unknown"
            states[r.unit] = ServiceState(enabled, active)
        return states

    def needs_enable(self, state: ServiceState) -> bool:
        return self.enabled is not None and state.enabled != self.enabled

    def needs_start(self, state: ServiceState) -> bool:
        return self.running is not None and (state.active == "active") != self.running

    def compare(self, state: ServiceState, info: HostInfo) -> list[Finding]:
        unverifiable = not self.container_ok and info.in_container
        note = (
            f" (not checkable: a container ({info.container}) cannot run it)"
            if unverifiable
            else ""
        )
        findings = []
        if self.needs_enable(state):
            findings.append(
                self.finding(
                    f"{self.unit} at boot",
                    str(self.enabled),
                    state.enabled + note,
                    not unverifiable,
                )
            )
        if self.needs_start(state):
            wanted = "active" if self.running else "inactive"
            findings.append(
                self.finding(f"{self.unit} now", wanted, state.active + note, not unverifiable)
            )
        return findings


@dataclass(frozen=True)
class AccountState:
    shell: str
    password: str  # first character of the shadow password field ("" when empty)


NO_LOGIN_SHELLS = ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false")


@dataclass(frozen=True)
class SystemAccounts(Resource):
    """Every system account (uid below ``below_uid``) but the exempt ones: no login shell, and no
    usable password (the shadow field locked with ``!`` or ``*``)."""

    kind = "accounts"

    below_uid: int = 1000
    exempt: tuple[str, ...] = ("root", "sync", "shutdown", "halt")
    shell: str = "/usr/sbin/nologin"

    @property
    def key(self) -> str:
        return f"uid<{self.below_uid}"

    def describe(self) -> str:
        return f"system accounts (uid < {self.below_uid}) without a shell or a password"

    @classmethod
    def gather(cls, resources: Sequence[SystemAccounts]) -> str:
        # Each key's accounts; the password field is read for its first character only.
        return "; ".join(
            f"echo {shlex.quote('@@' + r.key)}; awk -F: -v max={r.below_uid} "
            "'NR==FNR {if ($3 < max) s[$1]=$7; next} ($1 in s) "
            '{print $1 "|" s[$1] "|" substr($2, 1, 1)}\' /etc/passwd /etc/shadow'
            for r in resources
        )

    @classmethod
    def parse(cls, output: str, resources: Sequence[SystemAccounts]) -> dict[str, dict]:
        blocks: dict[str, dict[str, AccountState]] = {}
        current: dict[str, AccountState] | None = None
        for line in output.splitlines():
            if line.startswith("@@"):
                current = blocks.setdefault(line[2:], {})
            elif current is not None and line.count("|") == 2:
                name, shell, password = line.split("|")
                current[name] = AccountState(shell, password)
        return {r.key: blocks.get(r.key, {}) for r in resources}

    def with_shell(self, state: dict[str, AccountState]) -> list[str]:
        return sorted(
            name
            for name, account in state.items()
            if name not in self.exempt and account.shell not in NO_LOGIN_SHELLS
        )

    def unlocked(self, state: dict[str, AccountState]) -> list[str]:
        return sorted(
            name
            for name, account in state.items()
            if name not in self.exempt and account.password not in ("!", "*")
        )

    def compare(self, state: dict[str, AccountState], info: HostInfo) -> list[Finding]:
        findings = []
        shells = self.with_shell(state)
        if shells:
            findings.append(
                self.finding("system accounts with a login shell", "none", ", ".join(shells))
            )
        unlocked = self.unlocked(state)
        if unlocked:
            findings.append(
                self.finding("system accounts with a usable password", "none", ", ".join(unlocked))
            )
        return findings


@dataclass(frozen=True)
class ConfigLine(Resource):
    """``KEY value`` set once in a whitespace-separated file such as /etc/login.defs."""

    kind = "config-line"

    path: str
    name: str
    value: str

    @property
    def key(self) -> str:
        return f"{self.path}:{self.name}"

    def describe(self) -> str:
        return f"{self.path}: {self.name} {self.value}"

    @classmethod
    def gather(cls, resources: Sequence[ConfigLine]) -> str:
        by_path: dict[str, list[str]] = {}
        for r in resources:
            by_path.setdefault(r.path, []).append(re.escape(r.name))
        return "; ".join(
            f"echo @@{shlex.quote(path)}; grep -E "
            + shlex.quote(f"^({'|'.join(names)})[[:space:]]")
            + f" {shlex.quote(path)} 2>/dev/null; true"
            for path, names in by_path.items()
        )

    @classmethod
    def parse(cls, output: str, resources: Sequence[ConfigLine]) -> dict[str, list[str]]:
        """path:KEY -> every value the file sets for KEY, in order."""
        values: dict[str, list[str]] = {}
        path = ""
        for line in output.splitlines():
            if line.startswith("@@"):
                path = line[2:]
                continue
            parts = line.split()
            if len(parts) >= 2:
                values.setdefault(f"{path}:{parts[0]}", []).append(parts[1])
        return {r.key: values.get(r.key, []) for r in resources}

    def compare(self, state: list[str], info: HostInfo) -> list[Finding]:
        if state == [self.value]:
            return []
        found = " and ".join(state) if state else "unset"
        return [self.finding(f"{self.path} {self.name}", self.value, found)]
