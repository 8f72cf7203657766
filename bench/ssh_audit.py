"""External judge: ssh-audit's failures and warnings for test-bed hosts, fresh and converged.

    .venv/bin/python bench/ssh_audit.py [--inventory inventories/testbed] HOST [HOST ...]

Runs ssh-audit (the dev dependency) from this machine against each host's address and prints
the count of failures and warnings with the algorithms named; docs/ssh-audit.md says which two
warnings stay and why.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from cci_harden.fleet.inventory import Inventory

BIN = Path(sys.executable).parent


def verdict(address: str) -> dict[str, list[str]]:
    proc = subprocess.run(
        [str(BIN / "ssh-audit"), "-j", address], capture_output=True, text=True, timeout=180
    )
    report = json.loads(proc.stdout)
    found: dict[str, list[str]] = {"fail": [], "warn": []}
    for section in ("kex", "key", "enc", "mac"):
        for entry in report.get(section, []):
            for level in found:
                if entry.get("notes", {}).get(level):
                    found[level].append(f"{section} {entry['algorithm']}")
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inventory", default="inventories/testbed")
    parser.add_argument("hosts", nargs="+")
    args = parser.parse_args()
    inventory = Inventory.load(Path(args.inventory))
    addresses = {h.name: h.address for h in inventory.hosts}
    for name in args.hosts:
        found = verdict(addresses[name])
        print(f"{name}: ssh-audit {len(found['fail'])} fail, {len(found['warn'])} warn")
        for level in ("fail", "warn"):
            for algorithm in found[level]:
                print(f"  {level}: {algorithm}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
