"""Benchmark: test bed `up` for 1, 5 and 10 hosts, cold and warm base image; idle memory per host.

    sudo .venv/bin/python bench/testbed_up.py [--cold]

"warm" reuses the cached base image; "--cold" also rebuilds it once with debootstrap first.
Each size is brought up from nothing (after `down`) and timed until every host's systemd has
finished booting and answers over SSH. Memory is the proportional set size (PSS) of everything
running inside each host, measured after the hosts settle.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from cci_harden import testbed
from cci_harden.testbed import hosts as tb_hosts
from cci_harden.testbed import image
from cci_harden.testbed.layout import Layout
from cci_harden.testbed.state import TestbedState


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cold", action="store_true", help="rebuild the base image first")
    parser.add_argument("--sizes", default="1,5,10")
    args = parser.parse_args()
    layout = Layout()
    quiet = lambda _m: None  # noqa: E731
    testbed.down(layout)
    if args.cold:
        shutil.rmtree(layout.base_image, ignore_errors=True)
        seconds = image.build_image(layout, log=quiet)
        print(f"cold base image build (debootstrap): {seconds:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            testbed.down(layout)
            started = time.monotonic()
            testbed.up(size, Path(tmp), layout, log=quiet)
            elapsed = time.monotonic() - started
            time.sleep(5)
            state = TestbedState.load(layout.state_file)
            memory = [tb_hosts.memory_bytes(r) / 2**20 for r in state.hosts.values()]
            print(
                f"up {size:>2} host(s), warm base: {elapsed:5.1f} s; idle memory per host "
                f"(PSS): mean {sum(memory) / len(memory):.1f} MiB, max {max(memory):.1f} MiB"
            )
    testbed.down(layout)


if __name__ == "__main__":
    main()
