"""The OS baseline of a Nomad client: kernel, modules, accounts, files, audit, maintenance.

dev-sec's os-hardening role and CIS Debian are the anchor; every item keeps CircleCI jobs working
(the Docker overlay in the sysctl profile, user namespaces kept on, Docker's modules never
blacklisted). What a container (the test bed) cannot show, a check reports as not verifiable.
"""

from __future__ import annotations

import re
import shlex

from .baseline_data import (
    BLACKLISTED_MODULES,
    FILE_MODES,
    LOGIN_DEFS,
    SETUID_REMOVED,
    SYSCTL,
    UNWANTED_PACKAGES,
)
from .model import Applied, Control, DesiredFile, Finding, Probe, Source
from .probes import package_probe, package_version

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


def _will_change(desired: DesiredFile) -> bool:
    """The deploy is about to rewrite ``desired`` (read before it does): restart what reads it."""
    from pyinfra import host
    from pyinfra.facts.files import Sha256File

    return host.get_fact(Sha256File, path=desired.path) != desired.sha256


def _header(control_id: str, why: str, comment: str = "#") -> str:
    return f"{comment} Managed by cci-harden ({control_id}): {why}\n"


def _container_note(info, what: str) -> str:
    return f"host is a container ({info.container}): {what}"


# -- CCI-OS-01 sysctl -----------------------------------------------------------------------------


def _sysctl_files(settings, info):
    lines = [_header("CCI-OS-01", "kernel and network hardening with Docker's needs kept")]
    for key, value, source in SYSCTL:
        lines.append(f"# {source}\n{key} = {value}\n")
    return [DesiredFile(SYSCTL_FILE, "".join(lines))]


def _proc_path(key: str) -> str:
    return "/proc/sys/" + key.replace(".", "/")


# key|rw-or-ro|value, one line per key; "absent" when this kernel has no such key.
SYSCTL_STATE_COMMAND = "; ".join(
    f'p={_proc_path(k)}; if [ -e $p ]; then [ -w $p ] && w=rw || w=ro; echo "{k}|$w|$(cat $p)"; '
    f'else echo "{k}|absent|"; fi'
    for k, _v, _s in SYSCTL
)


def parse_sysctl_state(text: str) -> dict[str, tuple[str, str]]:
    state = {}
    for line in text.splitlines():
        key, _, rest = line.partition("|")
        access, _, value = rest.partition("|")
        state[key] = (access, " ".join(value.split()))
    return state


def _sysctl_apply(settings, info) -> Applied:
    from pyinfra import host
    from pyinfra.facts.server import Command
    from pyinfra.operations import server

    state = parse_sysctl_state(host.get_fact(Command, command=SYSCTL_STATE_COMMAND) or "")
    for key, value, _source in SYSCTL:
        access, current = state.get(key, ("absent", ""))
        if access == "rw" and current != value:  # read-only here: persisted, applied at boot
            server.sysctl(name=f"[CCI-OS-01] {key} = {value}", key=key, value=int(value))
    return Applied()


def _sysctl_check(settings, info, snapshot) -> list[Finding]:
    state = parse_sysctl_state(snapshot.probe("sysctl-state").output)
    findings = []
    for key, value, _source in SYSCTL:
        access, current = state.get(key, ("absent", ""))
        if access == "absent" or current == value:
            continue  # this kernel has no such knob, or it is as desired
        writable = access == "rw"
        findings.append(
            Finding(
                key,
                value,
                current if writable else f"{current} (read-only here: {info.container})",
                verifiable=writable,
            )
        )
    return findings


SYSCTL_PROFILE = Control(
    id="CCI-OS-01",
    title="Kernel and network sysctls hardened, with Docker's overlay",
    sources=(
        Source("dev-sec", "os-hardening sysctl, linux-baseline sysctl-01..33"),
        Source("cis-debian", "1.5, 3.3"),
    ),
    rationale="Redirects, source routing and martians off, ASLR, kernel pointer and dmesg "
    "restrictions, protected links and FIFOs, no SUID core dumps. Persisted in "
    f"{SYSCTL_FILE} and applied at once where the host allows.",
    files=_sysctl_files,
    apply=_sysctl_apply,
    probes=(Probe("sysctl-state", SYSCTL_STATE_COMMAND),),
    check=_sysctl_check,
    circleci_impact="ip_forward stays 1 (job containers route through the host) and user "
    "namespaces stay on; IPv6 router advertisements are left alone for dual-stack VPCs",
    testbed="files verified; network keys applied and verified; kernel-wide keys are read-only "
    "in a container and reported as not verifiable",
    tags=("baseline", "kernel"),
)


# -- CCI-OS-02 modules ----------------------------------------------------------------------------


def _modprobe_files(settings, info):
    lines = [_header("CCI-OS-02", "filesystems and protocols a Nomad client never loads")]
    for module, source in BLACKLISTED_MODULES:
        lines.append(f"# {source}\ninstall {module} /bin/true\nblacklist {module}\n")
    return [DesiredFile(MODPROBE_FILE, "".join(lines))]


MODULES = Control(
    id="CCI-OS-02",
    title="Unused filesystems and network protocols cannot be loaded",
    sources=(Source("dev-sec", "os-hardening modprobe, linux-baseline os-10"),),
    rationale="A module that is never loaded cannot be exploited through an auto-load.",
    files=_modprobe_files,
    circleci_impact="overlay, br_netfilter, veth, vxlan and netfilter modules (Docker's) are "
    "never blacklisted",
    testbed="files verified (modules are the host kernel's)",
    tags=("baseline", "kernel"),
)


# -- CCI-OS-03 core dumps -------------------------------------------------------------------------


def _coredump_files(settings, info):
    return [
        DesiredFile(
            LIMITS_FILE,
            _header("CCI-OS-03", "no core dumps: they can hold secrets")
            + "*    hard    core    0\nroot hard    core    0\n",
        ),
        DesiredFile(
            COREDUMP_FILE,
            _header("CCI-OS-03", "systemd-coredump stores nothing")
            + "[Coredump]\nStorage=none\nProcessSizeMax=0\n",
        ),
    ]


CORE_DUMPS = Control(
    id="CCI-OS-03",
    title="Core dumps are off",
    sources=(
        Source("dev-sec", "os-hardening limits, linux-baseline os-15"),
        Source("cis-debian", "1.5.1"),
    ),
    rationale="A core dump of a process holding job secrets would write them to disk; "
    "fs.suid_dumpable=0 is in CCI-OS-01.",
    files=_coredump_files,
    circleci_impact="jobs run in containers with their own limits; a job that wants a core "
    "dump sets it inside its container",
    tags=("baseline",),
)


# -- CCI-OS-04 accounts ---------------------------------------------------------------------------

LOGIN_DEFS_COMMAND = "grep -E '^({})[[:space:]]' /etc/login.defs".format(
    "|".join(key for key, _ in LOGIN_DEFS)
)
SHELL_ACCOUNTS_COMMAND = (
    'awk -F: \'$3 < 1000 && $1 != "root" && $1 != "sync" && $1 != "shutdown" '
    '&& $1 != "halt" && $7 !~ /(nologin|false)$/ {print $1}\' /etc/passwd'
)


def _accounts_files(settings, info):
    return [
        DesiredFile(
            PWQUALITY_FILE,
            _header("CCI-OS-04", "strong passwords, should anyone ever set one")
            + "minlen = 14\ndcredit = -1\nucredit = -1\nlcredit = -1\nocredit = -1\n"
            "maxrepeat = 3\nenforce_for_root\n",
        )
    ]


def _login_defs(text: str) -> dict[str, str]:
    """KEY -> value; a key set twice to different values reads as both, and fails the check."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            seen = values.get(parts[0])
            values[parts[0]] = parts[1] if seen in (None, parts[1]) else f"{seen} and {parts[1]}"
    return values


def _accounts_apply(settings, info) -> Applied:
    from pyinfra import host
    from pyinfra.facts.server import Command
    from pyinfra.operations import files, server

    for key, value in LOGIN_DEFS:
        files.line(
            name=f"[CCI-OS-04] /etc/login.defs {key} {value}",
            path="/etc/login.defs",
            # POSIX basic regex: pyinfra's grep and sed both read it the same way
            line=rf"^#*{key}[[:space:]]\{{1,\}}[^[:space:]]\{{1,\}}[[:space:]]*$",
            replace=f"{key}\t{value}",
        )
    shells = (host.get_fact(Command, command=SHELL_ACCOUNTS_COMMAND) or "").split()
    for account in shells:
        server.shell(
            name=f"[CCI-OS-04] system account {account} gets no login shell",
            commands=[f"usermod -s /usr/sbin/nologin {shlex.quote(account)}"],
        )
    return Applied()


def _accounts_check(settings, info, snapshot) -> list[Finding]:
    found = _login_defs(snapshot.probe("login-defs").output)
    findings = [
        Finding(f"/etc/login.defs {key}", value, found.get(key, "unset"))
        for key, value in LOGIN_DEFS
        if found.get(key) != value
    ]
    shells = snapshot.probe("shell-accounts").output.split()
    if shells:
        findings.append(Finding("system accounts with a shell", "none", ", ".join(shells)))
    if package_version("libpam-pwquality", snapshot) is None:
        findings.append(Finding("package libpam-pwquality", "installed", "absent"))
    return findings


ACCOUNTS = Control(
    id="CCI-OS-04",
    title="Password policy and system accounts without shells",
    sources=(
        Source("dev-sec", "os-hardening login_defs, pam; linux-baseline os-05, os-09"),
        Source("cis-debian", "5.4, 5.5"),
    ),
    rationale="login.defs ageing and umask for new accounts, pwquality for any password set, "
    "no login shell for system accounts. No pam_faillock: administrators log in with keys, and "
    "a lockout counter would let anyone lock them out by guessing.",
    files=_accounts_files,
    apply=_accounts_apply,
    # libpam-tmpdir: a private $TMPDIR per login session (Lynis DEB-0280)
    packages=lambda settings: ["libpam-pwquality", "libpam-tmpdir"],
    probes=(
        Probe("login-defs", LOGIN_DEFS_COMMAND),
        Probe("shell-accounts", SHELL_ACCOUNTS_COMMAND),
        package_probe("libpam-pwquality"),
    ),
    check=_accounts_check,
    circleci_impact="ageing applies to accounts created from now on; existing accounts, the "
    "deploy user and CircleCI's job users in containers are not touched",
    tags=("baseline", "accounts"),
)


# -- CCI-OS-05 file permissions and setuid ------------------------------------------------------

MODES_COMMAND = "stat -c '%n %a %U %G' {} 2>/dev/null; true".format(
    " ".join(path.rstrip("/") for path, *_ in FILE_MODES)
)
SETUID_COMMAND = 'for f in {}; do [ -u "$f" ] && echo "$f"; done; true'.format(
    " ".join(SETUID_REMOVED)
)


def _modes(text: str) -> dict[str, tuple[int, str, str]]:
    found = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 4:
            found[parts[0]] = (int(parts[1], 8), parts[2], parts[3])
    return found


def _permissions_apply(settings, info) -> Applied:
    from pyinfra import host
    from pyinfra.facts.server import Command
    from pyinfra.operations import files, server

    found = _modes(host.get_fact(Command, command=MODES_COMMAND) or "")
    for path, mode, user, group in FILE_MODES:
        if path.endswith("/"):
            files.directory(
                name=f"[CCI-OS-05] {path} {mode:04o} {user}:{group}",
                path=path.rstrip("/"),
                mode=f"{mode:o}",
                user=user,
                group=group,
            )
        elif path in found and found[path] != (mode, user, group):
            server.shell(
                name=f"[CCI-OS-05] {path} {mode:04o} {user}:{group}",
                commands=[f"chown {user}:{group} {path}", f"chmod {mode:o} {path}"],
            )
    for path in (host.get_fact(Command, command=SETUID_COMMAND) or "").split():
        server.shell(name=f"[CCI-OS-05] no setuid bit on {path}", commands=[f"chmod u-s {path}"])
    return Applied()


def _permissions_check(settings, info, snapshot) -> list[Finding]:
    found = _modes(snapshot.probe("file-modes").output)
    findings = []
    for entry, mode, user, group in FILE_MODES:
        path = entry.rstrip("/")
        if entry.endswith("/") and path not in found:
            findings.append(Finding(path, f"directory {mode:04o} {user}:{group}", "missing"))
        elif path in found and found[path] != (mode, user, group):
            got_mode, got_user, got_group = found[path]
            findings.append(
                Finding(
                    path, f"{mode:04o} {user}:{group}", f"{got_mode:04o} {got_user}:{got_group}"
                )
            )
    for path in snapshot.probe("setuid").output.split():
        findings.append(Finding(path, "no setuid bit", "setuid"))
    return findings


PERMISSIONS = Control(
    id="CCI-OS-05",
    title="Sensitive files have strict modes; unneeded setuid bits are removed",
    sources=(
        Source("dev-sec", "os-hardening minimize_access, linux-baseline os-02..04, os-06"),
        Source("cis-debian", "5.1, 6.1"),
    ),
    rationale="shadow, cron, sshd and sudoers readable only by who needs them; setuid removed "
    "from chfn, chsh, newgrp and other binaries nobody on a CI host uses.",
    apply=_permissions_apply,
    probes=(Probe("file-modes", MODES_COMMAND), Probe("setuid", SETUID_COMMAND)),
    check=_permissions_check,
    circleci_impact="sudo, su, mount, newuidmap and newgidmap keep setuid: jobs and user "
    "namespaces need them",
    tags=("baseline", "files"),
)


# -- CCI-OS-06 audit ------------------------------------------------------------------------------


def audit_watches(settings) -> list[tuple[str, str, str, str]]:
    """(path, permissions, key, source): Docker's files (CIS Docker 1.1.3-1.1.18) and Nomad's."""
    from .nomad import binary

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


def audit_rules(settings) -> str:
    lines = [_header("CCI-OS-06", "who changed Docker, Nomad, identities and this audit")]
    lines.append("# Not immutable (-e 2): the deploy must be able to change these rules.\n")
    lines.append(
        "# A watched path that is absent on this host (docker-ce vs docker.io) is skipped.\n-i\n"
    )
    for path, permissions, key, source in audit_watches(settings):
        lines.append(f"# {source}\n-w {path} -p {permissions} -k {key}\n")
    return "".join(lines)


def _audit_files(settings, info):
    return [DesiredFile(AUDIT_RULES_FILE, audit_rules(settings), mode=0o640, dir_mode=0o750)]


def _audit_apply(settings, info) -> Applied:
    from pyinfra.operations import server, systemd

    from ..deploy import ensure_packages

    if info.in_container:  # auditd cannot run in a container: the rules wait for a real host
        return Applied()
    from pyinfra import host
    from pyinfra.facts.server import Command

    ensure_packages("CCI-OS-06", ["auditd"])
    systemd.service(
        name="[CCI-OS-06] auditd enabled and running", service="auditd", running=True, enabled=True
    )
    (rules,) = _audit_files(settings, info)
    pending = host.get_fact(Command, command="augenrules --check 2>&1 || true") or ""
    if _will_change(rules) or "No change" not in pending:
        server.shell(name="[CCI-OS-06] load the audit rules", commands=["augenrules --load"])
    return Applied()


def _audit_probes(settings) -> tuple[Probe, ...]:
    paths = " ".join(shlex.quote(path) for path, *_ in audit_watches(settings))
    return (
        package_probe("auditd"),
        # The rules file skips (-i) a watch whose path this host lacks: expect only the others.
        Probe("audit-present", f'for p in {paths}; do [ -e "$p" ] && echo "$p"; done; true'),
        Probe("audit-loaded", "auditctl -l 2>&1 | grep 'key=cci-\\|-k cci-'; true"),
    )


def loaded_watch_paths(text: str) -> set[str]:
    """Paths of loaded watches, as `-w PATH` or as the syscall rule auditctl may list instead."""
    paths = set()
    for line in text.splitlines():
        match = re.search(r"(?:^-w |-F (?:dir|path)=)(\S+)", line)
        if match:
            paths.add(match.group(1).rstrip("/"))
    return paths


def _audit_check(settings, info, snapshot) -> list[Finding]:
    if info.in_container:
        return [
            Finding(
                "audit rules loaded in the kernel",
                "the rules of " + AUDIT_RULES_FILE,
                f"not checkable: {_container_note(info, 'auditd cannot run in it')}",
                verifiable=False,
            )
        ]
    findings = []
    if package_version("auditd", snapshot) is None:
        findings.append(Finding("package auditd", "installed", "absent"))
    present = set(snapshot.probe("audit-present").output.split())
    missing = sorted(present - loaded_watch_paths(snapshot.probe("audit-loaded").output))
    if missing:
        findings.append(
            Finding(
                "audit watches loaded (key=cci-*)", "every watched path present", ", ".join(missing)
            )
        )
    return findings


AUDIT = Control(
    id="CCI-OS-06",
    title="auditd watches Docker's and Nomad's files, identities and sudoers",
    sources=(
        Source("cis-docker", "1.1.3-1.1.18"),
        Source("dev-sec", "os-hardening auditd"),
        Source("toolkit", "Nomad binary, configuration, data and TLS"),
    ),
    rationale="After an incident the first question is who changed the daemon, its "
    "configuration or the TLS key, and when; auditd answers it. Nomad's data directory is "
    "watched for attribute changes only, as jobs write there all the time.",
    files=_audit_files,
    apply=_audit_apply,
    probes=_audit_probes,
    check=_audit_check,
    testbed="rules file verified; auditd cannot run in a container: loaded rules reported as "
    "not verifiable",
    tags=("baseline", "audit"),
)


# -- CCI-OS-07 maintenance: unattended upgrades, journald, time --------------------------------


def _unattended_files(settings, info):
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
        DesiredFile(
            AUTO_UPGRADES_FILE,
            _header("CCI-OS-07", "daily package lists and security upgrades", "//")
            + 'APT::Periodic::Update-Package-Lists "1";\n'
            'APT::Periodic::Unattended-Upgrade "1";\n'
            'APT::Periodic::AutocleanInterval "7";\n',
        ),
        DesiredFile(
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


def _journald_files(settings, info):
    return [
        DesiredFile(
            JOURNALD_FILE,
            _header("CCI-OS-07", "a persistent, bounded journal")
            + "[Journal]\nStorage=persistent\nCompress=yes\nSystemMaxUse=1G\n"
            "SystemKeepFree=2G\nMaxRetentionSec=3month\n",
        )
    ]


def _timesync_files(settings, info):
    servers = " ".join(settings.network.ntp_servers)
    body = f"[Time]\nNTP={servers}\n" if servers else "[Time]\n# distribution's default servers\n"
    return [DesiredFile(TIMESYNC_FILE, _header("CCI-OS-07", "clock in sync") + body)]


def _maintenance_files(settings, info):
    return [
        *_unattended_files(settings, info),
        *_journald_files(settings, info),
        *_timesync_files(settings, info),
    ]


def _maintenance_apply(settings, info) -> Applied:
    from pyinfra.operations import apt, files, systemd

    (journald,) = _journald_files(settings, info)
    (timesync,) = _timesync_files(settings, info)
    files.directory(
        name="[CCI-OS-07] persistent journal directory",
        path="/var/log/journal",
        user="root",
        group="systemd-journal",
        mode="2755",
    )
    apt.packages(
        name=f"[CCI-OS-07] remove {', '.join(UNWANTED_PACKAGES)}",
        packages=list(UNWANTED_PACKAGES),
        present=False,
    )
    if _will_change(journald):  # a static unit: restarted when its drop-in changes, not enabled
        systemd.service(
            name="[CCI-OS-07] restart systemd-journald (its drop-in changed)",
            service="systemd-journald",
            restarted=True,
        )
    systemd.service(
        name="[CCI-OS-07] apt-daily-upgrade.timer enabled",
        service="apt-daily-upgrade.timer",
        enabled=True,
        running=True,
    )
    if not info.in_container:  # timesyncd will not run in a container (ConditionVirtualization)
        systemd.service(
            name="[CCI-OS-07] systemd-timesyncd enabled and running",
            service="systemd-timesyncd",
            enabled=True,
            running=True,
        )
        if _will_change(timesync):
            systemd.service(
                name="[CCI-OS-07] restart systemd-timesyncd (its drop-in changed)",
                service="systemd-timesyncd",
                restarted=True,
            )
    return Applied()


MAINTENANCE_COMMAND = (
    "test -d /var/log/journal && echo journal=persistent || echo journal=volatile; "
    "echo timer=$(systemctl is-enabled apt-daily-upgrade.timer 2>&1); "
    "echo timesync=$(systemctl is-active systemd-timesyncd 2>&1); "
    "echo unwanted=$(dpkg-query -W -f '${Package}:${Status}\\n' "
    + " ".join(UNWANTED_PACKAGES)
    + " 2>/dev/null | awk -F: '$2 ~ / installed$/ {printf \"%s \", $1}')"
)


def _maintenance_check(settings, info, snapshot) -> list[Finding]:
    state = dict(
        line.split("=", 1)
        for line in snapshot.probe("maintenance").output.splitlines()
        if "=" in line
    )
    findings = []
    if package_version("unattended-upgrades", snapshot) is None:
        findings.append(Finding("package unattended-upgrades", "installed", "absent"))
    if state.get("journal") != "persistent":
        findings.append(Finding("/var/log/journal", "present (persistent journal)", "absent"))
    if state.get("timer") != "enabled":
        findings.append(Finding("apt-daily-upgrade.timer", "enabled", state.get("timer", "?")))
    if state.get("unwanted", "").strip():
        findings.append(Finding("unneeded packages", "none installed", state["unwanted"].strip()))
    if state.get("timesync") != "active":
        findings.append(
            Finding(
                "systemd-timesyncd",
                "active",
                state.get("timesync", "?")
                + (
                    f" (not checkable: {_container_note(info, 'timesyncd does not run in it')})"
                    if info.in_container
                    else ""
                ),
                verifiable=not info.in_container,
            )
        )
    return findings


MAINTENANCE = Control(
    id="CCI-OS-07",
    title="Security upgrades unattended, journal persistent, clock synced, unneeded packages gone",
    sources=(
        Source("dev-sec", "os-hardening apt, packages; linux-baseline package-01..08"),
        Source("cis-debian", "1.9, 2.1.1, 2.2, 4.2.2"),
    ),
    rationale="Security updates arrive daily without an `apt-get upgrade` at every boot (which "
    "CircleCI's startup scripts run, and which drifts hosts apart); Docker and Nomad stay "
    "pinned and are upgraded by a deploy. The journal survives reboots and is bounded.",
    files=_maintenance_files,
    apply=_maintenance_apply,
    # debsums and apt-show-versions: verify installed files, list upgradable versions
    packages=lambda settings: [
        "unattended-upgrades",
        "systemd-timesyncd",
        "debsums",
        "apt-show-versions",
    ],
    probes=(
        Probe("maintenance", MAINTENANCE_COMMAND),
        package_probe("unattended-upgrades"),
    ),
    check=_maintenance_check,
    circleci_impact="Docker, containerd, runc and Nomad are excluded from unattended upgrades, "
    "so a running job never loses its daemon; no automatic reboot",
    testbed="verified; timesyncd does not run in a container: reported as not verifiable",
    tags=("baseline", "maintenance"),
)


CONTROLS = (SYSCTL_PROFILE, MODULES, CORE_DUMPS, ACCOUNTS, PERMISSIONS, AUDIT, MAINTENANCE)
