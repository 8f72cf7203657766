"""Trust a host by its SSH certificate, through OpenSSH, for a client that cannot (paramiko).

With ``ssh.host_ca_file`` an inventory needs no known_hosts line per host: OpenSSH trusts the CA
(an ``@cert-authority`` line limited to the inventory's addresses). verify uses OpenSSH, so it
reads that line itself. The deploy's client, paramiko, has no host-certificate support, so for
each host without a line of its own:

1. OpenSSH connects with only the CA line trusted and no way to log in: it checks the host's
   certificate (signer, principals, validity) and the key exchange proves the host holds the
   certified key; it reports that key's fingerprint, then stops at authentication.
2. ``ssh-keyscan`` reads the host's plain key; it is kept only if its fingerprint is the one
   OpenSSH just verified.

The kept keys, with the operator's own lines, make the known_hosts file pyinfra and the lockout
guard read. A host whose certificate OpenSSH refuses (another CA, none, expired, wrong name) is
refused before anything connects to it.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..config.materials import load_host_ca
from ..config.settings import HostEntry
from ..model.errors import InventoryError
from .sshconfig import quoted

_VERIFIED = re.compile(r"Server host certificate: \S+ (SHA256:[A-Za-z0-9+/=]+),")
_MATCHED = "is known and matches the ED25519-CERT host certificate"


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
    names = ",".join(sorted({lookup_name(h) for h in inventory.hosts}))
    return f"@cert-authority {names} {ca.public_line}\n"


def write_ca_known_hosts(inventory, directory: Path) -> Path:
    path = directory / "ca_known_hosts"
    path.write_text(ca_line(inventory))
    return path


def _verified_fingerprint(inventory, host: HostEntry, ca_file: Path) -> tuple[str, str]:
    """(fingerprint OpenSSH verified, "") or ("", OpenSSH's reason)."""
    # the operator's ssh_config (a bastion, a ProxyJump) applies; every option given here wins
    config = str(inventory.ssh_config.resolve()) if inventory.ssh_config else "/dev/null"
    proc = subprocess.run(
        [
            "ssh", "-F", config, "-v",
            "-o", f"UserKnownHostsFile={quoted(ca_file)}",
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "HostKeyAlgorithms=ssh-ed25519-cert-v01@openssh.com",
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
        text=True,
        timeout=60,
    )  # fmt: skip
    found = _VERIFIED.search(proc.stderr)
    if found and _MATCHED in proc.stderr:
        return found.group(1), ""
    reasons = [
        line.strip()
        for line in proc.stderr.splitlines()
        if not line.startswith(("debug", "OpenSSH_", "Authorized access", "Unauthorized access"))
        and line.strip()
    ]
    return "", (reasons[0] if reasons else f"ssh exited {proc.returncode}")


def _scanned_key(host: HostEntry, fingerprint: str) -> str:
    """The host's plain ed25519 key, if it is the one with ``fingerprint``."""
    scan = subprocess.run(
        ["ssh-keyscan", "-T", "10", "-t", "ed25519", "-p", str(host.port), host.address],
        capture_output=True,
        text=True,
        timeout=60,
    )
    for line in scan.stdout.splitlines():
        parts = line.split()
        if len(parts) < 3 or parts[1] != "ssh-ed25519":
            continue
        listed = subprocess.run(
            ["ssh-keygen", "-l", "-E", "sha256", "-f", "-"],
            input=f"{parts[1]} {parts[2]}\n",
            capture_output=True,
            text=True,
            timeout=30,
        )
        if listed.returncode == 0 and listed.stdout.split()[1:2] == [fingerprint]:
            return f"{parts[1]} {parts[2]}"
    return ""


def certified_lines(inventory, hosts: list[HostEntry], ca_file: Path) -> list[str]:
    """known_hosts lines for ``hosts``, each from a certificate OpenSSH accepted; or refuse."""

    def one(host: HostEntry) -> tuple[HostEntry, str, str]:
        fingerprint, reason = _verified_fingerprint(inventory, host, ca_file)
        if not fingerprint:
            return host, "", reason
        key = _scanned_key(host, fingerprint)
        if not key:
            return host, "", f"its key changed between two reads (not {fingerprint})"
        return host, f"{lookup_name(host)} {key}", ""

    with ThreadPoolExecutor(max_workers=min(16, max(1, len(hosts)))) as pool:
        results = list(pool.map(one, hosts))
    refused = [f"{host.name} ({reason})" for host, _, reason in results if reason]
    if refused:
        raise InventoryError(
            "no known_hosts line, and no certificate from ssh.host_ca_file that OpenSSH accepts: "
            + "; ".join(refused)
        )
    return [line for _, line, _ in results]


def trusted_known_hosts(inventory, hosts: list[HostEntry]) -> Path:
    """The known_hosts file for paramiko: the operator's lines, plus a certified line for each
    of ``hosts`` that has none."""
    directory = runtime_dir(inventory)
    ca_file = write_ca_known_hosts(inventory, directory)
    lines = certified_lines(inventory, hosts, ca_file) if hosts else []
    own = inventory.known_hosts.read_text() if inventory.known_hosts.is_file() else ""
    path = directory / "known_hosts"
    path.write_text(
        own
        + ("" if own.endswith("\n") or not own else "\n")
        + "".join(line + "\n" for line in lines)
    )
    return path
