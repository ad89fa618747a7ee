"""Start-up cost of the embedded digits: the trainer's reader of scikit-learn's shipped file against
scikit-learn's own loader, each in a fresh process (imports included, as every run pays them), alternated.

    python benchmarks/digits_load.py --pairs 5
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from common import ROOT, machine, ratio_summary, spread

# torch and numpy are imported before the clock starts: every run imports them anyway.
PROGRAM = """
import time, numpy, torch
start = time.perf_counter()
{load}
print(time.perf_counter() - start)
"""
LOADERS = {
    "trainer.data.digits_arrays": "from trainer.data import digits_arrays; pixels, labels = digits_arrays()",
    "sklearn.datasets.load_digits": "from sklearn.datasets import load_digits; bunch = load_digits()",
}


def seconds(load: str) -> float:
    out = subprocess.run([sys.executable, "-c", PROGRAM.format(load=load)], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=5)
    a = ap.parse_args()
    times: dict[str, list[float]] = {name: [] for name in LOADERS}
    for _ in range(a.pairs):
        for name, load in LOADERS.items():
            times[name].append(seconds(load))
    print(machine())
    for name, values in times.items():
        print(f"{name:30s}: {spread(values)} s")
    ours, theirs = times.values()
    print(f"ratio (trainer / scikit-learn): {ratio_summary([o / t for o, t in zip(ours, theirs)])}")


if __name__ == "__main__":
    main()
