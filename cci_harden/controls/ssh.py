"""sshd on a Nomad client: keys only, modern algorithms, small limits, verbose logs, no lockout.

Algorithms are what ssh-audit rates well *and* what the deploy's own SSH client (paramiko, through
pyinfra) can still speak: the release's post-quantum key exchanges come first for OpenSSH clients
(``mlkem768x25519-sha256`` where OpenSSH 10 has it, then ``sntrup761x25519-sha512``), and
``curve25519-sha256`` stays for paramiko, which has no post-quantum key exchange yet. ssh-audit
warns about the two curve25519 names for that reason alone (documented in docs/ssh-audit.md and
asserted by the tests); everything else it flags on a stock host is gone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..config.materials import PreflightError, load_host_ca
from ..model.control import Control, Source
from ..model.kinds import HostCertificate, ManagedFile, SshdEffective
from ..model.kinds.ssh import principals_for
from ..model.releases import release_for
from ..model.render import render
from .sources import hardening_page

if TYPE_CHECKING:
    from ..config.settings import FleetSettings
    from ..model.hostinfo import HostInfo

DROPIN = "/etc/ssh/sshd_config.d/00-cci-harden.conf"
HOST_KEY = "/etc/ssh/ssh_host_ed25519_key.pub"
HOST_CERT = "/etc/ssh/ssh_host_ed25519_key-cert.pub"
CERT_ALGORITHM = "ssh-ed25519-cert-v01@openssh.com"
CIPHERS = [
    "chacha20-poly1305@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
]
MACS = [
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha2-256-etm@openssh.com",
    "umac-128-etm@openssh.com",
]
PUBKEY_ALGORITHMS = [
    "ssh-ed25519",
    "sk-ssh-ed25519@openssh.com",
    "rsa-sha2-512",
    "rsa-sha2-256",
]
# Worded so that auditors' banner checks (Lynis BANN-7126/7130) recognise a legal warning.
BANNER = (
    "Authorized access only. This system is a private CircleCI Nomad client; all connections "
    "are monitored, logged and recorded.\nUnauthorized access is prohibited and may be subject "
    "to legal action under applicable law. By continuing you consent to the owner's security "
    "policy.\n"
)


def permit_root_login(settings: FleetSettings) -> str:
    if settings.ssh.permit_root_login:
        return settings.ssh.permit_root_login
    users = {settings.inventory.ssh_user} | {h.user for h in settings.inventory.hosts if h.user}
    return "prohibit-password" if "root" in users else "no"


def sshd_dropin(settings: FleetSettings, info: HostInfo | None = None) -> str:
    ssh = settings.ssh
    host_keys = [f"/etc/ssh/ssh_host_{kind}_key" for kind in ssh.host_key_types]
    host_key_algorithms = []
    certified = ssh.host_ca_file is not None and "ed25519" in ssh.host_key_types
    if certified:  # first: OpenSSH clients that trust the CA ask for it; paramiko never does
        host_key_algorithms.append(CERT_ALGORITHM)
    if "ed25519" in ssh.host_key_types:
        host_key_algorithms.append("ssh-ed25519")
    if "rsa" in ssh.host_key_types:
        host_key_algorithms += ["rsa-sha2-512", "rsa-sha2-256"]
    interval = ssh.idle_timeout_seconds // 2
    release = release_for(info)
    exempt = _penalty_exemption(settings, info).get("persourcepenaltyexemptlist", "")
    return render(
        "ssh/00-cci-harden.conf.j2",
        "CCI-SSH-01",
        permit_root_login=permit_root_login(settings),
        allow_users=ssh.allow_users,
        allow_groups=ssh.allow_groups,
        host_keys=host_keys,
        host_certificates=[HOST_CERT] if certified else [],
        host_key_algorithms=host_key_algorithms,
        kex=release.kex,
        penalty_exempt=exempt.split(",") if exempt else [],
        ciphers=CIPHERS,
        macs=MACS,
        pubkey_algorithms=PUBKEY_ALGORITHMS,
        max_auth_tries=ssh.max_auth_tries,
        client_alive_interval=interval,
        client_alive_count_max=2,
    )


def _resources(settings: FleetSettings, info: HostInfo):
    return [
        ManagedFile(DROPIN, sshd_dropin(settings, info), mode=0o600, guard="sshd"),
        ManagedFile("/etc/issue", BANNER),
        ManagedFile("/etc/issue.net", BANNER),
        SshdEffective(tuple(effective(settings, info).items())),
    ]


def effective(settings: FleetSettings, info: HostInfo | None = None) -> dict[str, str]:
    """What ``sshd -T`` must print, whatever other files say."""
    root = permit_root_login(settings)
    return {
        "permitrootlogin": "without-password" if root == "prohibit-password" else root,
        "pubkeyauthentication": "yes",
        "passwordauthentication": "no",
        "kbdinteractiveauthentication": "no",
        "permitemptypasswords": "no",
        "hostbasedauthentication": "no",
        "maxauthtries": str(settings.ssh.max_auth_tries),
        "clientaliveinterval": str(settings.ssh.idle_timeout_seconds // 2),
        "clientalivecountmax": "2",
        "x11forwarding": "no",
        "allowtcpforwarding": "no",
        "allowagentforwarding": "no",
        "permittunnel": "no",
        "permituserenvironment": "no",
        "loglevel": "VERBOSE",
        "kexalgorithms": ",".join(release_for(info).kex),
        "ciphers": ",".join(CIPHERS),
        "macs": ",".join(MACS),
    } | _penalty_exemption(settings, info)


def _penalty_exemption(settings: FleetSettings, info: HostInfo | None) -> dict[str, str]:
    if not release_for(info).openssh_penalties:
        return {}
    return {"persourcepenaltyexemptlist": ",".join(str(c) for c in settings.network.admin_cidrs)}


def host_principals(settings: FleetSettings, info: HostInfo) -> tuple[str, ...]:
    """The names a client reaches this host by: its inventory name and address. Only the
    operator's data: a name the host reports (its hostname) could be any other host's, and the
    CA would certify it. A local run knows neither, and checks none."""
    return principals_for(info.name, info.address)


def _certificate_resources(settings: FleetSettings, info: HostInfo):
    if "ed25519" not in settings.ssh.host_key_types:
        raise PreflightError(
            "ssh.host_ca_file: certificates are made for the ed25519 host key; add ed25519 to "
            "ssh.host_key_types"
        )
    ca = load_host_ca(settings)
    if ca is None:
        return []
    return [
        HostCertificate(
            HOST_CERT,
            HOST_KEY,
            ca.fingerprint,
            host_principals(settings, info),
            renew_days=settings.ssh.host_cert_renew_days,
            validity_days=settings.ssh.host_cert_days,
            signer=str(ca.key_file or ""),
        )
    ]


HOST_CERTIFICATE = Control(
    id="CCI-SSH-02",
    nist=("IA-3", "SC-17"),
    title="The host key carries a certificate from the operator's SSH CA",
    sources=(
        Source("toolkit", "host keys at scale for autoscaled fleets"),
        Source("dev-sec", "ssh-hardening ssh_host_certificates"),
    ),
    rationale="Instances of an autoscaling group come and go; a known_hosts line per instance "
    "does not scale, and trusting keys on first use is refused. With ssh.host_ca_file, each "
    "host's ed25519 key is certified by the CA (signed by the deploy with ssh.host_ca_key_file, "
    "or installed by the image's first boot and only verified), sshd presents it "
    "(`HostCertificate`). verify (OpenSSH) and the deploy (the certificate's bytes checked "
    "on the operator's machine, never ssh's messages) trust a host without a known_hosts "
    "line only through a certificate signed by the CA, for exactly the host's names, valid "
    "now, for no longer than ssh.host_cert_days, and not in ssh.revoked_host_keys_file. "
    "Checked on the host: the signer, the key certified (the host's own), the principals "
    "(exactly the host's inventory name and address: never a name the host reports, which "
    "could be another host's, and no extra name or pattern), a validity no longer than "
    "ssh.host_cert_days and valid for ssh.host_cert_renew_days more; renewed then.",
    resources=_certificate_resources,
    applies=lambda settings: settings.ssh.host_ca_file is not None,
    testbed="container hosts: signed by a CA the tests make, trusted without known_hosts lines "
    "by verify and the deploy; another CA's certificate and an uncertified host refused",
    tags=("baseline", "ssh"),
)


SSH = Control(
    id="CCI-SSH-01",
    nist=("AC-7", "AC-17", "IA-2", "SC-8", "SC-13"),
    title="sshd: keys only, modern algorithms, small limits, no forwarding, verbose logs",
    sources=(
        Source("dev-sec", "ssh-hardening / ssh-baseline sshd-01..sshd-48"),
        hardening_page("SSH (22) to Nomad clients from admin networks only"),
    ),
    rationale="A drop-in read before every other sshd file. Checked with `sshd -t` in place, "
    "sshd reloaded, then a fresh login from the operator's machine with the deploy's own "
    "credentials must succeed or the old configuration comes back and the host fails "
    "(existing sessions survive the reload). Verify reads `sshd -T`, the effective "
    "configuration, so another file overriding these is drift too.",
    resources=_resources,
    circleci_impact="Rerun-with-SSH sessions go to job containers (ports 64535-65535), not to "
    "this sshd, so they are unaffected.",
    tags=("baseline", "ssh"),
)

CONTROLS = (HOST_CERTIFICATE, SSH)
