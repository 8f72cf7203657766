"""What a CircleCI Server release line implies for its Nomad clients.

An operator names the line they run (``[server] version = "4.8"``); each line brings documented
defaults for the settings that differ between lines. A value the operator sets always wins; the
rest come from here, and ``cci-harden config check`` says which did. Sources: the Server 3.x
operations guide (seed 002) for 3.x, ``../shared/notes/server-4x.md`` (CircleCI's server-terraform
modules and the 4.x docs) for 4.x.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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


# What every 4.x line shares: the machine provisioner, mandatory mTLS, Kong and the control plane
_MACHINE_PROVISIONER = {
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
        source="seed 002 (Server 3.x operations guide): Nomad Clients, VM Service",
    ),
    ServerLine(
        name="4.0-4.7",
        nomad_version=None,  # CircleCI's own patched 1.4.x build, from CircleCI
        nomad_install_source="release-zip",
        source="notes/server-4x.md: Nomad version on clients, mTLS, Ports",
        **_MACHINE_PROVISIONER,
    ),
    ServerLine(
        name="4.8+",
        nomad_version="1.7.7",
        nomad_install_source="hashicorp-apt",
        source="notes/server-4x.md: Nomad version on clients (nomad=1.7.7-1), mTLS, Ports",
        **_MACHINE_PROVISIONER,
    ),
)

# (section, field) -> the ServerLine attribute giving its default
VERSION_FIELDS: dict[tuple[str, str], str] = {
    ("nomad", "version"): "nomad_version",
    ("nomad", "install_source"): "nomad_install_source",
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
    return LINES[1] if minor < 8 else LINES[2]


def version_tuple(text: str) -> tuple[int, ...]:
    """``1.7.7`` or ``1.7.7+ent`` -> (1, 7, 7), for comparing a client with its servers."""
    return tuple(int(part) for part in re.split(r"[-+]", text, maxsplit=1)[0].split("."))
