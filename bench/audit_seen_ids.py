"""Benchmark: duplicate detection alone, far past what a CSV export on this disk would hold.

    .venv/bin/python bench/audit_seen_ids.py [--ids 20000000] [--batch 4096] [--duplicates 0.01]

Feeds ``SeenIds`` batches of random 16-byte ids, as the workers deliver them, with a share
repeated from the last 64 ids (as the generator does) and the same share repeated from anywhere
earlier (as overlapping exports would), and prints ids per second and memory (RSS, sampled after
every batch) at each doubling. A duplicate count other than the number planted fails the run.
"""

from __future__ import annotations

import argparse
import random
import resource
import time
from pathlib import Path

from cci_harden.audit.seen import SeenIds


class _Delivery:
    __slots__ = ("key",)

    def __init__(self, key: bytes):
        self.key = key


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ids", type=int, default=20_000_000)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--duplicates", type=float, default=0.01, help="share of each kind")
    args = parser.parse_args()
    rng = random.Random(11)
    seen = SeenIds()
    recent: list[bytes] = []
    sample: list[bytes] = []  # a reservoir of earlier ids, for repeats from far back
    planted = found = delivered = 0
    peak = 0.0
    report_at = 1_000_000
    start = time.perf_counter()
    cost = 0.0
    while delivered < args.ids:
        keys = []
        for _ in range(args.batch):
            roll = rng.random()
            if roll < args.duplicates and recent:
                keys.append(rng.choice(recent))
                planted += 1
            elif roll < 2 * args.duplicates and sample:
                keys.append(rng.choice(sample))
                planted += 1
            else:
                key = rng.randbytes(16)
                keys.append(key)
                recent.append(key)
                if len(recent) > 64:
                    recent.pop(0)
                if len(sample) < 100_000:
                    sample.append(key)
                elif rng.random() < 0.01:
                    sample[rng.randrange(len(sample))] = key
        events = [_Delivery(key) for key in keys]
        blob = b"".join(keys)
        tick = time.perf_counter()
        fresh, _ = seen.fresh(events, blob)
        cost += time.perf_counter() - tick
        found += len(events) - len(fresh)
        delivered += len(events)
        peak = max(peak, _rss_mb())
        if delivered >= report_at or delivered >= args.ids:
            print(
                f"{delivered:>12,} ids: {delivered / cost:>12,.0f} ids/s in SeenIds, "
                f"RSS now {_rss_mb():.0f} MiB, peak {peak:.0f} MiB "
                f"(whole run {time.perf_counter() - start:.0f} s, most of it making ids)"
            )
            report_at *= 2
    seen.close()
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"duplicates planted {planted:,}, found {found:,}; process max RSS {maxrss:.0f} MiB")
    if found != planted:
        raise SystemExit("duplicate count differs from the number planted")


if __name__ == "__main__":
    main()
