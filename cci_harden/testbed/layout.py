"""Where the test bed keeps its files and how its hosts are named and addressed.

The base image is a cache kept outside the checkout and survives ``down``; everything else the test
bed creates is recorded in its state file and removed by ``down``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

# Debian releases the test bed boots (codename -> version); hosts run the default unless
# `testbed up --release` names another. Every one comes from this machine's own mirror.
RELEASES = {"bookworm": "12", "trixie": "13"}
DEFAULT_RELEASE = "bookworm"
# Packages the base image carries: an init, sshd, and what pyinfra and testinfra use on a host.
BASE_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "python3",
    "iproute2",
    "sudo",
    "ca-certificates",
)


@dataclass(frozen=True)
class Layout:
    cache_dir: Path = Path(os.environ.get("CCI_TESTBED_CACHE", "/var/cache/cci-harden"))
    state_dir: Path = Path(os.environ.get("CCI_TESTBED_STATE", "/var/lib/cci-harden/testbed"))
    subnet: ipaddress.IPv4Network = field(
        default_factory=lambda: ipaddress.IPv4Network(
            os.environ.get("CCI_TESTBED_SUBNET", "10.231.0.0/24")
        )
    )
    bridge: str = "ccitb0"
    proxy_port: int = 3142
    mirror_port: int = 3143
    prefix: str = "ccitb"
    # the cloud metadata address, held by the service namespace; VM hosts route it on the bridge
    metadata_address: ipaddress.IPv4Address = ipaddress.IPv4Address("169.254.169.254")

    def base_image(self, release: str = DEFAULT_RELEASE) -> Path:
        return self.cache_dir / f"base-{release}"

    @property
    def proxy_cache(self) -> Path:
        return self.cache_dir / "apt-cacher-ng"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def client_key(self) -> Path:
        return self.state_dir / "id_ed25519"

    @property
    def control_dir(self) -> Path:
        """Where OpenSSH keeps multiplexing sockets: short, as socket paths are capped at 108."""
        digest = hashlib.sha1(str(self.state_dir).encode(), usedforsecurity=False).hexdigest()[:10]
        return Path("/run/cci-harden") / digest

    @property
    def bridge_address(self) -> ipaddress.IPv4Address:
        return self.subnet.network_address + 1

    @property
    def proxy_url(self) -> str:
        return f"http://{self.bridge_address}:{self.proxy_port}"

    @property
    def mirror_dir(self) -> Path:
        """What the release mirror serves: the stand-in Nomad release, signed."""
        return self.state_dir / "mirror"

    @property
    def mirror_url(self) -> str:
        return f"http://{self.bridge_address}:{self.mirror_port}"

    @property
    def release_dir(self) -> Path:
        """The test bed's own release-signing key and the operator-side copy of its public half."""
        return self.state_dir / "release"

    @property
    def pki_dir(self) -> Path:
        return self.state_dir / "pki"

    def host_name(self, index: int) -> str:
        return f"tb{index}"

    def host_address(self, index: int) -> ipaddress.IPv4Address:
        return self.subnet.network_address + 10 + index

    def host_dir(self, name: str) -> Path:
        return self.state_dir / "hosts" / name

    def vm_name(self, index: int) -> str:
        return f"tbv{index}"

    def vm_address(self, index: int) -> ipaddress.IPv4Address:
        return self.subnet.network_address + 220 + index

    def vm_dir(self, name: str) -> Path:
        return self.state_dir / "vms" / name

    def tap(self, name: str) -> str:
        return f"{self.prefix}-{name}"[:15]

    @property
    def service_netns(self) -> str:
        """The namespace holding the stand-in services (NTP, DNS, metadata, an internal site)."""
        return f"{self.prefix}-svc"

    @property
    def service_address(self) -> ipaddress.IPv4Address:
        """The service namespace's own address on the bridge: the hosts' time server."""
        return self.subnet.network_address + 2

    @property
    def blocked_cidr(self) -> ipaddress.IPv4Network:
        """A range the inventory forbids job containers; the last /29 of the subnet."""
        return ipaddress.IPv4Network(f"{self.subnet.broadcast_address - 7}/29")

    @property
    def resolver_address(self) -> ipaddress.IPv4Address:
        """The hosts' DNS resolver, inside the blocked range: jobs still reach it on port 53."""
        return self.blocked_cidr.network_address + 1

    @property
    def internal_address(self) -> ipaddress.IPv4Address:
        """A stand-in internal service inside the blocked range: jobs must not reach it."""
        return self.blocked_cidr.network_address + 2

    def netns(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def veth(self, name: str) -> str:
        return f"{self.prefix}-{name}"[:15]
