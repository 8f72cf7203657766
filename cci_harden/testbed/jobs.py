"""Build-like jobs on the test hosts, run and reported by the stand-in Nomad agent.

A job on a container host is a process bound to docker.service (a Docker restart kills it, as
it kills a real build); with ``image`` (a VM host) it is a real container. The stand-in lists
each job as an allocation: running, or finished / killed once it ended.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

from ..fleet.inventory import Inventory
from ..model.errors import TestbedError

TESTBED_INVENTORY = Path("inventories/testbed")
# the stand-in is installed where the release zip puts Nomad (the test bed's install source)
STANDIN = "/usr/local/bin/nomad"


def _ssh(inventory: Inventory, host: str, command: str) -> str:
    proc = subprocess.run(
        ["ssh", "-F", str(inventory.ssh_config), "--", host, command],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        raise TestbedError(f"{host}: {command}: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout


def _inventory(path: Path) -> Inventory:
    if not path.is_file():
        raise TestbedError(f"{path}: no test bed inventory (run cci-harden testbed up first)")
    return Inventory.load(path)


def start_job(
    host: str, seconds: int, image: str = "", inventory: Path = TESTBED_INVENTORY
) -> dict:
    if seconds < 1:
        raise TestbedError("a job runs for at least one second")
    found = _inventory(inventory)
    if host not in {h.name for h in found.hosts}:
        raise TestbedError(f"{host} is not a host of {inventory}")
    command = [STANDIN, "testbed-job", "start", str(seconds)] + ([image] if image else [])
    return {"host": host, **json.loads(_ssh(found, host, shlex.join(command)))}


def job_status(inventory: Path = TESTBED_INVENTORY) -> list[dict]:
    """Every job of every reachable test host, with its status."""
    found = _inventory(inventory)
    jobs = []
    for entry in found.hosts:
        try:
            listed = json.loads(_ssh(found, entry.name, f"{STANDIN} testbed-job status"))
        except (TestbedError, ValueError):
            continue  # no stand-in there (not deployed yet), or the host is down
        jobs += [{"host": entry.name, **job} for job in listed]
    return jobs
