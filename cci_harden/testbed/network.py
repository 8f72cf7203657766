"""The test bed's network: one bridge on this machine, one namespace and veth pair per host.

Hosts get an address on the bridge's subnet and no default route: they can reach this machine (SSH
in, the apt proxy out) and nothing else, so no test traffic can leave the machine.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from .system import run

NETNS_DIR = Path("/run/netns")


def link_exists(name: str) -> bool:
    return run(["ip", "-o", "link", "show", "dev", name], check=False).strip() != ""


def netns_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def list_netns(prefix: str) -> list[str]:
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(prefix + "-"))


def list_links(prefix: str) -> list[str]:
    """Links on this machine whose name starts with ``prefix`` (a crashed ``up``'s taps)."""
    names = []
    for line in run(["ip", "-o", "link", "show"]).splitlines():
        name = line.split(":", 2)[1].strip().split("@")[0]
        if name.startswith(prefix):
            names.append(name)
    return names


def ensure_bridge(name: str, address: ipaddress.IPv4Address, subnet: ipaddress.IPv4Network):
    if not link_exists(name):
        run(["ip", "link", "add", name, "type", "bridge"])
    cidr = f"{address}/{subnet.prefixlen}"
    if cidr not in run(["ip", "-o", "-4", "addr", "show", "dev", name]):
        run(["ip", "addr", "add", cidr, "dev", name])
    run(["ip", "link", "set", name, "up"])


def delete_link(name: str) -> None:
    if link_exists(name):
        run(["ip", "link", "del", name], check=False)


def ensure_host_network(
    netns: str,
    veth: str,
    bridge: str,
    address: ipaddress.IPv4Address,
    subnet: ipaddress.IPv4Network,
    mac: str | None = None,
) -> None:
    """A namespace with ``eth0`` at ``address``, its peer ``veth`` enslaved to ``bridge``.

    A fixed ``mac`` keeps neighbours' ARP caches right when the namespace is made again."""
    if not netns_exists(netns):
        run(["ip", "netns", "add", netns])
    if not link_exists(veth):
        peer = ["name", "eth0", *(["address", mac] if mac else []), "netns", netns]
        run(["ip", "link", "add", veth, "type", "veth", "peer", *peer])
    run(["ip", "link", "set", veth, "master", bridge, "up"])
    cidr = f"{address}/{subnet.prefixlen}"
    if cidr not in run(["ip", "-n", netns, "-o", "-4", "addr", "show", "dev", "eth0"]):
        run(["ip", "-n", netns, "addr", "add", cidr, "dev", "eth0"])
    run(["ip", "-n", netns, "link", "set", "eth0", "up"])
    run(["ip", "-n", netns, "link", "set", "lo", "up"])


def delete_host_network(netns: str, veth: str) -> None:
    delete_link(veth)
    if netns_exists(netns):
        run(["ip", "netns", "del", netns], check=False)
