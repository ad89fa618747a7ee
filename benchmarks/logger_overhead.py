"""Epoch time with logger=tensorboard and logger=mlflow versus logger=none, side by side in one process.

    python benchmarks/logger_overhead.py [--pairs 6] [--threads 1] [--loggers tensorboard mlflow] [overrides...]

For each logger (one after the other; one whose package is missing is reported and skipped), one real
`train()` run with that logger. After a warm-up epoch (which opens the event file or the MLflow run),
the logger's per-epoch call is switched on and off in ABBA order (on off, off on, ...): an "off"
epoch skips the write, which is what logger=none does for a whole run. Each epoch's cycle is timed
from the end of its read-out to the next one's (validation, the JSONL and logger writes, checkpoints
and the next epoch's training: the writer's background thread does its file writing in there), so
adjacent cycles share the machine's state and each pair gives one ratio on/off. Also printed: the
logger call itself, in ms per epoch (MLflow writes its file store in the call; TensorBoard hands the
events to its writer thread). Target: ratio within the noise of 1 (issue 13: "must not slow
an epoch measurably").
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import time

from common import machine, mean_ci, ratio_summary, set_threads, train_run


def logger_on(epoch: int) -> bool:
    """Epoch 1 (warm-up) on; then pairs (2, 3), (4, 5), ... alternately (on, off) and (off, on)."""
    if epoch < 2:
        return True
    pair, second = divmod(epoch - 2, 2)
    return (pair % 2 == 0) != bool(second)


PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow"}  # logger -> the package it needs


def measure(logger: str, pairs: int, overrides: list[str]) -> None:
    """One run with `logger`, its per-epoch call switched on and off in ABBA pairs; prints its block."""
    import trainer.loggers as loggers

    cls = {"tensorboard": loggers.TensorBoardLogger, "mlflow": loggers.MlflowLogger}[logger]
    write = cls.epoch
    calls: dict[int, float] = {}

    def switched(self, epoch, train, val, findings):
        t0 = time.perf_counter()
        if logger_on(epoch):
            write(self, epoch, train, val, findings)
        calls[epoch] = time.perf_counter() - t0

    cls.epoch = switched
    try:
        run = train_run([f"logger={logger}", *overrides])
    finally:
        cls.epoch = write
    ends = run["epoch_ends"]
    # cycle k: from epoch k's read-out to epoch k+1's; it holds epoch k's logger call
    cycles = {k: ends[k] - ends[k - 1] for k in range(2, len(ends))}  # ends[0] is epoch 1's
    ratios = []
    for p in range(pairs):
        a, b = 2 + 2 * p, 3 + 2 * p
        if a in cycles and b in cycles:
            on, off = (a, b) if logger_on(a) else (b, a)
            ratios.append(cycles[on] / cycles[off])
    on_cycles = [c for k, c in cycles.items() if logger_on(k)]
    off_cycles = [c for k, c in cycles.items() if not logger_on(k)]
    call_ms, half = mean_ci([1000 * s for k, s in calls.items() if k >= 2 and logger_on(k)])
    print(f"[logger={logger}]")
    print(f"epoch cycle: logger on {statistics.median(on_cycles):.4f} s, off {statistics.median(off_cycles):.4f} s "
          f"(median)")
    print(f"ratio on/off: {ratio_summary(ratios)}")
    print(f"logger call: {call_ms:.3f} ms ± {half:.3f} per epoch "
          f"({100 * call_ms / 1000 / statistics.median(off_cycles):.3f} % of an epoch cycle)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=6, help="on/off epoch pairs after the warm-up (default 6)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument("--loggers", nargs="+", choices=sorted(PACKAGES), default=["tensorboard", "mlflow"],
                    help="the loggers to measure, one run each (default both)")
    ap.add_argument("overrides", nargs="*", help="trainer overrides (default: the digits run)")
    args = ap.parse_args()
    threads = set_threads(args.threads)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # a benchmark reaches no network
    overrides = [f"trainer.epochs={2 * args.pairs + 2}", "trainer.resume=false", *args.overrides]
    print(f"machine: {machine()}")
    print(f"config : {' '.join(overrides)}  (threads {threads}, {args.pairs} pairs)")
    for logger in args.loggers:
        if importlib.util.find_spec(PACKAGES[logger]) is None:
            print(f"[logger={logger}] skipped: {PACKAGES[logger]} is not installed")
            continue
        measure(logger, args.pairs, overrides)


if __name__ == "__main__":
    main()
