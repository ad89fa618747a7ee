"""Peak memory of `python -m analysis RUN` as the epoch count grows, each analysis in a fresh process.

    python benchmarks/analysis_memory.py [--epochs 1000 10000 100000]

Runs of 1,000, 10,000 and 100,000 epochs with the records of a ResNet-18 run (21 layer gradient norms, 17
ReLU layers: benchmarks/analysis_speed.py's generator), analysed with `--format json` in a child process
that reports its own peak resident set (ru_maxrss) and time; printed side by side with the bytes per
epoch. Target (traindx issue 21): under 1 GB at 100,000 epochs, growing no faster than the input. The
overfitting rule's noise simulation once drew 4,000 numbers per epoch at once (9.5 GB at 100,000 epochs).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from analysis_speed import write_run
from common import ROOT, machine

TARGET_BYTES = 2**30  # 1 GiB at 100,000 epochs

CHILD = """
import io, contextlib, resource, sys, time
t0 = time.perf_counter()
from analysis.__main__ import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main([sys.argv[1], "--format", "json"])
print(code, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, time.perf_counter() - t0)
"""


def measure(run: Path) -> tuple[int, int, float]:
    """(exit status, peak RSS in bytes, seconds) of one analysis in a fresh interpreter."""
    proc = subprocess.run([sys.executable, "-c", CHILD, str(run)], cwd=ROOT, capture_output=True, text=True,
                          check=True)
    code, peak, seconds = proc.stdout.split()[-3:]
    return int(code), int(peak), float(seconds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, nargs="*", default=[1_000, 10_000, 100_000])
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.epochs:
            run = Path(tmp) / f"run{n}"
            write_run(run, n, 0, [])
            size = sum(p.stat().st_size for p in (run / "diagnostics").iterdir())
            code, peak, seconds = measure(run)
            rows.append((n, size, peak, seconds, code))
            print(f"{n:>7} epochs: input {size / 2**20:7.1f} MiB, peak RSS {peak / 2**20:7.1f} MiB "
                  f"({peak / n / 1024:6.1f} KiB per epoch), {seconds:5.1f} s, exit {code}", flush=True)
            for p in (run / "diagnostics").iterdir():  # the next run's disk space
                p.unlink()
    if len(rows) > 1:
        base = rows[0]
        print("peak RSS relative to the smallest run: " + ", ".join(
            f"{n}: x{peak / base[2]:.2f} (epochs x{n / base[0]:g})" for n, _, peak, _, _ in rows))
    largest = max(rows)
    verdict = "within" if largest[2] < TARGET_BYTES else "OVER"
    print(f"largest run ({largest[0]} epochs): peak {largest[2] / 2**30:.2f} GiB, {verdict} the 1 GiB target")
    print(json.dumps({"epochs": [r[0] for r in rows], "peak_rss_bytes": [r[2] for r in rows]}))
    print(f"machine: {machine()}")


if __name__ == "__main__":
    main()
