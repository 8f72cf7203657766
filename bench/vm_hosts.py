"""Benchmark: VM hosts. Image build (cold and warm), `up` of 1 and 2 VMs, resident memory per VM,
first and no-op converge of the main deploy on one VM host.

    sudo .venv/bin/python bench/vm_hosts.py [--cold] [--sizes 1,2] [--no-converge]

"cold" removes the cached VM image and builds it again with debootstrap (the apt proxy's cache is
kept, as an operator's mirror would be); "warm" is the cached image. Each size is brought up from
no VM (one container host beside it, as `up` always has one) and timed until every VM answers
over SSH and systemd has finished booting. Memory is the resident set (RSS) and proportional set
(PSS) of each VM's qemu process, 20 s after boot and again after the converge.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from cci_harden import testbed
from cci_harden.testbed import vm, vmimage
from cci_harden.testbed.layout import Layout
from cci_harden.testbed.state import TestbedState

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from deploy import changes, deploy  # noqa: E402 (bench/ is not a package)


def rss_mib(pid: int | None) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def memory_line(layout: Layout) -> str:
    state = TestbedState.load(layout.state_file)
    parts = [
        f"{r.name} RSS {rss_mib(r.pid):.0f} MiB / PSS {vm.memory_bytes(r) / 2**20:.0f} MiB"
        for r in state.vms.values()
    ]
    return "; ".join(parts)


def converge(inventory: Path) -> tuple[float, int]:
    elapsed, result = deploy(inventory, "--limit", "vm")
    return elapsed, changes(result)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cold", action="store_true", help="rebuild the VM image first")
    parser.add_argument("--sizes", default="1,2")
    parser.add_argument("--no-converge", action="store_true")
    args = parser.parse_args()
    layout = Layout()
    quiet = lambda _m: None  # noqa: E731
    inventories = REPO / "inventories"
    testbed.up(1, inventories, layout, log=quiet, vms=0)
    if args.cold:
        shutil.rmtree(vmimage.image_dir(layout), ignore_errors=True)
        print(
            f"VM image build, cold (debootstrap + mkfs): {vmimage.build(layout, log=quiet):.1f} s"
        )
    started = time.monotonic()
    (vmimage.image_dir(layout) / "disk.raw").unlink(missing_ok=True)  # repack from the kept tree
    vmimage.build(layout, log=quiet)
    print(f"VM image build, warm (tree kept, repack): {time.monotonic() - started:.1f} s")
    sizes = [int(s) for s in args.sizes.split(",")]
    for size in sizes:
        testbed.up(1, inventories, layout, log=quiet, vms=0)
        started = time.monotonic()
        report = testbed.up(1, inventories, layout, log=quiet, vms=size)
        elapsed = time.monotonic() - started
        time.sleep(20)
        print(f"up {size} VM(s) ({report.accel}): {elapsed:.1f} s; idle: {memory_line(layout)}")
        sys.stdout.flush()
    if not args.no_converge:
        testbed.up(1, inventories, layout, log=quiet, vms=1)
        first, changed = converge(inventories / "testbed")
        print(f"first converge of a fresh VM host: {first:.1f} s ({changed} changes)")
        noop, changed = converge(inventories / "testbed")
        print(f"no-op converge of the VM host: {noop:.1f} s ({changed} changes)")
        print(f"after converge: {memory_line(layout)}")


if __name__ == "__main__":
    main()
