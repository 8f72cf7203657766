"""Host keys at scale (CCI-SSH-02): a host whose key the fleet's SSH CA certified is
trusted without a known_hosts line, by verify (OpenSSH) and by the deploy (paramiko, through
certificates checked on the operator's machine); a key certified by another CA, or not at all,
for a name too many, or revoked, is refused by both.

The CA and a foreign CA are made here with ssh-keygen; tb1 and tb2 are certified by a deploy.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from cci_harden.controls.ssh import HOST_CERT, HOST_KEY

from .conftest import INVENTORIES, changed_hosts, pyinfra_json, run_cli, run_pyinfra, ssh

pytestmark = pytest.mark.testbed


def _keypair(directory: Path, name: str) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(directory / name)],
        check=True,
    )
    return directory / name


@pytest.fixture(scope="module")
def certified(deployed, tmp_path_factory):
    """tb1 and tb2 certified by the test CA; afterwards converged again without it."""
    inventory, _ = deployed
    directory = tmp_path_factory.mktemp("ssh-ca")
    ca, foreign = _keypair(directory, "ca"), _keypair(directory, "foreign")
    env = {"CCI_SSH__HOST_CA_FILE": f"{ca}.pub", "CCI_SSH__HOST_CA_KEY_FILE": str(ca)}
    result = pyinfra_json(
        inventory.path, "deploys/nomad.py", "--limit", "tb1", "--limit", "tb2", env=env
    )
    try:
        yield inventory, env, ca, foreign, result
    finally:
        pyinfra_json(inventory.path, "deploys/nomad.py", "--limit", "tb1", "--limit", "tb2")


def _without_known_hosts(inventory, directory: Path) -> Path:
    """The test bed's inventory with an empty known_hosts: no host has a line of its own."""
    (directory / "empty.known_hosts").write_text("")
    toml = (INVENTORIES / "testbed.toml").read_text()
    toml = re.sub(r"(?m)^known_hosts = .*$", f'known_hosts = "{directory}/empty.known_hosts"', toml)
    toml = re.sub(
        r"(?m)^ssh_config = .*$", f'ssh_config = "{INVENTORIES / "testbed.ssh_config"}"', toml
    )
    (directory / "stripped.toml").write_text(toml)
    (directory / "stripped").write_text((INVENTORIES / "testbed").read_text())
    return directory / "stripped"


def _fingerprint(text: str) -> str:
    listed = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", "-"], input=text, capture_output=True, text=True
    )
    return listed.stdout.split()[1]


def test_the_deploy_certifies_each_host_key_with_the_ca(certified):
    inventory, env, ca, _, result = certified
    signed = changed_hosts(result)[
        f"[CCI-SSH-02] {HOST_CERT} (signed by the CA here, for this host's names)"
    ]
    assert set(signed) == {"tb1", "tb2"}
    ca_fingerprint = _fingerprint(Path(f"{ca}.pub").read_text())
    shown = ssh(inventory, "tb1", f"TZ=UTC ssh-keygen -L -f {HOST_CERT}").stdout
    assert f"Signing CA: ED25519 {ca_fingerprint}" in shown and "host certificate" in shown
    host_key = ssh(inventory, "tb1", f"cat {HOST_KEY}").stdout
    assert f"Public key: ED25519-CERT {_fingerprint(host_key)}" in shown
    proc = run_cli(
        "verify", str(inventory.path), "--limit", "tb1", "--control", "CCI-SSH-02", env=env
    )
    assert proc.returncode == 0, proc.stdout


def test_a_certified_host_is_trusted_without_a_known_hosts_line(certified, tmp_path):
    _, env, *_ = certified
    stripped = _without_known_hosts(certified[0], tmp_path)
    proc = run_cli("verify", str(stripped), "--limit", "tb1", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    again = pyinfra_json(stripped, "deploys/nomad.py", "--limit", "tb1", env=env)
    assert changed_hosts(again) == {}


def test_another_cas_certificate_and_no_certificate_are_refused(certified, tmp_path):
    inventory, env, ca, foreign, _ = certified
    # tb2 now shows a certificate for its own key and names, from a CA the fleet does not trust
    key = tmp_path / "tb2.pub"
    key.write_text(ssh(inventory, "tb2", f"cat {HOST_KEY}").stdout)
    subprocess.run(
        ["ssh-keygen", "-q", "-s", str(foreign), "-h", "-I", "tb2", "-n", "tb2,10.231.0.12",
         "-V", "-5m:+1d", str(key)],
        check=True,
    )  # fmt: skip
    forged = (tmp_path / "tb2-cert.pub").read_text()
    ssh(inventory, "tb2", f"printf '%s' '{forged.strip()}' > {HOST_CERT} && systemctl reload ssh")
    stripped = _without_known_hosts(inventory, tmp_path)
    for host in ("tb2", "tb3"):  # tb3 has no certificate at all
        deploy = run_pyinfra(stripped, "deploys/nomad.py", "--limit", host, env=env)
        assert deploy.returncode == 2, deploy.stdout[-2000:]
        assert f"that passes: {host} (" in deploy.stderr, deploy.stderr
        report = run_cli("verify", str(stripped), "--limit", host, env=env)
        assert report.returncode == 2, report.stdout
    # with its known_hosts line, tb2 is reached and its certificate reported as drift
    drift = run_cli(
        "verify", str(inventory.path), "--limit", "tb2", "--control", "CCI-SSH-02", env=env
    )
    assert drift.returncode == 1 and "signer" in drift.stdout, drift.stdout


def _present(inventory, tmp_path, signer: Path, names: str) -> None:
    """tb2's sshd now presents a certificate for its own key, signed by ``signer``."""
    key = tmp_path / "tb2.pub"
    key.write_text(ssh(inventory, "tb2", f"cat {HOST_KEY}").stdout)
    subprocess.run(
        ["ssh-keygen", "-q", "-s", str(signer), "-h", "-I", "tb2", "-n", names, "-V", "-5m:+1d",
         str(key)],
        check=True,
    )  # fmt: skip
    cert = (tmp_path / "tb2-cert.pub").read_text().strip()
    ssh(inventory, "tb2", f"printf '%s' '{cert}' > {HOST_CERT} && systemctl reload ssh")


def test_a_name_too_many_or_a_revoked_key_is_refused(certified, tmp_path):
    """The fleet's own CA, but a certificate that also names '*': whoever holds tb2's key
    could pose as any host. Then a proper one, whose key the revocation list names."""
    inventory, env, ca, _, _ = certified
    stripped = _without_known_hosts(inventory, tmp_path)
    _present(inventory, tmp_path, ca, "tb2,10.231.0.12,*")
    deploy = run_pyinfra(stripped, "deploys/nomad.py", "--limit", "tb2", env=env)
    assert deploy.returncode == 2 and "could be a pattern: '*'" in deploy.stderr, deploy.stderr
    _present(inventory, tmp_path, ca, "tb2,10.231.0.12")
    krl = tmp_path / "revoked.krl"
    subprocess.run(
        ["ssh-keygen", "-q", "-k", "-f", str(krl), str(tmp_path / "tb2.pub")], check=True
    )
    revoked = env | {"CCI_SSH__REVOKED_HOST_KEYS_FILE": str(krl)}
    deploy = run_pyinfra(stripped, "deploys/nomad.py", "--limit", "tb2", env=revoked)
    assert deploy.returncode == 2 and "revoked" in deploy.stderr, deploy.stderr
    report = run_cli("verify", str(stripped), "--limit", "tb2", env=revoked)
    assert report.returncode == 2, report.stdout  # OpenSSH itself refuses it (RevokedHostKeys)
    # with its own known_hosts line, a revoked key is refused by the deploy too
    direct = run_pyinfra(inventory.path, "deploys/nomad.py", "--limit", "tb2", env=revoked)
    assert direct.returncode == 2 and "is revoked" in direct.stderr, direct.stderr
    assert run_cli("verify", str(stripped), "--limit", "tb2", env=env).returncode in (0, 1)
