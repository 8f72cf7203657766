"""Typed settings for what lives around the Nomad clients: cloud IAM, object storage, artifacts.

They only matter to ``cci-harden render`` and ``deploys/artifacts.py``, so every field has a safe
default or is optional; a command that needs an unset field says which one. Identifiers are checked
for shape here (a security group id, a VPC ARN, a bucket name), so a typo fails before anything is
rendered, never as a policy that silently matches nothing.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from .types import DataDirectory, PlainSection

_AWS_ID_HEX = r"[0-9a-f]{8}(?:[0-9a-f]{9})?"
_SECURITY_GROUP = re.compile(rf"^sg-{_AWS_ID_HEX}$", re.ASCII)
_SUBNET = re.compile(rf"^subnet-{_AWS_ID_HEX}$", re.ASCII)
_VPC_ARN = re.compile(
    rf"^arn:(?P<partition>aws|aws-cn|aws-us-gov):ec2:(?P<region>[a-z]{{2}}(?:-gov)?-[a-z]+-[0-9]):"
    rf"(?P<account>[0-9]{{12}}):vpc/vpc-{_AWS_ID_HEX}$",
    re.ASCII,
)
_REGION = re.compile(r"^[a-z]{2}(?:-gov)?-[a-z]+-[0-9]$", re.ASCII)
_ACCOUNT = re.compile(r"^[0-9]{12}$", re.ASCII)
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", re.ASCII)
_GCP_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$", re.ASCII)
_SERVICE_ACCOUNT_EMAIL = (
    r"^[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z][a-z0-9-]{4,28}[a-z0-9]\.iam\.gserviceaccount\.com$"
)
_MIME = re.compile(r"^[a-z]+/[a-z0-9][a-z0-9.+-]*$", re.ASCII)
_EXTENSION = re.compile(r"^[a-z0-9][a-z0-9+_-]{0,15}$", re.ASCII)


def _matching(pattern: re.Pattern, what: str):
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return AfterValidator(check)


def _bucket_name(value: str) -> str:
    """S3's naming rules: a name that breaks them would make a policy that matches no bucket."""
    if not _BUCKET.fullmatch(value) or ".." in value or ".-" in value or "-." in value:
        raise ValueError(
            f"{value!r} is not an S3 bucket name (3-63 lowercase letters, digits, '.' and '-', "
            "starting and ending with a letter or digit)"
        )
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        pass
    else:
        raise ValueError(f"{value!r} is not an S3 bucket name (it is formatted as an IP address)")
    if value.startswith(("xn--", "sthree-")) or value.endswith(("-s3alias", "--ol-s3")):
        raise ValueError(f"{value!r} is not an S3 bucket name (reserved prefix or suffix)")
    return value


SecurityGroupId = Annotated[str, _matching(_SECURITY_GROUP, "a security group id (sg-...)")]
SubnetId = Annotated[str, _matching(_SUBNET, "a subnet id (subnet-...)")]
VpcArn = Annotated[str, _matching(_VPC_ARN, "a VPC ARN (arn:aws:ec2:REGION:ACCOUNT:vpc/vpc-...)")]
Region = Annotated[str, _matching(_REGION, "an AWS region such as us-east-1")]
AccountId = Annotated[str, _matching(_ACCOUNT, "a 12-digit AWS account id")]
BucketName = Annotated[str, AfterValidator(_bucket_name)]
GcpProject = Annotated[str, _matching(_GCP_PROJECT, "a GCP project id")]
MimeType = Annotated[str, _matching(_MIME, "a lowercase MIME type such as image/png")]
Extension = Annotated[str, _matching(_EXTENSION, "a lowercase file extension without a dot")]


class _Section(PlainSection):
    """Every string printable ASCII (see config.types)."""


_TAG_PART = r"^[A-Za-z0-9._:/=+@-]{1,128}$"
TagPart = Annotated[str, _matching(re.compile(_TAG_PART, re.ASCII), "a tag key or value")]


_GCP_ZONE = re.compile(r"^[a-z]+-[a-z]+[0-9]-[a-z]$", re.ASCII)
_GCP_REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]$", re.ASCII)
_GCP_NAME = re.compile(r"^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$", re.ASCII)
_GCP_LABEL = re.compile(r"^[a-z0-9_-]{0,63}$", re.ASCII)
GcpZone = Annotated[str, _matching(_GCP_ZONE, "a GCP zone such as us-east1-b")]
GcpRegion = Annotated[str, _matching(_GCP_REGION, "a GCP region such as us-east1")]
GcpName = Annotated[str, _matching(_GCP_NAME, "a GCP resource name (a-z, 0-9, -)")]
GcpLabel = Annotated[str, _matching(_GCP_LABEL, "a GCP label key or value (a-z, 0-9, _, -)")]


class CloudHosts(_Section):
    """Where an autoscaled fleet's hosts are listed each run, instead of a fixed host list."""

    provider: Literal["aws", "gcp"] = Field(
        "aws",
        description="aws: EC2 (an autoscaling group or tags); gcp: Compute Engine (a "
        "managed instance group or labels)",
    )
    region: str | None = Field(
        None,
        description="AWS: the region the instances run in; GCP: a regional managed instance "
        "group's region (or set zone)",
    )
    autoscaling_group: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9._-]{1,255}$",
        description="AWS: autoscaling group whose in-service instances are the hosts",
    )
    tags: dict[TagPart, TagPart] = Field(
        default_factory=dict, description="AWS: only running instances with all of these tags"
    )
    project: GcpProject | None = Field(None, description="GCP: the project the instances run in")
    zone: GcpZone | None = Field(
        None, description="GCP: the zone of the instances (or of a zonal managed instance group)"
    )
    instance_group: GcpName | None = Field(
        None, description="GCP: managed instance group whose running instances are the hosts"
    )
    labels: dict[GcpLabel, GcpLabel] = Field(
        default_factory=dict, description="GCP: only running instances with all of these labels"
    )
    address: Literal["private", "public"] = Field(
        "private", description="Which address SSH connects to (private: from a bastion)"
    )
    endpoint_url: str | None = Field(
        None,
        pattern=r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?$",
        description="The API endpoint (AWS: EC2 and autoscaling, e.g. a VPC endpoint; GCP: "
        "Compute Engine, e.g. Private Service Connect); unset: the provider's own. https, "
        "or http on loopback only: credentials are sent to it",
    )

    @field_validator("endpoint_url")
    @classmethod
    def _https_unless_loopback(cls, value: str | None) -> str | None:
        if value is not None and value.startswith("http://"):
            host = value[len("http://") :].split("/")[0].rsplit(":", 1)[0]
            if host != "localhost" and not host.startswith("127."):
                raise ValueError(
                    "use https: the provider's credentials would cross the network in clear "
                    "(http is for a local stand-in on 127.0.0.1 only)"
                )
        return value

    @model_validator(mode="after")
    def _something_to_list(self) -> CloudHosts:
        aws_only = bool(self.autoscaling_group or self.tags)
        gcp_only = bool(self.project or self.zone or self.instance_group or self.labels)
        if self.provider == "aws":
            if gcp_only:
                raise ValueError("project, zone, instance_group and labels are for provider gcp")
            if not self.region or not _REGION.fullmatch(self.region):
                raise ValueError("provider aws needs region, an AWS region such as us-east-1")
            if not aws_only:
                raise ValueError("name an autoscaling_group or tags, or every instance would match")
            return self
        if aws_only:
            raise ValueError("autoscaling_group and tags are for provider aws")
        if not self.project:
            raise ValueError("provider gcp needs project")
        if self.region and not _GCP_REGION.fullmatch(self.region):
            raise ValueError(f"{self.region!r} is not a GCP region such as us-east1")
        if not self.instance_group and not self.labels:
            raise ValueError("name an instance_group or labels, or every instance would match")
        if bool(self.zone) == bool(self.region):
            raise ValueError("provider gcp needs exactly one of zone or region (a regional group)")
        if self.region and not self.instance_group:
            raise ValueError("labels are listed per zone: set zone (region is for instance_group)")
        return self

    @property
    def where(self) -> str:
        """Where the listing looks, for messages."""
        if self.provider == "aws":
            return str(self.region)
        return f"{self.project}/{self.zone or self.region}"


class AwsSettings(_Section):
    """The VM service's EC2 identity (Server operations guide, VM Service, AWS EC2)."""

    security_group_id: SecurityGroupId | None = Field(
        None, description="Security group attached to machine and remote-docker VMs"
    )
    vpc_arn: VpcArn | None = Field(None, description="ARN of the VPC the VMs are launched in")
    subnet_ids: list[SubnetId] = Field(
        default_factory=list,
        description="Subnets the VMs may use (empty: any subnet of the VPC)",
    )
    region: Region | None = Field(
        None, description="Narrow the policies' ARNs to this region (default: the VPC's region)"
    )
    account_id: AccountId | None = Field(
        None, description="Narrow the policies' ARNs to this account (default: the VPC's account)"
    )
    managed_by_tag: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
        description="ManagedBy tag value the provisioner's policy keys on (default: the server "
        "line's: circleci-vm-service for 3.x, circleci-machine-provisioner for 4.x)",
    )
    eks_oidc_provider_arn: str | None = Field(
        None,
        pattern=r"^arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:oidc-provider/oidc\.eks\.[a-z0-9-]+"
        r"\.amazonaws\.com(\.cn)?/id/[0-9A-F]{32}$",
        description="4.x on EKS: the cluster's OIDC provider; renders an IRSA role trust policy "
        "for the machine-provisioner service account instead of access keys",
    )
    kubernetes_namespace: str = Field(
        "circleci-server",
        pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
        description="Namespace of the server install (IRSA trust: system:serviceaccount:NS:...)",
    )

    @model_validator(mode="after")
    def _consistent_with_vpc(self) -> AwsSettings:
        match = _VPC_ARN.fullmatch(self.vpc_arn or "")
        if match is None:
            return self
        if self.region and self.region != match["region"]:
            raise ValueError(
                f"region {self.region!r} differs from the VPC's region {match['region']!r}"
            )
        if self.account_id and self.account_id != match["account"]:
            raise ValueError(
                f"account_id {self.account_id!r} differs from the VPC's account "
                f"{match['account']!r}"
            )
        return self

    @property
    def partition(self) -> str:
        match = _VPC_ARN.fullmatch(self.vpc_arn or "")
        return match["partition"] if match else "aws"


class GcpSettings(_Section):
    """The VM service's GCP identity: a custom role instead of Compute Instance Admin (beta)."""

    project_id: GcpProject | None = Field(None, description="GCP project the VMs run in")
    service_account: str | None = Field(
        None,
        pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$",
        description="Service account id used only by the provisioner (default: the server "
        "line's: circleci-vm-service for 3.x, circleci-machine-provisioner for 4.x)",
    )
    role_id: str | None = Field(
        None,
        pattern=r"^[a-zA-Z0-9_.]{3,64}$",
        description="Id of the custom role the service account is bound to (default: the "
        "server line's: circleciVmService, circleciMachineProvisioner)",
    )
    allow_external_ip: bool = Field(
        False, description="VMs get external addresses (adds compute.subnetworks.useExternalIp)"
    )
    instance_name_prefix: str | None = Field(
        None,
        pattern=r"^[a-z][a-z0-9-]{0,39}$",
        description="Limit the provisioner's role binding to instances named with this prefix "
        "(an IAM condition); only if your provisioner names its VMs so. Unset: no condition, "
        "since GCP conditions cannot test labels",
    )
    nomad_clients_service_account: str | None = Field(
        None,
        pattern=_SERVICE_ACCOUNT_EMAIL,
        description="Service account of the Nomad clients: object storage bindings on each "
        "GCS bucket (create and read objects)",
    )
    server_service_account: str | None = Field(
        None,
        pattern=_SERVICE_ACCOUNT_EMAIL,
        description="Service account of the server: object storage bindings on each GCS "
        "bucket (create, read and delete objects)",
    )


class ObjectStorageSettings(_Section):
    """Buckets for artifacts, caches, test results and audit logs (Server operations guide)."""

    buckets: list[BucketName] = Field(
        default_factory=list, description="S3 buckets the server and the Nomad clients use"
    )
    endpoint_url: str | None = Field(
        None,
        pattern=r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?$",
        description="S3-compatible endpoint (unset: AWS S3); used by `cci-harden artifacts audit`",
    )
    region: str | None = Field(
        None, pattern=r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", description="Region of the buckets"
    )
    kms_key_arn: str | None = Field(
        None,
        pattern=r"^arn:aws(-cn|-us-gov)?:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]{36}$",
        description="KMS key encrypting the buckets, if any (grants encrypt/decrypt through S3)",
    )


# The artifact tables of the CircleCI Server v3.x Operations Guide (Build Artifacts). Extensions
# map each type to the names nginx sees on a request; the MIME types are the guide's.
GUIDE_SERVED_TYPES: dict[str, list[str]] = {
    "text/plain": ["txt", "log", "text"],
    "application/json": ["json"],
    "image/png": ["png"],
    "image/jpeg": ["jpg", "jpeg"],
    "image/gif": ["gif"],
    "image/bmp": ["bmp"],
    "video/webm": ["webm"],
    "video/ogg": ["ogv"],
    "video/mp4": ["mp4", "m4v"],
    "audio/webm": ["weba"],
    "audio/aac": ["aac"],
    "audio/mp4": ["m4a"],
    "audio/mpeg": ["mp3"],
    "audio/ogg": ["ogg", "oga", "opus"],
    "audio/wav": ["wav"],
}
GUIDE_TEXT_TYPES: dict[str, list[str]] = {
    "text/html": ["html", "htm", "xhtml"],
    "text/css": ["css"],
    "text/javascript": ["js", "mjs"],
    "text/ecmascript": ["es"],
    "application/javascript": [],
    "application/ecmascript": [],
    "text/xml": ["xml", "svg"],
}


class ArtifactSettings(_Section):
    """Which artifact types are served as themselves and which as plain text; the rest download.

    Defaults are the guide's two tables. SVG is listed with the rendered-as-text types because an
    SVG image can carry script, exactly like the HTML the guide lists there.
    """

    served_types: dict[MimeType, list[Extension]] = Field(
        default_factory=lambda: {k: list(v) for k, v in GUIDE_SERVED_TYPES.items()},
        description="Types served as themselves, with the file extensions that carry them",
    )
    text_types: dict[MimeType, list[Extension]] = Field(
        default_factory=lambda: {k: list(v) for k, v in GUIDE_TEXT_TYPES.items()},
        description="Types served as text/plain with nosniff, with their file extensions",
    )
    upstream: str | None = Field(
        None,
        pattern=r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$",
        description="Object store URL nginx proxies to (unset: serve root_dir from disk)",
    )
    root_dir: DataDirectory = Field(
        "/srv/circleci-artifacts",
        description="Directory served when no upstream is set (its own, never a system directory)",
    )
    listen: str = Field(
        "127.0.0.1:8080",
        pattern=r"^(\[[0-9a-fA-F:]+\]|[0-9.]+|\*):[0-9]{1,5}$",
        description="Address and port nginx serves artifacts on",
    )
    server_name: str = Field("_", pattern=r"^[A-Za-z0-9._*-]+$", description="nginx server_name")

    @model_validator(mode="after")
    def _one_type_per_extension(self) -> ArtifactSettings:
        seen: dict[str, str] = {}
        for table in (self.served_types, self.text_types):
            for mime, extensions in table.items():
                for extension in extensions:
                    if extension in seen and seen[extension] != mime:
                        raise ValueError(
                            f"extension {extension!r} is listed for both {seen[extension]} "
                            f"and {mime}"
                        )
                    seen[extension] = mime
        overlap = sorted(set(self.served_types) & set(self.text_types))
        if overlap:
            raise ValueError(f"{', '.join(overlap)} cannot be both served and rendered as text")
        return self

    def safe_type(self, stored: str) -> str:
        """The Content-Type an object with ``stored`` type may keep, or the one it must get."""
        base = stored.split(";", 1)[0].strip().lower()
        if base in self.served_types:
            return stored
        if base in self.text_types:
            return "text/plain"
        return "application/octet-stream"
