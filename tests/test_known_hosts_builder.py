"""``cci-harden known-hosts``: a key becomes trusted only when the operator vouched for its
fingerprint; every line is keyed by the address as the inventory gives it."""

from __future__ import annotations

import subprocess

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from cci_harden.fleet.known_hosts_command import fingerprint

from .conftest import cli_here
from .test_settings import BASE, write_inventory


def public_blob() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    line = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return line.decode().split()[1]


def test_fingerprints_match_openssh(tmp_path):
    blob = public_blob()
    (tmp_path / "k.pub").write_text(f"ssh-ed25519 {blob}\n")
    shown = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(tmp_path / "k.pub")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert shown.split()[1] == fingerprint(blob)


def test_only_vouched_keys_become_known_hosts_lines(tmp_path):
    toml = BASE.replace(
        'hosts = [{ name = "client-1", address = "192.0.2.10" }]',
        'hosts = [{ name = "client-1", address = "192.0.2.10" },\n'
        '         { name = "client-2", address = "192.0.2.20", port = 2222 },\n'
        '         { name = "client-3", address = "192.0.2.30" }]',
    )
    inventory = write_inventory(tmp_path, toml)
    good1, good2, forged = public_blob(), public_blob(), public_blob()
    scan = tmp_path / "scan.txt"
    scan.write_text(
        "# 192.0.2.10:22 SSH-2.0-OpenSSH_9.2p1\n"
        f"192.0.2.10 ssh-ed25519 {good1}\n"
        f"[192.0.2.20]:2222 ssh-ed25519 {good2}\n"
        f"192.0.2.30 ssh-ed25519 {forged}\n"  # an answer from whoever sits on the path
    )
    vouched = tmp_path / "console.txt"
    vouched.write_text(
        f"256 {fingerprint(good1)} root@client-1 (ED25519)\n"
        f"ec2 console: {fingerprint(good2)} (ED25519)\n"
    )
    proc = cli_here(
        "known-hosts", str(inventory), "--scan", str(scan), "--fingerprints", str(vouched),
        "--write",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr  # client-3's key was refused: said, and exit 1
    assert f"client-3 (192.0.2.30): ssh-ed25519 {fingerprint(forged)} is not vouched" in proc.stderr
    assert "no vouched key for client-3" in proc.stderr
    written = (tmp_path / "acme.known_hosts").read_text()
    assert written == (f"192.0.2.10 ssh-ed25519 {good1}\n[192.0.2.20]:2222 ssh-ed25519 {good2}\n")
    empty = tmp_path / "nothing.txt"
    empty.write_text("no fingerprints here\n")
    refused = cli_here(
        "known-hosts", str(inventory), "--scan", str(scan), "--fingerprints", str(empty)
    )
    assert refused.returncode == 2 and "no SHA256 fingerprint" in refused.stderr
