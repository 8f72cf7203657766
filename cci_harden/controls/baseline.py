"""The OS baseline of a Nomad client: kernel, modules, accounts, files, audit, maintenance.

dev-sec's os-hardening role and CIS Debian are the anchor; every item keeps CircleCI jobs working
(the Docker overlay in the sysctl profile, user namespaces kept on, Docker's modules never
blacklisted). What a container (the test bed) cannot show, a check reports as not verifiable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..model.control import Control, Source
from ..model.kinds import (
    AuditRules,
    ConfigLine,
    Directory,
    ManagedFile,
    Mode,
    NoSetuid,
    Package,
    Service,
    Sysctl,
    SystemAccounts,
)
from ..model.releases import release_for
from .baseline_data import (
    BLACKLISTED_MODULES,
    FILE_MODES,
    LOGIN_DEFS,
    SETUID_REMOVED,
    SYSCTL,
    UNWANTED_PACKAGES,
)

if TYPE_CHECKING:
    from ..config.settings import FleetSettings
    from ..model.hostinfo import HostInfo

SYSCTL_FILE = "/etc/sysctl.d/60-cci-harden.conf"
MODPROBE_FILE = "/etc/modprobe.d/cci-harden.conf"
LIMITS_FILE = "/etc/security/limits.d/10-cci-harden.conf"
COREDUMP_FILE = "/etc/systemd/coredump.conf.d/cci-harden.conf"
JOURNALD_FILE = "/etc/systemd/journald.conf.d/cci-harden.conf"
AUTO_UPGRADES_FILE = "/etc/apt/apt.conf.d/20auto-upgrades"
UNATTENDED_FILE = "/etc/apt/apt.conf.d/52cci-harden-unattended-upgrades"
PWQUALITY_FILE = "/etc/security/pwquality.conf.d/cci-harden.conf"
AUDIT_RULES_FILE = "/etc/audit/rules.d/60-cci-harden.rules"
TIMESYNC_FILE = "/etc/systemd/timesyncd.conf.d/cci-harden.conf"


def _header(control_id: str, why: str, comment: str = "#") -> str:
    return f"{comment} Managed by cci-harden ({control_id}): {why}\n"


# -- CCI-OS-01 sysctl -----------------------------------------------------------------------------


def _sysctl_resources(settings: FleetSettings, info: HostInfo):
    lines = [_header("CCI-OS-01", "kernel and network hardening with Docker's needs kept")]
    for key, value, source in SYSCTL:
        lines.append(f"# {source}\n{key} = {value}\n")
    return [
        ManagedFile(SYSCTL_FILE, "".join(lines)),
        *(
            Sysctl(key, value, SYSCTL_FILE, release_for(info).reads_sysctl_conf)
            for key, value, _source in SYSCTL
        ),
    ]


SYSCTL_PROFILE = Control(
    id="CCI-OS-01",
    nist=("CM-6", "SC-5", "SI-16"),
    title="Kernel and network sysctls hardened, with Docker's overlay",
    sources=(
        Source("dev-sec", "os-hardening sysctl, linux-baseline sysctl-01..33"),
        Source("cis-debian", "1.5, 3.3"),
    ),
    rationale="Redirects, source routing and martians off, ASLR, kernel pointer and dmesg "
    "restrictions, protected links and FIFOs, no SUID core dumps. Persisted in "
    f"{SYSCTL_FILE} and applied at once where the host allows. A later file of the sysctl "
    "directories that sets one of these keys differently would win at boot: verify reports it "
    "and the deploy replaces that line with a comment saying why.",
    resources=_sysctl_resources,
    circleci_impact="ip_forward stays 1 (job containers route through the host) and user "
    "namespaces stay on; IPv6 router advertisements are left alone for dual-stack VPCs",
    testbed="VM host: every key applied, verified and back after a reboot; container host: "
    "network keys verified, kernel-wide keys read-only there and reported as not verifiable",
    tags=("baseline", "kernel"),
)


# -- CCI-OS-02 modules ----------------------------------------------------------------------------


def _modprobe_resources(settings: FleetSettings, info: HostInfo):
    lines = [_header("CCI-OS-02", "filesystems and protocols a Nomad client never loads")]
    for module, source in BLACKLISTED_MODULES:
        lines.append(f"# {source}\ninstall {module} /bin/true\nblacklist {module}\n")
    return [ManagedFile(MODPROBE_FILE, "".join(lines))]


MODULES = Control(
    id="CCI-OS-02",
    nist=("CM-7",),
    title="Unused filesystems and network protocols cannot be loaded",
    sources=(Source("dev-sec", "os-hardening modprobe, linux-baseline os-10"),),
    rationale="A module that is never loaded cannot be exploited through an auto-load.",
    resources=_modprobe_resources,
    circleci_impact="overlay, br_netfilter, veth, vxlan and netfilter modules (Docker's) are "
    "never blacklisted",
    testbed="files verified (on a container host the modules are this machine's kernel's)",
    tags=("baseline", "kernel"),
)


# -- CCI-OS-03 core dumps -------------------------------------------------------------------------


def _coredump_resources(settings: FleetSettings, info: HostInfo):
    return [
        ManagedFile(
            LIMITS_FILE,
            _header("CCI-OS-03", "no core dumps: they can hold secrets")
            + "*    hard    core    0\nroot hard    core    0\n",
        ),
        ManagedFile(
            COREDUMP_FILE,
            _header("CCI-OS-03", "systemd-coredump stores nothing")
            + "[Coredump]\nStorage=none\nProcessSizeMax=0\n",
        ),
    ]


CORE_DUMPS = Control(
    id="CCI-OS-03",
    nist=("CM-6", "SC-4"),
    title="Core dumps are off",
    sources=(
        Source("dev-sec", "os-hardening limits, linux-baseline os-15"),
        Source("cis-debian", "1.5.1"),
    ),
    rationale="A core dump of a process holding job secrets would write them to disk; "
    "fs.suid_dumpable=0 is in CCI-OS-01.",
    resources=_coredump_resources,
    circleci_impact="jobs run in containers with their own limits; a job that wants a core "
    "dump sets it inside its container",
    tags=("baseline",),
)


# -- CCI-OS-04 accounts ---------------------------------------------------------------------------


def _accounts_resources(settings: FleetSettings, info: HostInfo):
    return [
        # libpam-tmpdir: a private $TMPDIR per login session (Lynis DEB-0280)
        Package("libpam-pwquality"),
        Package("libpam-tmpdir"),
        ManagedFile(
            PWQUALITY_FILE,
            _header("CCI-OS-04", "strong passwords, should anyone ever set one")
            + "minlen = 14\ndcredit = -1\nucredit = -1\nlcredit = -1\nocredit = -1\n"
            "maxrepeat = 3\nenforce_for_root\n",
        ),
        *(ConfigLine("/etc/login.defs", key, value) for key, value in LOGIN_DEFS),
        SystemAccounts(),
    ]


ACCOUNTS = Control(
    id="CCI-OS-04",
    nist=("AC-2", "IA-5"),
    title="Password policy and system accounts without shells",
    sources=(
        Source("dev-sec", "os-hardening login_defs, pam; linux-baseline os-05, os-09"),
        Source("cis-debian", "5.4, 5.5"),
    ),
    rationale="login.defs ageing and umask for new accounts, pwquality for any password set, "
    "no login shell and no usable password for system accounts. No pam_faillock: "
    "administrators log in with keys, and a lockout counter would let anyone lock them out "
    "by guessing.",
    resources=_accounts_resources,
    circleci_impact="ageing applies to accounts created from now on; existing accounts, the "
    "deploy user and CircleCI's job users in containers are not touched",
    tags=("baseline", "accounts"),
)


# -- CCI-OS-05 file permissions and setuid ------------------------------------------------------


def _permission_resources(settings: FleetSettings, info: HostInfo):
    resources: list = []
    for path, mode, user, group in FILE_MODES:
        if path.endswith("/"):
            resources.append(Directory(path.rstrip("/"), mode, user, group))
        else:
            resources.append(Mode(path, mode, user, group))
    return [*resources, *(NoSetuid(path) for path in SETUID_REMOVED)]


PERMISSIONS = Control(
    id="CCI-OS-05",
    nist=("AC-6", "CM-6"),
    title="Sensitive files have strict modes; unneeded setuid bits are removed",
    sources=(
        Source("dev-sec", "os-hardening minimize_access, linux-baseline os-02..04, os-06"),
        Source("cis-debian", "5.1, 6.1"),
    ),
    rationale="shadow, cron, sshd and sudoers readable only by who needs them; setuid removed "
    "from chfn, chsh, newgrp and other binaries nobody on a CI host uses.",
    resources=_permission_resources,
    circleci_impact="sudo, su, mount, newuidmap and newgidmap keep setuid: jobs and user "
    "namespaces need them",
    tags=("baseline", "files"),
)


# -- CCI-OS-06 audit ------------------------------------------------------------------------------


def audit_watches(settings: FleetSettings) -> list[tuple[str, str, str, str]]:
    """(path, permissions, key, source): Docker's files (CIS Docker 1.1.3-1.1.18) and Nomad's."""
    from .nomad import binary  # noqa: PLC0415  (nomad imports baseline's neighbours)

    data_dir = str(settings.nomad.data_dir)
    return [
        ("/usr/bin/dockerd", "wa", "cci-docker", "CIS Docker 1.1.3"),
        ("/run/containerd", "wa", "cci-docker", "CIS Docker 1.1.4"),
        ("/var/lib/docker", "wa", "cci-docker", "CIS Docker 1.1.5"),
        ("/etc/docker", "wa", "cci-docker", "CIS Docker 1.1.6"),
        ("/lib/systemd/system/docker.service", "wa", "cci-docker", "CIS Docker 1.1.7"),
        ("/run/containerd/containerd.sock", "wa", "cci-docker", "CIS Docker 1.1.8"),
        ("/lib/systemd/system/docker.socket", "wa", "cci-docker", "CIS Docker 1.1.9"),
        ("/etc/default/docker", "wa", "cci-docker", "CIS Docker 1.1.10"),
        ("/etc/docker/daemon.json", "wa", "cci-docker", "CIS Docker 1.1.12"),
        ("/etc/containerd/config.toml", "wa", "cci-docker", "CIS Docker 1.1.13"),
        ("/usr/bin/containerd", "wa", "cci-docker", "CIS Docker 1.1.14"),
        ("/usr/bin/containerd-shim-runc-v2", "wa", "cci-docker", "CIS Docker 1.1.16"),
        ("/usr/sbin/runc", "wa", "cci-docker", "CIS Docker 1.1.18 (docker.io)"),
        ("/usr/bin/runc", "wa", "cci-docker", "CIS Docker 1.1.18 (docker-ce)"),
        (binary(settings), "wa", "cci-nomad", "Nomad binary"),
        ("/etc/nomad.d", "wa", "cci-nomad", "Nomad configuration"),
        ("/etc/nomad.d/tls", "rwa", "cci-nomad-tls", "Nomad TLS: reads of the key too"),
        (data_dir, "a", "cci-nomad", "Nomad data: attribute changes only (jobs write here)"),
        ("/etc/passwd", "wa", "cci-identity", "CIS 4.1.3.8"),
        ("/etc/shadow", "wa", "cci-identity", "CIS 4.1.3.8"),
        ("/etc/group", "wa", "cci-identity", "CIS 4.1.3.8"),
        ("/etc/sudoers", "wa", "cci-sudoers", "CIS 4.1.3.1"),
        ("/etc/sudoers.d", "wa", "cci-sudoers", "CIS 4.1.3.1"),
        ("/etc/ssh/sshd_config", "wa", "cci-sshd", "toolkit"),
        ("/etc/ssh/sshd_config.d", "wa", "cci-sshd", "toolkit"),
        ("/etc/audit", "wa", "cci-audit", "CIS 4.1.3.19: the audit configuration itself"),
    ]


def audit_rules(settings: FleetSettings) -> str:
    lines = [_header("CCI-OS-06", "who changed Docker, Nomad, identities and this audit")]
    lines.append("# Not immutable (-e 2): the deploy must be able to change these rules.\n")
    lines.append(
        "# A watched path that is absent on this host (docker-ce vs docker.io) is skipped.\n-i\n"
    )
    for path, permissions, key, source in audit_watches(settings):
        lines.append(f"# {source}\n-w {path} -p {permissions} -k {key}\n")
    lines.append(
        "# Auditing on: Debian's auditd leaves the kernel's flag at 0, where loaded rules record "
        "nothing.\n-e 1\n"
    )
    return "".join(lines)


AUDIT_AFTER_RUNTIME = "/etc/systemd/system/cci-harden-audit-runtime.service"
# auditd loads its rules early at boot, before containerd makes its socket: a watch on a path that
# does not exist yet is not loaded. This loads the rules again once the runtime has started.
AUDIT_AFTER_RUNTIME_UNIT = """\
# Managed by cci-harden (CCI-OS-06).
[Unit]
Description=cci-harden: audit watches on what the container runtime makes as it starts
ConditionVirtualization=!container
After=auditd.service containerd.service docker.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/augenrules --load

[Install]
WantedBy=multi-user.target
"""


def _audit_resources(settings: FleetSettings, info: HostInfo):
    rules = ManagedFile(AUDIT_RULES_FILE, audit_rules(settings), mode=0o640, dir_mode=0o750)
    loaded = AuditRules(AUDIT_RULES_FILE, tuple(path for path, *_ in audit_watches(settings)))
    if info.in_container:  # auditd cannot run in a container: the rules wait for a real host
        return [rules, loaded]
    return [
        Package("auditd"),
        rules,
        Service("auditd", container_ok=False),
        ManagedFile(AUDIT_AFTER_RUNTIME, AUDIT_AFTER_RUNTIME_UNIT, daemon_reload=True),
        Service("cci-harden-audit-runtime", container_ok=False),
        loaded,
    ]


AUDIT = Control(
    id="CCI-OS-06",
    nist=("AU-2", "AU-12"),
    title="auditd watches Docker's and Nomad's files, identities and sudoers",
    sources=(
        Source("cis-docker", "1.1.3-1.1.18"),
        Source("dev-sec", "os-hardening auditd"),
        Source("toolkit", "Nomad binary, configuration, data and TLS"),
    ),
    rationale="After an incident the first question is who changed the daemon, its "
    "configuration or the TLS key, and when; auditd answers it. Nomad's data directory is "
    "watched for attribute changes only, as jobs write there all the time. A unit loads the "
    "rules again once containerd and Docker have started at boot: auditd starts first, and a "
    "watch on a socket not made yet would be missing after every reboot.",
    resources=_audit_resources,
    testbed="VM host: watches loaded, auditing on, a change to /etc/docker recorded; container "
    "host: rules file verified, loaded rules not verifiable (auditd cannot run there)",
    tags=("baseline", "audit"),
)


# -- CCI-OS-07 maintenance: unattended upgrades, journald, time --------------------------------


def _unattended_files(settings: FleetSettings, info: HostInfo):
    if info.os_id == "ubuntu":
        origins = (
            "Unattended-Upgrade::Allowed-Origins {\n"
            '    "${distro_id}:${distro_codename}-security";\n'
            '    "${distro_id}ESMApps:${distro_codename}-apps-security";\n'
            "};\n"
        )
    else:
        origins = (
            "Unattended-Upgrade::Origins-Pattern {\n"
            '    "origin=Debian,codename=${distro_codename}-security,label=Debian-Security";\n'
            "};\n"
        )
    return [
        ManagedFile(
            AUTO_UPGRADES_FILE,
            _header("CCI-OS-07", "daily package lists and security upgrades", "//")
            + 'APT::Periodic::Update-Package-Lists "1";\n'
            'APT::Periodic::Unattended-Upgrade "1";\n'
            'APT::Periodic::AutocleanInterval "7";\n',
        ),
        ManagedFile(
            UNATTENDED_FILE,
            _header(
                "CCI-OS-07", "security updates only; pinned components left to the deploy", "//"
            )
            + origins
            + "// Docker and Nomad are pinned by cci-harden and upgraded by a deploy, so that a\n"
            "// running job never loses its daemon to an unattended restart.\n"
            "Unattended-Upgrade::Package-Blacklist {\n"
            '    "docker-ce"; "docker-ce-cli"; "containerd.io"; "docker.io"; "containerd";\n'
            '    "runc"; "nomad";\n'
            "};\n"
            'Unattended-Upgrade::Automatic-Reboot "false";\n'
            'Unattended-Upgrade::Remove-Unused-Dependencies "true";\n'
            'Unattended-Upgrade::SyslogEnable "true";\n',
        ),
    ]


def _journald_files(settings: FleetSettings, info: HostInfo):
    return [
        ManagedFile(
            JOURNALD_FILE,
            _header("CCI-OS-07", "a persistent, bounded journal")
            + "[Journal]\nStorage=persistent\nCompress=yes\nSystemMaxUse=1G\n"
            "SystemKeepFree=2G\nMaxRetentionSec=3month\n",
            reload=("systemd-journald",),
        )
    ]


def _timesync_files(settings: FleetSettings, info: HostInfo):
    servers = " ".join(settings.network.ntp_servers)
    body = f"[Time]\nNTP={servers}\n" if servers else "[Time]\n# distribution's default servers\n"
    reload = () if info.in_container else ("systemd-timesyncd",)
    return [ManagedFile(TIMESYNC_FILE, _header("CCI-OS-07", "clock in sync") + body, reload=reload)]


def _maintenance_resources(settings: FleetSettings, info: HostInfo):
    return [
        # debsums and apt-show-versions: verify installed files, list upgradable versions
        *(
            Package(name)
            for name in ("unattended-upgrades", "systemd-timesyncd", "debsums", "apt-show-versions")
        ),
        *(Package(name, present=False) for name in UNWANTED_PACKAGES),
        Directory("/var/log/journal", 0o2755, "root", "systemd-journal"),
        *_unattended_files(settings, info),
        *_journald_files(settings, info),
        *_timesync_files(settings, info),
        Service("apt-daily-upgrade.timer"),
        Service("apt-daily.timer"),
        Service("systemd-timesyncd", container_ok=False),
    ]


MAINTENANCE = Control(
    id="CCI-OS-07",
    nist=("AU-8", "AU-11", "CM-7", "SI-2"),
    title="Security upgrades unattended, journal persistent, clock synced, unneeded packages gone",
    sources=(
        Source("dev-sec", "os-hardening apt, packages; linux-baseline package-01..08"),
        Source("cis-debian", "1.9, 2.1.1, 2.2, 4.2.2"),
    ),
    rationale="Security updates arrive daily without an `apt-get upgrade` at every boot (which "
    "CircleCI's startup scripts run, and which drifts hosts apart); Docker and Nomad stay "
    "pinned and are upgraded by a deploy. The journal survives reboots and is bounded.",
    resources=_maintenance_resources,
    circleci_impact="Docker, containerd, runc and Nomad are excluded from unattended upgrades, "
    "so a running job never loses its daemon; no automatic reboot",
    testbed="VM host: synchronised from the test bed's NTP server; container host: files "
    "verified, timesyncd not verifiable (it does not run there)",
    tags=("baseline", "maintenance"),
)


CONTROLS = (SYSCTL_PROFILE, MODULES, CORE_DUMPS, ACCOUNTS, PERMISSIONS, AUDIT, MAINTENANCE)
