"""Epoch time with diagnostics on versus off, measured side by side in one process.

    python benchmarks/diagnostics_overhead.py [--repeats 5] [--epochs 4] [overrides...]

Runs alternate on/off so drift in machine speed hits both alike; the first epoch of each run
(warm-up) is left out. Target: ratio <= 1.02 on CPU (<= 1.01 asked by the scale-out issue).
"""

from __future__ import annotations

import argparse
import statistics

from common import machine, spread, train_records


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("overrides", nargs="*", default=[])
    args = ap.parse_args()
    base = [f"trainer.epochs={args.epochs}", "scheduler=constant", *args.overrides]
    times = {True: [], False: []}
    ratios = []
    for r in range(args.repeats):
        per_run = {}
        for enabled in ((True, False) if r % 2 == 0 else (False, True)):
            records = train_records(base + [f"diagnostics.enabled={str(enabled).lower()}"])
            per_run[enabled] = statistics.median(rec["epoch_time_s"] for rec in records[1:])
            times[enabled].append(per_run[enabled])
        ratios.append(per_run[True] / per_run[False])
        print(f"repeat {r + 1}: on {per_run[True]:.4f}s  off {per_run[False]:.4f}s  ratio {ratios[-1]:.4f}", flush=True)
    print(f"machine: {machine()}")
    print(f"config: {' '.join(base)}")
    print(f"epoch time on  : {spread(times[True])} s")
    print(f"epoch time off : {spread(times[False])} s")
    print(f"ratio on/off   : {spread(ratios)}   (median {statistics.median(ratios):.4f}; target <= 1.02)")


if __name__ == "__main__":
    main()
