"""Benchmark: `pyinfra INVENTORY deploys/nomad.py`, `cci-harden verify` and `pytest --cci-inventory`
on fresh test-bed hosts.

    .venv/bin/python bench/deploy.py  (as root) [--sizes 1,10] [--verify] [--runs 5]

For each size the test bed is brought down and up again (fresh hosts from the cached image; the
apt proxy's cache is kept, as an operator's mirror would be), then the deploy converges once and
the no-op re-run (which must change nothing) is timed --runs times; with --verify, `cci-harden
verify` is timed --runs times on the same hosts. Medians are printed, one line per size, with
each process's peak memory on the operator's side (ru_maxrss), then the ratios the goals are
stated in (no-op converge / verify on one host; 10 hosts / 1 host).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cci_harden import testbed
from cci_harden.testbed.layout import Layout

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@dataclass
class Measured:
    seconds: float
    returncode: int
    stdout: str
    stderr: str
    peak_mib: float  # the process's peak resident memory (ru_maxrss from wait4)


def measured(command: list[str], cwd: Path | str = REPO, env: dict | None = None) -> Measured:
    """Run ``command``; its wall time and its own peak memory, on the operator's side."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        proc = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        return Measured(
            elapsed,
            proc.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            usage.ru_maxrss / 1024,
        )


PEAKS: dict[tuple[int, str], float] = {}  # (size, phase) -> highest peak MiB seen


def _peak(size: int, phase: str, run: Measured) -> None:
    PEAKS[(size, phase)] = max(PEAKS.get((size, phase), 0.0), run.peak_mib)


def deploy(inventory: Path, *extra: str, size: int = 0, phase: str = "") -> tuple[float, dict]:
    run = measured(
        [str(BIN / "pyinfra"), "-y", "--json", str(inventory), "deploys/nomad.py", *extra],
        env={**os.environ, "PYINFRA_PROGRESS": "off"},
    )
    if run.returncode != 0:
        raise SystemExit(f"deploy failed:\n{run.stderr[-3000:]}")
    if phase:
        _peak(size, phase, run)
    return run.seconds, json.loads(run.stdout)


def changes(result: dict) -> int:
    return sum(len(op["success"]) for op in result["results"]["operations"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1,10")
    parser.add_argument("--verify", action="store_true", help="also time cci-harden verify")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per size (median)")
    args = parser.parse_args()
    layout = Layout()
    quiet = lambda _m: None  # noqa: E731
    medians: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            testbed.down(layout, log=quiet)
            testbed.up(size, Path(tmp), layout, log=quiet)
            inventory = Path(tmp) / "testbed"
            first, first_result = deploy(inventory, size=size, phase="first converge")
            noop = [deploy(inventory, size=size, phase="no-op converge") for _ in range(args.runs)]
            again = statistics.median(t for t, _ in noop)
            medians.setdefault(size, {})["noop"] = again
            line = (
                f"{size:>2} host(s): first converge {first:6.1f} s ({changes(first_result)} "
                f"changes); no-op converge median of {len(noop)} {again:5.2f} s "
                f"(max {max(t for t, _ in noop):.2f}; {sum(changes(r) for _, r in noop)} changes)"
            )
            if args.verify:
                report = Path(tmp) / "verify.json"
                timings = []
                for _ in range(args.runs):
                    proc = measured(
                        [str(BIN / "cci-harden"), "verify", str(inventory), "--json", str(report)]
                    )
                    _peak(size, "verify", proc)
                    timings.append(proc.seconds)
                seconds = statistics.median(timings)
                medians[size]["verify"] = seconds
                document = json.loads(report.read_text())
                checks = sum(len(h["outcomes"]) for h in document["hosts"])
                commands = sum(h["remote_commands"] for h in document["hosts"])
                line += (
                    f"; verify median of {len(timings)} {seconds:5.2f} s "
                    f"(min {min(timings):.1f}, max {max(timings):.1f}; exit {proc.returncode}, "
                    f"{checks} checks, {checks / seconds:.0f} checks/s, "
                    f"{commands / checks:.3f} remote commands per check)"
                )
                # the same plugin through pytest itself, with every installed plugin loaded
                direct = []
                for _ in range(args.runs):
                    run = measured(
                        [
                            str(BIN / "pytest"),
                            "-q",
                            "-p",
                            "no:cacheprovider",
                            "--cci-inventory",
                            str(inventory),
                        ],
                        cwd=tmp,
                    )
                    _peak(size, "pytest", run)
                    direct.append(run.seconds)
                medians[size]["pytest"] = statistics.median(direct)
                line += (
                    f"; pytest --cci-inventory median {medians[size]['pytest']:5.2f} s "
                    f"(exit {run.returncode}; {medians[size]['pytest'] / seconds:.2f}x verify)"
                )
            print(line, flush=True)
            peaks = [f"{phase} {mib:.0f}" for (at, phase), mib in PEAKS.items() if at == size]
            print(f"{size:>2} host(s): operator-side peak memory (MiB): " + ", ".join(peaks))
    testbed.down(layout, log=quiet)
    one = medians.get(min(medians)) if medians else None
    for size, figures in sorted(medians.items()):
        ratios = []
        if "verify" in figures:
            ratios.append(f"no-op converge / verify {figures['noop'] / figures['verify']:.2f}x")
        if one is not None and size != min(medians):
            ratios.append(
                f"no-op converge vs {min(medians)} host(s) {figures['noop'] / one['noop']:.2f}x"
            )
            if "verify" in figures:
                ratios.append(
                    f"verify vs {min(medians)} host(s) {figures['verify'] / one['verify']:.2f}x"
                )
        print(f"{size:>2} host(s): " + "; ".join(ratios), flush=True)


if __name__ == "__main__":
    main()
