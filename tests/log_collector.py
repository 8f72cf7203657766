"""A real log collector on a test host: rsyslog receiving RELP and syslog over TLS, one file per
sender.

The tests make its CA and certificate (``collector.testbed``), install rsyslog from the test bed's
apt proxy, and open 2514 and 6514 in the host's ingress table until they are done; the firewall
is then reloaded from its own file, so the host is as the deploy left it.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from cci_harden.testbed.pki import key_pem, make_certificate, pem

from .conftest import ssh

CONFIG = Path(__file__).parent / "fixtures" / "logging" / "collector.conf"
NAME = "collector.testbed"


@dataclass(frozen=True)
class Collector:
    inventory: object
    host: str
    address: str
    ca_file: Path

    def env(self, **overrides: str) -> dict[str, str]:
        """The settings, as environment variables, that send a client's logs here."""
        return {
            "CCI_LOGGING__COLLECTOR": self.address,
            "CCI_LOGGING__COLLECTOR_NAME": NAME,
            "CCI_LOGGING__CA_FILE": str(self.ca_file),
            "CCI_LOGGING__CLIENT_CERT_FILE": str(self.ca_file.with_name("client-cert.pem")),
            "CCI_LOGGING__CLIENT_KEY_FILE": str(self.ca_file.with_name("client-key.pem")),
            **overrides,
        }

    def lines(self, sender: str) -> list[str]:
        """What arrived from ``sender``: ``hostname app message`` per record, blanks squeezed."""
        proc = ssh(self.inventory, self.host, f"cat /var/log/collector/{sender}.log", check=False)
        return [" ".join(line.split()) for line in proc.stdout.splitlines()]

    def wait_for(self, sender: str, done, timeout: float = 60.0) -> list[str]:
        """Poll until ``done(lines)`` holds; the last lines seen either way."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.lines(sender)
            if done(lines) or time.monotonic() > deadline:
                return lines
            time.sleep(1)

    def stop(self) -> None:
        ssh(self.inventory, self.host, "systemctl stop rsyslog.service syslog.socket")

    def start(self) -> None:
        ssh(self.inventory, self.host, "systemctl start rsyslog.service")


def make_pki(directory: Path, name: str = NAME) -> dict[str, bytes]:
    """A CA, a certificate for ``name`` and one for the clients, signed by it. Written to
    ``directory``; returned are the collector's own files (PEM bytes by file name)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = make_certificate("test log CA", ca_key, "test log CA", ca_key, 30, True)
    files = {"ca.pem": pem(ca)}
    for subject, stem in ((name, ""), ("clients.testbed", "client-")):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = make_certificate(subject, key, "test log CA", ca_key, 30, False)
        files[f"{stem}cert.pem"], files[f"{stem}key.pem"] = pem(cert), key_pem(key)
    directory.mkdir(parents=True, exist_ok=True)
    for file_name, data in files.items():
        (directory / file_name).write_bytes(data)
    return {k: v for k, v in files.items() if not k.startswith("client-")}


def _copy(inventory, host: str, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        proc = subprocess.run(
            ["ssh", "-F", str(inventory.ssh_config), host, f"cat > /etc/collector/{name}"],
            input=data,
            capture_output=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr


@contextlib.contextmanager
def running_collector(inventory, host: str, directory: Path):
    """rsyslog on ``host`` as a TLS collector while the block runs."""
    address = next(h.address for h in inventory.hosts if h.name == host)
    proxy = inventory.settings.apt.proxy
    ssh(
        inventory,
        host,
        "export DEBIAN_FRONTEND=noninteractive; "
        f"apt-get -o Acquire::http::Proxy={proxy} update -qq && "
        f"apt-get -o Acquire::http::Proxy={proxy} install -y -qq "
        "rsyslog rsyslog-gnutls rsyslog-relp >/dev/null && "
        "install -d -m 0700 /etc/collector && rm -rf /var/log/collector",
    )
    _copy(inventory, host, {**make_pki(directory), "collector.conf": CONFIG.read_bytes()})
    ssh(
        inventory,
        host,
        "chmod 0600 /etc/collector/key.pem && "
        "mv /etc/collector/collector.conf /etc/rsyslog.d/50-collector.conf && "
        "rsyslogd -N1 && systemctl restart rsyslog && "
        # the deploy's ingress table drops 6514; admit it until the tests are done
        "if nft list chain inet cci_ingress input >/dev/null 2>&1; then "
        "nft insert rule inet cci_ingress input tcp dport '{ 2514, 6514 }' accept; fi",
    )
    try:
        yield Collector(inventory, host, address, directory / "ca.pem")
    finally:
        ssh(
            inventory,
            host,
            "rm -f /etc/rsyslog.d/50-collector.conf; systemctl restart rsyslog; "
            "if systemctl is-active -q cci-harden-firewall; then "
            "systemctl restart cci-harden-firewall; fi",
            check=False,
        )
