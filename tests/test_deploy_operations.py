"""The deploy's operations per resource kind, without a host: (resource, recorded state,
settings) -> the exact operations and commands, or none and why.

Each case runs the deploy's own decision (``apply.deploy.converge_host``) and pyinfra's real
operations in pyinfra's API mode against ``RecordedHost``, a stand-in that answers fact commands
from recorded output (``tests/recorded_deploy.py``). The state the toolkit reads is the snapshot a
test host printed after a deploy (``fixtures/gather-converged-tb1.json``), or one kind's output
with one drift in it; where pyinfra's own operations read a fact, the case records that output
too (``dpkg -l``, a file's ``stat``, a ``grep`` of the line). Shape of pyinfra's operation tests:
small cases, exact commands, and the no-op reason when there is nothing to do.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
import subprocess
from dataclasses import dataclass, field

import pytest

from cci_harden import controls as catalogue
from cci_harden.apply import operations, release, sshd
from cci_harden.apply.deploy import NOT_REPAIRABLE
from cci_harden.config.settings import load_settings
from cci_harden.model import kinds as k
from cci_harden.model.disruption import host_disruptions
from cci_harden.model.hostinfo import HostInfo
from cci_harden.model.kinds.manifest import ManifestEntry
from cci_harden.model.kinds.recovery import PackageSystem, StagedFiles
from cci_harden.model.plan import ControlPlan
from cci_harden.model.resource import REGISTRY, Resource
from cci_harden.model.verdict import acting, evaluate, plan_verdicts
from cci_harden.model.waivers import Waiver

from .conftest import REPO
from .recorded import CONTAINER, RECORDED, VM
from .recorded_deploy import HOST_NAME, DeployResult, deploy_operations, snapshot_of

SETTINGS = load_settings(REPO / "inventories" / "prod")
STAMP = re.compile(r"\.[0-9]{10}\b")  # pyinfra's sed backup suffix is the time of the run

HELLO_SHA = hashlib.sha256(b"hello\n").hexdigest()
APT = '-o Dpkg::Options::="--force-confdef" -o Dpkg::Options::="--force-confold"'
OUR_APT = "-o DPkg::Lock::Timeout=300 -o Acquire::Retries=3"
REFRESH = (
    "refresh apt package lists",
    [
        "deadline=$(( $(date +%s) + 300 )); until timeout 90 apt-get update -q -o "
        'Acquire::Retries=3; do [ "$(date +%s)" -lt "$deadline" ] || exit 1; echo '
        "'cci-harden: apt-get update failed; trying again in 10 s' >&2; sleep 10; done"
    ],
)
MANIFEST = "/var/lib/cci-harden/managed/nomad.json"
SSHD_DROPIN = "/etc/ssh/sshd_config.d/00-cci-harden.conf"
NOMAD_KEY = "C874011F0AB405110D02105534365D9472D7468F"


def staged(path: str, content: str, mode: str = "644", make_dir: str = "") -> list[str]:
    """What ``managed_file`` runs to put new content in place (no validator)."""
    directory = path.rsplit("/", 1)[0]
    return [
        make_dir or f"mkdir -p {directory}",
        f"upload {path}.cci-new <<{content}>>",
        f"chown root:root {path}.cci-new",
        f"chmod {mode} {path}.cci-new",
        f"sync -- {path}.cci-new",
        f"mv -f {path}.cci-new {path}",
    ]


def restarted(unit: str) -> list[str]:
    return [f"systemctl reset-failed {unit}", f"systemctl restart {unit}"]


def manifest_text(*rows: dict) -> str:
    return f"@@{MANIFEST}\n" + json.dumps({"format": 1, "managed": list(rows)}, indent=1) + "\n"


@dataclass
class Case:
    id: str
    control: str
    resources: tuple[Resource, ...]
    outputs: dict[str, str] = field(default_factory=dict)  # kind -> its drifted gather output
    operations: list[tuple[str, list[str]]] = field(default_factory=list)  # (name, commands)
    left: dict[str, str] = field(default_factory=dict)  # resource id -> why left as it is
    facts: dict[str, str] = field(default_factory=dict)  # what pyinfra's own facts read
    info: HostInfo = CONTAINER
    stage: str = ""
    local: bool = False
    waivers: tuple[Waiver, ...] = ()


CASES = [
    # -- files --------------------------------------------------------------------------------
    Case(
        "file-content-differs",
        "CCI-SSH-01",
        (k.ManagedFile("/etc/issue", "hello\n"),),
        operations=[("[CCI-SSH-01] /etc/issue", staged("/etc/issue", "hello\n"))],
    ),
    Case(
        "file-only-mode-differs-fixed-in-place",
        "CCI-SSH-01",
        (k.ManagedFile("/etc/issue", "hello\n", mode=0o600),),
        {"file": f"regular file|644|root|root|/etc/issue\n@@sha256\n{HELLO_SHA}  /etc/issue\n"},
        [("[CCI-SSH-01] /etc/issue", ["chown root:root /etc/issue", "chmod 600 /etc/issue"])],
    ),
    Case(
        "file-as-desired",
        "CCI-SSH-01",
        (k.ManagedFile("/etc/issue", "hello\n"),),
        {"file": f"regular file|644|root|root|/etc/issue\n@@sha256\n{HELLO_SHA}  /etc/issue\n"},
        left={"file:/etc/issue": "as desired"},
    ),
    Case(
        "file-that-must-go",
        "CCI-OS-03",
        (k.ManagedFile("/etc/issue", present=False),),
        operations=[("[CCI-OS-03] /etc/issue absent", ["rm -f -- /etc/issue"])],
    ),
    Case(
        "file-validated-before-it-replaces-the-old-and-its-unit-restarted",
        "CCI-DKR-01",
        (
            k.ManagedFile(
                "/etc/docker/daemon.json",
                "{}\n",
                validate="python3 -m json.tool {path}",
                reload=("docker",),
            ),
        ),
        operations=[
            (
                "[CCI-DKR-01] /etc/docker/daemon.json",
                [
                    *staged("/etc/docker/daemon.json", "{}\n")[:4],
                    "if ! python3 -m json.tool /etc/docker/daemon.json.cci-new; then rm -f "
                    "/etc/docker/daemon.json.cci-new; echo 'cci-harden: refusing "
                    "/etc/docker/daemon.json: python3 -m json.tool "
                    "/etc/docker/daemon.json.cci-new failed' >&2; exit 1; fi",
                    *staged("/etc/docker/daemon.json", "{}\n")[4:],
                ],
            ),
            # live-restore is turned on in the running daemon first, so containers outlive it
            (
                "[CCI-DKR-01] restart docker (/etc/docker/daemon.json changed)",
                ["systemctl reload docker 2>/dev/null || true", *restarted("docker")],
            ),
        ],
    ),
    Case(
        "file-in-an-image-is-written-and-nothing-restarts",
        "CCI-DKR-01",
        (k.ManagedFile("/etc/docker/daemon.json", "{}\n", reload=("docker",)),),
        operations=[
            ("[CCI-DKR-01] /etc/docker/daemon.json", staged("/etc/docker/daemon.json", "{}\n"))
        ],
        stage="image",
    ),
    Case(
        "file-waived-is-left-in-place",
        "CCI-SSH-01",
        (k.ManagedFile("/etc/issue", "hello\n"),),
        left={"file:/etc/issue": "waived"},
        waivers=(
            Waiver(
                control="CCI-SSH-01",
                hosts=["recorded-host"],
                justification="the site's own banner, approved by security",
                owner="security@example.com",
                expires=dt.date(2099, 1, 1),
            ),
        ),
    ),
    Case(
        "directory-mode-only-chmod",
        "CCI-OS-07",
        (k.Directory("/var/log/journal", 0o2755, "root", "systemd-journal"),),
        {"directory": "directory|2777|root|systemd-journal|/var/log/journal\n"},
        [
            (
                "[CCI-OS-07] /var/log/journal 2755 root:systemd-journal",
                ["chmod 2755 /var/log/journal"],
            )
        ],
        facts={
            "/var/log/journal": "user=root group=systemd-journal mode=drwxrwsrwx atime=1 mtime=1 "
            "ctime=1 size=4096 '/var/log/journal'"
        },
    ),
    Case(
        "mode-bits-dropped-and-owner-set",
        "CCI-DKR-04",
        (k.Mode("/run/docker.sock", 0o660, "root", "docker"),),
        {"mode": "socket|666|root|docker|/run/docker.sock\n"},
        [
            ("[CCI-DKR-04] /run/docker.sock at most 0660", ["chmod 660 /run/docker.sock"]),
            (
                "[CCI-DKR-04] /run/docker.sock owned by root:docker",
                ["chown root:docker /run/docker.sock"],
            ),
        ],
    ),
    Case(
        "setuid-bit-removed",
        "CCI-OS-05",
        (k.NoSetuid("/usr/bin/newgrp"),),
        {"setuid": "regular file|4755|root|root|/usr/bin/newgrp\n"},
        [
            (
                "[CCI-OS-05] no setuid/setgid bit on /usr/bin/newgrp",
                ["chmod u-s,g-s /usr/bin/newgrp"],
            )
        ],
    ),
    Case(
        "staged-copies-of-a-cut-off-run-removed",
        "CCI-TK-02",
        (StagedFiles(("/etc/ssh/sshd_config.d",)),),
        {"staged-files": f"{SSHD_DROPIN}.cci-new\n"},
        [
            (
                f"[CCI-TK-02] {SSHD_DROPIN}.cci-new: left by an interrupted run",
                [f"rm -f -- {SSHD_DROPIN}.cci-new"],
            )
        ],
    ),
    # -- sshd ---------------------------------------------------------------------------------
    Case(
        "sshd-dropin-guarded-by-sshd-t-and-a-fresh-login",
        "CCI-SSH-01",
        (k.ManagedFile(SSHD_DROPIN, "MaxAuthTries 3\n", mode=0o600, guard="sshd"),),
        operations=[
            (
                f"[CCI-SSH-01] {SSHD_DROPIN} (sshd -t, reload, fresh login)",
                [
                    *staged(SSHD_DROPIN, "MaxAuthTries 3\n", "600")[:4],
                    f"if [ -f {SSHD_DROPIN} ]; then cp -p {SSHD_DROPIN} {SSHD_DROPIN}.cci-previous;"
                    f" rm -f {SSHD_DROPIN}.cci-absent; else touch {SSHD_DROPIN}.cci-absent; fi",
                    *staged(SSHD_DROPIN, "MaxAuthTries 3\n", "600")[4:],
                    "@sshd -t",  # the rest of the line puts the old file back on refusal
                    "systemctl reload-or-restart ssh 2>/dev/null || "
                    "systemctl reload-or-restart sshd",
                    "python _guard",  # a fresh login through the reloaded sshd, else revert
                    f"rm -f {SSHD_DROPIN}.cci-absent",
                ],
            )
        ],
    ),
    Case(
        "sshd-effective-settings-are-reported-not-repaired",
        "CCI-SSH-01",
        (k.SshdEffective((("maxauthtries", "4"),)),),
        left={"sshd-effective:sshd": NOT_REPAIRABLE},
    ),
    # -- kernel -------------------------------------------------------------------------------
    Case(
        "sysctl-override-commented-out-and-value-set-now",
        "CCI-OS-01",
        (k.Sysctl("net.ipv4.conf.all.send_redirects", "0", "/etc/sysctl.d/60-cci-harden.conf"),),
        {
            "sysctl": "net.ipv4.conf.all.send_redirects|rw|1\n@@files\n"
            "/etc/sysctl.d/60-cci-harden.conf:net.ipv4.conf.all.send_redirects = 0\n"
            "/etc/sysctl.d/99-zz-local.conf:net.ipv4.conf.all.send_redirects = 1\n"
        },
        [
            (
                "[CCI-OS-01] net.ipv4.conf.all.send_redirects no longer overridden by "
                "/etc/sysctl.d/99-zz-local.conf (1)",
                [
                    "sed -i.STAMP 's/^[[:space:]]*-\\{0,1\\}net[.]ipv4[.]conf[.]all[.]"
                    "send_redirects[[:space:]]*=.*$/# net.ipv4.conf.all.send_redirects: disabled"
                    " by cci-harden (CCI-OS-01), see \\/etc\\/sysctl.d\\/60-cci-harden.conf/' "
                    "/etc/sysctl.d/99-zz-local.conf && rm -f /etc/sysctl.d/99-zz-local.conf.STAMP"
                ],
            ),
            (
                "[CCI-OS-01] net.ipv4.conf.all.send_redirects = 0 now",
                ["sysctl net.ipv4.conf.all.send_redirects=0"],
            ),
        ],
        facts={"99-zz-local.conf": "net.ipv4.conf.all.send_redirects = 1"},
    ),
    Case(
        "sysctl-a-container-cannot-set-is-left-to-verify",
        "CCI-OS-01",
        (k.Sysctl("kernel.kptr_restrict", "2", "/etc/sysctl.d/60-cci-harden.conf"),),
        left={"sysctl:kernel.kptr_restrict": "not verifiable here"},
    ),
    Case(
        "audit-rules-loaded-on-a-vm",
        "CCI-OS-06",
        (),  # the control's own resource, below
        operations=[
            (
                "[CCI-OS-06] load the audit rules of /etc/audit/rules.d/60-cci-harden.rules",
                ["augenrules --load"],
            )
        ],
        info=VM,
    ),
    Case(
        "audit-rules-not-loaded-in-a-container",
        "CCI-OS-06",
        (),
        left={"audit-rules:/etc/audit/rules.d/60-cci-harden.rules": "not verifiable here"},
    ),
    Case(
        "kernel-command-line-dropin-and-update-grub-no-reboot",
        "CCI-NMD-08",
        (),
        {
            "kernel-cmdline": "@@/etc/default/grub.d/50-cci-harden-cgroup.cfg\n@@cmdline\n"
            "BOOT_IMAGE=/boot/vmlinuz root=/dev/vda1 ro quiet\n@@cgroup\ncgroup2fs\n"
            "@@grub\n/usr/sbin/update-grub\n@@container\nnone\n"
        },
        [
            (
                "[CCI-NMD-08] /etc/default/grub.d/50-cci-harden-cgroup.cfg "
                "(systemd.unified_cgroup_hierarchy=0)",
                staged(
                    "/etc/default/grub.d/50-cci-harden-cgroup.cfg",
                    "# Managed by cci-harden (CCI-NMD-08): cgroup v1, as CircleCI's Docker runtime"
                    ' needs\nGRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX '
                    'systemd.unified_cgroup_hierarchy=0"\n',
                    make_dir="install -d -o root -g root -m 755 /etc/default/grub.d",
                ),
            ),
            ("[CCI-NMD-08] update-grub (kernel command line)", ["update-grub"]),
        ],
        info=VM,
    ),
    Case(
        "kernel-command-line-of-a-container-is-not-the-deploys",
        "CCI-NMD-08",
        (),
        left={"kernel-cmdline:/etc/default/grub.d/50-cci-harden-cgroup.cfg": "not verifiable here"},
    ),
    # -- packages and services ------------------------------------------------------------------
    Case(
        "package-missing-lists-refreshed-once-then-installed",
        "CCI-OS-04",
        (k.Package("libpam-tmpdir"),),
        {"package": "libpam-tmpdir|un |\n"},
        [
            (f"[CCI-OS-04] {REFRESH[0]}", REFRESH[1]),
            (
                "[CCI-OS-04] install libpam-tmpdir",
                [
                    f"DEBIAN_FRONTEND=noninteractive apt-get -y {APT} install "
                    f"--no-install-recommends {OUR_APT} libpam-tmpdir"
                ],
            ),
        ],
    ),
    Case(
        "package-pinned-upgraded-and-its-daemon-restarted",
        "CCI-DKR-02",
        (k.Package("docker-ce", "5:27.3.1-1~debian.12~bookworm", reload=("docker",)),),
        {"package": "docker-ce|ii |5:27.0.0-1~debian.12~bookworm\n"},
        [
            (f"[CCI-DKR-02] {REFRESH[0]}", REFRESH[1]),
            (
                "[CCI-DKR-02] install docker-ce=5:27.3.1-1~debian.12~bookworm",
                [
                    f"DEBIAN_FRONTEND=noninteractive apt-get -y {APT} install "
                    f"--no-install-recommends {OUR_APT} 'docker-ce=5:27.3.1-1~debian.12~bookworm'"
                ],
            ),
            (
                "[CCI-DKR-02] restart docker (package docker-ce changed)",
                ["systemctl reload docker 2>/dev/null || true", *restarted("docker")],
            ),
        ],
        facts={"dpkg -l": "ii  docker-ce  5:27.0.0-1~debian.12~bookworm  amd64  Docker"},
    ),
    Case(
        "package-that-must-go-removed",
        "CCI-OS-04",
        (k.Package("nis", present=False),),
        {"package": "nis|ii |3.17\n"},
        [
            (
                "[CCI-OS-04] remove nis",
                [f"DEBIAN_FRONTEND=noninteractive apt-get -y {APT} remove {OUR_APT} nis"],
            )
        ],
        facts={"dpkg -l": "ii  nis  3.17  amd64  NIS"},
    ),
    Case(
        "package-as-desired",
        "CCI-OS-07",
        (k.Package("unattended-upgrades"),),
        left={"package:unattended-upgrades": "as desired"},
    ),
    Case(
        "service-stopped-is-started",
        "CCI-NMD-05",
        (k.Service("nomad"),),
        {
            "service": "Id=nomad.service\nLoadState=loaded\nActiveState=inactive\n"
            "UnitFileState=enabled\n"
        },  # fmt: skip
        [("[CCI-NMD-05] nomad enabled and running", ["systemctl start nomad.service"])],
    ),
    Case(
        "service-masked-by-hand-is-unmasked-enabled-and-started",
        "CCI-OS-07",
        (k.Service("apt-daily-upgrade.timer"),),
        {
            "service": "Id=apt-daily-upgrade.timer\nLoadState=masked\nActiveState=inactive\n"
            "UnitFileState=masked\n"
        },
        [
            (
                "[CCI-OS-07] apt-daily-upgrade.timer unmasked",
                ["systemctl unmask apt-daily-upgrade.timer"],
            ),
            (
                "[CCI-OS-07] apt-daily-upgrade.timer enabled and running",
                [
                    "systemctl start apt-daily-upgrade.timer",
                    "systemctl enable apt-daily-upgrade.timer",
                ],
            ),
        ],
    ),
    Case(
        "service-as-desired-gets-no-operation",
        "CCI-NMD-05",
        (k.Service("nomad"),),
    ),
    Case(
        "dpkg-interrupted-run-finished-before-anything-else",
        "CCI-TK-02",
        (PackageSystem(),),
        {"dpkg": "@@journal\n3\n@@audit\n@@lock\n"},
        [
            (
                "[CCI-TK-02] finish an interrupted dpkg run (configure, reinstall, repair)",
                [
                    "@until dpkg --force-confold --configure -a",
                    "@apt-get -y -q -o DPkg::Lock::Timeout=300 -o Acquire::Retries=3 -o "
                    "Dpkg::Options::=--force-confold install --reinstall $broken",
                    "DEBIAN_FRONTEND=noninteractive dpkg --force-confold --configure -a",
                    "DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=300 -o "
                    "Acquire::Retries=3 -o Dpkg::Options::=--force-confold -f install",
                ],
            )
        ],
    ),
    Case(
        "system-accounts-shell-and-password",
        "CCI-OS-04",
        (k.SystemAccounts(),),
        {
            "accounts": "@@uid<1000\nroot|/bin/bash|*\ndaemon|/bin/bash|*\n"
            "sshd|/usr/sbin/nologin|P\n"
        },
        [
            (
                "[CCI-OS-04] system account daemon gets no login shell",
                ["usermod -s /usr/sbin/nologin daemon"],
            ),
            ("[CCI-OS-04] system account sshd: password locked", ["usermod -L sshd"]),
        ],
    ),
    Case(
        "config-line-replaced-where-it-stands",
        "CCI-OS-04",
        (k.ConfigLine("/etc/login.defs", "UMASK", "027"),),
        {"config-line": "@@/etc/login.defs\nUMASK\t022\n"},
        [
            (
                "[CCI-OS-04] /etc/login.defs UMASK 027",
                [
                    "sed -i.STAMP 's/^#*UMASK[[:space:]]\\{1,\\}[^[:space:]]\\{1,\\}[[:space:]]*$/"
                    "UMASK\t027/' /etc/login.defs && rm -f /etc/login.defs.STAMP"
                ],
            )
        ],
        facts={"/etc/login.defs": "UMASK\t\t022"},
    ),
    # -- network ------------------------------------------------------------------------------
    Case(
        "firewall-table-drifted-is-reloaded-by-its-unit",
        "CCI-NET-01",
        (k.NftTable("ingress", "cci-harden-firewall"),),
        {"nft-table": "@@ingress\nabc\nloaded def\nchanged\npresent\n"},
        [
            (
                "[CCI-NET-01] restart cci-harden-firewall (table cci_ingress drifted)",
                restarted("cci-harden-firewall"),
            )
        ],
    ),
    Case(
        "a-stray-listener-is-never-stopped",
        "CCI-NET-04",
        (k.Listeners((("tcp", 22, 22),)),),
        {"listeners": 'tcp LISTEN 0 128 0.0.0.0:6000 0.0.0.0:* users:(("x",pid=1,fd=3))\n'},
        left={"listeners:network": NOT_REPAIRABLE},
    ),
    # -- runtime: Docker, Nomad, the host itself -----------------------------------------------
    Case(
        "dockerd-without-our-seccomp-profile-restarted",
        "CCI-DKR-01",
        (k.DockerRuntime("/etc/docker/seccomp/circleci.json"),),
        {
            "docker-runtime": '{"SecurityOptions": ["name=seccomp,profile=default"], '
            '"LiveRestoreEnabled": true, "DockerRootDir": "/var/lib/docker/100000.100000", '
            '"Driver": "vfs", "ServerVersion": "20.10.24", "CgroupVersion": "1"}\n@@rc 0'
        },
        [
            (
                "[CCI-DKR-01] restart docker (dockerd runs with another configuration)",
                ["systemctl reload docker 2>/dev/null || true", *restarted("docker")],
            )
        ],
    ),
    Case(
        "nomad-release-installed-verified-then-restarted",
        "CCI-NMD-02",
        (k.NomadRelease("1.7.7", "https://releases.example.invalid/nomad", "amd64", NOMAD_KEY),),
        operations=[
            (
                "[CCI-NMD-02] Nomad 1.7.7: signature, checksum, install",
                [
                    release.install_script(
                        "https://releases.example.invalid/nomad", "1.7.7", "amd64", NOMAD_KEY
                    )
                ],
            ),
            ("[CCI-NMD-02] restart nomad (its binary changed)", restarted("nomad")),
        ],
    ),
    Case(
        "nomad-agent-unhealthy-is-reported",
        "CCI-NMD-05",
        (k.NomadHealth(),),
        {"nomad-health": "nomad: not found\n"},
        left={"nomad-health:agent": NOT_REPAIRABLE},
    ),
    Case(
        "certificate-expiring-is-reported",
        "CCI-NMD-06",
        (
            k.CertificateExpiry(
                "/etc/nomad.d/tls/client.pem",
                dt.datetime.now(dt.UTC) + dt.timedelta(days=3),
                30,
            ),
        ),
        left={"cert-expiry:/etc/nomad.d/tls/client.pem": NOT_REPAIRABLE},
    ),
    Case(
        "nginx-configuration-test-failing-is-reported",
        "CCI-ART-01",
        (k.NginxConfig(),),
        {"nginx-config": "nginx: [emerg] unknown directive\n@@rc 1"},
        left={"nginx-config:nginx": NOT_REPAIRABLE},
    ),
    Case(
        "host-too-small-is-refused-before-anything-else",
        "CCI-NMD-04",
        (k.HostSize("1 vCPU: below the 2 vCPU reserved for Nomad plus one job", ""),),
        operations=[
            (
                "[CCI-NMD-04] host size fits a Nomad client",
                [
                    "echo 'cci-harden: refusing host recorded-host: 1 vCPU: below the 2 vCPU "
                    "reserved for Nomad plus one job' >&2; exit 1"
                ],
            )
        ],
    ),
    Case(
        "distribution-not-tested-is-refused",
        "CCI-NMD-04",
        (k.SupportedOs("Ubuntu 22.04 is not tested", "Debian 12, 13"),),
        {"supported-os": ""},
        [
            (
                "[CCI-NMD-04] a distribution the toolkit is tested on",
                [
                    "echo 'cci-harden: refusing host recorded-host: Ubuntu 22.04 is not "
                    "tested' >&2; exit 1"
                ],
            )
        ],  # fmt: skip
    ),
    # -- the toolkit's own ----------------------------------------------------------------------
    Case(
        "manifest-files-of-a-dropped-control-removed-and-their-daemon-restarted",
        "CCI-TK-01",
        (k.Manifest(MANIFEST, (ManifestEntry("file", "/etc/issue", "CCI-SSH-01"),)),),
        {
            "manifest": manifest_text(
                {"kind": "file", "key": "/etc/issue", "control": "CCI-SSH-01"},
                {
                    "kind": "file",
                    "key": "/etc/rsyslog.d/60-cci.conf",
                    "control": "CCI-OS-08",
                    "reload": ["rsyslog"],
                },
                {"kind": "package", "key": "auditd", "control": "CCI-OS-06"},
            )
        },
        [
            (
                "[CCI-TK-01] remove /etc/rsyslog.d/60-cci.conf (CCI-OS-08 no longer applies)",
                ["rm -f -- /etc/rsyslog.d/60-cci.conf"],
            ),
            (
                "[CCI-TK-01] remove auditd (CCI-OS-06 no longer applies)",
                [f"DEBIAN_FRONTEND=noninteractive apt-get -y {APT} remove {OUR_APT} auditd"],
            ),
            (
                "[CCI-TK-01] restart rsyslog if it is still installed (its files were removed)",
                [
                    "if systemctl cat -- rsyslog >/dev/null 2>&1; then systemctl try-restart -- "
                    "rsyslog; fi"
                ],
            ),
            (
                f"[CCI-TK-01] {MANIFEST} (what this deploy manages)",
                staged(
                    MANIFEST,
                    json.dumps(
                        {
                            "format": 1,
                            "managed": [
                                {"kind": "file", "key": "/etc/issue", "control": "CCI-SSH-01"}
                            ],
                        },
                        indent=1,
                    )
                    + "\n",
                    make_dir="install -d -o root -g root -m 755 /var/lib/cci-harden/managed",
                ),
            ),
        ],
        facts={"dpkg -l": "ii  auditd  1:3.0.9-1  amd64  User space tools for security auditing"},
    ),
]


def control_resources(case: Case) -> tuple[Resource, ...]:
    """The case's resources, or the control's own (declared for a VM) for those of its kinds the
    case drifts."""
    if case.resources:
        return case.resources
    control = catalogue.by_id(case.control)
    kinds = set(case.outputs) or {"audit-rules", "kernel-cmdline"}
    return tuple(r for r in control.resources(SETTINGS, VM) if r.kind in kinds)


def run_case(case: Case) -> DeployResult:
    return deploy_operations(
        [(catalogue.by_id(case.control), control_resources(case))],
        {**RECORDED, **case.outputs},
        SETTINGS,
        case.info,
        facts=case.facts,
        waivers=case.waivers,
        stage=case.stage,
        local=case.local,
    )


def matches(expected: list[str], commands: tuple[str, ...]) -> bool:
    """Exact commands; ``@TEXT`` stands for the one command that contains TEXT."""
    if len(expected) != len(commands):
        return False
    return all(
        (want[1:] in got) if want.startswith("@") else want == STAMP.sub(".STAMP", got)
        for want, got in zip(expected, commands, strict=True)
    )


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_deploy_runs_exactly_these_operations(case: Case):
    result = run_case(case)
    assert result.names == [name for name, _ in case.operations]
    for (name, expected), op in zip(case.operations, result.operations, strict=True):
        assert matches(expected, op.commands), (name, op.commands)
    assert {k: v for k, v in result.left.items() if k in case.left} == case.left
    if not case.operations:
        assert result.left, "a case with nothing to do names why"


def test_every_kind_has_a_case_with_operations_or_a_reason():
    covered = {r.kind for case in CASES for r in control_resources(case)}
    signed_below = {k.HostCertificate.kind}  # needs a CA made for the test
    assert covered | signed_below == set(REGISTRY)


def test_every_bespoke_operation_is_in_a_case():
    """The toolkit's own pyinfra operations, each found by a trace of its commands in a case
    above; an operation added without a case fails here."""
    traces = {
        "managed_file": "mv -f ",
        "guarded_config": "sshd -t",
        "refuse": "cci-harden: refusing host",
        "remove_path": "rm -f -- ",
        "shell_quoted": "usermod -L",
        "release": "install Nomad 1.7.7 from a signed release",
    }
    declared = {
        name
        for module in (operations, sshd, release)
        for name, value in vars(module).items()
        if hasattr(value, "_inner") and value.__module__ == module.__name__
    }
    assert declared == set(traces)
    commands = [c for case in CASES for op in run_case(case).operations for c in op.commands]
    for operation, trace in traces.items():
        assert any(trace in c for c in commands), operation


def test_a_host_certificate_is_signed_here_for_exactly_its_principals(tmp_path):
    """The CA signs the host key the snapshot read (real ssh-keygen, a CA made for the test);
    the certificate is written and sshd restarts to present it."""
    ca = tmp_path / "ca"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", ca], check=True)
    recorded = RECORDED["host-certificate"]
    path = recorded.splitlines()[0][2:]
    certificate = k.HostCertificate(
        path, "ssh-ed25519", "SHA256:other-ca", ("tb1", "10.231.0.11"), signer=str(ca)
    )
    result = deploy_operations(
        [(catalogue.by_id("CCI-SSH-02"), [certificate])], RECORDED, SETTINGS, CONTAINER
    )
    assert result.names == [
        f"[CCI-SSH-02] {path} (signed by the CA here, for this host's names)",
        "[CCI-SSH-02] restart ssh (its host certificate changed)",
    ]
    upload = next(c for c in result.operations[0].commands if c.startswith("upload "))
    signed = tmp_path / "cert.pub"
    signed.write_text(upload.split("<<", 1)[1].removesuffix(">>"))
    shown = subprocess.run(
        ["ssh-keygen", "-L", "-f", signed], capture_output=True, text=True, check=True
    ).stdout
    assert "host certificate" in shown
    principals = shown.split("Principals:", 1)[1].split("Critical Options:", 1)[0].split()
    assert principals == ["tb1", "10.231.0.11"]
    assert result.operations[1].commands == tuple(restarted("ssh"))


def test_a_converged_host_gets_no_operation_from_the_recorded_kinds():
    """Every case's resources against the recorded converged host, except the drifts the cases
    make on purpose: nothing to do, every resource named with why."""
    quiet = [
        Case("file", "CCI-SSH-01", (k.ManagedFile("/etc/not-here", present=False),)),
        Case("sysctl", "CCI-OS-01", (k.Sysctl("kernel.kptr_restrict", "2", "/x.conf"),)),
        Case("service", "CCI-NMD-05", (k.Service("nomad"), k.Service("docker"))),
        Case("package", "CCI-OS-04", (k.Package("libpam-tmpdir"), k.Package("nis", present=False))),
        Case("accounts", "CCI-OS-04", (k.SystemAccounts(),)),
        Case("dpkg", "CCI-TK-02", (PackageSystem(), StagedFiles(("/etc/ssh/sshd_config.d",)))),
        Case("firewall", "CCI-NET-01", (k.NftTable("ingress", "cci-harden-firewall"),)),
    ]
    for case in quiet:
        result = run_case(case)
        assert result.operations == [], case.id
        assert set(result.left) == {r.id for r in case.resources}
        assert set(result.left.values()) <= {"as desired", "not verifiable here"}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_deploy_the_rollout_and_verify_read_the_same_verdicts(case: Case):
    """What the deploy acts on is what the verdicts say acts, what the rollout counts as a
    change (with its interruption), and what verify fails on; what it leaves, it leaves for
    the verdict's reason."""
    resources = control_resources(case)
    plans = [ControlPlan(catalogue.by_id(case.control), resources)]
    snapshot = snapshot_of({**RECORDED, **case.outputs}, resources, case.info)
    verdicts = plan_verdicts(plans, snapshot, case.info, case.waivers, host=HOST_NAME)
    acts = {v.resource.id for v in acting(verdicts)}
    result = run_case(case)
    services = {r.id for r in resources if isinstance(r, k.Service)}
    repaired = {r.id for r in resources} - set(result.left) - services
    assert repaired <= acts
    assert {r for r in acts if result.left.get(r) != NOT_REPAIRABLE} - services == repaired
    named = dataclasses.replace(case.info, name=HOST_NAME)  # whose waivers apply
    disruptions = host_disruptions(plans, snapshot, named, case.waivers)
    assert {d.resource for d in disruptions} == acts
    outcome = evaluate(plans[0], snapshot, case.info)
    failing = {f.resource for f in outcome.findings if f.verifiable}
    assert acts <= failing
    for _, found in verdicts:
        for verdict in found:
            if verdict.resource.id in result.left and verdict.resource.id not in services:
                assert result.left[verdict.resource.id] in (verdict.decision, NOT_REPAIRABLE)
