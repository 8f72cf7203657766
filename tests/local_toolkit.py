"""The toolkit installed inside a test host, as a Packer provisioner would install it.

The dependencies come from requirements.lock (hash-checked by pip as this machine downloads them,
cached by the lock's digest); the package is a wheel built from this checkout, so the host runs
the code under test. On the host: a virtualenv at /opt/cci-harden, installed with no index.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import REPO

CACHE = Path("/var/cache/cci-harden/wheelhouse")
VENV = "/opt/cci-harden"
EXECUTABLE = f"{VENV}/bin/cci-harden"


def _pip(*args: str, cwd: Path | None = None) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def dependency_wheels() -> Path:
    """Every locked dependency as a wheel, downloaded once per lock."""
    lock = REPO / "requirements.lock"
    directory = CACHE / hashlib.sha256(lock.read_bytes()).hexdigest()[:16]
    if not (directory / ".complete").is_file():
        _pip("download", "--require-hashes", "-r", str(lock), "-d", str(directory))
        (directory / ".complete").touch()
    return directory


def package_wheel(directory: Path) -> Path:
    """This checkout as a wheel (templates included, as data files), built from a copy of what
    the wheel holds: setuptools' build/ in the checkout could carry stale modules, and the
    checkout is left as it was."""
    source = directory / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for name in ("cci_harden", "templates"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    _pip("wheel", "--no-deps", str(source), "-w", str(directory), cwd=directory)
    (wheel,) = directory.glob("cci_harden-*.whl")
    return wheel


def _send(inventory, host: str, source: Path, target: str) -> None:
    """Copy a directory's files to ``target`` on the host (tar over the SSH connection)."""
    with subprocess.Popen(["tar", "-C", str(source), "-c", "."], stdout=subprocess.PIPE) as tar:
        proc = subprocess.run(
            [
                "ssh",
                "-F",
                str(inventory.ssh_config),
                host,
                f"mkdir -p {target} && tar -C {target} -x",
            ],
            stdin=tar.stdout,
            capture_output=True,
            timeout=600,
        )
    assert proc.returncode == 0, proc.stderr


def on_host(inventory, host: str, command: str, timeout: float = 900) -> str:
    """Run ``command`` as root on ``host``; its standard output (it must succeed)."""
    proc = subprocess.run(
        ["ssh", "-F", str(inventory.ssh_config), host, command],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"{host}: {command}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def install(inventory, host: str, scratch: Path) -> str:
    """The toolkit in a virtualenv on ``host``; the path of its ``cci-harden``."""
    wheels = scratch / "wheels"
    wheels.mkdir()
    package_wheel(wheels)
    _send(inventory, host, dependency_wheels(), "/opt/cci-harden-wheels")
    _send(inventory, host, wheels, "/opt/cci-harden-wheels")
    proxy = inventory.settings.apt.proxy
    on_host(
        inventory,
        host,
        "export DEBIAN_FRONTEND=noninteractive; "
        f"apt-get -o Acquire::http::Proxy={proxy} update -qq && "
        f"apt-get -o Acquire::http::Proxy={proxy} install -y -qq python3-venv gnupg >/dev/null && "
        f"python3 -m venv {VENV} && "
        f"{VENV}/bin/pip install -q --no-index --find-links /opt/cci-harden-wheels "
        "/opt/cci-harden-wheels/cci_harden-*.whl",
    )
    return EXECUTABLE
