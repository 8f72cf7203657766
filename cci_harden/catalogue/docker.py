"""Docker on a Nomad client: a pinned engine, CircleCI's daemon settings, and the seccomp profile.

CircleCI's build agent drives this Docker to run every job container, so each setting here is
weighed against what jobs do: sudo inside job images, user namespaces, Docker-in-Docker through
remote Docker on the VM service.
"""

from __future__ import annotations

import json

from ..seccomp import PROFILE_PATH, render_profile
from .model import Control, DesiredFile, Finding, Probe, Source
from .probes import package_probe, package_version, service_findings, service_probe

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


def engine_packages(settings) -> list[str]:
    docker = settings.docker
    if docker.install_source == "docker.io":
        return ["docker.io"]
    return [f"docker-ce={docker.version}", f"docker-ce-cli={docker.version}", "containerd.io"]


def _engine_files(settings, info):
    docker = settings.docker
    if docker.install_source != "docker-ce":
        return []
    from ..materials import load_signing_key

    key = load_signing_key("docker", settings, docker.gpg_key_file, docker.gpg_fingerprint)
    suite = docker.distribution_codename or info.codename
    repo = str(docker.repo_url).rstrip("/")
    return [
        DesiredFile(DOCKER_KEYRING, key.armored),
        DesiredFile(
            DOCKER_SOURCES,
            "# Managed by cci-harden (CCI-DKR-01): Docker's repository, signed by the pinned key "
            f"{key.fingerprint}\n"
            f"Types: deb\nURIs: {repo}\nSuites: {suite}\nComponents: stable\n"
            f"Architectures: {info.arch}\nSigned-By: {DOCKER_KEYRING}\n",
        ),
        DesiredFile(
            DOCKER_PIN,
            "# Managed by cci-harden (CCI-DKR-01): the engine version is pinned, not floating.\n"
            f"Package: docker-ce docker-ce-cli\nPin: version {docker.version}\n"
            "Pin-Priority: 1001\n",
        ),
    ]


def _distribution_engine(settings) -> list[str]:
    """Packages installed before the files: only the distribution's, needing no new repository."""
    return engine_packages(settings) if settings.docker.install_source == "docker.io" else []


def _engine_apply(settings, info):
    from ..deploy import ensure_packages
    from .model import Applied

    if settings.docker.install_source != "docker-ce":
        return None
    # after the repository, key and pin files above are in place
    installed = ensure_packages("CCI-DKR-01", engine_packages(settings), fresh_lists=True)
    return Applied(started={"docker": installed})


def _engine_check(settings, info, snapshot) -> list[Finding]:
    findings = []
    if settings.docker.install_source == "docker.io":
        if package_version("docker.io", snapshot) is None:
            findings.append(Finding("docker.io package", "installed", "not installed"))
    else:
        for package in ("docker-ce", "docker-ce-cli"):
            version = package_version(package, snapshot)
            if version != settings.docker.version:
                findings.append(
                    Finding(f"{package} version", settings.docker.version, version or "absent")
                )
    return findings + service_findings("docker", snapshot)


ENGINE = Control(
    id="CCI-DKR-01",
    title="Docker engine installed from a pinned source, enabled and running",
    sources=(
        Source("circleci", "server-terraform nomad-startup: docker-ce pinned from Docker's repo"),
        Source("cis-docker", "1.2.2 (keep Docker up to date, from a trusted source)"),
    ),
    rationale="docker-ce comes from Docker's repository with its key pinned by fingerprint and "
    "an apt pin on the exact version, so an unattended upgrade cannot move it; docker.io is the "
    "distribution's package, for hosts that track Debian's security updates instead.",
    files=_engine_files,
    packages=_distribution_engine,
    apply=_engine_apply,
    services=("docker",),
    probes=(
        package_probe("docker.io"),
        package_probe("docker-ce"),
        package_probe("docker-ce-cli"),
        service_probe("docker"),
    ),
    check=_engine_check,
    tags=("docker",),
)


def daemon_config(settings) -> dict:
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
    return config


def _daemon_files(settings, info):
    text = json.dumps(daemon_config(settings), indent=2) + "\n"
    return [
        DesiredFile(
            DAEMON_JSON, text, validate=VALIDATE_DAEMON_JSON, reload=("docker",), mode=0o644
        )
    ]


EFFECTIVE_PROBE = (
    "docker info --format "
    "'{{json .SecurityOptions}}|{{.LiveRestoreEnabled}}|{{.DockerRootDir}}' 2>&1"
)


def _daemon_check(settings, info, snapshot) -> list[Finding]:
    """What the running dockerd actually uses, not only what the file says."""
    result = snapshot.probe("docker-effective")
    if result.rc != 0:
        return [Finding("dockerd", "answers docker info", result.output.strip()[:120])]
    options, live_restore, root_dir = (result.output.strip().split("|") + ["", "", ""])[:3]
    findings = []
    if f"profile={PROFILE_PATH}" not in options:
        findings.append(Finding("dockerd seccomp", f"profile={PROFILE_PATH}", options))
    if "name=userns" not in options:
        findings.append(Finding("dockerd userns-remap", "active", "not active"))
    if live_restore != "true":
        findings.append(Finding("dockerd live-restore", "true", live_restore))
    return findings


DAEMON = Control(
    id="CCI-DKR-02",
    title="Docker daemon.json: userns-remap, address pools, seccomp, live-restore, log rotation",
    sources=(
        Source("circleci", "nomad-startup: userns-remap default, default-address-pools"),
        Source("seed", "002 Hardening: job networks 10.10.0.0/16"),
        Source("cis-docker", "2.1 2.8 2.12 2.13 2.14 2.15 2.17 5.21"),
    ),
    rationale="Rendered from settings as JSON, validated on the host before it replaces the "
    "old file; dockerd restarts only when the file changed. The check reads `docker info`, so a "
    "daemon still running an old configuration is drift too.",
    files=_daemon_files,
    probes=(
        package_probe("docker.io"),
        Probe("docker-effective", EFFECTIVE_PROBE),
    ),
    check=_daemon_check,
    circleci_impact="no-new-privileges stays false: sudo and setuid binaries in job images must "
    "work. icc is off only on the default bridge; a job's containers share a network namespace. "
    "userns-remap is what CircleCI itself sets.",
    tags=("docker",),
)


def _seccomp_files(settings, info):
    return [DesiredFile(PROFILE_PATH, render_profile(), reload=("docker",))]


SECCOMP = Control(
    id="CCI-DKR-03",
    title="Seccomp profile: Docker's default plus CircleCI's user-namespace addition",
    sources=(
        Source("seed", "001 Security: Docker (clone, setns, unshare appended)"),
        Source("cis-docker", "5.21 (do not disable the default seccomp profile)"),
    ),
    rationale="Docker's default profile, vendored at a known version, with exactly the seed's "
    "rule appended; `cci-harden render seccomp` writes the same bytes for use elsewhere.",
    files=_seccomp_files,
    circleci_impact="Jobs may create user namespaces (rootless tools, buildkit), as on CircleCI "
    "cloud; everything else Docker's default profile blocks stays blocked.",
    tags=("docker",),
)

CONTROLS = (SECCOMP, DAEMON, ENGINE)
