"""Files the operator's machine supplies to the hosts: mTLS material and pinned signing keys.

They are read and checked here, before any host is contacted: a client key that does not match its
certificate, a certificate its CA did not sign or one about to expire, a signing key whose
fingerprint is not the pinned one; each is refused with the setting that names it. The private key
is held as a ``SecretStr`` from the moment it is read.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pydantic import SecretStr

from ..model.errors import CciHardenError
from .settings import FleetSettings


class PreflightError(CciHardenError):
    """Material the settings name is missing or unfit; raised before any host is contacted."""


@dataclass(frozen=True)
class TlsMaterial:
    ca_pem: str
    cert_pem: str
    key_pem: SecretStr
    not_after: datetime  # of the client certificate


@dataclass(frozen=True)
class SigningKey:
    armored: str
    fingerprint: str


def _read(settings: FleetSettings, field: str, path: Path) -> str:
    local = settings.local_path(path)
    try:
        return local.read_text()
    except OSError as exc:
        raise PreflightError(f"{field}: cannot read {local}: {exc.strerror}") from None


def _private_key(
    settings: FleetSettings,
    section: str,
    inline: SecretStr | None,
    inline_name: str,
    path: Path | None,
) -> tuple[SecretStr | None, str]:
    """A private key given inline (``*_pem``) or as a file (the same name, ``_file``), and the
    field it came from; (None, "") when neither is set."""
    if inline is not None:
        return inline, f"{section}.{inline_name}"
    if path is not None:
        field = f"{section}.{inline_name.removesuffix('_pem')}_file"
        return SecretStr(_read(settings, field, path)), field
    return None, ""


def tls_configured(settings: FleetSettings) -> bool:
    tls = settings.nomad.tls
    return any(v is not None for v in (tls.ca_file, tls.cert_file, tls.key_file, tls.key_pem))


def load_tls(settings: FleetSettings, now: datetime | None = None) -> TlsMaterial | None:
    """The client's mTLS material, checked; None when the settings configure no TLS."""
    tls = settings.nomad.tls
    if not tls_configured(settings):
        return None
    missing = [n for n in ("ca_file", "cert_file") if getattr(tls, n) is None]
    if tls.key_file is None and tls.key_pem is None:
        missing.append("key_file (or key_pem)")
    if missing or tls.ca_file is None or tls.cert_file is None:
        raise PreflightError(f"nomad.tls: also set {', '.join(missing)} (mTLS needs all three)")
    ca_pem = _read(settings, "nomad.tls.ca_file", tls.ca_file)
    cert_pem = _read(settings, "nomad.tls.cert_file", tls.cert_file)
    key, key_field = _private_key(settings, "nomad.tls", tls.key_pem, "key_pem", tls.key_file)
    if key is None:
        raise PreflightError("nomad.tls: also set key_file (or key_pem) (mTLS needs all three)")
    return _check_tls(ca_pem, cert_pem, key, key_field, tls.expiry_margin_days, now)


def _check_tls(
    ca_pem: str,
    cert_pem: str,
    key: SecretStr,
    key_field: str,
    margin_days: int,
    now: datetime | None,
) -> TlsMaterial:
    try:
        ca = x509.load_pem_x509_certificate(ca_pem.encode())
    except ValueError:
        raise PreflightError("nomad.tls.ca_file: not a PEM certificate") from None
    cert = _certificate_with_key(cert_pem, "nomad.tls.cert_file", key, key_field)
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, Exception) as exc:  # InvalidSignature has no message
        raise PreflightError(
            f"nomad.tls.cert_file: not signed by the CA in nomad.tls.ca_file ({type(exc).__name__})"
        ) from None
    now = now or datetime.now(UTC)
    margin = timedelta(days=margin_days)
    for field, certificate in (("nomad.tls.cert_file", cert), ("nomad.tls.ca_file", ca)):
        if certificate.not_valid_before_utc > now:
            raise PreflightError(f"{field}: not valid before {certificate.not_valid_before_utc}")
        left = certificate.not_valid_after_utc - now
        if left < margin:
            state = "expired" if left.total_seconds() <= 0 else f"expires in {left.days} day(s)"
            raise PreflightError(
                f"{field}: {state} ({certificate.not_valid_after_utc:%Y-%m-%d}); "
                f"nomad.tls.expiry_margin_days is {margin_days}: renew it first"
            )
    return TlsMaterial(ca_pem, cert_pem, key, cert.not_valid_after_utc)


def _certificate_with_key(
    cert_pem: str, cert_field: str, key: SecretStr, key_field: str
) -> x509.Certificate:
    """The certificate, refused unless it is PEM and ``key`` is its unencrypted private key."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
    except ValueError:
        raise PreflightError(f"{cert_field}: not a PEM certificate") from None
    try:
        private = serialization.load_pem_private_key(key.get_secret_value().encode(), None)
    except (ValueError, TypeError):
        # never echo the key: the parser's message can quote it
        raise PreflightError(f"{key_field}: not an unencrypted PEM private key") from None
    raw = serialization.PublicFormat.SubjectPublicKeyInfo
    pem = serialization.Encoding.PEM
    if private.public_key().public_bytes(pem, raw) != cert.public_key().public_bytes(pem, raw):
        raise PreflightError(
            f"{key_field}: the private key does not match the certificate in {cert_field}"
        )
    return cert


def _in_date(field: str, certificate: x509.Certificate, now: datetime) -> None:
    if not certificate.not_valid_before_utc <= now < certificate.not_valid_after_utc:
        raise PreflightError(
            f"{field}: not valid now (valid {certificate.not_valid_before_utc:%Y-%m-%d} to "
            f"{certificate.not_valid_after_utc:%Y-%m-%d})"
        )


@lru_cache(maxsize=16)
def _fingerprints(armored: str) -> tuple[str, ...]:
    """Primary key fingerprints in an armored key block, read by GnuPG itself."""
    with tempfile.TemporaryDirectory(prefix="cci-gpg-") as home:
        try:
            proc = subprocess.run(
                ["gpg", "--batch", "--with-colons", "--show-keys"],
                input=armored,
                capture_output=True,
                text=True,
                env={**os.environ, "GNUPGHOME": home},
            )
        except FileNotFoundError:
            raise PreflightError(
                "gpg is not installed here: the pinned signing keys are read with GnuPG "
                "(apt-get install gnupg)"
            ) from None
    if proc.returncode != 0:
        return ()
    fingerprints, expect_primary = [], False
    for line in proc.stdout.splitlines():
        kind = line.split(":", 1)[0]
        if kind == "pub":
            expect_primary = True
        elif kind == "fpr" and expect_primary:
            fingerprints.append(line.split(":")[9])
            expect_primary = False
    return tuple(fingerprints)


def load_signing_key(field: str, settings: FleetSettings, path: Path | None, pinned: str | None):
    """The armored public key at ``path``, refused unless it is exactly the pinned key."""
    if path is None or pinned is None:
        raise PreflightError(
            f"{field}: set both gpg_key_file and gpg_fingerprint; nothing is installed from "
            "an unpinned source"
        )
    armored = _read(settings, f"{field}.gpg_key_file", path)
    found = _fingerprints(armored)
    if not found:
        raise PreflightError(f"{field}.gpg_key_file: not an OpenPGP public key (GnuPG read none)")
    if found != (pinned,):
        raise PreflightError(
            f"{field}.gpg_key_file: holds key(s) {', '.join(found)}, but "
            f"{field}.gpg_fingerprint pins {pinned}; refusing an unpinned signing key"
        )
    return SigningKey(armored, pinned)


def collector_ca(settings: FleetSettings, now: datetime | None = None) -> str:
    """The CA that signed the log collector's certificate: a PEM CA certificate, in date."""
    path = settings.logging.ca_file
    if path is None:
        raise PreflightError(
            "logging.ca_file: required with logging.collector: logs are only ever sent over TLS "
            "to a collector whose certificate is checked"
        )
    pem = _read(settings, "logging.ca_file", path)
    try:
        ca = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise PreflightError("logging.ca_file: not a PEM certificate") from None
    try:
        is_ca = ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise PreflightError(
            "logging.ca_file: not a CA certificate (give the CA that signed the collector's "
            "certificate, not the collector's own)"
        )
    _in_date("logging.ca_file", ca, now or datetime.now(UTC))
    return pem


@dataclass(frozen=True)
class LogMaterial:
    ca_pem: str
    cert_pem: str | None = None  # the clients' own certificate, when they show one
    key_pem: SecretStr | None = None


def load_log_material(settings: FleetSettings, now: datetime | None = None) -> LogMaterial:
    """The collector's CA and the clients' certificate and key, checked; RELP needs the pair."""
    logging = settings.logging
    ca_pem = collector_ca(settings, now)
    key, key_field = _private_key(
        settings, "logging", logging.client_key_pem, "client_key_pem", logging.client_key_file
    )
    if logging.client_cert_file is None and key is None:
        if logging.transport == "relp":
            raise PreflightError(
                "logging.client_cert_file: required for transport 'relp', with client_key_file "
                "(or client_key_pem): without a certificate of its own, librelp does not check "
                "the collector's name"
            )
        return LogMaterial(ca_pem)
    if logging.client_cert_file is None or key is None:
        raise PreflightError(
            "logging: give client_cert_file and client_key_file (or client_key_pem) together"
        )
    cert_pem = _read(settings, "logging.client_cert_file", logging.client_cert_file)
    cert = _certificate_with_key(cert_pem, "logging.client_cert_file", key, key_field)
    _in_date("logging.client_cert_file", cert, now or datetime.now(UTC))
    return LogMaterial(ca_pem, cert_pem, key)


@dataclass(frozen=True)
class HostCa:
    public_line: str  # "ssh-ed25519 AAAA..." as known_hosts and sshd read it
    fingerprint: str  # SHA256:...
    key_file: Path | None  # the private key on the operator's machine, when the deploy signs


def _ssh_keygen(*args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["ssh-keygen", *args], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise PreflightError(
            "ssh-keygen is not installed here: host certificates need OpenSSH's client tools"
        ) from None


def load_host_ca(settings: FleetSettings) -> HostCa | None:
    """The SSH CA the settings name, checked: one public key, and the private key its pair."""
    ssh = settings.ssh
    if ssh.host_ca_file is None:
        if ssh.host_ca_key_file is not None:
            raise PreflightError("ssh.host_ca_key_file: set ssh.host_ca_file (its public key) too")
        return None
    text = _read(settings, "ssh.host_ca_file", ssh.host_ca_file)
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    parts = lines[0].split() if len(lines) == 1 else []
    if len(parts) < 2 or not re.fullmatch(r"(ssh|ecdsa|sk)-[a-z0-9@.-]+", parts[0], re.ASCII):
        raise PreflightError("ssh.host_ca_file: not one SSH public key (TYPE BASE64 [COMMENT])")
    public_line = f"{parts[0]} {parts[1]}"
    with tempfile.TemporaryDirectory(prefix="cci-ca-") as directory:
        public = Path(directory) / "ca.pub"
        public.write_text(public_line + "\n")
        listed = _ssh_keygen("-l", "-E", "sha256", "-f", str(public))
    if listed.returncode != 0:
        raise PreflightError("ssh.host_ca_file: ssh-keygen cannot read the key in it")
    fingerprint = listed.stdout.split()[1]
    key_file = None
    if ssh.host_ca_key_file is not None:
        key_file = settings.local_path(ssh.host_ca_key_file)
        derived = _ssh_keygen("-y", "-P", "", "-f", str(key_file))
        if derived.returncode != 0:
            raise PreflightError(
                "ssh.host_ca_key_file: not an unencrypted SSH private key ssh-keygen can read"
            )
        if derived.stdout.split()[:2] != parts[:2]:
            raise PreflightError(
                "ssh.host_ca_key_file: its public half is not the key in ssh.host_ca_file"
            )
    return HostCa(public_line, fingerprint, key_file)


def load_revoked_host_keys(settings: FleetSettings) -> Path | None:
    """The key revocation list the settings name, checked to be OpenSSH's binary KRL (what
    ``ssh-keygen -k`` makes and ``ssh-keygen -Q`` reads; ``RevokedHostKeys`` would also take a
    list of plain keys, which the deploy's own check could not)."""
    if settings.ssh.revoked_host_keys_file is None:
        return None
    path = settings.local_path(settings.ssh.revoked_host_keys_file)
    if "%" in str(path.resolve()):
        raise PreflightError(
            f"ssh.revoked_host_keys_file: {path} has a '%', which some OpenSSH versions expand "
            "in RevokedHostKeys and others do not; move the file to a path without one"
        )
    try:
        with path.open("rb") as handle:
            magic = handle.read(len(KRL_MAGIC))
    except OSError as exc:
        raise PreflightError(
            f"ssh.revoked_host_keys_file: cannot read {path}: {exc.strerror}"
        ) from None
    if magic != KRL_MAGIC:
        raise PreflightError(
            "ssh.revoked_host_keys_file: not a key revocation list; make one with "
            "`ssh-keygen -k -f FILE KEYS...`"
        )
    return path


KRL_MAGIC = b"SSHKRL\n\0"
