"""The deploy trusts a host's key only through a certificate checked here, from its bytes.

Certificates are made with ssh-keygen in each shape a hostile or careless signer could give;
a loopback SSH server (paramiko) that sends lines before its banner reading like OpenSSH's own
"certificate verified" messages, with its own key's fingerprint, gets no trust.
"""

from __future__ import annotations

import base64
import datetime as dt
import socket
import subprocess
import threading
from pathlib import Path
from types import SimpleNamespace

import paramiko
import pytest

from cci_harden.fleet import host_trust
from cci_harden.fleet.cert_check import Refused, certified_key

NAMES = ("tb1", "10.231.0.11")


def _keygen(*args: str) -> None:
    subprocess.run(["ssh-keygen", "-q", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    directory = tmp_path_factory.mktemp("certs")
    for name in ("ca", "foreign", "host"):
        _keygen("-t", "ed25519", "-N", "", "-C", name, "-f", str(directory / name))
    return directory


def sign(keys: Path, *options: str, signer: str = "ca", host: bool = True) -> str:
    """A certificate for the host key, as ``TYPE BASE64`` (what a server presents)."""
    public = keys / "host.pub"
    _keygen("-s", str(keys / signer), *(["-h"] if host else []), "-I", "tb1", *options,
            str(public))  # fmt: skip
    return " ".join((keys / "host-cert.pub").read_text().split()[:2])


def check(keys: Path, presented: str, names=NAMES, max_days=90, revoked=None, now=None) -> str:
    ca = (keys / "ca.pub").read_text()
    return certified_key(presented, ca, names, max_days, revoked, now)


def refusal(keys: Path, presented: str, **kwargs) -> str:
    with pytest.raises(Refused) as caught:
        check(keys, presented, **kwargs)
    return str(caught.value)


def test_a_good_certificate_gives_the_key_it_certifies(keys):
    presented = sign(keys, "-n", ",".join(NAMES), "-V", "-5m:+90d")
    assert check(keys, presented) == " ".join((keys / "host.pub").read_text().split()[:2])


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        (("-n", "tb1,10.231.0.11,*", "-V", "-5m:+1d"), "could be a pattern: '*'"),
        (("-n", "tb1,10.231.0.11,10.231.0.12", "-V", "-5m:+1d"), "expected exactly"),
        (("-n", "tb1", "-V", "-5m:+1d"), "expected exactly"),
        (("-V", "-5m:+1d"), "no principals"),
        (("-n", "tb1,10.231.0.11", "-V", "-2d:-1d"), "expired"),
        (("-n", "tb1,10.231.0.11", "-V", "+1d:+2d"), "not valid before"),
        (("-n", "tb1,10.231.0.11", "-V", "-5m:+400d"), "longer than ssh.host_cert_days"),
        (("-n", "tb1,10.231.0.11", "-V", "always:forever"), "longer than ssh.host_cert_days"),
    ],
)
def test_a_certificate_for_other_names_or_times_is_refused(keys, options, reason):
    assert reason in refusal(keys, sign(keys, *options))


def test_another_signer_a_user_certificate_and_a_plain_key_are_refused(keys):
    names = ("-n", ",".join(NAMES), "-V", "-5m:+1d")
    assert "another CA" in refusal(keys, sign(keys, *names, signer="foreign"))
    assert "user certificate" in refusal(keys, sign(keys, *names, host=False))
    plain = " ".join((keys / "host.pub").read_text().split()[:2])
    assert "no ed25519 host certificate" in refusal(keys, plain)
    assert "does not parse" in refusal(keys, "ssh-ed25519-cert-v01@openssh.com AAAA%%%")


def test_a_signature_that_does_not_verify_is_refused(keys):
    kind, body = sign(keys, "-n", ",".join(NAMES), "-V", "-5m:+1d").split()
    blob = bytearray(base64.b64decode(body))
    blob[-1] ^= 0x01  # the last byte of the CA's signature
    assert "does not verify" in refusal(keys, f"{kind} {base64.b64encode(bytes(blob)).decode()}")


def test_a_certificate_or_key_in_the_revocation_list_is_refused(keys, tmp_path):
    presented = sign(keys, "-n", ",".join(NAMES), "-V", "-5m:+1d")
    krl = tmp_path / "revoked.krl"
    _keygen("-k", "-f", str(krl), str(keys / "foreign.pub"))
    assert check(keys, presented, revoked=krl)  # another key revoked: this one passes
    _keygen("-k", "-u", "-f", str(krl), str(keys / "host.pub"))
    assert "revoked" in refusal(keys, presented, revoked=krl)


def test_the_validity_is_judged_at_the_given_moment(keys):
    presented = sign(keys, "-n", ",".join(NAMES), "-V", "20260101:20260201")
    assert check(keys, presented, now=dt.datetime(2026, 1, 15, tzinfo=dt.UTC))
    late = refusal(keys, presented, now=dt.datetime(2026, 2, 2, tzinfo=dt.UTC))
    assert late.startswith("expired 2026-02-0")


class _ChattyServer(threading.Thread):
    """An SSH server with a plain key that sends, before its banner, lines reading like
    OpenSSH's own messages about a verified certificate, with that key's fingerprint."""

    def __init__(self, host_key: paramiko.PKey, lines: list[str]):
        super().__init__(daemon=True)
        self.host_key = host_key
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lines = lines
        self.connections = 0

    def run(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            conn.sendall("".join(line + "\r\n" for line in self.lines).encode())
            transport = paramiko.Transport(conn)
            transport.add_server_key(self.host_key)
            try:
                transport.start_server(server=paramiko.ServerInterface())
            except Exception:
                pass
            transport.close()


def test_lines_before_the_banner_earn_no_trust(keys, tmp_path):
    _keygen("-t", "ed25519", "-N", "", "-f", str(tmp_path / "plain"))
    listed = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(tmp_path / "plain.pub")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    fingerprint = listed.stdout.split()[1]
    server = _ChattyServer(paramiko.Ed25519Key.from_private_key_file(str(tmp_path / "plain")), [
        f"debug1: Server host certificate: ssh-ed25519-cert-v01@openssh.com {fingerprint}, "
        "serial 1 ID \"tb1\" CA ssh-ed25519 SHA256:x valid forever",
        "debug1: Host '10.231.0.11' is known and matches the ED25519-CERT host certificate.",
    ])  # fmt: skip
    server.start()
    inventory = SimpleNamespace(ssh_config=None, user_for=lambda host: "root")
    host = SimpleNamespace(name="tb1", address="127.0.0.1", port=server.port)
    script = host_trust.capture_script(tmp_path)
    try:
        presented = host_trust._presented(inventory, host, script)
    finally:
        server.listener.close()
    assert server.connections >= 1  # the probe did reach it
    assert presented == ""  # a plain key is not a certificate, whatever was said before
    assert "no ed25519 host certificate" in refusal(keys, presented or "nothing")
