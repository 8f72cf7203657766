"""Trust a host by its SSH certificate, checked here, for a client that cannot (paramiko).

With ``ssh.host_ca_file`` an inventory needs no known_hosts line per host: OpenSSH trusts the CA
(an ``@cert-authority`` line limited to the inventory's addresses). verify uses OpenSSH, so it
reads that line itself. The deploy's client, paramiko, has no host-certificate support, so for
each host without a line of its own:

1. OpenSSH connects, through the operator's ssh_config (a bastion applies), asking for an
   ed25519 host certificate only. A ``KnownHostsCommand`` of ours writes down what the host
   presented and vouches for nothing, so OpenSSH stops there, before authentication. Nothing
   OpenSSH prints, and nothing the server sends around its banner, is read.
2. The certificate is checked here, from its bytes (``cert_check``): a host certificate, the
   CA's signature verified, principals exactly the host's inventory name and address, valid
   now and for no longer than ``ssh.host_cert_days``, not in ``ssh.revoked_host_keys_file``.
3. Only then the key it certifies goes, under the host's address, into the known_hosts file
   pyinfra and the lockout guard read; paramiko's key exchange proves the host holds it.

A host whose certificate is refused (another CA, none, expired, other names) is refused before
anything connects to it with credentials.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..config.materials import load_host_ca, load_revoked_host_keys
from ..config.settings import HostEntry
from ..model.errors import InventoryError
from ..model.kinds.ssh import principals_for
from .cert_check import MAX_CERT_BYTES, Refused, certified_key, revocation_status
from .sshconfig import quoted


def lookup_name(host: HostEntry) -> str:
    """How known_hosts names the host: the address, with the port when it is not 22."""
    return host.address if host.port == 22 else f"[{host.address}]:{host.port}"


def runtime_dir(inventory) -> Path:
    """A directory only this user can write, for this inventory's derived files: under
    $XDG_RUNTIME_DIR (cleared at logout) or the temporary directory, refused if another user
    made it first."""
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
    digest = hashlib.sha256(str(inventory.path.resolve()).encode()).hexdigest()[:12]
    mine = base / f"cci-harden-{os.getuid()}"
    directory = mine / f"trust-{digest}"
    for path in (mine, directory):
        path.mkdir(mode=0o700, exist_ok=True)
        status = path.lstat()
        if (
            not stat.S_ISDIR(status.st_mode)
            or status.st_uid != os.getuid()
            or (status.st_mode & 0o077)
        ):
            raise InventoryError(
                f"{path}: not a private directory of this user; remove it and run again"
            )
    return directory


def ca_line(inventory) -> str:
    """The ``@cert-authority`` line: the CA, trusted for the inventory's hosts only."""
    ca = load_host_ca(inventory.settings)
    if ca is None:
        raise InventoryError("ssh.host_ca_file: not set; @cert-authority lines need the CA")
    names = ",".join(sorted({lookup_name(h) for h in inventory.hosts}))
    return f"@cert-authority {names} {ca.public_line}\n"


def write_ca_known_hosts(inventory, directory: Path) -> Path:
    path = directory / "ca_known_hosts"
    path.write_text(ca_line(inventory))
    return path


CAPTURE_SCRIPT = (
    "#!/bin/sh\n"
    "# KnownHostsCommand: write down the key presented, vouch for none\n"
    'printf \'%s %s\\n\' "$2" "$3" > "$1"\n'
)


def capture_script(directory: Path) -> Path:
    """The ``KnownHostsCommand``, written once before any probe runs it."""
    script = directory / "presented.sh"
    script.write_text(CAPTURE_SCRIPT)
    script.chmod(0o700)
    return script


def _presented(inventory, host: HostEntry, script: Path) -> str:
    """What the host presents as its ed25519 host certificate ("TYPE BASE64"), or "";
    ``script`` is the capture script, beside which the answer is written."""
    out = script.parent / f"presented-{hashlib.sha256(host.name.encode()).hexdigest()[:16]}"
    out.unlink(missing_ok=True)
    # the operator's ssh_config (a bastion, a ProxyJump) applies; every option given here wins
    config = str(inventory.ssh_config.resolve()) if inventory.ssh_config else "/dev/null"
    try:
        subprocess.run(
            [
                "ssh", "-F", config,
                "-o", f"KnownHostsCommand={quoted(script)} {quoted(out)} %t %K",
                "-o", "UserKnownHostsFile=/dev/null",
                "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", "StrictHostKeyChecking=yes",
                "-o", "HostKeyAlgorithms=ssh-ed25519-cert-v01@openssh.com",
                "-o", "ControlMaster=no",
                "-o", "ControlPath=none",
                "-o", "BatchMode=yes",
                "-o", "PubkeyAuthentication=no",
                "-o", "PasswordAuthentication=no",
                "-o", "KbdInteractiveAuthentication=no",
                "-o", "ConnectTimeout=10",
                "-p", str(host.port),
                "-l", inventory.user_for(host),
                "--", host.address, "true",
            ],
            capture_output=True,
            timeout=60,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return ""
    # ssh fails by design (nothing vouched for the key): its status and messages say nothing
    try:
        with out.open("rb") as handle:
            return handle.read(MAX_CERT_BYTES + 200).decode("ascii", "replace").strip()
    except FileNotFoundError:
        return ""
    finally:
        out.unlink(missing_ok=True)


def certified_lines(inventory, hosts: list[HostEntry], directory: Path) -> list[str]:
    """known_hosts lines for ``hosts``, each the key of a certificate checked here; or refuse."""
    ca = load_host_ca(inventory.settings)
    if ca is None:
        raise InventoryError("hosts without a known_hosts line, and no ssh.host_ca_file")
    revoked = load_revoked_host_keys(inventory.settings)
    max_days = inventory.settings.ssh.host_cert_days
    script = capture_script(directory)

    def one(host: HostEntry) -> tuple[HostEntry, str, str]:
        presented = _presented(inventory, host, script)
        if not presented:
            return host, "", "it presented no ed25519 host certificate"
        try:
            key = certified_key(
                presented, ca.public_line, principals_for(host.name, host.address),
                max_days, revoked,
            )  # fmt: skip
        except Refused as exc:
            return host, "", str(exc)
        return host, f"{lookup_name(host)} {key}", ""

    with ThreadPoolExecutor(max_workers=min(16, max(1, len(hosts)))) as pool:
        results = list(pool.map(one, hosts))
    refused = [f"{host.name} ({reason})" for host, _, reason in results if reason]
    if refused:
        raise InventoryError(
            "no known_hosts line, and no certificate from ssh.host_ca_file that passes: "
            + "; ".join(refused)
        )
    return [line for _, line, _ in results]


def refuse_revoked_keys(inventory, hosts: list[HostEntry]) -> None:
    """Refuse hosts whose own known_hosts key is in ``ssh.revoked_host_keys_file``: the deploy
    honours the list as OpenSSH (verify) does."""
    revoked = load_revoked_host_keys(inventory.settings)
    if revoked is None or not inventory.known_hosts.is_file():
        return
    import paramiko  # as the inventory reads known_hosts: here, not at import

    keys = paramiko.HostKeys(str(inventory.known_hosts))
    listed = [
        host.name
        for host in hosts
        for key in (keys.lookup(lookup_name(host)) or {}).values()
        if revocation_status(f"{key.get_name()} {key.get_base64()}", revoked) != 0
    ]
    if listed:
        raise InventoryError(
            f"{', '.join(sorted(set(listed)))}: its key in {inventory.known_hosts} is revoked "
            "(ssh.revoked_host_keys_file); give its new key or certificate"
        )


def trusted_known_hosts(inventory, hosts: list[HostEntry]) -> Path:
    """The known_hosts file for paramiko: the operator's lines, plus a certified line for each
    of ``hosts`` that has none."""
    directory = runtime_dir(inventory)
    lines = certified_lines(inventory, hosts, directory) if hosts else []
    own = inventory.known_hosts.read_text() if inventory.known_hosts.is_file() else ""
    path = directory / "known_hosts"
    path.write_text(
        own
        + ("" if own.endswith("\n") or not own else "\n")
        + "".join(line + "\n" for line in lines)
    )
    return path
