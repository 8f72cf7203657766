"""The distribution releases the toolkit supports, and what differs between them where
hardening lives: sshd's key exchanges, the Docker engine Debian ships, how systemd offers
cgroup v1, whether /etc/sysctl.conf is still read.

One record per release, read by the controls (what to write) and the kinds (how to judge what a
host holds), so a release is added in one place. Every release listed here is proven by the test
bed (``cci-harden testbed up --release CODENAME``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .hostinfo import HostInfo

SNTRUP = "sntrup761x25519-sha512@openssh.com"
MLKEM = "mlkem768x25519-sha256"
# paramiko (the deploy's own client, through pyinfra) has no post-quantum key exchange yet
CURVE25519 = ("curve25519-sha256", "curve25519-sha256@libssh.org")
CGROUP_V1_FORCE = "SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE=1"


@dataclass(frozen=True)
class Release:
    os_id: str
    version: str
    codename: str
    openssh: str
    # OpenSSH 9.8+: PerSourcePenalties on by default (a source whose connections fail or never
    # authenticate is refused for a while)
    openssh_penalties: bool
    systemd: int
    # sshd's KexAlgorithms: the release's post-quantum default first where its OpenSSH has it
    kex: tuple[str, ...]
    # the engine major version of the release's own docker.io package (its seccomp default)
    docker_io_major: int
    # what install_source "docker.io" installs: Debian 13 moved the client to docker-cli,
    # which docker.io only recommends (and apt here installs no recommends)
    docker_io_packages: tuple[str, ...]
    # systemd 256 and later boot cgroup v1 only with CGROUP_V1_FORCE on the kernel command
    # line, and are removing it
    cgroup_v1_forced: bool
    # systemd 257 (Debian 13) no longer reads /etc/sysctl.conf: only the sysctl.d directories
    reads_sysctl_conf: bool
    tmp_on_tmpfs: bool

    @property
    def title(self) -> str:
        return f"{self.os_id.capitalize()} {self.version} ({self.codename})"


BOOKWORM = Release(
    os_id="debian",
    version="12",
    codename="bookworm",
    openssh="9.2",
    openssh_penalties=False,
    systemd=252,
    kex=(SNTRUP, *CURVE25519),
    docker_io_major=20,
    docker_io_packages=("docker.io", "containerd", "runc"),
    cgroup_v1_forced=False,
    reads_sysctl_conf=True,
    tmp_on_tmpfs=False,
)
TRIXIE = Release(
    os_id="debian",
    version="13",
    codename="trixie",
    openssh="10.0",
    openssh_penalties=True,
    systemd=257,
    kex=(MLKEM, SNTRUP, *CURVE25519),
    docker_io_major=26,
    docker_io_packages=("docker.io", "docker-cli", "containerd", "runc"),
    cgroup_v1_forced=True,
    reads_sysctl_conf=False,
    tmp_on_tmpfs=True,
)
SUPPORTED = (BOOKWORM, TRIXIE)
# what a render that knows no host assumes (the planning stand-in is a Debian 12 host)
DEFAULT = BOOKWORM


def release_of(info: HostInfo) -> Release | None:
    """The supported release the host runs, or None (the OS gate refuses such a host)."""
    for release in SUPPORTED:
        if (release.os_id, release.version) == (info.os_id, info.os_version):
            return release
    return None


def release_for(info: HostInfo | None) -> Release:
    """The release whose data renders for this host: its own, else the default (an unsupported
    host is refused by the gate before anything rendered for it is written)."""
    return (release_of(info) if info is not None else None) or DEFAULT


def supported_text() -> str:
    return ", ".join(r.title for r in SUPPORTED)
