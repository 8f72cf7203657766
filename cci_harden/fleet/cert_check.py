"""Check an SSH host certificate here, from its bytes, before trusting the key it certifies.

What a host presents is data: the certificate is parsed and its CA signature verified with
``cryptography``, and every field is compared with what the operator's settings expect. No text
a server sends (its banner, lines before it, OpenSSH's messages about it) decides anything.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    SSHCertificate,
    SSHCertificateType,
    load_ssh_public_identity,
    load_ssh_public_key,
)

from ..model.kinds.ssh import PATTERN_CHARACTERS, SIGNING_SLACK

CERT_TYPE = "ssh-ed25519-cert-v01@openssh.com"
MAX_CERT_BYTES = 16384  # an ed25519 certificate with a few principals is under 1 KiB


class Refused(Exception):
    """The certificate is not one to trust; the message says why, in one line."""


def _openssh(key) -> bytes:
    return key.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH)


def _parse(presented: str) -> SSHCertificate:
    parts = presented.split()
    if len(parts) != 2 or parts[0] != CERT_TYPE:
        shown = parts[0][:60].encode("ascii", "backslashreplace").decode() if parts else "nothing"
        raise Refused(f"no ed25519 host certificate presented (got {shown})")
    if len(parts[1]) > MAX_CERT_BYTES:
        raise Refused("a certificate too large to be one")
    try:
        identity = load_ssh_public_identity(presented.encode("ascii"))
    except (UnicodeEncodeError, ValueError, UnsupportedAlgorithm) as exc:
        raise Refused(f"a certificate that does not parse ({exc})") from None
    if not isinstance(identity, SSHCertificate):
        raise Refused("a plain key, not a certificate")
    return identity


def _principals(cert: SSHCertificate, expected: tuple[str, ...]) -> None:
    try:
        names = [p.decode("ascii") for p in cert.valid_principals]
    except UnicodeDecodeError:
        raise Refused("a principal that is not ASCII") from None
    if not names:
        raise Refused("no principals: it would be valid for any host name")
    odd = [n for n in names if not n.isprintable() or PATTERN_CHARACTERS & set(n)]
    if odd:
        raise Refused(f"a principal that could be a pattern: {odd[0]!r}")
    if sorted(set(names)) != sorted(set(expected)):
        raise Refused(f"principals {', '.join(names)}; expected exactly {', '.join(expected)}")


def _moment(stamp: int) -> str:
    return f"{dt.datetime.fromtimestamp(min(stamp, 2**37), dt.UTC):%Y-%m-%dT%H:%M}Z"


def _validity(cert: SSHCertificate, now: dt.datetime, max_days: int) -> None:
    after, before = cert.valid_after, cert.valid_before
    stamp = int(now.timestamp())
    if stamp < after:
        raise Refused(f"not valid before {_moment(after)}")
    if stamp >= before:
        raise Refused(f"expired {_moment(before)}")
    if before - after > (dt.timedelta(days=max_days) + SIGNING_SLACK).total_seconds():
        raise Refused(f"valid for longer than ssh.host_cert_days ({max_days} days)")


def revocation_status(key_line: str, revoked: Path) -> int:
    """``ssh-keygen -Q``'s exit status for a key or certificate ("TYPE BASE64"): 0 not listed,
    1 revoked, anything else the list could not be read. Its messages are not read."""
    with tempfile.TemporaryDirectory(prefix="cci-krl-") as directory:
        key_file = Path(directory) / "key.pub"
        key_file.write_text(key_line + "\n")
        return subprocess.run(
            ["ssh-keygen", "-Q", "-f", str(revoked), str(key_file)],
            capture_output=True,
            timeout=30,
        ).returncode


def _not_revoked(certificate_line: str, revoked: Path) -> None:
    status = revocation_status(certificate_line, revoked)
    if status == 1:
        raise Refused("revoked (listed in ssh.revoked_host_keys_file)")
    if status != 0:
        raise Refused("ssh.revoked_host_keys_file could not be read to check it")


def certified_key(
    presented: str,
    ca_public_line: str,
    principals: tuple[str, ...],
    max_days: int,
    revoked: Path | None = None,
    now: dt.datetime | None = None,
) -> str:
    """The key ``presented`` ("TYPE BASE64" of a certificate) certifies, as "TYPE BASE64", if
    it is a host certificate the CA signed for exactly ``principals``, valid now and for no
    longer than ``max_days``, with no critical option, not revoked. Else :class:`Refused`."""
    cert = _parse(presented)
    if cert.type != SSHCertificateType.HOST:
        raise Refused("a user certificate, not a host certificate")
    ca = _openssh(load_ssh_public_key(ca_public_line.encode()))
    if _openssh(cert.signature_key()) != ca:
        raise Refused("signed by another CA than ssh.host_ca_file")
    try:
        cert.verify_cert_signature()
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        raise Refused("its CA signature does not verify") from None
    if cert.critical_options:
        raise Refused("critical options, which no host certificate has")
    _principals(cert, principals)
    _validity(cert, now or dt.datetime.now(dt.UTC), max_days)
    if revoked is not None:
        _not_revoked(presented, revoked)
    return _openssh(cert.public_key()).decode()
