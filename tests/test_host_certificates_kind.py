"""CCI-SSH-02 without a host: the certificate as ssh-keygen reported it on a test host, the CA
checks on the operator's machine, and the sshd drop-in."""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
from pathlib import Path

import pytest

from cci_harden.config.materials import PreflightError, load_host_ca, load_revoked_host_keys
from cci_harden.config.settings import load_settings
from cci_harden.controls.ssh import (
    CERT_ALGORITHM,
    HOST_CERT,
    HOST_CERTIFICATE,
    HOST_KEY,
    sshd_dropin,
)
from cci_harden.model.errors import SettingsError
from cci_harden.model.kinds import HostCertificate

from .test_resources import HOST, RECORDED
from .test_settings import VALID, write_inventory

RECORDED_CA = "SHA256:jBP68aBeTDo70lXCLVoEfqrOQ67PJu3IlyomCOOI2wM"  # the tests' CA that day
BEFORE_EXPIRY = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
CERT = HostCertificate(HOST_CERT, HOST_KEY, RECORDED_CA, ("tb1", "10.231.0.11"), renew_days=14)


def state(resource=CERT, output=None):
    output = RECORDED["host-certificate"] if output is None else output
    return type(resource).parse(output, [resource])[resource.key]


def findings(resource=CERT, output=None, now=BEFORE_EXPIRY):
    return resource.compare(state(resource, output), HOST, now=now)


def test_the_recorded_certificate_reads_as_ssh_keygen_printed_it():
    found = state()
    assert found.cert_type == "host certificate"
    assert found.ca_fingerprint == RECORDED_CA
    assert found.cert_key_fingerprint == found.host_fingerprint
    assert found.principals == ("tb1", "10.231.0.11")
    assert (found.valid_from, found.valid_to) == ("2026-12-01T04:11:45", "2027-03-01T04:16:45")
    assert findings() == []


def test_another_ca_a_missing_name_and_a_near_expiry_are_each_named():
    other = dataclasses.replace(CERT, ca_fingerprint="SHA256:other")
    assert [f.what for f in findings(other)] == [f"{HOST_CERT} signer"]
    renamed = dataclasses.replace(CERT, principals=("tb1", "10.231.0.99"))
    assert [f.what for f in findings(renamed)] == [f"{HOST_CERT} principals"]
    (late,) = findings(now=dt.datetime(2027, 2, 20, tzinfo=dt.UTC))
    assert late.found == "until 2027-03-01T04:16:45"


def test_a_certificate_for_another_key_or_none_at_all_is_drift():
    text = RECORDED["host-certificate"]
    swapped = text.replace(
        "Public key: ED25519-CERT SHA256:sM", "Public key: ED25519-CERT SHA256:xx"
    )
    assert [f.what for f in findings(output=swapped)] == [f"{HOST_CERT} key"]
    no_cert = "\n".join(text.splitlines()[:3])
    (missing,) = findings(output=no_cert)
    assert (missing.what, missing.found) == (HOST_CERT, "missing")
    (no_key,) = findings(output="@@" + HOST_CERT)
    assert (no_key.what, no_key.found) == (HOST_KEY, "missing")


def _ca(tmp_path, name="ca"):
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / name)], check=True
    )
    return tmp_path / name


def _settings(tmp_path, lines: str):
    return load_settings(write_inventory(tmp_path, VALID + f"[ssh]\n{lines}\n"))


def test_the_ca_is_checked_before_any_host(tmp_path):
    ca, other = _ca(tmp_path), _ca(tmp_path, "other")
    ok = load_host_ca(_settings(tmp_path, f'host_ca_file = "{ca}.pub"\nhost_ca_key_file = "{ca}"'))
    assert ok.fingerprint.startswith("SHA256:") and ok.key_file == ca
    mismatched = _settings(tmp_path, f'host_ca_file = "{ca}.pub"\nhost_ca_key_file = "{other}"')
    with pytest.raises(PreflightError, match="its public half is not the key"):
        load_host_ca(mismatched)
    (tmp_path / "junk.pub").write_text("not a key\n")
    with pytest.raises(PreflightError, match="not one SSH public key"):
        load_host_ca(_settings(tmp_path, f'host_ca_file = "{tmp_path}/junk.pub"'))


def test_sshd_presents_the_certificate_first_to_clients_that_ask(tmp_path):
    ca = _ca(tmp_path)
    text = sshd_dropin(_settings(tmp_path, f'host_ca_file = "{ca}.pub"'))
    assert f"HostCertificate {HOST_CERT}" in text
    assert f"HostKeyAlgorithms {CERT_ALGORITHM},ssh-ed25519" in text
    plain = sshd_dropin(load_settings(write_inventory(tmp_path, VALID)))
    assert "HostCertificate" not in plain and CERT_ALGORITHM not in plain


def test_a_certificate_names_only_what_the_operator_calls_the_host(tmp_path):
    """A host reporting another host's name (its hostname is the host's to set) gets no
    certificate for it: only the inventory's name and address are signed."""
    ca = _ca(tmp_path)
    settings = _settings(tmp_path, f'host_ca_file = "{ca}.pub"\nhost_ca_key_file = "{ca}"')
    info = dataclasses.replace(
        HOST, name="client-1", address="192.0.2.10", hostname="bastion.internal"
    )
    (cert,) = HOST_CERTIFICATE.resources(settings, info)
    assert cert.principals == ("client-1", "192.0.2.10")
    assert cert.signer == str(ca)
    local = dataclasses.replace(info, name="@local", address="")
    (checked_only,) = HOST_CERTIFICATE.resources(settings, local)
    assert checked_only.principals == ()


def test_an_extra_principal_and_a_long_validity_are_drift():
    """A certificate that also names another host (or '*') lets whoever holds this host's key
    pose as that host; one valid for longer than ssh.host_cert_days outlives the policy."""
    text = RECORDED["host-certificate"]
    widened = text.replace("        10.231.0.11\n", "        10.231.0.11\n                *\n")
    assert widened != text
    (extra,) = findings(output=widened)
    assert (extra.what, extra.found) == (f"{HOST_CERT} principals", "tb1, 10.231.0.11, *")
    short = dataclasses.replace(CERT, validity_days=30)
    (long,) = findings(short)
    assert (long.what, long.expected) == (f"{HOST_CERT} validity", "at most 30 days")


def test_the_validity_is_capped_and_renewal_comes_before_the_end(tmp_path):
    with pytest.raises(SettingsError, match="ssh.host_cert_days: Input should be less than"):
        load_settings(write_inventory(tmp_path, VALID + "[ssh]\nhost_cert_days = 3650\n"))
    renew_at_once = "[ssh]\nhost_cert_days = 7\nhost_cert_renew_days = 7\n"
    with pytest.raises(SettingsError, match="host_cert_renew_days must be less than"):
        load_settings(write_inventory(tmp_path, VALID + renew_at_once))


def test_the_revocation_list_must_be_a_krl(tmp_path):
    (tmp_path / "list.txt").write_text("ssh-ed25519 AAAA\n")
    settings = _settings(tmp_path, f'revoked_host_keys_file = "{tmp_path}/list.txt"')
    with pytest.raises(PreflightError, match="not a key revocation list"):
        load_revoked_host_keys(settings)
    subprocess.run(["ssh-keygen", "-q", "-k", "-f", str(tmp_path / "r.krl")], check=True)
    settings = _settings(tmp_path, f'revoked_host_keys_file = "{tmp_path}/r.krl"')
    assert load_revoked_host_keys(settings) == tmp_path / "r.krl"


def test_a_revocation_list_path_reaches_openssh_as_it_is(tmp_path):
    """RevokedHostKeys is not token-expanded by every OpenSSH: a '%' in its path is refused."""
    odd = tmp_path / "100%"
    odd.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-k", "-f", str(odd / "r.krl")], check=True)
    settings = _settings(tmp_path, f'revoked_host_keys_file = "{odd}/r.krl"')
    with pytest.raises(PreflightError, match="has a '%'"):
        load_revoked_host_keys(settings)


def test_a_hosts_own_known_hosts_key_in_the_revocation_list_is_refused(tmp_path):
    """The deploy honours the list for hosts trusted by their own line, as OpenSSH does."""
    from cci_harden.fleet.host_trust import refuse_revoked_keys
    from cci_harden.fleet.inventory import Inventory
    from cci_harden.model.errors import InventoryError

    key = _ca(tmp_path, "hostkey")
    line = " ".join(Path(f"{key}.pub").read_text().split()[:2])
    (tmp_path / "acme.known_hosts").write_text(f"192.0.2.10 {line}\n")
    krl = tmp_path / "r.krl"
    subprocess.run(["ssh-keygen", "-q", "-k", "-f", str(krl)], check=True)
    toml = VALID + f'[ssh]\nrevoked_host_keys_file = "{krl}"\n'
    inventory = Inventory.load(write_inventory(tmp_path, toml))
    refuse_revoked_keys(inventory, inventory.hosts)  # an empty list revokes nothing
    subprocess.run(["ssh-keygen", "-q", "-k", "-u", "-f", str(krl), f"{key}.pub"], check=True)
    with pytest.raises(InventoryError, match="client-1: its key in .* is revoked"):
        refuse_revoked_keys(inventory, inventory.hosts)
