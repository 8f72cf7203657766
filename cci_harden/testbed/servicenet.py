"""The test bed's service namespace: addresses the hosts need that must never leave this machine.

One namespace on the bridge holds the hosts' time server and resolver, the cloud metadata address
(169.254.169.254) and an internal service inside a blocked range, and runs ``services.py`` there.
The namespace has no route beyond the bridge, and this machine's own routing is not touched: its
own metadata address, if it has one, stays where it was.
"""

from __future__ import annotations

import sys
from pathlib import Path

from . import network, process
from .layout import Layout
from .proxy import wait_listening
from .system import run

# Locally administered and fixed: the VMs' ARP caches stay right across a restart of the namespace.
SERVICE_MAC = "52:54:00:cc:ff:02"


def marker(layout: Layout) -> str:
    return str(layout.state_dir / "services")


def ensure_namespace(layout: Layout) -> None:
    netns = layout.service_netns
    network.ensure_host_network(
        netns, netns[:15], layout.bridge, layout.service_address, layout.subnet, mac=SERVICE_MAC
    )
    held = run(["ip", "-n", netns, "-o", "-4", "addr", "show", "dev", "eth0"])
    for cidr in (
        f"{layout.resolver_address}/{layout.subnet.prefixlen}",
        f"{layout.internal_address}/{layout.subnet.prefixlen}",
        f"{layout.metadata_address}/32",
    ):
        if f"inet {cidr} " not in held:
            run(["ip", "-n", netns, "addr", "add", cidr, "dev", "eth0"])
    # this machine may remember the address at a namespace made before (another MAC)
    run(["ip", "neigh", "flush", "dev", layout.bridge, "to", str(layout.service_address)])


def running(layout: Layout, pid: int | None) -> bool:
    return process.owns(pid, marker(layout))


def start(layout: Layout) -> int:
    ensure_namespace(layout)
    pid = process.spawn(
        [
            "ip",
            "netns",
            "exec",
            layout.service_netns,
            sys.executable,
            "-m",
            "cci_harden.testbed.services",
            "--ntp-address",
            str(layout.service_address),
            "--dns-address",
            str(layout.resolver_address),
            "--dns-answer",
            str(layout.internal_address),
            "--marker",
            marker(layout),
        ],
        layout.state_dir / "services.log",
    )
    # the namespace's own bridge address only: this machine must never route to the others
    wait_listening(str(layout.service_address), 80, pid, what="the stand-in services")
    return pid


def stop(layout: Layout, pid: int | None) -> None:
    process.stop(pid, marker(layout))
    for stray in process.find_processes(marker(layout), process_name()):
        process.stop(stray, marker(layout))
    network.delete_host_network(layout.service_netns, layout.service_netns[:15])


def process_name() -> str:
    return Path(sys.executable).name
