"""Reading a run's per-sample records (rundir/format.py: PER_SAMPLE_DIR), safely and without torch.

Each file is read whole through `rundir.safe` (a regular file, capped at MAX_PER_SAMPLE_BYTES) and parsed by
NumPy with allow_pickle=False: an .npz of plain arrays, never an object array, so nothing in it runs. A
file that is missing, damaged or of the wrong shape becomes one warning and is left out.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from . import safe
from .format import (MAX_PER_SAMPLE_BYTES, PER_SAMPLE_DIR, PER_SAMPLE_EPOCH, PER_SAMPLE_FIELDS, PER_SAMPLE_LABELS,
                     TOP_LOSS_FIELDS, TOP_LOSSES, VAL_PREDICTION_FIELDS, VAL_PREDICTION_TOP_K, VAL_PREDICTIONS)


@dataclass
class PerSample:
    """One row per epoch read, one column per training image (NaN / -1: not trained on that epoch)."""

    epochs: np.ndarray  # (E,) epoch numbers
    loss: np.ndarray  # (E, N) float32, nats
    margin: np.ndarray  # (E, N) float32, logits
    predicted: np.ndarray  # (E, N) int16, class or -1
    labels: Optional[np.ndarray]  # (N,) int32, the labels as trained; None when labels.npz is unreadable


def read_arrays(path: Path, warnings: list[str]) -> Optional[dict[str, np.ndarray]]:
    """The arrays of an .npz file, or None (absent: silently; unreadable or damaged: with a warning)."""
    data = safe.read_whole(path, MAX_PER_SAMPLE_BYTES, warnings)
    if data is None:
        return None
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, RuntimeError) as e:
        warnings.append(f"{path}: not a readable .npz of plain arrays ({type(e).__name__}), ignored")
        return None


def _checked(arrays: Optional[dict], table: tuple, n: Optional[int], path: Path, warnings: list[str]) -> Optional[dict]:
    """The arrays of `table` ((name, dtype, ...)), each of the dtype's kind and of length n when n is given."""
    if arrays is None:
        return None
    for name, dtype, *_ in table:
        a = arrays.get(name)
        kind = "U" if dtype == "str" else np.dtype(dtype).kind
        if a is None or a.dtype.kind != kind or a.ndim < 1 or (n is not None and len(a) != n):
            warnings.append(f"{path}: array {name!r} missing or not {dtype}[{n if n is not None else 'K'}], ignored")
            return None
    return arrays


def read_per_sample(diag_dir: Path, epochs: list[int], train_size: Optional[int],
                    warnings: list[str]) -> Optional[PerSample]:
    """The per-sample arrays of the given epochs (those with a file); None when there are none."""
    directory = Path(diag_dir) / PER_SAMPLE_DIR
    if not safe.is_dir(directory):
        return None
    labels = _checked(read_arrays(directory / PER_SAMPLE_LABELS, warnings), (("labels", "int32"),), train_size,
                      directory / PER_SAMPLE_LABELS, warnings)
    n = train_size if train_size is not None else (len(labels["labels"]) if labels else None)
    kept, rows = [], []
    for epoch in epochs:
        path = directory / PER_SAMPLE_EPOCH.format(epoch=epoch)
        arrays = _checked(read_arrays(path, warnings), PER_SAMPLE_FIELDS, n, path, warnings)
        if arrays is None:
            continue
        n = len(arrays["loss"])
        kept.append(epoch)
        rows.append(arrays)
    if not rows:
        return None
    return PerSample(epochs=np.asarray(kept), loss=np.stack([r["loss"].astype(np.float32) for r in rows]),
                     margin=np.stack([r["margin"].astype(np.float32) for r in rows]),
                     predicted=np.stack([r["predicted"].astype(np.int16) for r in rows]),
                     labels=labels["labels"] if labels else None)


def read_top_losses(diag_dir: Path, warnings: list[str]) -> Optional[dict[str, np.ndarray]]:
    """TOP_LOSSES's arrays (images (K, C, H, W) uint8 with C 1 or 3), or None."""
    path = Path(diag_dir) / PER_SAMPLE_DIR / TOP_LOSSES
    arrays = read_arrays(path, warnings)
    if arrays is None:
        return None
    k = len(arrays["index"]) if isinstance(arrays.get("index"), np.ndarray) and arrays["index"].ndim == 1 else None
    per_image = tuple(f for f in TOP_LOSS_FIELDS if f[0] != "class_names")
    checked = _checked(arrays, per_image, k, path, warnings)
    if checked is None:
        return None
    image = checked["image"]
    sides_ok = image.ndim == 4 and 1 <= image.shape[2] <= 512 and 1 <= image.shape[3] <= 512
    if not sides_ok or image.shape[1] not in (1, 3):
        warnings.append(f"{path}: images of shape {image.shape}, not (K, 1 or 3, H, W), ignored")
        return None
    names = arrays.get("class_names")
    checked["class_names"] = names if isinstance(names, np.ndarray) and names.dtype.kind == "U" and names.ndim == 1 \
        else np.array([], dtype=str)
    return checked


def read_val_predictions(diag_dir: Path, val_size: Optional[int], warnings: list[str]) -> Optional[dict[str, np.ndarray]]:
    """VAL_PREDICTIONS's arrays (rundir/format.py VAL_PREDICTION_FIELDS), or None: absent silently; damaged, of
    the wrong shapes (N images, K <= VAL_PREDICTION_TOP_K columns; N = val_size when given) with a warning. Classes
    are not checked against the run's class count here: the analysis does."""
    path = Path(diag_dir) / PER_SAMPLE_DIR / VAL_PREDICTIONS
    arrays = read_arrays(path, warnings)
    if arrays is None:
        return None
    epoch = arrays.get("epoch")
    if not (isinstance(epoch, np.ndarray) and epoch.shape == (1,) and epoch.dtype.kind == "i"):
        warnings.append(f"{path}: array 'epoch' missing or not int32[1], ignored")
        return None
    label = arrays.get("label")
    n = val_size if val_size is not None else (len(label) if isinstance(label, np.ndarray) and label.ndim == 1
                                               else None)
    checked = _checked(arrays, VAL_PREDICTION_FIELDS[1:], n, path, warnings)
    if checked is None:
        return None
    classes, probabilities = checked["classes"], checked["probabilities"]
    k = classes.shape[1] if classes.ndim == 2 else 0
    if (checked["label"].ndim != 1 or checked["label_probability"].ndim != 1 or probabilities.shape != classes.shape
            or not 1 <= k <= VAL_PREDICTION_TOP_K):
        warnings.append(f"{path}: arrays of shapes label {checked['label'].shape}, classes {classes.shape}, "
                        f"probabilities {probabilities.shape}: not (N,) and (N, K <= {VAL_PREDICTION_TOP_K}), ignored")
        return None
    return checked
