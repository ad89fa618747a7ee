"""Images that are in both splits by content: exact copies and near duplicates, found by a perceptual hash.

The index check (`train_val_overlap` in run_info.json) sees a validation image that is a training index;
it cannot see the same picture stored twice (a folder whose files were copied under new names, a scrape
that fetched one photo from two URLs, CIFAR's own near-duplicates listed by ciFAIR). This module hashes
the images themselves, before any transform:

- exact: identical pixels (two independent 64-bit multiply-add checksums of the raw bytes must agree);
- near: a DCT perceptual hash (pHash, as in Zauner 2010 and imagehash): the image in grayscale, area-
  resized to 32 x 32, its 2-D DCT's 8 x 8 lowest frequencies but the constant one (63 bits), each bit
  saying whether that coefficient is above their median. Re-encoding, rescaling and a change of
  brightness leave it (almost) unchanged: such copies lie within a few bits of each other.

The Hamming threshold is calibrated on the data's own distances, because a fixed one fails on data
whose distinct images look alike (deepchecks#1243: MNIST). Distances between random train-val pairs (a
sample of CALIBRATION_PAIRS) form a bell: its centre is their median; copies (a spike near 0, a small
share of random pairs) are set aside as lying over 4 interquartile widths below it; its width is read
from its low tail, the 1st percentile of the rest, which lies 2.326 standard deviations below the centre
of a normal bell. The tail is what the threshold extrapolates, and the hash's bits are correlated, so the
low tail is heavier than the interquartile range says (on digits it reads 6.0-6.9 bits, the IQR 4.4-5.9).
The threshold is the largest distance at which that normal bell expects fewer than FALSE_PAIRS unrelated
pairs among all N_train x N_val pairs, at most MAX_THRESHOLD. On digits that leaves 0 (equal
hashes: on 8 x 8 digits, distinct images come within 2 bits); where even 0 expects too many unrelated
pairs (data too self-similar, or very large), only exact copies are counted (threshold -1).

Matching is sorted joins, never all pairs: a pair within t bits agrees exactly on at least one of t + 1
disjoint blocks of the hash (pigeonhole), so candidates are the pairs that share a block's value, found
by sorting; their full distance decides. Numpy only; CIFAR-sized data (50,000 x 10,000) takes seconds.
"""

from __future__ import annotations

import math
import time
from typing import Any, Iterator, Optional

import numpy as np

SIDE = 32  # px: the grayscale image the DCT reads
LOW = 8  # the DCT's LOW x LOW lowest frequencies make the hash (less the constant one: 63 bits)
CALIBRATION_PAIRS = 20_000  # random train-val pairs that measure the bell of unrelated distances
FALSE_PAIRS = 0.1  # unrelated pairs the threshold may let through, expected over all train x val pairs
MAX_THRESHOLD = 8  # bits: beyond this a pHash match is no longer a copy (imagehash's users take <= 8-10)
EXAMPLES = 10  # pairs recorded in run_info.json
CHUNK = 4096  # images hashed at once (memory: CHUNK x H x W floats)
MAX_CANDIDATES = 5_000_000  # candidate pairs compared per block and chunk of validation images


# ───────────────────────────── hashing ─────────────────────────────


def _dct_matrix(n: int) -> np.ndarray:
    k, i = np.arange(n)[:, None], np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2 / n)
    m[0] /= math.sqrt(2)
    return m.astype(np.float32)


_DCT_LOW = _dct_matrix(SIDE)[:LOW]  # the rows of the LOW lowest frequencies: all the hash needs


def area_resize(gray: np.ndarray, side: int = SIDE) -> np.ndarray:
    """(N, H, W) -> (N, side, side) by averaging each output pixel's box (an integral image, vectorised);
    a side larger than the image repeats its pixels."""
    n, h, w = gray.shape
    if h == w == side:
        return gray
    if h % side == 0 and w % side == 0:
        return gray.reshape(n, side, h // side, side, w // side).mean(axis=(2, 4))
    integral = np.zeros((n, h + 1, w + 1), dtype=np.float64)
    integral[:, 1:, 1:] = gray.cumsum(axis=1).cumsum(axis=2)

    def edges(size: int) -> tuple[np.ndarray, np.ndarray]:
        lo = (np.arange(side) * size) // side
        return lo, np.maximum(lo + 1, (np.arange(1, side + 1) * size) // side)

    (r0, r1), (c0, c1) = edges(h), edges(w)
    box = (integral[:, r1][:, :, c1] - integral[:, r0][:, :, c1] - integral[:, r1][:, :, c0]
           + integral[:, r0][:, :, c0])
    return (box / ((r1 - r0)[:, None] * (c1 - c0)[None, :])).astype(np.float32)


def phash_bits(gray: np.ndarray) -> np.ndarray:
    """(N, H, W) grayscale -> (N, 63) bool: the DCT perceptual hash described above."""
    small = area_resize(gray)
    low = (_DCT_LOW @ small @ _DCT_LOW.T).reshape(len(gray), -1)[:, 1:]
    return low > np.median(low, axis=1, keepdims=True)


def pack(bits: np.ndarray) -> np.ndarray:
    """(N, <= 64) bool -> (N,) uint64."""
    weights = np.left_shift(np.uint64(1), np.arange(bits.shape[1], dtype=np.uint64))
    return (bits.astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)


_MULTIPLIERS = np.random.default_rng(20260101).integers(1, 2**63, size=(2, 1 << 13), dtype=np.uint64) | np.uint64(1)


def checksum(raw: np.ndarray) -> np.ndarray:
    """(N, ...) uint8 images -> (N, 2) uint64: two multiply-add hashes of the images' 8-byte words with
    independent random odd multipliers (wrapping modulo 2**64), plus the byte count. Different images agree
    on both by chance about once in 2**128 pairs."""
    flat = np.ascontiguousarray(raw.reshape(len(raw), -1))
    nbytes = flat.shape[1]
    if nbytes % 8:
        flat = np.concatenate([flat, np.zeros((len(flat), 8 - nbytes % 8), dtype=np.uint8)], axis=1)
    words = flat.view(np.uint64)
    out = np.zeros((len(raw), 2), dtype=np.uint64)
    width = _MULTIPLIERS.shape[1]
    for start in range(0, words.shape[1], width):
        block = words[:, start:start + width]
        for k in range(2):
            out[:, k] += (block * _MULTIPLIERS[k, :block.shape[1]]).sum(axis=1, dtype=np.uint64)
    return out + np.uint64(nbytes)


def _gray(raw: np.ndarray) -> np.ndarray:
    """(N, C, H, W) uint8 -> (N, H, W) float32 luminance (ITU-R 601 weights for RGB, in integers: 77, 150
    and 29 / 256), else the channel mean."""
    if raw.shape[1] == 3:
        r, g, b = (raw[:, c].astype(np.uint16) for c in range(3))
        return ((77 * r + 150 * g + 29 * b) >> 8).astype(np.float32)
    return raw.astype(np.float32).mean(axis=1)


# ───────────────────────────── images of a dataset ─────────────────────────────


class Hashed:
    """One split's hashes: perceptual (N uint64), checksums (N x 2 uint64), names for the examples, and
    which images could be read (the others match nothing)."""

    def __init__(self, phash: np.ndarray, sums: np.ndarray, names: list[str], readable: Optional[np.ndarray] = None):
        self.phash, self.sums, self.names = phash, sums, names
        self.readable = np.ones(len(phash), dtype=bool) if readable is None else readable

    def __len__(self) -> int:
        return len(self.phash)


def hash_tensor_images(images: np.ndarray, indices: np.ndarray) -> Hashed:
    """A SourceDataset's images (the whole source, N x C x H x W uint8) at the split's indices."""
    ph, sums = [], []
    for start in range(0, len(indices), CHUNK):
        raw = images[indices[start:start + CHUNK]]
        ph.append(pack(phash_bits(_gray(raw))))
        sums.append(checksum(raw))
    return Hashed(np.concatenate(ph) if ph else np.zeros(0, dtype=np.uint64),
                  np.concatenate(sums) if sums else np.zeros((0, 2), dtype=np.uint64), [str(int(i)) for i in indices])


def hash_files(paths: list[str], root: Optional[str] = None) -> Hashed:
    """Image files, decoded with PIL one by one (an image folder); a file PIL cannot read is left out
    of the comparison (its index keeps a hash no other image has) and counted."""
    from PIL import Image

    ph = np.zeros(len(paths), dtype=np.uint64)
    sums = np.zeros((len(paths), 2), dtype=np.uint64)
    readable = np.ones(len(paths), dtype=bool)
    for start in range(0, len(paths), CHUNK):
        grays, raws, rows = [], [], []
        for k, path in enumerate(paths[start:start + CHUNK], start=start):
            try:
                with Image.open(path) as im:
                    rgb = np.asarray(im.convert("RGB"))
                    gray = np.asarray(im.convert("L").resize((SIDE, SIDE), Image.Resampling.BOX), dtype=np.float32)
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
                readable[k] = False
                continue
            grays.append(gray)
            raws.append(rgb)
            rows.append(k)
        if rows:
            ph[rows] = pack(phash_bits(np.stack(grays)))
            # The shape joins the bytes: a 2x6 and a 3x4 image of the same bytes differ.
            sums[rows] = np.concatenate([checksum(np.concatenate([r.ravel(), np.array(r.shape, np.uint16).view(
                np.uint8)])[None]) for r in raws])

    return Hashed(ph, sums, [_relative(p, root) for p in paths], readable)


def _relative(path: str, root: Optional[str]) -> str:
    import os

    return os.path.relpath(path, root) if root else path


def hash_dataset(ds: Any) -> Hashed:
    """The hashes of a trainer dataset (SourceDataset or FolderDataset, data.py), before any transform."""
    indices = ds.indices.numpy()
    if hasattr(ds, "source"):
        return hash_tensor_images(ds.source.images.numpy(), indices)
    samples = ds.folder.samples
    return hash_files([samples[int(i)][0] for i in indices], getattr(ds.folder, "root", None))


# ───────────────────────────── matching ─────────────────────────────


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.bitwise_count(a ^ b).astype(np.int64)


def calibrate(train: np.ndarray, val: np.ndarray, seed: int) -> dict:
    """The Hamming threshold from the bell of random train-val distances (module docstring)."""
    rng = np.random.default_rng(seed)
    n = CALIBRATION_PAIRS
    d = distances(train[rng.integers(0, len(train), n)], val[rng.integers(0, len(val), n)])
    centre = float(np.median(d))
    q1, q3 = np.percentile(d, [25, 75])
    bulk = d[d > centre - 4 * max(float(q3 - q1) / 1.349, 1.0)]  # the copies set aside
    # A degenerate sample (one image repeated) still gets a width of a bit.
    width = max((centre - float(np.quantile(bulk, 0.01))) / 2.326, 1.0) if len(bulk) else 1.0
    pairs = float(len(train)) * float(len(val))
    threshold, expected = -1, 0.0
    for t in range(MAX_THRESHOLD + 1):
        tail = 0.5 * math.erfc(-((t + 0.5 - centre) / width) / math.sqrt(2))  # P(d <= t) under the bell
        if pairs * tail >= FALSE_PAIRS:
            break
        threshold, expected = t, pairs * tail
    return {"threshold": threshold, "median_distance": centre, "width": round(width, 3), "pairs_sampled": n,
            "expected_unrelated_pairs": float(f"{expected:.3g}")}


def _join(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (i, j) with a[i] == b[j], by sorting a."""
    order = np.argsort(a, kind="stable")
    sa = a[order]
    lo, hi = np.searchsorted(sa, b, "left"), np.searchsorted(sa, b, "right")
    counts = hi - lo
    j = np.repeat(np.arange(len(b)), counts)
    starts = np.repeat(lo, counts)
    offsets = np.arange(len(j)) - np.repeat(np.cumsum(counts) - counts, counts)
    return order[starts + offsets], j


def near_pairs(train: np.ndarray, val: np.ndarray, threshold: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train rows, val rows, distances) of every pair within threshold bits (pigeonhole on blocks)."""
    if threshold < 0 or not len(train) or not len(val):
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    bits = LOW * LOW - 1
    bounds = np.linspace(0, bits, threshold + 2).astype(int)
    ii, jj = [], []
    # Validation images per join: a block of w bits spreads the training hashes over up to 2**w values,
    # so a chunk meets about step * len(train) / 2**w candidates; bounded by MAX_CANDIDATES for w >= 6.
    step = max(1, MAX_CANDIDATES * 64 // max(1, len(train)))
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        mask = np.uint64(((1 << (hi - lo)) - 1) << lo)
        ka, kb = train & mask, val & mask
        for start in range(0, len(val), step):
            i, j = _join(ka, kb[start:start + step])
            j = j + start
            keep = distances(train[i], val[j]) <= threshold
            ii.append(i[keep])
            jj.append(j[keep])
    i, j = np.concatenate(ii), np.concatenate(jj)
    if len(i):
        pair = np.unique(i.astype(np.int64) * len(val) + j)  # a pair found in several blocks, once
        i, j = pair // len(val), pair % len(val)
    return i, j, distances(train[i], val[j])


def find(train: Hashed, val: Hashed, seed: int = 0) -> dict:
    """What run_info.json records under `duplicate_images`."""
    t0 = time.perf_counter()
    tr, va = np.flatnonzero(train.readable), np.flatnonzero(val.readable)  # rows compared
    usable = len(tr) > 0 and len(va) > 0
    cal = calibrate(train.phash[tr], val.phash[va], seed) if usable else {"threshold": -1}
    # Exact copies: both checksums equal.
    ei, ej = _join(train.sums[tr, 0], val.sums[va, 0]) if usable else (tr[:0], va[:0])
    same = np.all(train.sums[tr[ei]] == val.sums[va[ej]], axis=1)
    exact = set(zip(tr[ei[same]].tolist(), va[ej[same]].tolist()))
    ni, nj, nd = near_pairs(train.phash[tr], val.phash[va], cal["threshold"])
    near = [(a, b, d) for a, b, d in zip(tr[ni].tolist(), va[nj].tolist(), nd.tolist()) if (a, b) not in exact]
    pairs = [(a, b, 0, True) for a, b in sorted(exact, key=lambda p: (p[1], p[0]))] + \
            [(a, b, d, False) for a, b, d in sorted(near, key=lambda p: (p[2], p[1], p[0]))]
    val_hit = {b for _, b, _, _ in pairs}
    return {
        "method": f"exact pixels (checksum), and a {LOW * LOW - 1}-bit DCT perceptual hash within the threshold",
        "exact_pairs": len(exact),
        "near_pairs": len(near),
        "val_images_with_duplicate": len(val_hit),
        "share_of_val": round(len(val_hit) / len(val), 4) if len(val) else 0.0,
        "threshold_bits": cal["threshold"],
        "calibration": cal,
        "examples": [{"train": train.names[a], "val": val.names[b], "distance": d, "exact": e}
                     for a, b, d, e in pairs[:EXAMPLES]],
        "unreadable_images": int((~train.readable).sum() + (~val.readable).sum()),
        "seconds": round(time.perf_counter() - t0, 3),
    }


def check(data: Any, seed: int = 0) -> dict:
    """Both splits of a trainer `Data` (data.py), hashed and matched; `seconds` counts the hashing too."""
    t0 = time.perf_counter()
    result = find(hash_dataset(data.train), hash_dataset(data.val), seed)
    result["seconds"] = round(time.perf_counter() - t0, 3)
    return result


def lines(result: dict) -> Iterator[str]:
    """check_data's lines about the result."""
    t = result["threshold_bits"]
    how = f"pHash within {t} bits" if t >= 0 else "exact copies only, the images being too alike for pHash"
    yield (f"duplicate images across train/val by content ({how}; {result['seconds']:.2f} s): "
           f"{result['exact_pairs']} exact and {result['near_pairs']} near pairs, "
           f"{result['val_images_with_duplicate']} val images with a copy in train")
    for e in result["examples"][:5]:
        yield f"    train {e['train']}  ~  val {e['val']}  ({'exact' if e['exact'] else str(e['distance']) + ' bits'})"
