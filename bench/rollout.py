"""Benchmark: `cci-harden rollout` against the plain deploy on fresh test-bed hosts.

    .venv/bin/python bench/rollout.py  (as root) [--sizes 1,10] [--runs 3]

For each size the test bed is brought down and up again, converged once, then the no-op deploy
(`pyinfra INVENTORY deploys/nomad.py`) and the no-op rollout (`cci-harden rollout INVENTORY`,
which reads every host, finds nothing to change and drains nothing) are timed --runs times each,
interleaved; medians and their ratio are printed. On the largest size a change that needs a
Docker restart (docker.log_max_size) is rolled out in batches 1,30%,100% with at most 30% of the
hosts out of service, and its timeline is printed: per host, when its drain started and ended
and when it was eligible again, in seconds from the start.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from deploy import BIN, deploy, measured  # noqa: E402

from cci_harden import __version__, testbed  # noqa: E402
from cci_harden.testbed.layout import Layout  # noqa: E402


def rollout(inventory: Path, report: Path, *extra: str, env: dict | None = None):
    run = measured(
        [str(BIN / "cci-harden"), "rollout", str(inventory), "--report", str(report), *extra],
        env={**os.environ, "PYINFRA_PROGRESS": "off", **(env or {})},
    )
    if run.returncode != 0:
        raise SystemExit(f"rollout failed:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
    return run, json.loads(report.read_text())


def _at(stamp: str, start: dt.datetime) -> str:
    if not stamp:
        return "-"
    moment = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return f"{(moment - start).total_seconds():6.1f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1,10")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    layout = Layout()
    quiet = lambda _m: None  # noqa: E731
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"cci-harden {__version__}, {dt.date.today()}, {os.cpu_count()} cores; "
        f"sizes {sizes}, {args.runs} runs each",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "rollout.json"
        for size in sizes:
            testbed.down(layout, log=quiet)
            testbed.up(size, Path(tmp), layout, log=quiet)
            inventory = Path(tmp) / "testbed"
            deploy(inventory)
            plain, rolled = [], []
            for _ in range(args.runs):
                plain.append(deploy(inventory)[0])
                run, record = rollout(inventory, report)
                assert not any(h["drain_started"] for h in record["hosts"]), record
                rolled.append(run.seconds)
            p, r = statistics.median(plain), statistics.median(rolled)
            print(
                f"{size:>2} host(s): no-op deploy median {p:5.2f} s; no-op rollout median "
                f"{r:5.2f} s (peak {run.peak_mib:.0f} MiB); rollout / deploy {r / p:.2f}x",
                flush=True,
            )
        largest = sizes[-1]
        start = dt.datetime.now(dt.UTC)
        run, record = rollout(
            inventory,
            report,
            "--batches",
            "1,30%,100%",
            env={
                "CCI_DOCKER__LOG_MAX_SIZE": "21m",
                "CCI_ROLLOUT__MAX_UNAVAILABLE": "30%",
                "CCI_ROLLOUT__POLL_SECONDS": "1",
            },
        )
        print(
            f"{largest} host(s): restart-class rollout (Docker restart) in batches "
            f"{record['batches'] and [len(b) for b in record['batches']]}, at most "
            f"{record['max_unavailable']} out of service: {run.seconds:.1f} s",
            flush=True,
        )
        print("  host   batch  drain start  drain end  eligible again  outcome")
        for host in record["hosts"]:
            print(
                f"  {host['host']:<6} {host['batch']:>5}  {_at(host['drain_started'], start):>11}"
                f"  {_at(host['drain_ended'], start):>9}  {_at(host['released'], start):>14}"
                f"  {host['outcome']}"
            )
    testbed.down(layout, log=quiet)


if __name__ == "__main__":
    main()
