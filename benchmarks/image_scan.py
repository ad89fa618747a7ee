"""Start-up cost of the image-folder scan (trainer/image_folder.py): the scan of a folder of 32x32 PNGs against
one epoch's worth of loading the same folder through torchvision's ImageFolder (listing it and decoding every
image once, which every epoch of training does anyway), alternated in one process, after a warm-up of each.

    python benchmarks/image_scan.py --images 50000 --pairs 3     # CIFAR-sized
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import machine, ratio_summary, spread


def write_folder(root: Path, images: int, classes: int = 10, size: int = 32) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(images):
        folder = root / f"class{i % classes}"
        folder.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(folder / f"{i}.png")


def scan_seconds(root: Path) -> float:
    from trainer.image_folder import scan

    start = time.perf_counter()
    scan(str(root))
    return time.perf_counter() - start


def one_epoch_seconds(root: Path) -> float:
    from torchvision.datasets import ImageFolder

    start = time.perf_counter()
    folder = ImageFolder(str(root))
    for i in range(len(folder)):
        folder[i]
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--pairs", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="traindx-scan-") as tmp:
        root = Path(tmp)
        write_folder(root, a.images)
        scan_seconds(root), one_epoch_seconds(root)  # warm-up: imports, the page cache
        scans, epochs = [], []
        for _ in range(a.pairs):
            scans.append(scan_seconds(root))
            epochs.append(one_epoch_seconds(root))
    print(f"machine: {machine()}")
    print(f"{a.images} PNGs of 32x32 in 10 classes, {a.pairs} pairs")
    print(f"scan (trainer.image_folder.scan): {spread(scans)} s, {a.images / min(scans):.0f} images/s at best")
    print(f"one epoch of ImageFolder loading: {spread(epochs)} s")
    print(f"ratio (scan / one epoch of loading): {ratio_summary([s / e for s, e in zip(scans, epochs)])}")


if __name__ == "__main__":
    main()
