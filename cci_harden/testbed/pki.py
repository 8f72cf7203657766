"""mTLS material for the test bed: a throwaway CA and a Nomad client certificate signed by it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .layout import Layout


@dataclass(frozen=True)
class Pki:
    ca_file: Path
    cert_file: Path
    key_file: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certificate(
    subject: str,
    key,
    issuer_name: str,
    issuer_key,
    days: int,
    ca: bool,
    not_before: dt.datetime | None = None,
) -> x509.Certificate:
    start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(subject), x509.DNSName("localhost")]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def key_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def ensure_pki(layout: Layout) -> Pki:
    """The test bed's CA and client certificate, made once per test bed (valid 400 days)."""
    directory = layout.pki_dir
    result = Pki(directory / "ca.pem", directory / "client.pem", directory / "client-key.pem")
    if result.key_file.is_file():
        return result
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = "cci-harden test bed CA"
    ca = make_certificate(ca_name, ca_key, ca_name, ca_key, 400, True)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = make_certificate("client.global.nomad", client_key, ca_name, ca_key, 400, False)
    result.ca_file.write_bytes(pem(ca))
    result.cert_file.write_bytes(pem(client))
    result.key_file.touch(mode=0o600)
    result.key_file.write_bytes(key_pem(client_key))
    return result
