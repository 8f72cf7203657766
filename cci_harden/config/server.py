"""What a CircleCI Server release line implies for its Nomad clients.

An operator names the line they run (``[server] version = "4.8"``); each line brings documented
defaults for the settings that differ between lines. A value the operator sets always wins; the
rest come from here, and ``cci-harden config check`` says which did. Sources: the CircleCI
Server 3.x Operations Guide for 3.x; CircleCI's server-terraform modules and the CircleCI Server
4.x docs (installation, application lifecycle) for 4.x.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

SERVER_VERSION = re.compile(r"(3|4)\.([0-9]{1,2})", re.ASCII)


@dataclass(frozen=True)
class ServerLine:
    """Defaults and rules of one range of Server releases."""

    name: str  # "3.x", "4.0-4.7", "4.8+"
    nomad_version: str | None  # None: no public build; the operator must name theirs
    nomad_install_source: str
    provisioner: str  # what CircleCI calls the service that starts VMs
    managed_by_tag: str  # the ManagedBy tag value its cloud policy keys on
    gcp_service_account: str
    gcp_role_id: str
    mtls_required: bool
    server_ports: tuple[int, ...]  # what clients reach on the server's load balancer
    source: str
    released: dt.date | None = None
    support_ends: dt.date | None = None  # CircleCI supports the two most recent lines
    nomad_server_version: str | None = None  # the servers CircleCI's Terraform installs
    # the cgroup mode the Docker runtime needs (Server 4.x installation docs: "CgroupsV2 is
    # currently unsupported" for Nomad clients)
    cgroup_version: str = "v1"

    def support_warning(self, today: dt.date) -> str:
        """ "" while CircleCI supports the line; else what to do about it."""
        if self.support_ends is None or today <= self.support_ends:
            return ""
        return (
            f"CircleCI Server {self.name} went out of support on {self.support_ends}: plan the "
            f"upgrade to {LATEST} (server.version)"
        )


# What every 4.x line shares: the machine provisioner, mandatory mTLS, Kong and the control plane
_MACHINE_PROVISIONER: dict[str, Any] = {
    "provisioner": "machine provisioner",
    "managed_by_tag": "circleci-machine-provisioner",
    "gcp_service_account": "circleci-machine-provisioner",
    "gcp_role_id": "circleciMachineProvisioner",
    "mtls_required": True,
    "server_ports": (4647, 3000, 8585),
}

LINES = (
    ServerLine(
        name="3.x",
        nomad_version="1.6.3",
        nomad_install_source="release-zip",
        provisioner="VM service",
        managed_by_tag="circleci-vm-service",
        gcp_service_account="circleci-vm-service",
        gcp_role_id="circleciVmService",
        mtls_required=False,
        server_ports=(4647,),
        source="CircleCI Server 3.x Operations Guide: Nomad Clients, VM Service",
    ),
    ServerLine(
        name="4.0-4.7",
        nomad_version=None,  # CircleCI's own patched 1.4.x build, from CircleCI
        nomad_install_source="release-zip",
        source="CircleCI server-terraform modules and Server 4.x docs: Nomad clients, mTLS, ports",
        **_MACHINE_PROVISIONER,
    ),
    ServerLine(
        name="4.8",
        nomad_version="1.7.7",
        nomad_install_source="hashicorp-apt",
        source="CircleCI server-terraform (nomad-aws, nomad-gcp): nomad=1.7.7-1; CircleCI "
        "Server docs, application lifecycle",
        released=dt.date(2025, 7, 24),
        support_ends=dt.date(2026, 7, 24),
        **_MACHINE_PROVISIONER,
    ),
    ServerLine(
        name="4.9",
        nomad_version="1.7.7",
        nomad_install_source="hashicorp-apt",
        source="CircleCI server-terraform: nomad_client_version 1.7.7-1, nomad_server_version "
        "1.11.3; CircleCI Server docs, application lifecycle",
        released=dt.date(2025, 12, 9),
        support_ends=dt.date(2026, 12, 9),
        nomad_server_version="1.11.3",
        **_MACHINE_PROVISIONER,
    ),
    ServerLine(
        name="4.10",
        nomad_version="1.7.7",
        nomad_install_source="hashicorp-apt",
        source="CircleCI server-terraform: nomad_client_version 1.7.7-1, nomad_server_version "
        "1.11.3; CircleCI Server docs, application lifecycle and 4.10 release notes",
        released=dt.date(2026, 5, 13),
        support_ends=dt.date(2027, 5, 13),
        nomad_server_version="1.11.3",
        **_MACHINE_PROVISIONER,
    ),
)
LATEST = "4.10"  # the default line: the newest this toolkit knows

# (section, field) -> the ServerLine attribute giving its default
VERSION_FIELDS: dict[tuple[str, ...], str] = {
    ("nomad", "version"): "nomad_version",
    ("nomad", "install_source"): "nomad_install_source",
    ("nomad", "server_version"): "nomad_server_version",
    ("nomad", "cgroup_version"): "cgroup_version",
    ("aws", "managed_by_tag"): "managed_by_tag",
    ("gcp", "service_account"): "gcp_service_account",
    ("gcp", "role_id"): "gcp_role_id",
}


def parse_version(text: str) -> tuple[int, int]:
    match = SERVER_VERSION.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a Server release line such as 4.8 or 3.4")
    return int(match[1]), int(match[2])


def line_of(text: str) -> ServerLine:
    major, minor = parse_version(text)
    if major == 3:
        return LINES[0]
    if minor < 8:
        return LINES[1]
    for line in LINES[2:]:
        if line.name == f"4.{minor}":
            return line
    raise ValueError(
        f"Server {text} is newer than the lines this toolkit knows (newest: {LATEST}); "
        "upgrade cci-harden"
    )


def version_tuple(text: str) -> tuple[int, ...]:
    """``1.7.7`` or ``1.7.7+ent`` -> (1, 7, 7), for comparing a client with its servers."""
    return tuple(int(part) for part in re.split(r"[-+]", text, maxsplit=1)[0].split("."))
