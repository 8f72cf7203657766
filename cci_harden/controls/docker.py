"""Docker on a Nomad client: a pinned engine, CircleCI's daemon settings, and the seccomp profile.

CircleCI's build agent drives this Docker to run every job container, so each setting here is
weighed against what jobs do: sudo inside job images, user namespaces, Docker-in-Docker through
remote Docker on the VM service.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from ..model.control import Control, Source
from ..model.interruption import DOCKERD_RELOADABLE_KEYS
from ..model.kinds import DockerRuntime, ManagedFile, Mode, Package, Service
from ..model.releases import release_for, release_of
from .seccomp import PROFILE_PATH, engine_major, render_profile
from .sources import circleci_page, hardening_page, server_4x

if TYPE_CHECKING:
    from ..config.settings import FleetSettings
    from ..model.hostinfo import HostInfo

DAEMON_JSON = "/etc/docker/daemon.json"
DOCKER_KEYRING = "/etc/apt/keyrings/docker.asc"
DOCKER_SOURCES = "/etc/apt/sources.list.d/docker.sources"
DOCKER_PIN = "/etc/apt/preferences.d/cci-harden-docker"

# Validate a staged daemon.json with dockerd itself where it can (Docker 23+), else as JSON.
VALIDATE_DAEMON_JSON = (
    "if command -v dockerd >/dev/null && dockerd --help 2>&1 | grep -q -- '--validate'; "
    "then dockerd --validate --config-file {path}; "
    "else python3 -c 'import json, sys; json.load(open(sys.argv[1]))' {path}; fi"
)


# Docker's repository builds one package per release: 5:27.3.1-1~debian.12~bookworm
_RELEASE_SUFFIX = re.compile(r"~debian\.[0-9]+~[a-z]+$")


def docker_ce_version(version: str | None, info=None) -> str | None:
    """The pinned docker-ce version as the host's own release spells it: one pin in the settings
    serves a fleet of Debian 12 and 13 hosts (the suffix follows each host's release)."""
    release = None if info is None else release_of(info)
    if version is None or release is None:
        return version
    return _RELEASE_SUFFIX.sub(f"~debian.{release.version}~{release.codename}", version)


def engine_packages(settings: FleetSettings, info: HostInfo | None = None) -> list[Package]:
    docker = settings.docker
    # Debian's kernel has AppArmor on: without apparmor_parser every `docker run` fails
    # (found on the test bed's VM hosts); both engines only recommend it, and apt here
    # installs no recommends.
    apparmor = Package("apparmor")
    if docker.install_source == "docker.io":
        return [*(Package(n) for n in release_for(info).docker_io_packages), apparmor]
    version = docker_ce_version(docker.version, info)
    return [
        Package("docker-ce", version, fresh_lists=True),
        Package("docker-ce-cli", version, fresh_lists=True),
        Package("containerd.io", fresh_lists=True),
        apparmor,
    ]


def _engine_resources(settings: FleetSettings, info: HostInfo):
    """The repository files (docker-ce) before the packages, the service after everything."""
    engine = [*engine_packages(settings, info), Service("docker")]
    docker = settings.docker
    if docker.install_source != "docker-ce":
        return engine
    from ..config.materials import load_signing_key

    key = load_signing_key("docker", settings, docker.gpg_key_file, docker.gpg_fingerprint)
    suite = docker.distribution_codename or info.codename
    repo = str(docker.repo_url).rstrip("/")
    return [
        ManagedFile(DOCKER_KEYRING, key.armored),
        ManagedFile(
            DOCKER_SOURCES,
            "# Managed by cci-harden (CCI-DKR-01): Docker's repository, signed by the pinned key "
            f"{key.fingerprint}\n"
            f"Types: deb\nURIs: {repo}\nSuites: {suite}\nComponents: stable\n"
            f"Architectures: {info.arch}\nSigned-By: {DOCKER_KEYRING}\n",
        ),
        ManagedFile(
            DOCKER_PIN,
            "# Managed by cci-harden (CCI-DKR-01): the engine version is pinned, not floating.\n"
            "Package: docker-ce docker-ce-cli\n"
            f"Pin: version {docker_ce_version(docker.version, info)}\n"
            "Pin-Priority: 1001\n",
        ),
        *engine,
    ]


ENGINE = Control(
    id="CCI-DKR-01",
    nist=("CM-14", "SI-7"),
    title="Docker engine installed from a pinned source, enabled and running",
    sources=(
        Source("circleci", "server-terraform nomad-startup: docker-ce pinned from Docker's repo"),
        Source("cis-docker", "1.2.2 (keep Docker up to date, from a trusted source)"),
    ),
    rationale="docker-ce comes from Docker's repository with its key pinned by fingerprint and "
    "an apt pin on the exact version, so an unattended upgrade cannot move it; docker.io is the "
    "distribution's package, for hosts that track Debian's security updates instead. "
    "AppArmor's parser is installed with either: Docker needs it to start any container on a "
    "kernel with AppArmor enabled, as Debian's is.",
    resources=_engine_resources,
    tags=("docker",),
)


def daemon_config(settings: FleetSettings) -> dict:
    """daemon.json as a dict: CircleCI's keys, then CIS Docker's, each with its reason."""
    docker = settings.docker
    config: dict = {
        # CircleCI: remap container root to an unprivileged range (CVE-2019-5736); CIS 2.8
        "userns-remap": "default",
        # CircleCI: job networks come from this pool (default 10.10.0.0/16 in /24s)
        "default-address-pools": [
            {"base": str(pool.base), "size": pool.size} for pool in docker.address_pools
        ],
        # CircleCI's profile: Docker's default plus clone/setns/unshare; CIS 5.21
        "seccomp-profile": PROFILE_PATH,
        # CIS 2.14: containers keep running while dockerd restarts (updates, this deploy)
        "live-restore": True,
        # CIS 2.12 / 2.13: bounded local logs
        "log-driver": "json-file",
        "log-opts": {"max-size": docker.log_max_size, "max-file": str(docker.log_max_files)},
        # CIS 2.1: no traffic between unrelated containers on the default bridge; a job's own
        # containers share one network namespace, so jobs do not need it
        "icc": False,
        # CIS 2.15: iptables instead of a userland proxy process per published port
        "userland-proxy": False,
        # CIS 2.17 asks for true; it would stop sudo and every setuid binary in job images,
        # which CircleCI's convenience images rely on: kept off (see the control's impact note)
        "no-new-privileges": False,
    }
    if docker.storage_driver:
        config["storage-driver"] = docker.storage_driver
    if docker.registry_mirrors:
        config["registry-mirrors"] = [str(url) for url in docker.registry_mirrors]
    return config


def _daemon_resources(settings: FleetSettings, info: HostInfo):
    text = json.dumps(daemon_config(settings), indent=2) + "\n"
    return [
        # a change to keys dockerd rereads on SIGHUP alone is a reload, anything else a
        # restart (which kills builds: the rollout drains the host first)
        ManagedFile(
            DAEMON_JSON,
            text,
            validate=VALIDATE_DAEMON_JSON,
            reload=("docker",),
            mode=0o644,
            reloadable_keys=DOCKERD_RELOADABLE_KEYS,
        ),
        DockerRuntime(PROFILE_PATH, cgroup="1" if settings.nomad.cgroup_version == "v1" else "2"),
    ]


DAEMON = Control(
    id="CCI-DKR-02",
    nist=("AC-6", "CM-6", "SC-39"),
    title="Docker daemon.json: userns-remap, address pools, seccomp, live-restore, log rotation",
    sources=(
        Source("circleci", "nomad-startup: userns-remap default, default-address-pools"),
        server_4x("Docker on clients", "userns-remap: default, default-address-pools"),
        hardening_page("job networks 10.10.0.0/16"),
        Source("cis-docker", "2.1 2.8 2.12 2.13 2.14 2.15 2.17 5.21"),
    ),
    rationale="Rendered from settings as JSON, validated on the host before it replaces the "
    "old file; dockerd restarts only when the file changed. The check reads `docker info`, so a "
    "daemon still running an old configuration is drift too.",
    resources=_daemon_resources,
    circleci_impact="no-new-privileges stays false: sudo and setuid binaries in job images must "
    "work. icc is off only on the default bridge; a job's containers share a network namespace. "
    "userns-remap is what CircleCI itself sets.",
    tags=("docker",),
)


def _seccomp_resources(settings: FleetSettings, info: HostInfo):
    profile = render_profile(engine_major(settings, info))
    return [ManagedFile(PROFILE_PATH, profile, reload=("docker",))]


SECCOMP = Control(
    id="CCI-DKR-03",
    nist=("AC-6", "CM-7", "SC-39"),
    title="Seccomp profile: Docker's default plus CircleCI's user-namespace addition",
    sources=(
        circleci_page(
            "security", "Integrations", "Docker: clone, setns, unshare appended to the default"
        ),
        Source("cis-docker", "5.21 (do not disable the default seccomp profile)"),
    ),
    rationale="Docker's default profile of the engine being installed (vendored per engine "
    "line: 20.10, 26.1, 28.5; an older base would refuse newer syscalls such as fchmodat2 to "
    "every job), with exactly CircleCI's rule appended; `cci-harden render seccomp INVENTORY` "
    "writes the same bytes for use elsewhere.",
    resources=_seccomp_resources,
    circleci_impact="Jobs may create user namespaces (rootless tools, buildkit), as on CircleCI "
    "cloud; everything else Docker's default profile blocks stays blocked.",
    tags=("docker",),
)

# (path, most permissive mode, owner, group, CIS Docker Benchmark items): files Docker's packages
# and daemon create. A path this host lacks (docker-ce vs docker.io) is skipped.
DOCKER_FILE_MODES: tuple[tuple[str, int, str, str, str], ...] = (
    ("/lib/systemd/system/docker.service", 0o644, "root", "root", "3.1, 3.2"),
    ("/lib/systemd/system/docker.socket", 0o644, "root", "root", "3.3, 3.4"),
    ("/etc/docker", 0o755, "root", "root", "3.5, 3.6"),
    ("/run/docker.sock", 0o660, "root", "docker", "3.15, 3.16"),
    ("/etc/default/docker", 0o644, "root", "root", "3.19, 3.20"),
    ("/run/containerd/containerd.sock", 0o660, "root", "root", "3.23, 3.24"),
    ("/etc/containerd", 0o755, "root", "root", "toolkit: containerd's configuration"),
    ("/etc/containerd/config.toml", 0o644, "root", "root", "toolkit: containerd's configuration"),
)


def _file_modes(settings: FleetSettings, info: HostInfo):
    return [Mode(path, mode, user, group) for path, mode, user, group, _ in DOCKER_FILE_MODES]


FILE_MODES = Control(
    id="CCI-DKR-04",
    nist=("AC-3", "AC-6"),
    title="Docker's own files and sockets: owner and mode (CIS Docker section 3)",
    sources=(Source("cis-docker", "3.1-3.6, 3.15-3.20, 3.23-3.24"),),
    rationale="Whoever can write docker.service, daemon.json or /etc/docker changes how every "
    "job container runs; whoever can open docker.sock is root. Each path is checked for its "
    "owner and for no permission beyond the benchmark's; the deploy removes only the extra bits.",
    resources=_file_modes,
    circleci_impact="docker.sock stays root:docker 0660: CircleCI's agent runs as root through "
    "raw_exec and needs no group membership.",
    tags=("docker",),
)

CONTROLS = (SECCOMP, DAEMON, ENGINE, FILE_MODES)
