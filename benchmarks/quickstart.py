"""The default `python -m trainer` end to end: wall time and validation accuracy over several seeds.

    python benchmarks/quickstart.py [--seeds 3]

Each run is a fresh subprocess (interpreter and torch start-up included), as a user runs it.
Target: best validation accuracy >= 0.95 on digits within 60 s on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, machine, spread


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    walls, best, final = [], [], []
    for seed in range(args.seeds):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "trainer", f"hydra.run.dir={tmp}", f"trainer.seed={seed}"],
                           cwd=ROOT, check=True, capture_output=True)
            walls.append(time.perf_counter() - t0)
            val = [json.loads(x) for x in (Path(tmp) / "diagnostics" / "val_diagnostics.jsonl").read_text().splitlines()]
            best.append(max(r["accuracy"] for r in val))
            final.append(val[-1]["accuracy"])
        print(f"seed {seed}: {walls[-1]:.1f} s, best val acc {best[-1]:.4f}, final {final[-1]:.4f}", flush=True)
    print(f"machine: {machine()}")
    print(f"wall time (s)     : {spread(walls)}   (target <= 60)")
    print(f"best val accuracy : {spread(best)}   (target >= 0.95)")
    print(f"final val accuracy: {spread(final)}")


if __name__ == "__main__":
    main()
