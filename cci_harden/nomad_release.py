"""Install a Nomad release zip only after its signature and checksum check out.

HashiCorp publishes ``nomad_V_linux_ARCH.zip``, ``nomad_V_SHA256SUMS`` and a detached signature
``nomad_V_SHA256SUMS.sig``; an internal mirror keeps the same layout. The host downloads the three,
checks the signature with ``gpgv`` against the key the operator pinned by fingerprint, checks the
archive against the signed sums, and only then replaces the binary. Any failure leaves the host
as it was and says why.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from pyinfra import host
from pyinfra.api import FactBase, StringCommand, operation

from .render import render

BINARY = "/usr/local/bin/nomad"
RECORD = "/var/lib/cci-harden/nomad-release"
KEY_PATH = "/etc/cci-harden/keys/nomad-release.asc"


@dataclass(frozen=True)
class InstalledRelease:
    version: str
    binary_sha256: str  # as recorded at install time
    actual_sha256: str  # of the binary on disk now

    @property
    def intact(self) -> bool:
        return bool(self.binary_sha256) and self.binary_sha256 == self.actual_sha256


RECORD_COMMAND = (
    f"cat {RECORD} 2>/dev/null; "
    f'echo "actual_sha256=$(sha256sum < {BINARY} 2>/dev/null | cut -c1-64)"'
)


def parse_record(lines: list[str]) -> InstalledRelease:
    values = dict(line.split("=", 1) for line in lines if "=" in line)
    return InstalledRelease(
        values.get("version", ""), values.get("binary_sha256", ""), values.get("actual_sha256", "")
    )


class NomadRelease(FactBase):
    """The Nomad release cci-harden installed, and whether the binary is still that one."""

    def command(self) -> str:
        return RECORD_COMMAND

    def process(self, output) -> InstalledRelease:
        return parse_record(list(output))


def install_script(base_url: str, version: str, arch: str, fingerprint: str) -> str:
    return render(
        "nomad/install-release.sh.j2",
        "CCI-NMD-02",
        base_url=base_url.rstrip("/"),
        version=version,
        arch=arch,
        fingerprint=fingerprint,
        key_path=KEY_PATH,
        binary=BINARY,
        record=RECORD,
        record_dir=posixpath.dirname(RECORD),
    )


@operation()
def release(base_url: str, version: str, arch: str, fingerprint: str):
    """
    Install Nomad ``version`` from a release directory, verified, unless it is already there.

    + base_url: directory holding ``VERSION/nomad_VERSION_*`` (HashiCorp's layout)
    + version: exact version
    + arch: Debian architecture (amd64, arm64)
    + fingerprint: the pinned signing key's primary fingerprint

    **Example:**

    .. code:: python

        release(name="Install Nomad", base_url="https://mirror.internal/nomad",
                version="1.6.3", arch="amd64", fingerprint="798A...E701")
    """
    installed = host.get_fact(NomadRelease)
    if installed.version == version and installed.intact:
        host.noop(f"Nomad {version} is installed and unchanged")
        return
    yield StringCommand(install_script(base_url, version, arch, fingerprint))
