"""External judge: Lynis's hardening index on a test-bed host.

    .venv/bin/python bench/lynis.py [--inventory inventories/testbed] [--host tb1] [--fresh HOST]

Installs Debian's lynis package on the host (through the test bed's apt proxy), runs
``lynis audit system --quick``, and prints the hardening index and every open suggestion with
its test id. ``--fresh HOST`` also audits a host the deploy has not touched, for comparison.
Run it after ``pyinfra inventories/testbed deploys/nomad.py``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

from cci_harden.fleet.inventory import Inventory


def ssh(inventory: Inventory, host: str, command: str, timeout: int = 900) -> str:
    proc = subprocess.run(
        ["ssh", "-F", str(inventory.ssh_config), host, command],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{host}: {command}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    return proc.stdout


def audit(inventory: Inventory, host: str, timeout: int) -> tuple[int, list[tuple[str, str]]]:
    proxy = inventory.settings.apt.proxy
    via = f"-o Acquire::http::Proxy={str(proxy).rstrip('/')}" if proxy else ""
    ssh(
        inventory,
        host,
        f"command -v lynis >/dev/null || (timeout 120 apt-get {via} update -q >/dev/null && "
        f"DEBIAN_FRONTEND=noninteractive apt-get {via} install -y -q --no-install-recommends "
        "lynis >/dev/null)",
    )
    ssh(
        inventory,
        host,
        "lynis audit system --quick --no-colors >/dev/null 2>&1 || true",
        timeout=timeout,
    )
    report = ssh(inventory, host, "cat /var/log/lynis-report.dat")
    index = int(re.search(r"^hardening_index=(\d+)", report, re.M).group(1))
    suggestions = []
    for line in report.splitlines():
        if line.startswith("suggestion[]="):
            test_id, text, *_ = line[len("suggestion[]=") :].split("|")
            suggestions.append((test_id, text))
    return index, suggestions


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inventory", default="inventories/testbed")
    parser.add_argument("--host", help="a host the deploy has converged (default tb1)")
    parser.add_argument("--fresh", help="also audit this untouched host, for comparison")
    parser.add_argument(
        "--timeout",
        type=int,
        default=2400,
        help="seconds one audit may take (a Debian 13 VM under emulation took over 15 minutes)",
    )
    args = parser.parse_args()
    inventory = Inventory.load(Path(args.inventory))
    if not args.host and not args.fresh:
        args.host = "tb1"
    for host, label in ((args.fresh, "fresh"), (args.host, "after deploys/nomad.py")):
        if not host:
            continue
        index, suggestions = audit(inventory, host, args.timeout)
        print(f"{host} ({label}): Lynis hardening index {index}; {len(suggestions)} suggestions")
        for test_id, text in suggestions:
            print(f"  {test_id:<10} {text}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
