"""Install a Nomad release zip only after its signature and checksum check out.

HashiCorp publishes ``nomad_V_linux_ARCH.zip``, ``nomad_V_SHA256SUMS`` and a detached signature
``nomad_V_SHA256SUMS.sig``; an internal mirror keeps the same layout. The host downloads the three,
checks the signature with ``gpgv`` against the key the operator pinned by fingerprint, checks the
archive against the signed sums, and only then replaces the binary. Any failure leaves the host
as it was and says why.
"""

from __future__ import annotations

import posixpath

from pyinfra.api import StringCommand, operation

from ..model.kinds.runtime import NOMAD_BINARY, NOMAD_KEY_PATH, NOMAD_RECORD
from ..model.render import render

BINARY = NOMAD_BINARY
RECORD = NOMAD_RECORD
KEY_PATH = NOMAD_KEY_PATH
# A Nomad release zip is about 30-40 MB; anything far larger, or a download that crawls for
# longer than this, is not a release.
MAX_DOWNLOAD_BYTES = 512 * 1024 * 1024
MAX_DOWNLOAD_SECONDS = 900


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
        max_seconds=MAX_DOWNLOAD_SECONDS,
        max_bytes=MAX_DOWNLOAD_BYTES,
    )


@operation()
def release(base_url: str, version: str, arch: str, fingerprint: str):
    """
    Install Nomad ``version`` from a release directory, verified (emitted only when it is not).

    + base_url: directory holding ``VERSION/nomad_VERSION_*`` (HashiCorp's layout)
    + version: exact version
    + arch: Debian architecture (amd64, arm64)
    + fingerprint: the pinned signing key's primary fingerprint

    **Example:**

    .. code:: python

        release(name="Install Nomad", base_url="https://mirror.internal/nomad",
                version="1.6.3", arch="amd64", fingerprint="798A...E701")
    """
    yield StringCommand(install_script(base_url, version, arch, fingerprint))
