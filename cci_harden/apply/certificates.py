"""Sign a host's key with the operator's SSH CA, on the operator's machine.

The CA's private key never leaves the machine that runs the deploy: the host's public key comes
from its snapshot, ``ssh-keygen -s`` signs it here, and only the certificate is uploaded.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from ..model.errors import CciHardenError
from ..model.kinds import HostCertificate
from ..model.kinds.ssh import PATTERN_CHARACTERS


def sign_host_key(resource: HostCertificate, host_key: str, identity: str) -> str:
    """The certificate for ``host_key`` ("TYPE BASE64"), for the resource's principals."""
    odd = [p for p in resource.principals if not p or PATTERN_CHARACTERS & set(p)]
    if odd:  # settings validation refuses such names; a certificate must never carry one
        raise CciHardenError(f"refusing to sign a principal that could be a pattern: {odd[0]!r}")
    with tempfile.TemporaryDirectory(prefix="cci-cert-") as directory:
        public = Path(directory) / "host.pub"
        public.write_text(host_key + "\n")
        proc = subprocess.run(
            [
                "ssh-keygen",
                "-q",
                "-s",
                resource.signer,
                "-h",
                "-I",
                identity,
                "-n",
                ",".join(resource.principals),
                "-V",
                f"-5m:+{int(resource.validity_days)}d",
                str(public),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if proc.returncode != 0:
            raise CciHardenError(f"ssh-keygen could not sign the host key: {proc.stderr.strip()}")
        return (Path(directory) / "host-cert.pub").read_text()
