"""The host's network policy: who may reach a Nomad client, and where its jobs may not go.

Both live in nftables tables of our own (``cci_ingress``, ``cci_jobs``), loaded by one small
service before the network comes up. Docker's own iptables tables are never flushed or edited, so
Docker networking keeps working, and a Docker restart cannot drop these rules.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..model.control import Control, Source
from ..model.firewall_state import FIREWALL_DIR, STATE_DIR
from ..model.kinds import Listeners, ManagedFile, NftTable, Package, Service
from ..model.render import render
from .sources import circleci_page, hardening_page, server_4x

if TYPE_CHECKING:
    from ..config.settings import FleetSettings
    from ..model.hostinfo import HostInfo

LOADER = "/usr/local/sbin/cci-harden-firewall"
FIREWALL_UNIT_NAME = "cci-harden-firewall"
FIREWALL_UNIT = f"/etc/systemd/system/{FIREWALL_UNIT_NAME}.service"
PUBLIC_IPV4 = "/etc/circleci/public-ipv4"
METADATA_RANGE = ipaddress.IPv4Network("169.254.0.0/16")
# Job networks: docker0 and Docker's user-defined bridges, as in CircleCI's DOCKER-USER rules.
# CircleCI's own ci-privileged network is deliberately not matched.
JOB_BRIDGES = ("docker*", "br-*")
VALIDATE_NFT = "nft -c -f {path}"


def split(networks: Iterable) -> dict[str, list[str]]:
    """Collapse overlapping networks (nftables refuses overlapping interval elements)."""
    v4 = [n for n in networks if n.version == 4]
    v6 = [n for n in networks if n.version == 6]
    return {
        "v4": [str(n) for n in ipaddress.collapse_addresses(v4)],
        "v6": [str(n) for n in ipaddress.collapse_addresses(v6)],
    }


def _resolvers(settings: FleetSettings, info: HostInfo) -> list[ipaddress.IPv4Address]:
    if settings.network.job_dns_servers:
        return list(settings.network.job_dns_servers)
    found = []
    for text in info.nameservers:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            continue
        if address.version == 4 and not address.is_loopback:
            found.append(address)
    return found


# -- ingress -------------------------------------------------------------------------------------


def ingress_rules(settings: FleetSettings) -> tuple[list, list]:
    net = settings.network
    nomad_peers = [*net.nomad_server_cidrs, *net.cluster_cidrs]
    sets = {
        "admin": split(net.admin_cidrs),
        "nomad_peers": split(nomad_peers),
        "rerun_ssh": split(net.rerun_ssh_cidrs),
    }
    rules = [
        {"proto": "tcp", "ports": "22", "set": "admin", "why": "SSH from admin networks"},
        {"proto": "tcp", "ports": "4647", "set": "nomad_peers", "why": "Nomad RPC"},
    ]
    if net.nomad_http_api:
        rules.append(
            {"proto": "tcp", "ports": "4646", "set": "nomad_peers", "why": "Nomad HTTP API"}
        )
    rules.append(
        {"proto": "tcp", "ports": "64535-65535", "set": "rerun_ssh", "why": "rerun job with SSH"}
    )
    return list(sets.items()), rules


def _port_set(ports: tuple[int, ...]) -> str:
    """nft's spelling: one port bare, several as an anonymous set."""
    return str(ports[0]) if len(ports) == 1 else "{ " + ", ".join(map(str, ports)) + " }"


def egress_rules(settings: FleetSettings, info: HostInfo) -> tuple[list, list]:
    net = settings.network
    sets = {
        "resolvers": split(_resolvers(settings, info)),
        "servers": split(net.nomad_server_cidrs),
        "vm": split(net.vm_subnet_cidrs),
        "vcs": split(net.vcs_cidrs),
        "anywhere_in": split([*net.cluster_cidrs, *net.egress_cidrs]),
    }
    rules = [
        {
            "proto": "tcp",
            "ports": _port_set(settings.server.line.server_ports),
            "set": "servers",
            "why": f"Server {settings.server.line.name}: Nomad RPC"
            + (
                ", Kong and the control plane" if len(settings.server.line.server_ports) > 1 else ""
            ),
        },
        {"proto": "tcp", "ports": "{ 22, 2376 }", "set": "vm", "why": "VM service: SSH, Docker"},
        {"proto": "tcp", "ports": "{ 22, 80, 443 }", "set": "vcs", "why": "VCS: git, API"},
        {"proto": "tcp", "ports": "1-65535", "set": "anywhere_in", "why": "cluster, egress_cidrs"},
    ]
    if settings.logging.collector is not None:  # an address: settings refuse a name here
        sets["log_collector"] = split([ipaddress.ip_network(settings.logging.collector)])
        rules.append(
            {
                "proto": "tcp",
                "ports": str(settings.logging.collector_port),
                "set": "log_collector",
                "why": "central logging (CCI-OS-08)",
            }
        )
    return list(sets.items()), rules


def ingress_nft(settings: FleetSettings, info: HostInfo) -> str:
    sets, rules = ingress_rules(settings)
    egress_sets: list = []
    egress: list = []
    if settings.network.restrict_egress:
        egress_sets, egress = egress_rules(settings, info)
    return render(
        "firewall/ingress.nft.j2",
        "CCI-NET-01",
        sets=sets + egress_sets,
        ingress=rules,
        restrict_egress=settings.network.restrict_egress,
        egress=egress,
    )


def table_file(stem: str, text: str) -> ManagedFile:
    """One table's file: checked by nft before it goes live, loaded again when it changes."""
    return ManagedFile(
        f"{FIREWALL_DIR}/{stem}.nft",
        text,
        mode=0o600,
        validate=VALIDATE_NFT,
        reload=(FIREWALL_UNIT_NAME,),
    )


def firewall_table(stem: str, text: str) -> list:
    """One nftables table with what loads it: the package, the loader and its unit (shared by
    both tables, so either control alone still loads its table), the file, the loaded state."""
    return [
        Package("nftables"),
        *_loader_files(),
        table_file(stem, text),
        Service(FIREWALL_UNIT_NAME),
        NftTable(stem, FIREWALL_UNIT_NAME),
    ]


def _loader_files():
    control_id = "CCI-NET-01, CCI-NET-02"  # one loader for both tables
    return [
        ManagedFile(
            LOADER,
            render(
                "firewall/cci-harden-firewall.j2",
                control_id,
                state_dir=STATE_DIR,
                config_dir=FIREWALL_DIR,
            ),
            mode=0o755,
        ),
        ManagedFile(
            FIREWALL_UNIT,
            render("firewall/cci-harden-firewall.service.j2", control_id, loader=LOADER),
            daemon_reload=True,
        ),
    ]


def _ingress_resources(settings: FleetSettings, info: HostInfo):
    return firewall_table("ingress", ingress_nft(settings, info))


INGRESS = Control(
    id="CCI-NET-01",
    nist=("AC-17", "CM-7", "SC-7"),
    title="Host ingress: 22 from admins, 4647 from Nomad servers/cluster, 64535-65535 for rerun "
    "with SSH, all else dropped",
    sources=(
        circleci_page(
            "server-3x-operations",
            "Nomad Clients",
            "Nomad port requirements: see Hardening Your Cluster",
        ),
        hardening_page("Nomad client ports 22, 4647, 64535-65535"),
        server_4x("Ports (4.x hardening docs)", "in: 4647 from the Kubernetes nodes, 64535-65535"),
        Source("dev-sec", "os-hardening: host firewall"),
    ),
    rationale="A default-drop input chain in its own nftables table, validated with `nft -c` "
    "before it replaces the old file and loaded at boot before the network. No source may be "
    "0.0.0.0/0 (settings refuse it), and an empty admin list is refused before any host is "
    "touched, so the operator cannot lock themselves out. Verify compares the kernel's rules "
    "with what was loaded, so a rule deleted at runtime is drift. With "
    "network.restrict_egress the host's own egress is limited to the Operations Guide's "
    "tables (22/2376 to VM subnets, 4647 to servers, 22/80/443 to the VCS) plus DNS, NTP, "
    "egress_cidrs and the log collector (CCI-OS-08).",
    resources=_ingress_resources,
    circleci_impact="Docker's published ports and job traffic take the forward path, untouched "
    "here; only the host's own services are filtered.",
    tags=("network",),
)


# -- job egress ----------------------------------------------------------------------------------


def jobs_nft(settings: FleetSettings, info: HostInfo) -> str:
    blocked = split([METADATA_RANGE, *settings.network.blocked_job_cidrs])
    return render(
        "firewall/jobs.nft.j2",
        "CCI-NET-02",
        blocked_v4=blocked["v4"],
        blocked_v6=blocked["v6"],
        resolvers=[str(r) for r in _resolvers(settings, info)],
        bridges=JOB_BRIDGES,
    )


def _jobs_resources(settings: FleetSettings, info: HostInfo):
    return firewall_table("jobs", jobs_nft(settings, info))


JOBS = Control(
    id="CCI-NET-02",
    nist=("AC-4", "SC-7"),
    title="Job containers cannot reach 169.254.0.0/16 or the blocked CIDRs; DNS to the resolver "
    "stays open",
    sources=(
        Source("circleci", "nomad-startup: DOCKER-USER drops for docker+/br+ interfaces"),
        server_4x("Job egress", "DOCKER-USER drops 169.254.0.0/16 and the blocked CIDRs"),
    ),
    rationale="CircleCI inserts these rules into DOCKER-USER once at boot, where a reboot loses "
    "them. Here they sit in a forward-hook table of our own, ahead of Docker's chains, loaded by "
    "the firewall service at every boot and unaffected by Docker restarts.",
    resources=_jobs_resources,
    circleci_impact="Only traffic entering from job bridges is matched; CircleCI's "
    "ci-privileged network and the host itself keep the metadata service.",
    tags=("network",),
)


# -- rerun with SSH ------------------------------------------------------------------------------


def public_ipv4(settings: FleetSettings, info: HostInfo) -> str:
    for entry in settings.inventory.hosts:
        if entry.name == info.name and entry.public_ipv4 is not None:
            return str(entry.public_ipv4)
    return info.primary_ipv4


def _public_resources(settings: FleetSettings, info: HostInfo):
    address = public_ipv4(settings, info)
    return [ManagedFile(PUBLIC_IPV4, f"{address}\n")] if address else []


PUBLIC_ADDRESS = Control(
    id="CCI-NET-03",
    nist=("CM-6",),
    title="/etc/circleci/public-ipv4 holds the address for rerun with SSH",
    sources=(Source("circleci", "nomad-startup: /etc/circleci/public-ipv4"),),
    rationale="Taken from the inventory (hosts[].public_ipv4) or the host's first global IPv4 "
    "address, never from the cloud metadata service, which job containers are blocked from.",
    resources=_public_resources,
    tags=("network",),
)

CONTROLS: tuple[Control, ...] = (JOBS, INGRESS, PUBLIC_ADDRESS)


# -- listeners -----------------------------------------------------------------------------------


def allowed_listeners(settings: FleetSettings) -> tuple[tuple[str, int, int], ...]:
    allowed = [("tcp", 22, 22)]
    if settings.network.nomad_http_api:
        allowed.append(("tcp", 4646, 4646))
    for entry in settings.network.allowed_listeners:
        proto, _, ports = entry.partition("/")
        first, _, last = ports.partition("-")
        allowed.append((proto, int(first), int(last or first)))
    return tuple(allowed)


LISTENERS = Control(
    id="CCI-NET-04",
    nist=("CM-7",),
    title="Nothing listens on the network but SSH (and Nomad's API when opened)",
    sources=(
        hardening_page("only the documented ports"),
        Source("dev-sec", "os-hardening: no unneeded services"),
    ),
    rationale="The firewall drops what is not allowed, but a listener that should not exist is "
    "drift in its own right. Check-only: the deploy never stops a process it does not know; "
    "the operator removes it or adds it to network.allowed_listeners with a reason.",
    resources=lambda settings, info: [Listeners(allowed_listeners(settings))],
    tags=("network",),
)

CONTROLS = (*CONTROLS, LISTENERS)
