"""The duplicate-image check (trainer/duplicates.py) on CIFAR-sized data: time, and copies found against planted.

    python benchmarks/duplicate_images.py [--train 50000] [--val 10000] [--planted 200]

Smooth random 32 x 32 RGB pictures (8 x 8 noise upsampled, plus pixel noise: varied like photos, so the
calibrated threshold leaves room for near copies); half the planted validation images are exact copies
of training images, half brighter copies (+6 levels). Prints the hashing and matching times on one
core and what was found. Target (issue 19): CIFAR-sized data in seconds on a CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import machine  # noqa: E402
from trainer import duplicates  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=int, default=50_000)
    ap.add_argument("--val", type=int, default=10_000)
    ap.add_argument("--planted", type=int, default=200)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    n = args.train + args.val
    base = rng.integers(0, 256, size=(n, 3, 8, 8), dtype=np.uint8)
    images = (np.repeat(np.repeat(base, 4, axis=2), 4, axis=3) // 2 + rng.integers(0, 20, (n, 3, 32, 32))).astype(np.uint8)
    train, val = np.arange(args.train), np.arange(args.train, n)
    half = args.planted // 2
    images[val[:half]] = images[train[:half]]
    images[val[half:args.planted]] = np.clip(images[train[half:args.planted]].astype(int) + 6, 0, 255)
    w0, t0 = time.perf_counter(), time.process_time()
    a, b = duplicates.hash_tensor_images(images, train), duplicates.hash_tensor_images(images, val)
    t1 = time.process_time()
    r = duplicates.find(a, b)
    w2, t2 = time.perf_counter(), time.process_time()
    print(f"machine: {machine()}")
    print(f"{args.train} train x {args.val} val images, {args.planted} planted copies ({half} exact)")
    print(f"hashing {t1 - t0:.2f} s, matching {t2 - t1:.2f} s CPU (threshold {r['threshold_bits']} bits; "
          f"median distance {r['calibration']['median_distance']}, width {r['calibration']['width']}); {w2 - w0:.2f} s wall")
    print(f"found: {r['exact_pairs']} exact, {r['near_pairs']} near pairs; {r['val_images_with_duplicate']} val images "
          f"(planted {args.planted})")


if __name__ == "__main__":
    main()
