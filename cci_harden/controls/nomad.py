"""The Nomad client: host capacity, a verified binary, mTLS material, client HCL, its service.

Everything CircleCI's own provisioning writes (server-terraform's nomad-startup script), plus what
it leaves out: the Operations Guide's reservation for coordination, a signature check on the
binary, a private key nobody else can read, a configuration validated before it goes live.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from ..config.materials import PreflightError, load_signing_key, load_tls, tls_configured
from ..model.control import Control, Source
from ..model.hostinfo import STAND_IN
from ..model.kinds import (
    CertificateExpiry,
    Directory,
    HostSize,
    KernelCmdline,
    ManagedFile,
    NomadHealth,
    NomadRelease,
    Package,
    Service,
)
from ..model.kinds.runtime import NOMAD_BINARY as BINARY
from ..model.kinds.runtime import NOMAD_KEY_PATH as KEY_PATH
from ..model.nomad_api import TOKEN_HEADER_FILE
from ..model.releases import CGROUP_V1_FORCE, release_for
from ..model.render import render
from .sources import circleci_page, server_4x

if TYPE_CHECKING:
    from ..config.settings import FleetSettings
    from ..model.hostinfo import HostInfo

CONFIG_DIR = "/etc/nomad.d"
CONFIG = f"{CONFIG_DIR}/client.hcl"
TLS_DIR = f"{CONFIG_DIR}/tls"
CA_FILE = f"{TLS_DIR}/ca.pem"
CERT_FILE = f"{TLS_DIR}/client.pem"
KEY_FILE = f"{TLS_DIR}/client-key.pem"
UNIT = "/etc/systemd/system/nomad.service"
PROFILE = "/etc/profile.d/cci-nomad.sh"
APT_BINARY = "/usr/bin/nomad"
HASHICORP_KEYRING = "/etc/apt/keyrings/hashicorp.asc"
HASHICORP_SOURCES = "/etc/apt/sources.list.d/hashicorp.sources"
HASHICORP_PIN = "/etc/apt/preferences.d/cci-harden-nomad"
MAX_CPUS = 64
MAX_MEMORY_MB = 128 * 1024
ASSUMED_MHZ = 2000  # when the kernel reports no clock at all


def binary(settings: FleetSettings) -> str:
    return APT_BINARY if settings.nomad.install_source == "hashicorp-apt" else BINARY


# -- capacity ------------------------------------------------------------------------------------


def capacity_problem(settings: FleetSettings, info: HostInfo) -> str | None:
    nomad = settings.nomad
    if (info.cpus > MAX_CPUS or info.memory_mb > MAX_MEMORY_MB) and not nomad.allow_oversized_hosts:
        return (
            f"{info.cpus} CPUs / {info.memory_mb} MB is above the supported maximum of "
            f"{MAX_CPUS} CPUs / 128 GB; ask CircleCI first, then set "
            "nomad.allow_oversized_hosts = true"
        )
    cpus_left = info.cpus - nomad.reserved_cpu_cores
    memory_left = info.memory_mb - nomad.reserved_memory_mb
    if cpus_left < nomad.min_job_cpus or memory_left < nomad.min_job_memory_mb:
        return (
            f"{info.cpus} CPUs / {info.memory_mb} MB cannot hold the reservation "
            f"({nomad.reserved_cpu_cores} CPUs / {nomad.reserved_memory_mb} MB) plus one job "
            f"({nomad.min_job_cpus} CPU / {nomad.min_job_memory_mb} MB); use a larger machine"
        )
    return None


def job_capacity(settings: FleetSettings, info: HostInfo) -> str:
    nomad = settings.nomad
    return (
        f"job capacity {info.cpus - nomad.reserved_cpu_cores} CPU(s), "
        f"{info.memory_mb - nomad.reserved_memory_mb} MB "
        f"({info.cpus} CPUs / {info.memory_mb} MB less {nomad.reserved_cpu_cores} / "
        f"{nomad.reserved_memory_mb} reserved)"
    )


def _capacity_resources(settings: FleetSettings, info: HostInfo):
    return [HostSize(capacity_problem(settings, info), job_capacity(settings, info))]


CAPACITY = Control(
    id="CCI-NMD-01",
    nist=("SC-6",),
    title="Host size fits the coordination reservation plus a job, within CircleCI's maximum",
    sources=(
        circleci_page(
            "server-3x-operations", "Nomad Clients", "2 vCPU + 4 GB reserved; max 64 CPU / 128 GB"
        ),
    ),
    rationale="Checked before anything is installed: a host too small for the reservation plus "
    "one job, or above the maximum CircleCI supports without asking, is refused and left "
    "untouched while the other hosts go on. The deploy log reports each host's job capacity.",
    resources=_capacity_resources,
    tags=("nomad", "gate"),  # a gate: planned before anything that changes the host
)


# -- binary --------------------------------------------------------------------------------------


def _install_resources(settings: FleetSettings, info: HostInfo):
    nomad = settings.nomad
    key = load_signing_key("nomad", settings, nomad.gpg_key_file, nomad.gpg_fingerprint)
    if nomad.install_source != "hashicorp-apt":
        if nomad.version is None or nomad.gpg_fingerprint is None:
            raise PreflightError(
                "nomad.version and nomad.gpg_fingerprint: set both to install from a release zip"
            )
        return [
            *(Package(name) for name in ("curl", "unzip", "gpgv", "ca-certificates")),
            ManagedFile(KEY_PATH, key.armored),
            NomadRelease(nomad.version, str(nomad.release_url), info.arch, nomad.gpg_fingerprint),
        ]
    return [
        ManagedFile(HASHICORP_KEYRING, key.armored),
        ManagedFile(
            HASHICORP_SOURCES,
            "# Managed by cci-harden (CCI-NMD-02): HashiCorp's repository, signed by the pinned "
            f"key {key.fingerprint}\nTypes: deb\nURIs: {str(nomad.release_url).rstrip('/')}\n"
            f"Suites: {info.codename}\nComponents: main\nArchitectures: {info.arch}\n"
            f"Signed-By: {HASHICORP_KEYRING}\n",
        ),
        ManagedFile(
            HASHICORP_PIN,
            "# Managed by cci-harden (CCI-NMD-02): Nomad's version is pinned, not floating.\n"
            f"Package: nomad\nPin: version {nomad.version}-*\nPin-Priority: 1001\n",
        ),
        # the deploy installs and verify expects the same exact package version
        Package("nomad", f"{nomad.version}-1", fresh_lists=True, reload=("nomad",)),
    ]


INSTALL = Control(
    id="CCI-NMD-02",
    nist=("CM-14", "SI-7"),
    title="Nomad installed at the pinned version, signature and checksum verified",
    sources=(
        Source("circleci", "nomad-startup: nomad from HashiCorp's apt repository"),
        Source("toolkit", "release zip: SHA256SUMS signed by a pinned key; air-gapped mirrors"),
    ),
    rationale="From HashiCorp's apt repository (key pinned by fingerprint, version pinned), or "
    "from a release zip, HashiCorp's or an internal mirror's, checked with gpgv against the "
    "pinned key and then against SHA256SUMS before the binary is replaced. A bad signature or a "
    "tampered archive installs nothing. Verify re-checks the binary's checksum.",
    resources=_install_resources,
    tags=("nomad",),
)


# -- mTLS material -------------------------------------------------------------------------------


def _tls_resources(settings: FleetSettings, info: HostInfo):
    material = load_tls(settings)
    if material is None:
        return []
    return [
        Directory(TLS_DIR, 0o700),
        # the agent rereads its TLS files on SIGHUP (systemctl reload): no restart
        ManagedFile(
            CA_FILE, material.ca_pem, 0o644, reload=("nomad",), dir_mode=0o700, live_reload=True
        ),
        ManagedFile(
            CERT_FILE, material.cert_pem, 0o644, reload=("nomad",), dir_mode=0o700, live_reload=True
        ),
        ManagedFile(
            KEY_FILE,
            material.key_pem.get_secret_value(),
            mode=0o600,
            secret=True,
            reload=("nomad",),
            dir_mode=0o700,
            live_reload=True,
        ),
        CertificateExpiry(CERT_FILE, material.not_after, settings.nomad.tls.expiry_margin_days),
    ]


TLS = Control(
    id="CCI-NMD-03",
    nist=("IA-3", "SC-8", "SC-12"),
    title="Nomad mTLS material: CA, client certificate, private key root-only (0600 in 0700)",
    sources=(
        Source("circleci", "nomad-startup: /etc/ssl/nomad, key left world-readable"),
        server_4x("mTLS between clients and servers is mandatory", "rpc, verify_server_hostname"),
    ),
    rationale="Checked on the operator's machine before any host is touched: the key must match "
    "the certificate, the CA must have signed it, and it must not expire within "
    "nomad.tls.expiry_margin_days. The key never appears in a diff, a log or a report.",
    resources=_tls_resources,
    applies=tls_configured,
    tags=("nomad", "tls"),
)


# -- client configuration ------------------------------------------------------------------------


def reserved_cpu_mhz(settings: FleetSettings, info: HostInfo) -> int:
    return settings.nomad.reserved_cpu_cores * (info.cpu_mhz or ASSUMED_MHZ)


def client_hcl(settings: FleetSettings, info: HostInfo) -> str:
    text = _render_client_hcl(settings, info)
    # Host facts only fill quoted strings and numbers, so parsing the stand-in host's render
    # proves the template and the settings; it is parsed once, not once per host.
    _check_hcl(_render_client_hcl(settings, STAND_IN))
    return text


def _render_client_hcl(settings: FleetSettings, info: HostInfo) -> str:
    nomad = settings.nomad
    http_open = settings.network.nomad_http_api
    advertise = _advertise_address(settings, info)
    return render(
        "nomad/client.hcl.j2",
        "CCI-NMD-04",
        # the host's own name (Nomad's default): an SSH deploy and an image's first boot agree
        name=info.hostname,
        datacenter=nomad.datacenter,
        data_dir=str(nomad.data_dir),
        node_class=nomad.node_class,
        servers=nomad.servers,
        http_address="0.0.0.0" if http_open else "127.0.0.1",  # noqa: S104  (opt-in; firewalled)
        advertise=advertise,
        reserved_cores=nomad.reserved_cpu_cores,
        cpu_mhz=info.cpu_mhz or ASSUMED_MHZ,
        reserved_cpu_mhz=reserved_cpu_mhz(settings, info),
        reserved_memory_mb=nomad.reserved_memory_mb,
        reserved_ports="22,4646-4648",
        drain_deadline=f"{settings.rollout.drain_deadline_seconds}s",
        tls={"ca_file": CA_FILE, "cert_file": CERT_FILE, "key_file": KEY_FILE}
        if tls_configured(settings)
        else None,
    )


def _advertise_address(settings: FleetSettings, info: HostInfo) -> str:
    return info.primary_ipv4 or "127.0.0.1"


@lru_cache(maxsize=256)
def _check_hcl(text: str) -> None:
    """Parse the render locally: a template or settings defect never reaches a host."""
    import hcl2

    try:
        parsed = hcl2.loads(text)
    except Exception as exc:  # lark raises many types
        raise ValueError(f"rendered client.hcl does not parse: {exc}") from None
    client = parsed.get("client", [{}])[0]
    if client.get("enabled") is not True or "reserved" not in client:
        raise ValueError("rendered client.hcl lacks client.enabled or client.reserved")


def _config_resources(settings: FleetSettings, info: HostInfo):
    return [
        Directory(str(settings.nomad.data_dir), 0o700),
        ManagedFile(
            CONFIG,
            client_hcl(settings, info),
            mode=0o640,
            validate=f"{binary(settings)} config validate {{path}} >/dev/null",
            reload=("nomad",),
        ),
    ]


CONFIG_CONTROL = Control(
    id="CCI-NMD-04",
    nist=("CM-6", "SC-8"),
    title="Nomad client HCL: node class, server join, raw_exec, telemetry, TLS, reservation",
    sources=(
        Source("circleci", "nomad-startup: client.hcl (linux-64bit, raw_exec, telemetry, tls)"),
        circleci_page(
            "server-3x-operations", "Nomad Clients", "2 vCPU and 4 GB reserved for coordination"
        ),
    ),
    rationale="Rendered from settings and the host's facts, parsed locally, then checked with "
    "`nomad config validate` on the host before it replaces the old file. client.reserved "
    "carries the Operations Guide's reservation (CircleCI's own HCL omits it), cores x the "
    "host's clock in MHz. The HTTP API stays on loopback unless network.nomad_http_api is set.",
    resources=_config_resources,
    circleci_impact="raw_exec stays enabled: CircleCI's build agent runs through it.",
    tags=("nomad",),
)


# -- service -------------------------------------------------------------------------------------


def agent_environment(settings: FleetSettings) -> list[tuple[str, str]]:
    env = [("NOMAD_ADDR", "http://127.0.0.1:4646")]
    if tls_configured(settings):
        env += [("NOMAD_CACERT", CA_FILE)]
    return env


def stop_timeout(settings: FleetSettings) -> int:
    """systemd waits this long for the agent to stop: its drain on shutdown, then a margin."""
    return settings.rollout.drain_deadline_seconds + 120


def _service_resources(settings: FleetSettings, info: HostInfo):
    env = agent_environment(settings)
    return [
        ManagedFile(
            UNIT,
            render(
                "nomad/nomad.service.j2",
                "CCI-NMD-05",
                environment=env,
                binary=binary(settings),
                config=CONFIG,
                stop_timeout=stop_timeout(settings),
            ),
            daemon_reload=True,
            reload=("nomad",),
        ),
        ManagedFile(PROFILE, render("nomad/profile.sh.j2", "CCI-NMD-05", environment=env)),
        Service("nomad"),
    ]


SERVICE = Control(
    id="CCI-NMD-05",
    nist=("CM-6", "SC-6"),
    title="Nomad systemd unit: after Docker, restart policy, file limits, NOMAD_* for the CLI",
    sources=(Source("circleci", "nomad-startup: nomad.service"),),
    rationale="Ordered after Docker and the host firewall; restarted on failure with a start "
    "limit; 64k open files; kept out of the OOM killer's way so a runaway job cannot take the "
    "agent down. Restarted by the deploy only when its binary, unit, configuration or TLS "
    "material changed.",
    resources=_service_resources,
    tags=("nomad",),
)


AGENT = Control(
    id="CCI-NMD-06",
    nist=("CA-7",),
    title="Nomad agent answers healthy on its local API",
    sources=(
        circleci_page(
            "server-3x-operations",
            "CircleCI Server v3.x Operations Overview",
            "the Nomad clients need access to the Nomad control plane",
        ),
    ),
    rationale="The only check that needs a real, running Nomad: on a host with the test bed's "
    "stand-in binary it is reported as not verifiable, never as passed.",
    resources=lambda settings, info: [NomadHealth()],
    testbed="not verifiable (no real Nomad)",
    tags=("nomad",),
)

# -- builds survive the host's own upkeep ---------------------------------------------------------

UNATTENDED_HOLD = "/etc/apt/apt.conf.d/51cci-harden-build-runtime"
NEEDRESTART_HOLD = "/etc/needrestart/conf.d/cci-harden.conf"
# what runs builds: changed only by a drained rollout, never by the host's own upkeep
HELD_PACKAGES = ("docker-ce", "docker-ce-cli", "docker.io", "containerd", "containerd.io", "runc")
HELD_UNITS = ("docker", "containerd", "nomad")


def _unattended_hold() -> str:
    # apt's strings take no escapes: a dot is written as a class
    names = "".join(f'    "^{name.replace(".", "[.]")}$";\n' for name in (*HELD_PACKAGES, "nomad"))
    return (
        "// Managed by cci-harden (CCI-NMD-07): the container runtime and Nomad change only "
        "through\n// a drained rollout (cci-harden rollout), never under running builds.\n"
        f"Unattended-Upgrade::Package-Blacklist {{\n{names}}};\n"
    )


def _needrestart_hold() -> str:
    rules = "".join(
        f"$nrconf{{override_rc}}{{qr(^{unit}\\.service$)}} = 0;\n" for unit in HELD_UNITS
    )
    return (
        "# Managed by cci-harden (CCI-NMD-07): needrestart never restarts what runs builds.\n"
        + rules
    )


def _build_safety_resources(settings: FleetSettings, info: HostInfo):
    token = settings.rollout.nomad_token
    token_file = (
        ManagedFile(
            TOKEN_HEADER_FILE,
            f"X-Nomad-Token: {token.get_secret_value()}\n",
            mode=0o600,
            secret=True,
        )
        if token is not None
        else ManagedFile(TOKEN_HEADER_FILE, present=False)
    )
    return [
        Package("curl"),  # the deploy and the rollout ask the local agent with it
        ManagedFile(UNATTENDED_HOLD, _unattended_hold()),
        ManagedFile(NEEDRESTART_HOLD, _needrestart_hold()),
        token_file,
    ]


BUILD_SAFETY = Control(
    id="CCI-NMD-07",
    nist=("CM-3", "SI-2"),
    title="Builds survive the host's upkeep: runtime held from unattended upgrades and "
    "needrestart, drain on shutdown",
    sources=(
        Source("circleci", "Server 4.x docs: drain Nomad clients before replacing them"),
        Source("nomad", "client block: drain_on_shutdown (1.6+); node drain command"),
        Source("toolkit", "changes that kill builds wait for a drain (cci-harden rollout)"),
    ),
    rationale="unattended-upgrades never upgrades docker, containerd, runc or Nomad, and "
    "needrestart never restarts them: each would kill every build on the host. They change only "
    "through `cci-harden rollout`, which drains the host first. A shutdown or reboot drains the "
    "node (client.hcl drain_on_shutdown, rollout.drain_deadline_seconds) and the unit's stop "
    "timeout outlasts that deadline. With rollout.nomad_token the ACL token is written root-only "
    f"to {TOKEN_HEADER_FILE} as a curl header file, so the local API is asked without the token "
    "ever appearing on a command line.",
    resources=_build_safety_resources,
    circleci_impact="Security updates for the container runtime wait for the next rollout; "
    "everything else still updates unattended.",
    tags=("nomad",),
)

# -- the kernel's cgroup mode ----------------------------------------------------------------------

CGROUP_DROPIN = "/etc/default/grub.d/50-cci-harden-cgroup.cfg"
LEGACY_HIERARCHY = "systemd.unified_cgroup_hierarchy=0"
UNIFIED_HIERARCHY = "systemd.unified_cgroup_hierarchy=1"


def _cgroup_resources(settings: FleetSettings, info: HostInfo):
    if settings.nomad.cgroup_version == "v1":
        wanted: tuple[str, ...] = (LEGACY_HIERARCHY,)
        if release_for(info).cgroup_v1_forced and settings.nomad.allow_deprecated_cgroup_v1:
            wanted += (CGROUP_V1_FORCE,)  # systemd 256+: v1 only when forced
        content = (
            "# Managed by cci-harden (CCI-NMD-08): cgroup v1, as CircleCI's Docker runtime needs\n"
            f'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX {" ".join(wanted)}"\n'
        )
        return [KernelCmdline(CGROUP_DROPIN, content, wanted, (UNIFIED_HIERARCHY,), "v1")]
    return [KernelCmdline(CGROUP_DROPIN, "", (), (LEGACY_HIERARCHY,), "v2")]


CGROUP = Control(
    id="CCI-NMD-08",
    nist=("CM-6", "SC-39"),
    title="The kernel's cgroup mode is the one CircleCI's runtime needs (v1 for Docker)",
    sources=(
        Source("circleci", "Server 4.x installation docs, Nomad clients: CgroupsV2 unsupported"),
        Source(
            "circleci", "server-terraform nomad-gcp startup: systemd.unified_cgroup_hierarchy=0"
        ),
    ),
    rationale="nomad.cgroup_version (default from server.version: v1) goes on the kernel command "
    f"line through a GRUB drop-in ({CGROUP_DROPIN}) and update-grub. It runs from the next boot: "
    "a reboot-class change, which the plain deploy never makes and `cci-harden rollout` makes "
    "after draining the host. Verify reports the configured mode and the running one (stat -f "
    "/sys/fs/cgroup); CCI-DKR-02 reports Docker's (docker info CgroupVersion). v2 removes the "
    "drop-in; "
    "`config check` warns that CircleCI documents it as unsupported for the Docker runtime.",
    resources=_cgroup_resources,
    circleci_impact="The mode CircleCI's Docker-runtime clients are documented to run; on Debian "
    "12, systemd 252 still offers it. On Debian 13, systemd 257 boots v1 only with "
    f"{CGROUP_V1_FORCE} and is removing it: such a host is refused (CCI-TK-03) unless "
    "nomad.allow_deprecated_cgroup_v1 is set, which adds the force flag.",
    testbed="configured on container hosts (their kernel is the machine's); on a VM host booting "
    "through its own GRUB, applied by the rollout's reboot",
    tags=("nomad",),
)

CONTROLS = (CAPACITY, INSTALL, TLS, CONFIG_CONTROL, SERVICE, AGENT, BUILD_SAFETY, CGROUP)
