"""Every resource kind; importing this package registers them all."""

from .files import Directory, ManagedFile, Mode, NoSetuid
from .kernel import AuditRules, KernelCmdline, Sysctl
from .manifest import Manifest, ManifestEntry
from .network import Listeners, NftTable
from .recovery import PackageSystem, StagedFiles
from .runtime import (
    CertificateExpiry,
    DockerRuntime,
    HostSize,
    NginxConfig,
    NomadHealth,
    NomadRelease,
    SshdEffective,
    SupportedOs,
)
from .ssh import HostCertificate
from .system import ConfigLine, Package, Service, SystemAccounts

__all__ = [
    "AuditRules",
    "CertificateExpiry",
    "ConfigLine",
    "Directory",
    "DockerRuntime",
    "HostCertificate",
    "HostSize",
    "KernelCmdline",
    "Listeners",
    "ManagedFile",
    "Manifest",
    "ManifestEntry",
    "Mode",
    "NftTable",
    "NginxConfig",
    "NoSetuid",
    "NomadHealth",
    "NomadRelease",
    "Package",
    "PackageSystem",
    "Service",
    "SshdEffective",
    "SupportedOs",
    "StagedFiles",
    "Sysctl",
    "SystemAccounts",
]
