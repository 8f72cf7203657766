"""Kinds that read what a running program does: sshd's and dockerd's effective settings, the
installed Nomad release, the agent's health, nginx's configuration test; plus two that need no
gather at all (the host's size, a certificate's expiry), so their verify half is still a resource.
The lifecycle manifest has a module of its own (``manifest``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass

from ..control import Finding
from ..hostinfo import HostInfo
from ..interruption import Interruption, package_change
from ..resource import Resource

NOMAD_BINARY = "/usr/local/bin/nomad"
NOMAD_RECORD = "/var/lib/cci-harden/nomad-release"
NOMAD_KEY_PATH = "/etc/cci-harden/keys/nomad-release.asc"


def split_rc(output: str) -> tuple[str, int]:
    """Output that ends in ``@@rc N`` -> (text, N)."""
    text, _, rc = output.rpartition("@@rc ")
    return text, int(rc.strip() or 1) if rc.strip().lstrip("-").isdigit() else 1


class _Gate(Resource):
    """A fact about the whole host that rules the deploy out (``problem``), worked out from the
    host's facts when the control is declared; the deploy refuses the host, touching nothing on
    it, when there is one. Nothing to gather: the facts are in every snapshot already."""

    runtime = True
    repairable = False
    problem: str | None
    what: str = ""  # what the finding is about ("host size")

    @property
    def key(self) -> str:
        return self.kind

    @classmethod
    def gather(cls, resources) -> str:
        return "true"

    @classmethod
    def parse(cls, output: str, resources) -> dict[str, None]:
        return {r.key: None for r in resources}

    def compare(self, state, info: HostInfo) -> list[Finding]:
        if not self.problem:
            return []
        return [self.finding(self.what, self.describe(), self.problem)]


@dataclass(frozen=True)
class HostSize(_Gate):
    """The host can hold the coordination reservation plus one job, within CircleCI's maximum."""

    kind = "host-size"

    problem: str | None
    capacity: str
    what: str = "host size"

    @property
    def key(self) -> str:
        return "host"

    def describe(self) -> str:
        return "host size fits the reservation plus one job"


@dataclass(frozen=True)
class SupportedOs(_Gate):
    """The host runs a distribution and release the toolkit is tested on."""

    kind = "supported-os"

    problem: str | None
    supported: str
    what: str = "distribution"

    @property
    def key(self) -> str:
        return "os"

    def describe(self) -> str:
        return f"the host runs {self.supported}"


@dataclass(frozen=True)
class CertificateExpiry(Resource):
    """A certificate the deploy installs stays valid beyond a margin (read on this machine)."""

    kind = "cert-expiry"
    repairable = False

    path: str
    not_after: dt.datetime
    margin_days: int

    @property
    def key(self) -> str:
        return self.path

    def describe(self) -> str:
        return f"certificate {self.path} valid for more than {self.margin_days} days"

    @classmethod
    def gather(cls, resources: Sequence[CertificateExpiry]) -> str:
        return "true"

    @classmethod
    def parse(cls, output: str, resources: Sequence[CertificateExpiry]) -> dict[str, None]:
        return {r.key: None for r in resources}

    def compare(self, state, info: HostInfo) -> list[Finding]:
        days = (self.not_after - dt.datetime.now(dt.UTC)).days
        if days >= self.margin_days:
            return []
        return [self.finding(f"{self.path} expiry", "beyond the margin", f"{days} days")]


@dataclass(frozen=True)
class SshdEffective(Resource):
    """What ``sshd -T`` prints: the configuration sshd applies, whichever file set it.

    Our drop-in is read first, so a value differing here while the drop-in is intact means
    another file overrides it; the deploy does not edit files it does not own, so this only
    reports."""

    kind = "sshd-effective"
    repairable = False

    expected: tuple[tuple[str, str], ...]

    @property
    def key(self) -> str:
        return "sshd"

    def describe(self) -> str:
        return f"sshd -T shows {len(self.expected)} settings as rendered"

    @classmethod
    def gather(cls, resources: Sequence[SshdEffective]) -> str:
        return 'sshd -T 2>&1; echo "@@rc $?"'

    @classmethod
    def parse(cls, output: str, resources: Sequence[SshdEffective]) -> dict[str, tuple[str, int]]:
        result = split_rc(output)
        return {r.key: result for r in resources}

    def compare(self, state: tuple[str, int], info: HostInfo) -> list[Finding]:
        text, rc = state
        if rc != 0:
            return [self.finding("sshd -T", "exit 0", text.strip()[-160:])]
        found: dict[str, str] = {}
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            found.setdefault(key, value)
        return [
            self.finding(f"sshd {key}", wanted, found.get(key, "unset"))
            for key, wanted in self.expected
            if found.get(key) != wanted
        ]


# dockerd's own answer, as JSON: straight from its socket with curl where curl is installed (a
# fifth of the CPU of the docker client), else from the client.
DOCKER_INFO = (
    "if command -v curl >/dev/null; then "
    "curl -sS --max-time 10 --unix-socket /run/docker.sock http://docker/info 2>&1; "
    "else docker info --format '{{json .}}' 2>&1; fi; "
    'rc=$?; echo; echo "@@rc $rc"'
)


@dataclass(frozen=True)
class DockerRuntime(Resource):
    """What the running dockerd uses (``docker info``), not only what daemon.json says: a daemon
    still running an old configuration is drift, repaired by restarting docker."""

    kind = "docker-runtime"
    interrupts = "a Docker restart, which kills builds (nothing when dockerd is down)"
    runtime = True

    seccomp_profile: str
    userns: bool = True
    live_restore: bool = True
    cgroup: str = ""  # docker info's CgroupVersion ("1", "2"); "" when not checked

    kind_units = ("docker",)  # its settings are applied by restarting dockerd

    @property
    def key(self) -> str:
        return "dockerd"

    def describe(self) -> str:
        return f"dockerd runs with seccomp {self.seccomp_profile}, userns-remap, live-restore"

    def interruption(self, state) -> Interruption:
        # a daemon that does not answer runs no build; a cgroup mode that differs needs a
        # reboot (the kernel-cmdline resource carries it), not a restart
        if not isinstance(state, tuple) or state[1] != 0 or not self.restart_repairs(state):
            return Interruption.NOTHING
        return Interruption.RESTART_KILLS_BUILDS

    @classmethod
    def gather(cls, resources: Sequence[DockerRuntime]) -> str:
        return DOCKER_INFO

    @classmethod
    def parse(cls, output: str, resources: Sequence[DockerRuntime]) -> dict[str, tuple[str, int]]:
        result = split_rc(output)
        return {r.key: result for r in resources}

    @staticmethod
    def _daemon(state) -> dict | None:
        text, _rc = state
        try:
            daemon = json.loads(text)
            daemon["SecurityOptions"], daemon["LiveRestoreEnabled"]  # noqa: B018
        except (ValueError, KeyError, TypeError):
            return None
        return daemon

    def _configuration_findings(self, daemon: dict) -> list[Finding]:
        """What a restart of dockerd changes: it rereads daemon.json."""
        options = daemon["SecurityOptions"] or []
        findings = []
        if f"name=seccomp,profile={self.seccomp_profile}" not in options:
            findings.append(
                self.finding(
                    "dockerd seccomp", f"profile={self.seccomp_profile}", ", ".join(options)
                )
            )
        if self.userns and "name=userns" not in options:
            findings.append(self.finding("dockerd userns-remap", "active", "not active"))
        if self.live_restore and daemon["LiveRestoreEnabled"] is not True:
            findings.append(
                self.finding("dockerd live-restore", "true", str(daemon["LiveRestoreEnabled"]))
            )
        return findings

    def restart_repairs(self, state) -> bool:
        """Whether (re)starting dockerd repairs what differs: a daemon that does not answer, or
        answers with another configuration; not a cgroup mode, which takes a reboot."""
        if not isinstance(state, tuple):
            return False
        daemon = self._daemon(state)
        return daemon is None or bool(self._configuration_findings(daemon))

    def compare(self, state: tuple[str, int], info: HostInfo) -> list[Finding]:
        daemon = self._daemon(state)
        if daemon is None:
            return [self.finding("dockerd", "answers on /run/docker.sock", state[0].strip()[:120])]
        findings = self._configuration_findings(daemon)
        cgroup = str(daemon.get("CgroupVersion", ""))
        # in a container the cgroup mode is the machine's: the kernel-cmdline kind says so
        if self.cgroup and cgroup != self.cgroup and not info.in_container:
            findings.append(
                self.finding("dockerd cgroup version", self.cgroup, cgroup or "not reported")
            )
        return findings


@dataclass(frozen=True)
class InstalledRelease:
    version: str
    binary_sha256: str  # as recorded at install time
    actual_sha256: str  # of the binary on disk now

    @property
    def intact(self) -> bool:
        return bool(self.binary_sha256) and self.binary_sha256 == self.actual_sha256


RECORD_COMMAND = (
    f"cat {NOMAD_RECORD} 2>/dev/null; "
    f'echo "actual_sha256=$(sha256sum < {NOMAD_BINARY} 2>/dev/null | cut -c1-64)"'
)


def parse_record(lines: list[str]) -> InstalledRelease:
    values = dict(line.split("=", 1) for line in lines if "=" in line)
    return InstalledRelease(
        values.get("version", ""), values.get("binary_sha256", ""), values.get("actual_sha256", "")
    )


@dataclass(frozen=True)
class NomadRelease(Resource):
    """The Nomad release zip installed at ``version``, its binary still the one whose signed
    checksum was verified at install. Converged by the signed-release installer."""

    kind = "nomad-release"
    interrupts = "a Nomad restart builds survive (nothing on a first install)"

    version: str
    base_url: str
    arch: str
    fingerprint: str

    kind_units = ("nomad",)  # a new binary runs once the agent restarts

    @property
    def key(self) -> str:
        return NOMAD_BINARY

    def describe(self) -> str:
        return f"Nomad {self.version} at {NOMAD_BINARY}, signature and checksum verified"

    @classmethod
    def gather(cls, resources: Sequence[NomadRelease]) -> str:
        return RECORD_COMMAND

    @classmethod
    def parse(cls, output: str, resources: Sequence[NomadRelease]) -> dict[str, InstalledRelease]:
        record = parse_record(output.splitlines())
        return {r.key: record for r in resources}

    def interruption(self, state: InstalledRelease) -> Interruption:
        # the agent restarts on a new binary; a host with none yet runs no build
        return package_change("nomad", installed=bool(state.version))

    def compare(self, state: InstalledRelease, info: HostInfo) -> list[Finding]:
        findings = []
        if state.version != self.version:
            findings.append(
                self.finding(f"{NOMAD_RECORD} version", self.version, state.version or "none")
            )
        if not state.intact:
            findings.append(
                self.finding(
                    NOMAD_BINARY,
                    "the binary whose checksum was verified at install",
                    "missing" if not state.actual_sha256 else "a different binary",
                )
            )
        return findings


@dataclass(frozen=True)
class NomadHealth(Resource):
    """The Nomad agent answers healthy on its local API. Needs a real agent: the test bed's
    stand-in binary is reported as not verifiable, never as passed."""

    kind = "nomad-health"
    runtime = True
    repairable = False

    binaries: tuple[str, ...] = (NOMAD_BINARY, "/usr/bin/nomad")

    @property
    def key(self) -> str:
        return "agent"

    def describe(self) -> str:
        return "Nomad agent healthy on http://127.0.0.1:4646"

    @classmethod
    def gather(cls, resources: Sequence[NomadHealth]) -> str:
        return (
            "for b in /usr/local/bin/nomad /usr/bin/nomad; do [ -x $b ] && { $b version | "
            "head -n1; break; }; done; command -v curl >/dev/null && "
            "curl -s -m 3 'http://127.0.0.1:4646/v1/agent/health?type=client'; true"
        )

    @classmethod
    def parse(cls, output: str, resources: Sequence[NomadHealth]) -> dict[str, str]:
        return {r.key: output for r in resources}

    def compare(self, state: str, info: HostInfo) -> list[Finding]:
        first = state.splitlines()[0] if state else ""
        if "stand-in" in first:
            return [
                self.finding(
                    "Nomad agent health",
                    "client ok on the local API",
                    "not verifiable here: the installed binary is the test bed's stand-in",
                    verifiable=False,
                )
            ]
        if '"ok":true' not in state.replace(" ", ""):
            return [self.finding("Nomad agent health", "client ok on the local API", state[-160:])]
        return []


@dataclass(frozen=True)
class NginxConfig(Resource):
    """nginx's whole configuration passes ``nginx -t`` (each site is checked before it goes live;
    this catches what others wrote)."""

    kind = "nginx-config"
    repairable = False

    @property
    def key(self) -> str:
        return "nginx"

    def describe(self) -> str:
        return "nginx -t accepts the configuration"

    @classmethod
    def gather(cls, resources: Sequence[NginxConfig]) -> str:
        return 'nginx -t -q 2>&1; echo "@@rc $?"'

    @classmethod
    def parse(cls, output: str, resources: Sequence[NginxConfig]) -> dict[str, tuple[str, int]]:
        result = split_rc(output)
        return {r.key: result for r in resources}

    def compare(self, state: tuple[str, int], info: HostInfo) -> list[Finding]:
        text, rc = state
        if rc == 0:
            return []
        first = (text.strip().splitlines() or ["no output"])[0][:120]
        return [self.finding("nginx -t", "configuration valid", first)]
