"""Before any host is touched: mTLS material and signing keys are checked, and refused clearly."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from cci_harden.testbed.pki import key_pem, make_certificate, pem

from .conftest import INVENTORIES, cli_here, run_pyinfra
from .test_inventory import KNOWN
from .test_settings import BASE, write_inventory


@pytest.fixture(scope="module")
def release_key(tmp_path_factory) -> tuple[Path, str]:
    """A real OpenPGP key made with GnuPG: its armored public half and fingerprint."""
    home = tmp_path_factory.mktemp("gnupg")
    env = {**os.environ, "GNUPGHOME": str(home)}
    gpg = ["gpg", "--batch", "--quiet", "--passphrase", ""]
    subprocess.run(
        [*gpg, "--quick-gen-key", "preflight test", "ed25519", "sign", "never"],
        env=env,
        check=True,
        capture_output=True,
    )
    armored = subprocess.run(
        [*gpg, "--armor", "--export"], env=env, check=True, capture_output=True
    ).stdout
    listing = subprocess.run(
        [*gpg, "--with-colons", "--list-keys"], env=env, check=True, capture_output=True, text=True
    ).stdout
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line[:4] == "fpr:")
    path = home / "release.asc"
    path.write_bytes(armored)
    return path, fingerprint


def write_pki(directory: Path, *, days: int = 400, other_ca: bool = False, other_key: bool = False):
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = make_certificate("test CA", ca_key, "test CA", ca_key, 800, True)
    signer = ec.generate_private_key(ec.SECP256R1()) if other_ca else ca_key
    client_key = ec.generate_private_key(ec.SECP256R1())
    cert = make_certificate("client.global.nomad", client_key, "test CA", signer, days, False)
    shipped_key = ec.generate_private_key(ec.SECP256R1()) if other_key else client_key
    (directory / "ca.pem").write_bytes(pem(ca))
    (directory / "client.pem").write_bytes(pem(cert))
    (directory / "client-key.pem").write_bytes(key_pem(shipped_key))
    return key_pem(shipped_key).decode()


def complete_example(directory: Path, release_key, name: str = "prod", extra: str = "") -> Path:
    """The example inventory made complete: its signing keys (a real key the test made, pinned)
    and its TLS material beside it, named relative to it."""
    key_path, fingerprint = release_key
    (directory / "keys").mkdir()
    for key_name in ("hashicorp-release.asc", "docker-release.asc"):
        shutil.copy(key_path, directory / "keys" / key_name)
    (directory / "tls").mkdir()
    write_pki(directory / "tls")
    toml = (INVENTORIES / "prod.toml").read_text()
    for pinned in re.findall(r'gpg_fingerprint = "([0-9A-F]{40})"', toml):
        toml = toml.replace(pinned, fingerprint)
    toml = toml.replace("/etc/circleci-server/nomad/", "tls/")
    (directory / f"{name}.toml").write_text(toml + extra)
    shutil.copy(INVENTORIES / "prod", directory / name)
    return directory / name


def inventory_with(tmp_path: Path, release_key, extra: str = "") -> Path:
    key_path, fingerprint = release_key
    toml = (
        BASE
        + f"""
[network]
admin_cidrs = ["198.51.100.0/24"]
nomad_server_cidrs = ["192.0.2.0/26"]
[nomad]
servers = ["nomad.internal:4647"]
release_url = "http://192.0.2.1/nomad"
gpg_fingerprint = "{fingerprint}"
gpg_key_file = "{key_path}"
[nomad.tls]
ca_file = "ca.pem"
cert_file = "client.pem"
key_file = "client-key.pem"
[docker]
install_source = "docker.io"
"""
        + extra
    )
    inventory = write_inventory(tmp_path, toml)
    (tmp_path / "acme.known_hosts").write_text(KNOWN)
    return inventory


def test_ready_inventory_passes(tmp_path, release_key):
    write_pki(tmp_path)
    proc = cli_here("config", "check", str(inventory_with(tmp_path, release_key)))
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    ("defect", "message"),
    [
        ({"other_key": True}, "nomad.tls.key_file: the private key does not match the certificate"),
        ({"other_ca": True}, "nomad.tls.cert_file: not signed by the CA in nomad.tls.ca_file"),
        ({"days": 10}, "nomad.tls.cert_file: expires in 9 day(s)"),
    ],
)
def test_unfit_tls_material_is_refused_before_any_connection(
    tmp_path, release_key, defect, message
):
    key_text = write_pki(tmp_path, **defect)
    inventory = inventory_with(tmp_path, release_key)
    proc = run_pyinfra(inventory, "deploys/nomad.py")
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Connecting" not in proc.stdout + proc.stderr
    body = [line for line in key_text.splitlines() if "-----" not in line]
    assert not any(line in proc.stdout + proc.stderr for line in body)


def test_expired_certificate_is_refused(tmp_path, release_key):
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = make_certificate("test CA", ca_key, "test CA", ca_key, 800, True)
    client_key = ec.generate_private_key(ec.SECP256R1())
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    cert = make_certificate("c", client_key, "test CA", ca_key, 10, False, not_before=past)
    (tmp_path / "ca.pem").write_bytes(pem(ca))
    (tmp_path / "client.pem").write_bytes(pem(cert))
    (tmp_path / "client-key.pem").write_bytes(key_pem(client_key))
    proc = cli_here("config", "check", str(inventory_with(tmp_path, release_key)))
    assert proc.returncode == 2 and "nomad.tls.cert_file: expired" in proc.stderr


def test_signing_key_that_is_not_the_pinned_one_is_refused(tmp_path, release_key):
    write_pki(tmp_path)
    inventory = inventory_with(tmp_path, release_key)
    settings = inventory.with_name("acme.toml")
    text = settings.read_text().replace(release_key[1], "A" * 40)
    settings.write_text(text)
    proc = cli_here("config", "check", str(inventory))
    assert proc.returncode == 2
    assert f"nomad.gpg_key_file: holds key(s) {release_key[1]}, but" in proc.stderr
    assert f"pins {'A' * 40}; refusing an unpinned signing key" in proc.stderr


def test_empty_admin_networks_would_lock_out_and_are_refused(tmp_path, release_key):
    write_pki(tmp_path)
    inventory = inventory_with(tmp_path, release_key)
    settings = inventory.with_name("acme.toml")
    settings.write_text(settings.read_text().replace('admin_cidrs = ["198.51.100.0/24"]', ""))
    proc = cli_here("config", "check", str(inventory))
    assert proc.returncode == 2 and "network.admin_cidrs: empty" in proc.stderr
