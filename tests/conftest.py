"""Shared fixtures: the local test bed of real Debian hosts, and runners for the real CLIs.

pyinfra is always run as a subprocess: importing pyinfra_cli would monkey-patch this process with
gevent.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
INVENTORIES = REPO / "inventories"
TESTBED_HOSTS = 3


def run_cli(
    *args: str, env: dict | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "cci-harden"), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


def cli_here(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """What ``cci-harden ARGS`` prints and returns, run in this process: the fast layer's
    refusals and renders, without an interpreter's start-up each (``run_cli`` runs the installed
    entry point itself, as the end-to-end tests do)."""
    from cci_harden import cli

    out, err = io.StringIO(), io.StringIO()
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            with contextlib.chdir(REPO):
                try:
                    code = cli.main(list(args))
                except SystemExit as exc:  # argparse's own refusals
                    code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return subprocess.CompletedProcess(["cci-harden", *args], code, out.getvalue(), err.getvalue())


def run_pyinfra(
    inventory: Path | str, deploy: str, *extra: str, env: dict | None = None, timeout: float = 900
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "pyinfra"), "-y", *extra, str(inventory), deploy],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYINFRA_PROGRESS": "off", **(env or {})},
        timeout=timeout,
    )


def pyinfra_json(inventory: Path | str, deploy: str, *extra: str, env: dict | None = None) -> dict:
    """Run a deploy with --json and return pyinfra's own result document."""
    proc = run_pyinfra(inventory, deploy, "--json", *extra, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def changed_hosts(result: dict) -> dict[str, list[str]]:
    """Operation name -> hosts on which it changed something, from pyinfra's JSON result."""
    return {op["name"]: op["success"] for op in result["results"]["operations"] if op["success"]}


@pytest.fixture(scope="session")
def testbed():
    """Three booted container hosts and their inventory, kept up across the session; no VM host
    (test_vm_hosts.py boots its own, last, as a converge under emulation takes minutes)."""
    proc = run_cli("testbed", "up", "--hosts", str(TESTBED_HOSTS), "--vms", "0", timeout=900)
    assert proc.returncode == 0, f"testbed up failed:\n{proc.stderr}"
    from cci_harden.fleet.inventory import Inventory

    return Inventory.load(INVENTORIES / "testbed")


@pytest.fixture(scope="session")
def deployed(testbed):
    """The test bed after one run of the main deploy."""
    result = pyinfra_json(testbed.path, "deploys/nomad.py")
    return testbed, result


def ssh(inventory, host: str, command: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        ["ssh", "-F", str(inventory.ssh_config), host, command],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert proc.returncode == 0, f"{host}: {command}: {proc.stderr}"
    return proc


# Modules that replace the container hosts (Debian 13) or boot a VM run last, in this order,
# so no other module's shared converge is lost under them.
LAST_MODULES = ("test_debian13.py", "test_vm_hosts.py")


def pytest_collection_modifyitems(items):
    def rank(item) -> int:
        name = item.path.name
        return LAST_MODULES.index(name) + 1 if name in LAST_MODULES else 0

    items.sort(key=rank)  # stable: every other test keeps its place
