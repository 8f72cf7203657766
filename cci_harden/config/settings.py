"""Typed settings for one fleet of Nomad clients, loaded per inventory.

An inventory ``inventories/NAME`` has its settings in ``inventories/NAME.toml``; any field can be
overridden by an environment variable ``CCI_<SECTION>__<FIELD>`` (nested fields joined by ``__``,
lists and tables as JSON). Validation happens before any host is contacted, and a failure names the
field, the problem and where the value came from. Secrets are ``SecretStr``: masked in repr, in
``config check`` and in every error message.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import tomllib
import typing
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from pydantic_settings import (
    SettingsError as SourceError,
)

from ..model.errors import SettingsError
from .cloud import (
    ArtifactSettings,
    AwsSettings,
    CloudHosts,
    GcpSettings,
    ObjectStorageSettings,
)
from .server import LATEST, VERSION_FIELDS, ServerLine, line_of, version_tuple
from .types import (
    DataDirectory,
    DebianVersion,
    ExactVersion,
    Flag,
    HostName,
    HttpUrl,
    Identifier,
    LocalPath,
    Plain,
    PlainSection,
    UserName,
    _host,
    covers_everything,
    looks_like_key,
    pattern,
    scalar_kind,
)

SCHEMA_VERSION = 1  # the settings layout this toolkit reads; see docs/upgrading.md
ENV_PREFIX = "CCI_"
ENV_DELIMITER = "__"

_toml_path: ContextVar[Path | None] = ContextVar("cci_settings_toml", default=None)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _not_everywhere(networks: list[IPNetwork]) -> list[IPNetwork]:
    for network in networks:
        if network.prefixlen == 0:
            raise ValueError(
                f"{network} admits every address; name the networks that need access instead"
            )
    family = covers_everything(networks)
    if family:
        raise ValueError(
            f"together these networks admit every {family} address (as 0.0.0.0/0 or ::/0 would); "
            "name the networks that need access instead"
        )
    return networks


# CIDR lists that open a port on the host: never the whole internet, whole or in pieces.
IngressCidrs = Annotated[list[IPNetwork], AfterValidator(_not_everywhere)]

_FINGERPRINT = re.compile(r"[0-9A-F]{40}", re.ASCII)


def _fingerprint(value: str) -> str:
    compact = value.replace(" ", "").upper()
    if not _FINGERPRINT.fullmatch(compact):
        raise ValueError("must be a full 40-hex-digit OpenPGP fingerprint (short key ids spoof)")
    return compact


Fingerprint = Annotated[str, Plain, AfterValidator(_fingerprint)]
ListenerPorts = Annotated[
    str,
    Plain,
    AfterValidator(
        pattern(r"(tcp|udp)/[0-9]{1,5}(-[0-9]{1,5})?", "proto/port or proto/first-last")
    ),
]
Codename = Annotated[str, Plain, AfterValidator(pattern(r"[a-z]{2,32}", "a codename (bookworm)"))]
SizeSuffix = Annotated[str, Plain, AfterValidator(pattern(r"[0-9]{1,6}[kmg]", "a size like 10m"))]
StorageDriver = Annotated[
    str, Plain, AfterValidator(pattern(r"[a-z0-9-]{1,32}", "a storage driver name (overlay2)"))
]
SshdUserPattern = Annotated[
    str,
    Plain,
    AfterValidator(
        pattern(r"[a-z_*?][a-z0-9_.*?-]{0,31}(@[A-Za-z0-9.*?:/-]{1,64})?", "a user pattern")
    ),
]


class _Section(PlainSection):
    """Every string printable ASCII (see config.types)."""


GroupName = Annotated[
    str, Plain, AfterValidator(pattern(r"[a-z][a-z0-9_]{0,31}", "a group name (a-z, 0-9, _)"))
]
ControlId = Annotated[
    str, Plain, AfterValidator(pattern(r"CCI-[A-Z]{2,4}-[0-9]{2}", "a control id (CCI-OS-01)"))
]


class GroupSwitches(_Section):
    """Controls switched off for the hosts of one group."""

    disabled: list[ControlId] = Field(default_factory=list, description="Control ids")


class ControlSwitches(_Section):
    """Which controls apply: a control switched off is neither applied nor checked."""

    disabled: list[ControlId] = Field(
        default_factory=list,
        description='Control ids switched off for every host, e.g. ["CCI-NET-04"]',
    )
    groups: dict[GroupName, GroupSwitches] = Field(
        default_factory=dict,
        description='Per host group: [controls.groups.gpu] disabled = ["CCI-OS-02"]',
    )


# pyinfra's group of every host, and the group every inventory file defines (fleet/inventory.py)
RESERVED_GROUPS = frozenset({"all", "nomad_clients"})


class HostEntry(_Section):
    """One Nomad client host of the inventory."""

    name: HostName = Field(description="Name used by pyinfra, --limit and reports")
    address: HostName = Field(description="Address or DNS name SSH connects to")
    port: int = Field(22, ge=1, le=65535, description="SSH port")
    user: UserName | None = Field(
        None, description="SSH user for this host (default: inventory.ssh_user)"
    )
    groups: list[GroupName] = Field(
        default_factory=list,
        description="Host groups (pyinfra groups too); controls.groups switches controls per group",
    )
    public_ipv4: ipaddress.IPv4Address | None = Field(
        None,
        description="Address users reach for 'rerun job with SSH' (/etc/circleci/public-ipv4); "
        "default: the host's first global IPv4 address",
    )

    @field_validator("groups")
    @classmethod
    def _not_pyinfra_reserved(cls, groups: list[str]) -> list[str]:
        reserved = sorted(set(groups) & RESERVED_GROUPS)
        if reserved:
            raise ValueError(
                f"group name(s) {', '.join(reserved)} are pyinfra's own (all hosts); pick another"
            )
        return groups


class InventorySettings(_Section):
    """Which hosts to reach and how to trust them."""

    hosts: list[HostEntry] = Field(default_factory=list, description="Nomad client hosts")
    source: CloudHosts | None = Field(
        None, description="List the hosts from the cloud each run instead (autoscaled fleets)"
    )
    ssh_user: UserName = Field(
        "root", description="SSH user; non-root users need passwordless sudo"
    )
    ssh_key: LocalPath | None = Field(None, description="Private key file (default: the SSH agent)")
    known_hosts: LocalPath | None = Field(
        None,
        description="known_hosts file with every host's key; default: <inventory>.known_hosts. "
        "Host keys are always checked strictly: an unknown or changed key stops the run.",
    )
    ssh_config: LocalPath | None = Field(
        None,
        description="OpenSSH client configuration the verify stage includes after its own "
        "options (which win: strict host keys and the inventory's known_hosts always apply)",
    )

    @model_validator(mode="after")
    def _hosts_or_source(self) -> InventorySettings:
        if self.hosts and self.source is not None:
            raise ValueError("give hosts or source, not both")
        return self

    @field_validator("hosts")
    @classmethod
    def _unique_names(cls, hosts: list[HostEntry]) -> list[HostEntry]:
        names = [h.name for h in hosts]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"host names must be unique; repeated: {', '.join(duplicates)}")
        # a name that is another host's address would be certified for, and match, that host
        taken = sorted(h.name for h in hosts for o in hosts if o is not h and h.name == o.address)
        if taken:
            raise ValueError(
                f"host name {taken[0]} is another host's address: names and other hosts' "
                "addresses must differ"
            )
        return hosts


class AptSettings(_Section):
    proxy: HttpUrl | None = Field(
        None, description="HTTP proxy every host's apt uses (an internal apt-cacher-ng or mirror)"
    )


class NetworkSettings(_Section):
    """Who may reach a Nomad client, and where its jobs may not go."""

    admin_cidrs: IngressCidrs = Field(
        default_factory=list, description="Networks allowed to SSH to the hosts (port 22)"
    )
    nomad_server_cidrs: IngressCidrs = Field(
        default_factory=list, description="Nomad servers: RPC (4647) to and from the clients"
    )
    cluster_cidrs: IngressCidrs = Field(
        default_factory=list,
        description="CircleCI Server's Kubernetes cluster (output processor, VM service)",
    )
    rerun_ssh_cidrs: IngressCidrs = Field(
        default_factory=list,
        description="Users allowed to 'rerun job with SSH' (ports 64535-65535)",
    )
    vm_subnet_cidrs: IngressCidrs = Field(
        default_factory=list, description="VM service machines: egress on 22 and 2376"
    )
    vcs_cidrs: IngressCidrs = Field(
        default_factory=list, description="The VCS (GitHub Enterprise): egress on 22, 80, 443"
    )
    blocked_job_cidrs: list[IPNetwork] = Field(
        default_factory=list,
        description="Destinations job containers may never reach (169.254.0.0/16 always is)",
    )
    nomad_http_api: bool = Field(
        False, description="Open Nomad's HTTP API (4646) to the server and cluster networks"
    )
    job_dns_servers: list[ipaddress.IPv4Address] = Field(
        default_factory=list,
        description="Resolvers job containers may always reach on port 53, even inside a blocked "
        "range; default: the host's own nameservers from /etc/resolv.conf",
    )
    restrict_egress: bool = Field(
        False,
        description="Drop the host's own outbound traffic except what a Nomad client needs (the "
        "Operations Guide's port tables, DNS, NTP, the apt proxy, the release mirror, "
        "egress_cidrs). Off by default: the host's Docker pulls job images from registries "
        "anywhere.",
    )
    allowed_listeners: list[ListenerPorts] = Field(
        default_factory=lambda: ["udp/68", "udp/546"],
        description="Ports besides SSH (and Nomad's API when opened) that may listen on a "
        "non-loopback address, as proto/port or proto/first-last (default: DHCP clients)",
    )
    egress_cidrs: list[IPNetwork] = Field(
        default_factory=list,
        description="Extra destinations the host may reach when restrict_egress is on "
        "(registries, object storage, the output processor)",
    )
    ntp_servers: list[HostName] = Field(
        default_factory=list,
        description="Time servers for systemd-timesyncd (empty: the distribution's defaults)",
    )


def _pem_key(value: SecretStr) -> SecretStr:
    if "PRIVATE KEY-----" not in value.get_secret_value():
        raise ValueError("is not a PEM private key")
    return value


PemKey = Annotated[SecretStr, AfterValidator(_pem_key)]


class NomadTLS(_Section):
    """mTLS material for the client's RPC with the Nomad servers."""

    ca_file: LocalPath | None = Field(
        None, description="CA certificate (PEM) on the operator's machine"
    )
    cert_file: LocalPath | None = Field(None, description="Client certificate (PEM)")
    key_file: LocalPath | None = Field(None, description="Client private key (PEM) file")
    key_pem: PemKey | None = Field(None, description="Client private key given inline (PEM)")
    expiry_margin_days: int = Field(
        30, ge=0, le=365, description="Refuse a certificate that expires within this many days"
    )

    @model_validator(mode="after")
    def _one_key_source(self) -> NomadTLS:
        if self.key_file is not None and self.key_pem is not None:
            raise ValueError("give the client key as key_file or key_pem, not both")
        return self


class ServerSettings(_Section):
    """The CircleCI Server release line the clients belong to: it sets documented defaults."""

    version: str = Field(
        LATEST,
        description="Server release line, e.g. 4.10 or 3.4; drives the Nomad client and server "
        "versions, install source, cgroup mode, the provisioner's cloud tag, mTLS and the server "
        "ports (see the version table)",
    )

    @field_validator("version")
    @classmethod
    def _line(cls, value: str) -> str:
        line_of(value)
        return value

    @property
    def line(self) -> ServerLine:
        return line_of(self.version)


class NomadSettings(_Section):
    version: ExactVersion | None = Field(
        None, description="Nomad version to install, exactly (default: the server line's)"
    )
    install_source: Literal["hashicorp-apt", "release-zip", "mirror"] | None = Field(
        None,
        description="hashicorp-apt: HashiCorp's apt repository; release-zip: the release zip "
        "checked against SHA256SUMS and its signature; mirror: the same zip from an internal "
        "mirror (default: the server line's)",
    )
    server_version: ExactVersion | None = Field(
        None,
        description="Nomad version the servers run, if known: a newer client is refused",
    )
    release_url: HttpUrl | None = Field(
        None, description="Base URL of the releases or apt repository (required for downloads)"
    )
    gpg_fingerprint: Fingerprint | None = Field(
        None, description="Fingerprint of the key that signs SHA256SUMS / the apt repository"
    )
    gpg_key_file: LocalPath | None = Field(
        None,
        description="That key, ASCII-armored, on the operator's machine; its fingerprint must "
        "equal gpg_fingerprint",
    )
    servers: list[str] = Field(
        default_factory=list, description="Nomad servers to join, as host:port"
    )
    datacenter: Identifier = Field("default")
    node_class: Identifier = Field(
        "linux-64bit", description="CircleCI schedules onto this node class"
    )
    data_dir: DataDirectory = Field(
        "/opt/nomad", description="Nomad's state directory (its own, never a system directory)"
    )
    reserved_cpu_cores: int = Field(
        2, ge=0, description="Cores kept for coordination (CircleCI documents 2)"
    )
    reserved_memory_mb: int = Field(4096, ge=0, description="Memory kept for coordination (4 GB)")
    min_job_cpus: int = Field(1, ge=1, description="A host must fit one job of this size ...")
    min_job_memory_mb: int = Field(2048, ge=256, description="... and this much memory")
    allow_oversized_hosts: bool = Field(
        False, description="Allow hosts above 64 CPUs / 128 GB (ask CircleCI first)"
    )
    tls: NomadTLS = Field(default_factory=NomadTLS)
    cgroup_version: Literal["v1", "v2"] | None = Field(
        None,
        description="The kernel's cgroup mode, set on the kernel command line (a reboot): v1 for "
        "the Docker runtime, as CircleCI documents (default from server.version)",
    )
    allow_deprecated_cgroup_v1: Flag = Field(
        False,
        description="Debian 13's systemd (257) boots cgroup v1 only with "
        "SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE=1 and is removing it: a Debian 13 host in v1 is "
        "refused unless this is true (the force flag is then added to the kernel command line)",
    )

    @field_validator("servers")
    @classmethod
    def _host_ports(cls, servers: list[str]) -> list[str]:
        for server in servers:
            host, sep, port = server.rpartition(":")
            if not sep or not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{server!r} is not host:port")
            _host(host.strip("[]"))
        return servers


class DockerAddressPool(_Section):
    base: ipaddress.IPv4Network
    size: int = Field(24, ge=8, le=30)

    @model_validator(mode="after")
    def _size_fits(self) -> DockerAddressPool:
        if self.size < self.base.prefixlen:
            raise ValueError(f"size /{self.size} is larger than the pool {self.base}")
        return self


class DockerSettings(_Section):
    install_source: Literal["docker-ce", "docker.io"] = Field(
        "docker-ce", description="docker-ce: Docker's apt repository; docker.io: the distribution's"
    )
    version: DebianVersion | None = Field(
        None,
        description="Exact package version to pin (docker-ce); a ~debian.N~codename suffix "
        "follows each host's release, so one pin serves Debian 12 and 13 hosts",
    )
    repo_url: HttpUrl | None = Field(None, description="Docker's apt repository (docker-ce)")
    gpg_fingerprint: Fingerprint | None = Field(None, description="Docker's repository key")
    gpg_key_file: LocalPath | None = Field(
        None, description="That key, ASCII-armored, on the operator's machine (docker-ce)"
    )
    distribution_codename: Codename | None = Field(
        None,
        description="Suite of Docker's repository (default: the host's own codename)",
    )
    address_pools: list[DockerAddressPool] = Field(
        default_factory=lambda: [
            DockerAddressPool(base=ipaddress.IPv4Network("10.10.0.0/16"), size=24)
        ],
        description="default-address-pools for job networks (CircleCI: 10.10.0.0/16 in /24s)",
    )
    registry_mirrors: list[HttpUrl] = Field(
        default_factory=list,
        description="Registry mirrors for Docker Hub pulls (applied by a reload, no restart)",
    )
    log_max_size: SizeSuffix = Field("10m")
    log_max_files: int = Field(3, ge=1, le=100)
    storage_driver: StorageDriver | None = Field(
        None,
        description="Docker storage driver (default: Docker's choice, overlay2)",
    )


HostKeyType = Literal["ed25519", "rsa"]


def _ed25519_only() -> list[HostKeyType]:
    return ["ed25519"]


class SshSettings(_Section):
    """sshd on the Nomad clients: key-only, modern algorithms, short limits."""

    permit_root_login: Literal["no", "prohibit-password"] | None = Field(
        None,
        description="Default: 'no', or 'prohibit-password' (keys only) when inventory.ssh_user "
        "is root, so the deploy cannot lock itself out",
    )
    allow_users: list[SshdUserPattern] = Field(
        default_factory=list, description="AllowUsers (empty: any user with a key)"
    )
    allow_groups: list[UserName] = Field(
        default_factory=list, description="AllowGroups (empty: any group)"
    )
    host_key_types: list[HostKeyType] = Field(
        default_factory=_ed25519_only,
        description="Host keys sshd offers; known_hosts must hold one of them for each host",
    )
    max_auth_tries: int = Field(3, ge=1, le=10)
    idle_timeout_seconds: int = Field(
        600, ge=60, le=86400, description="Idle sessions are closed after this long"
    )
    login_check_timeout: int = Field(
        20, ge=5, le=300, description="Seconds the lockout guard waits for a fresh login"
    )
    host_ca_file: LocalPath | None = Field(
        None,
        description="The SSH CA's public key (CCI-SSH-02): each host's ed25519 key carries a "
        "certificate it signed, and a host without a known_hosts line is trusted when it shows "
        "one (checked by OpenSSH)",
    )
    host_ca_key_file: LocalPath | None = Field(
        None,
        description="The CA's private key: the deploy signs host keys with it (unset: "
        "certificates come from elsewhere, an image bake, and are only verified)",
    )
    host_cert_days: int = Field(
        90,
        ge=1,
        le=365,
        description="How long a certificate the deploy signs is valid; a host certificate "
        "valid for longer (signed elsewhere) is refused by the deploy and reported by verify",
    )
    host_cert_renew_days: int = Field(
        14, ge=0, le=364, description="Renew a certificate that expires within this many days"
    )
    revoked_host_keys_file: LocalPath | None = Field(
        None,
        description="A key revocation list (`ssh-keygen -k`) of host keys and certificates: "
        "verify and the rollout pass it to OpenSSH (`RevokedHostKeys`), the deploy refuses a "
        "host whose certificate or key it lists",
    )

    @model_validator(mode="after")
    def _renewed_before_it_ends(self) -> SshSettings:
        if self.host_cert_renew_days >= self.host_cert_days:
            raise ValueError(
                "host_cert_renew_days must be less than host_cert_days, or every deploy would "
                "sign a new certificate"
            )
        return self


def _is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


class LoggingSettings(_Section):
    """Central logging (CCI-OS-08): each client forwards its logs to the operator's collector."""

    collector: HostName | None = Field(
        None,
        description="The collector's address or DNS name; unset: no forwarding (a forwarding "
        "set up by an earlier deploy is removed)",
    )
    transport: Literal["relp", "syslog-tls"] = Field(
        "relp",
        description="`relp`: RELP over TLS, each record acknowledged by the collector, none lost "
        "when it restarts (needs a client certificate); `syslog-tls`: RFC 5425, any collector, "
        "but a record sent as the collector closes its connection can be lost",
    )
    port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Collector port (default: 2514 for relp, 6514 for syslog-tls)",
    )
    ca_file: LocalPath | None = Field(
        None, description="CA certificate (PEM) that signed the collector's certificate"
    )
    client_cert_file: LocalPath | None = Field(
        None,
        description="Certificate (PEM) the clients show the collector; required for relp, "
        "without which librelp would not check the collector's name",
    )
    client_key_file: LocalPath | None = Field(None, description="Its private key (PEM) file")
    client_key_pem: PemKey | None = Field(None, description="Its private key given inline (PEM)")
    collector_name: HostName | None = Field(
        None,
        description="Name the collector's certificate must carry (default: collector); any "
        "other certificate is refused",
    )
    queue_max_mb: int = Field(
        1024,
        ge=16,
        le=65536,
        description="Disk the queue may fill while the collector is unreachable; beyond it "
        "the oldest entries wait in memory and new ones are dropped",
    )

    @model_validator(mode="after")
    def _one_key_source(self) -> LoggingSettings:
        if self.client_key_file is not None and self.client_key_pem is not None:
            raise ValueError("give the client key as client_key_file or client_key_pem, not both")
        return self

    @property
    def peer_name(self) -> str | None:
        return self.collector_name or self.collector

    @property
    def collector_port(self) -> int:
        return self.port or (2514 if self.transport == "relp" else 6514)


class DeploySettings(_Section):
    """How a deploy shares a host with other runs and with the host's own package manager."""

    lock_wait_seconds: int = Field(
        300,
        ge=0,
        le=3600,
        description="How long a deploy waits for another deploy holding the same host, then "
        "stops naming it (the lock lives as long as the holder's SSH connection)",
    )
    apt_lock_wait_seconds: int = Field(
        300,
        ge=0,
        le=3600,
        description="How long apt and dpkg wait for their lock held by another process "
        "(unattended-upgrades on a fresh instance), and for apt's lists to refresh",
    )
    allow_build_interruption: Flag = Field(
        False,
        description="Let a plain deploy apply a change that kills running builds (a Docker "
        "restart) on a busy host; otherwise it refuses and `cci-harden rollout` drains first",
    )


def _nomad_token(value: SecretStr) -> SecretStr:
    if not re.fullmatch(r"[A-Za-z0-9-]{8,128}", value.get_secret_value(), re.ASCII):
        raise ValueError("must be a Nomad ACL token (its secret ID: letters, digits, dashes)")
    return value


NomadToken = Annotated[SecretStr, AfterValidator(_nomad_token)]
# a batch size or a budget: a count ("1", "5") or a share of the fleet ("10%", "100%")
CountOrShare = Annotated[
    str,
    Plain,
    AfterValidator(
        pattern(r"(0|[1-9][0-9]{0,5}|([1-9][0-9]?|100)%)", "a count (5) or a share (10%)")
    ),
]


class RolloutSettings(_Section):
    """How `cci-harden rollout` changes a fleet that runs builds: drains, batches and budgets."""

    drain_deadline_seconds: int = Field(
        3600,
        ge=10,
        le=7 * 24 * 3600,
        description="How long a drain waits for running builds to finish; it must exceed the "
        "longest build the fleet runs",
    )
    force_after_deadline: Flag = Field(
        False,
        description="At the deadline, stop the builds still running and go on (default: leave "
        "the host unchanged and eligible, and report it)",
    )
    batches: list[CountOrShare] = Field(
        default_factory=lambda: ["1", "10%", "100%"],
        min_length=1,
        description="Batch sizes in order, a count or a share of the fleet; the last repeats",
    )
    max_unavailable: CountOrShare = Field(
        "10%",
        description="Most hosts out of service at once, counting those Nomad already reports "
        "ineligible or draining (at least 1)",
    )
    max_failures_per_batch: CountOrShare = Field(
        "0", description="Failed hosts a batch may have before the rollout stops"
    )
    max_failures_total: CountOrShare = Field(
        "0", description="Failed hosts the whole rollout may have before it stops"
    )
    poll_seconds: int = Field(
        10, ge=1, le=300, description="How often a drain or a reboot is checked"
    )
    reboot_timeout_seconds: int = Field(
        900,
        ge=60,
        le=7200,
        description="How long a rebooted host has to answer SSH and run its Nomad agent again",
    )
    nomad_token: NomadToken | None = Field(
        None,
        description="Nomad ACL token for draining (agent:read, node:write); written root-only "
        "on each host for its local API",
    )


class FleetSettings(BaseSettings):
    """Everything the toolkit needs to know about one CircleCI Server install's Nomad clients."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_DELIMITER,
        extra="forbid",
        frozen=True,
    )

    schema_version: int = Field(
        SCHEMA_VERSION,
        ge=1,
        description="Layout of this file; docs/upgrading.md says what changed between layouts",
    )
    name: Identifier = Field("fleet", description="Name of this server install")
    server: ServerSettings = Field(default_factory=ServerSettings)
    inventory: InventorySettings = Field(default_factory=InventorySettings)
    apt: AptSettings = Field(default_factory=AptSettings)
    network: NetworkSettings = Field(default_factory=NetworkSettings)
    nomad: NomadSettings = Field(default_factory=NomadSettings)
    docker: DockerSettings = Field(default_factory=DockerSettings)
    ssh: SshSettings = Field(default_factory=SshSettings)
    aws: AwsSettings = Field(default_factory=AwsSettings)
    gcp: GcpSettings = Field(default_factory=GcpSettings)
    storage: ObjectStorageSettings = Field(default_factory=ObjectStorageSettings)
    artifacts: ArtifactSettings = Field(default_factory=ArtifactSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    controls: ControlSwitches = Field(default_factory=ControlSwitches)
    deploy: DeploySettings = Field(default_factory=DeploySettings)
    rollout: RolloutSettings = Field(default_factory=RolloutSettings)

    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    @field_validator("schema_version")
    @classmethod
    def _known_layout(cls, value: int) -> int:
        if value > SCHEMA_VERSION:
            raise ValueError(
                f"this file is written for settings layout {value}, and this toolkit reads "
                f"layout {SCHEMA_VERSION}: upgrade cci-harden (docs/upgrading.md)"
            )
        return value

    @model_validator(mode="after")
    def _server_line_defaults(self) -> FleetSettings:
        """Fill what the operator left unset from the server line; refuse what the line rules
        out. The sections are frozen once built, so the defaults are set here, once."""
        line = self.server.line
        for (section, field), attribute in VERSION_FIELDS.items():
            model = getattr(self, section)
            if getattr(model, field) is None:
                object.__setattr__(model, field, getattr(line, attribute))
        if self.nomad.version is None:
            raise ValueError(
                f"nomad.version: required for Server {line.name} (CircleCI ships its own Nomad "
                "build for this line; name the exact version your install uses)"
            )
        server = self.nomad.server_version
        if server and version_tuple(self.nomad.version) > version_tuple(server):
            raise ValueError(
                f"nomad.version {self.nomad.version} is newer than nomad.server_version {server}: "
                "Nomad clients must not be newer than their servers"
            )
        collector = self.logging.collector
        if collector and self.network.restrict_egress and not _is_address(collector):
            raise ValueError(
                f"logging.collector {collector}: network.restrict_egress is on and the firewall "
                "admits addresses, not names: give the collector's IP address"
            )
        return self

    def from_server_line(self) -> list[tuple[str, object]]:
        """(field, value) of each setting whose value came from server.version, not the
        operator."""
        found = []
        for section, field in VERSION_FIELDS:
            if field not in getattr(self, section).model_fields_set:
                found.append((f"{section}.{field}", getattr(getattr(self, section), field)))
        return found

    def switched_control_ids(self) -> set[str]:
        """Every control id the switches name (checked against the catalogue by the caller)."""
        ids = set(self.controls.disabled)
        for group in self.controls.groups.values():
            ids |= set(group.disabled)
        return ids

    @property
    def inventory_dir(self) -> Path:
        """The directory of the inventory's settings file (relative paths are read from it)."""
        return self._base_dir

    def local_path(self, path: Path) -> Path:
        """A path from the settings file, on the operator's machine: relative to the inventory."""
        return path if path.is_absolute() else self._base_dir / path

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = _toml_path.get()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


# -- loading -------------------------------------------------------------------------------------


def settings_path(inventory: Path) -> Path:
    """``inventories/prod`` keeps its settings in ``inventories/prod.toml``."""
    return inventory.with_name(inventory.name + ".toml")


def load_settings(inventory: Path | str) -> FleetSettings:
    """Load and validate ``inventory``'s settings; raise SettingsError naming each bad field."""
    inventory = Path(inventory)
    if inventory.suffix == ".toml":
        raise SettingsError(
            f"{inventory}: give the inventory, {inventory.with_suffix('')}, not its settings file "
            "(the .toml beside it is read from there)"
        )
    path = settings_path(inventory)
    if not path.is_file():
        raise SettingsError(f"{inventory}: its settings file {path} does not exist")
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from None
    quoted = [
        f"  {field}: {why} (got {value!r}) [from {path}]"
        for field, why, value in quoted_scalars(FleetSettings, data)
    ] + [f"  {line}" for line in unknown_variables(os.environ)]
    token = _toml_path.set(path)
    try:
        settings = FleetSettings()
        settings._base_dir = path.parent.resolve()
    except ValidationError as exc:
        text = format_validation_error(exc, path)
        more = [line for line in quoted if line.split(":", 1)[0] + ":" not in text]
        more += [f"  {line} [from {path}]" for line in missing_files(data, path.parent)]
        raise SettingsError("\n".join([text, *more])) from None
    except SourceError as exc:  # a CCI_* variable whose list or table is not valid JSON
        raise SettingsError(source_error(exc)) from None
    finally:
        _toml_path.reset(token)
    if quoted:
        head = f"invalid settings for inventory {path.with_suffix('')}:"
        files = [f"  {line} [from {path}]" for line in missing_files(data, path.parent)]
        raise SettingsError("\n".join([head, *quoted, *files]))
    return settings


# The toolkit's own variables that are not settings (test bed, documentation checks).
TOOLKIT_VARIABLES = frozenset(
    {
        "CCI_SOURCE_DOCS_DIR",
        "CCI_SERVER_4X_FILE",
        "CCI_TESTBED_CACHE",
        "CCI_TESTBED_STATE",
        "CCI_TESTBED_SUBNET",
        "CCI_UPDATE_SCREENSHOT",
    }
)


def setting_variables(model: type[BaseModel] | None = None, prefix: str = ENV_PREFIX) -> set[str]:
    """Every environment variable name that sets a field (or a whole section) of the settings;
    a name ending in ``__`` stands for any key below a free-form table."""
    names: set[str] = set()
    for key, field in (model or FleetSettings).model_fields.items():
        name = prefix + key.upper()
        names.add(name)
        for inner in _section_models(field.annotation):
            names |= setting_variables(inner, name + ENV_DELIMITER)
        if "dict[" in str(field.annotation):
            names.add(name + ENV_DELIMITER)
    return names


def unknown_variables(environ) -> list[str]:
    """One line per ``CCI_`` variable that sets nothing: pydantic-settings ignores it, so a
    misspelt override (``CCI_NOMAD_VERSION``) would leave the file's value in force unseen."""
    known = setting_variables()
    tables = tuple(name for name in known if name.endswith(ENV_DELIMITER))
    lines = []
    for variable in sorted(environ):
        upper = variable.upper()
        if not upper.startswith(ENV_PREFIX) or upper in TOOLKIT_VARIABLES or upper in known:
            continue
        if upper.startswith(tables):
            continue
        nearest = difflib.get_close_matches(upper, sorted(known - {*tables}), n=1, cutoff=0.8)
        hint = f"; did you mean {nearest[0]}?" if nearest else " (sections are joined by '__')"
        lines.append(f"environment variable {variable}: is not a setting{hint}")
    return lines


def overrides_in_effect(environ) -> list[tuple[str, str]]:
    """(field, variable) for each setting an environment variable sets in this run."""
    known = setting_variables()
    found = []
    for variable in sorted(environ):
        upper = variable.upper()
        if upper in known and not upper.endswith(ENV_DELIMITER):
            field = upper.removeprefix(ENV_PREFIX).lower().replace(ENV_DELIMITER, ".")
            found.append((field, variable))
    return found


def missing_files(data: dict, base: Path, prefix: str = "") -> list[str]:
    """Files the TOML names (``*_file`` keys) that do not exist, found while other fields are
    still wrong: every problem of a file comes out in one run, not a round at a time."""
    found = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            found += missing_files(value, base, f"{name}.")
        elif key.endswith("_file") and isinstance(value, str) and value:
            if looks_like_key(value) or not value.isprintable():
                continue  # never echoed: validation names the field without its value
            target = Path(value) if Path(value).is_absolute() else base / value
            if not target.exists():
                found.append(f"{name}: cannot read {target}: No such file or directory")
    return found


def quoted_scalars(model: type[BaseModel], data: dict, prefix: str = "") -> list[tuple]:
    """(field, why, value) for each boolean or number the TOML file gives as a string or a
    float: TOML has its own true, false and integers, so a quoted "yes" or "3" is a mistake
    (the environment, which has only strings, is checked in the sections themselves)."""
    found: list[tuple] = []
    for key, value in data.items():
        field = model.model_fields.get(key)
        if field is None:
            continue  # an unknown key: validation names it
        name = f"{prefix}{key}"
        kind = scalar_kind(field.annotation)
        if kind == "flag" and not isinstance(value, bool):
            found.append((name, "must be true or false, unquoted", value))
        elif kind == "whole" and (isinstance(value, bool) or not isinstance(value, int)):
            found.append((name, "must be a whole number, unquoted", value))
        for inner in _section_models(field.annotation):
            if isinstance(value, dict):
                found += quoted_scalars(inner, value, f"{name}.")
            elif isinstance(value, list):
                for index, item in enumerate(value):
                    if isinstance(item, dict):
                        found += quoted_scalars(inner, item, f"{name}.{index}.")
    return found


def _section_models(annotation: object) -> list[type[BaseModel]]:
    """The settings models a field holds: itself, a list of them, or an optional one."""
    members = typing.get_args(annotation) or (annotation,)
    return [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]


def source_error(exc: Exception) -> str:
    """One line for a value pydantic-settings could not even parse (bad JSON in CCI_*)."""
    import os

    match = re.search(r'field "([A-Za-z0-9_]+)"', str(exc))
    section = match.group(1) if match else ""
    names = sorted(
        key
        for key in os.environ
        if key.upper().startswith(f"{ENV_PREFIX}{section.upper()}{ENV_DELIMITER}")
        or key.upper() == f"{ENV_PREFIX}{section.upper()}"
    )
    where = ", ".join(names) or f"a {ENV_PREFIX}* environment variable"
    return (
        f"settings: {where} is not valid JSON for section {section or '?'}; lists and tables in "
        "environment variables are JSON, e.g. CCI_NETWORK__ADMIN_CIDRS='[\"198.51.100.0/28\"]'"
    )


def env_var_for(loc: tuple[Any, ...]) -> str | None:
    """The environment variable that set the value at ``loc``, if one did."""
    import os

    environ = {key.upper(): key for key in os.environ}
    parts = [str(p) for p in loc]
    while parts:
        name = ENV_PREFIX + ENV_DELIMITER.join(parts).upper()
        if name in environ:
            return environ[name]
        parts.pop()
    return None


def _is_secret(model: type[BaseModel], loc: tuple[Any, ...]) -> bool:
    """True when the field at ``loc`` is, or lies under, a SecretStr."""
    current: Any = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            break
        field = current.model_fields.get(str(part))
        if field is None:
            break
        annotation = field.annotation
        if "SecretStr" in str(annotation):
            return True
        args = getattr(annotation, "__args__", ()) or (annotation,)
        current = next(
            (a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), annotation
        )
    return False


def _network_message(value: object) -> str | None:
    """What is wrong with a value given for a network, in words (not pydantic's union names)."""
    if not isinstance(value, str):
        return None
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return "is not a network in CIDR form, e.g. 198.51.100.0/24 or 2001:db8::/32"
    return f"has host bits set: write {network}"


def _plain_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """The field's own path: pydantic's names for union members and validators dropped."""
    return tuple(p for p in loc if isinstance(p, int) or not any(c in str(p) for c in "[(,"))


def format_validation_error(exc: ValidationError, path: Path) -> str:
    """One line per bad field: where it came from, which field, and why; secrets never shown."""
    lines = [f"invalid settings for inventory {path.with_suffix('')}:"]
    seen: set[str] = set()
    for error in exc.errors(include_url=False, include_input=True):
        loc = _plain_loc(tuple(error["loc"]))
        field = ".".join(str(p) for p in loc) or "(top level)"
        env_name = env_var_for(loc)
        origin = f"environment variable {env_name}" if env_name else str(path)
        message = error["msg"].removeprefix("Value error, ")
        named = re.match(r"([a-z_]+(?:\.[a-z_]+)+): (.*)", message, re.DOTALL)
        if not loc and named:  # a check across sections names its own field
            field, message = named.groups()
        if error["type"] == "extra_forbidden":
            message = "is not a known setting (check its spelling and section)"
        if (
            error["type"].startswith("ip_")
            or "valid IPv4 network" in message
            or ("valid IPv6 network" in message)
        ):
            message = _network_message(error.get("input")) or message
        if field in seen:
            continue  # one line per field: a union's members fail alike
        seen.add(field)
        shown = ""
        if not _is_secret(FleetSettings, loc) and error["type"] not in (
            "missing",
            "extra_forbidden",
        ):
            value = error.get("input")
            if isinstance(value, str | int | float | bool) and len(repr(value)) < 80:
                if not (isinstance(value, str) and looks_like_key(value)):
                    shown = f" (got {value!r})"
        lines.append(f"  {field}: {message}{shown} [from {origin}]")
    return "\n".join(lines)
