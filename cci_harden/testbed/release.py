"""A stand-in Nomad release for the test bed, signed by a key made here, served on the bridge.

No registry reachable from this machine ships Nomad, so the test bed publishes a release with
HashiCorp's layout (zip, SHA256SUMS, detached signature) whose "binary" is a small shell script
that says what it is. The deploy installs it through the same checks it applies to a real
release; checks that need a real agent report "not verifiable" when they see it.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..model.errors import TestbedError
from . import process
from .layout import Layout
from .proxy import wait_listening

STANDIN_VERSION = "1.6.3"
STANDIN_MARKER = "cci-harden test bed stand-in, not Nomad"
KEY_NAME = "cci-harden test bed release key (stand-in releases only)"

# The stand-in "binary": a Python program (test hosts have python3) that answers the agent API the
# rollout uses; "{version}" in it is replaced by the release's version.
STANDIN_SCRIPT = (Path(__file__).parent / "standin_agent.py").read_text()
assert STANDIN_MARKER in STANDIN_SCRIPT


@dataclass(frozen=True)
class Release:
    version: str
    fingerprint: str
    public_key: Path  # armored, on this machine: what an operator would pin
    base_url: str


def _gpg(layout: Layout, *args: str, data: bytes | None = None) -> bytes:
    home = layout.release_dir / "gnupg"
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    proc = subprocess.run(
        ["gpg", "--batch", "--quiet", "--no-tty", *args],
        input=data,
        capture_output=True,
        env={**os.environ, "GNUPGHOME": str(home)},
    )
    if proc.returncode != 0:
        raise TestbedError(f"gpg {' '.join(args)} failed: {proc.stderr.decode().strip()}")
    return proc.stdout


def signing_key(layout: Layout) -> tuple[str, Path]:
    """The test bed's signing key (made once per test bed): fingerprint and armored public key."""
    public = layout.release_dir / "release-key.asc"
    if not public.is_file():
        _gpg(layout, "--passphrase", "", "--quick-gen-key", KEY_NAME, "ed25519", "sign", "never")
        public.write_bytes(_gpg(layout, "--armor", "--export", KEY_NAME))
    listing = _gpg(layout, "--with-colons", "--list-keys", KEY_NAME).decode()
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line[:4] == "fpr:")
    return fingerprint, public


def zip_bytes(script: str) -> bytes:
    """A zip holding ``nomad``; fixed timestamps, so the same script gives the same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo("nomad", date_time=(2020, 1, 1, 0, 0, 0))
        info.external_attr = 0o100755 << 16
        archive.writestr(info, script)
    return buffer.getvalue()


def publish(
    layout: Layout,
    directory: Path,
    version: str,
    archive: bytes,
    arch: str = "amd64",
    sign: bool = True,
    sums_archive: bytes | None = None,
) -> Path:
    """Write HashiCorp's layout for ``version`` under ``directory``: zip, SHA256SUMS, signature.

    ``sums_archive`` lets a test list a different archive's checksum (a tampered release).
    """
    target = directory / version
    target.mkdir(parents=True, exist_ok=True)
    name = f"nomad_{version}_linux_{arch}.zip"
    (target / name).write_bytes(archive)
    digest = hashlib.sha256(sums_archive if sums_archive is not None else archive).hexdigest()
    sums = target / f"nomad_{version}_SHA256SUMS"
    sums.write_text(f"{digest}  {name}\n")
    signature = target / f"nomad_{version}_SHA256SUMS.sig"
    if sign:
        signature.unlink(missing_ok=True)
        _gpg(layout, "--local-user", KEY_NAME, "--detach-sign", "-o", str(signature), str(sums))
    return target


def prepare(layout: Layout, version: str = STANDIN_VERSION) -> Release:
    fingerprint, public = signing_key(layout)
    script = STANDIN_SCRIPT.replace("{version}", version)
    publish(layout, layout.mirror_dir / "nomad", version, zip_bytes(script))
    return Release(version, fingerprint, public, f"{layout.mirror_url}/nomad")


def start_mirror(layout: Layout) -> int:
    layout.mirror_dir.mkdir(parents=True, exist_ok=True)
    pid = process.spawn(
        [
            sys.executable,
            "-m",
            "http.server",
            "--bind",
            str(layout.bridge_address),
            "--directory",
            str(layout.mirror_dir),
            str(layout.mirror_port),
        ],
        layout.state_dir / "mirror.log",
    )
    wait_listening(str(layout.bridge_address), layout.mirror_port, pid)
    return pid


def mirror_running(layout: Layout, pid: int | None) -> bool:
    return process.owns(pid, str(layout.mirror_dir))


def stop_mirror(layout: Layout, pid: int | None) -> None:
    marker = str(layout.mirror_dir)
    process.stop(pid, marker)
    for stray in process.find_processes(marker, os.path.basename(sys.executable)):
        process.stop(stray, marker)
