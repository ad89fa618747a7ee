"""Labels that look wrong, estimated from each training image's dynamics (numpy only; a function of a Run).

The principle (Pleiss et al. 2020, area under the margin; Arpit et al. 2017 and Liu et al. 2020 on early
learning): a network learns the labels that agree with the rest of the data first and memorizes the others
late. Before it memorizes, a mislabeled image keeps a negative margin: the model predicts its true class,
the same other class epoch after epoch, while the images around it are learned. So the estimate looks at
the epochs before memorization, up to the epoch of best validation loss (after it, fitting the training
labels stops helping held-out ones), and at the later half of them (the first epochs have not learned the
clean majority yet). Per image, over those epochs, the share in which the model predicted one and the same
other class than its label (confident learning's "confident joint", Northcutt et al. 2021, with agreement
over epochs as the confidence):

- in every epoch: the label is contradicted throughout (a wrong label, or an image no model gets right);
- in most epochs: the label looks wrong (some are merely hard images the model confuses for a while).

The two shares bound the noise from below and above: a wrong label memorized before the window is missed by
both, a hard clean image is counted by the upper one (and by the lower one while the model has not learned
it yet). The interval is the Wilson 95 % lower bound of the first share and upper bound of the second
(sampling error included); the estimate is its middle. A model fits its training images at least as well as
held-out ones, so while the labels are right it contradicts fewer training images than it gets validation
images wrong: `excess` compares the lower bound with the validation error at the window's end (its Wilson
upper bound), the evidence that the training labels, not the images, are at fault. (Noise that the validation
labels share raises the validation error as much, and shows in the interval only.) Nothing is tuned to a
dataset: the window, the two agreement levels and the bounds follow from the principle. Where the model's
predictions say little (its best validation accuracy is not at least halfway from chance to 1: it gets
held-out images wrong about as often as right), no estimate is made.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from rundir.per_sample import PerSample, read_per_sample
from rundir.read import Run, get
from .stats import wilson_interval

MIN_WINDOW = 3  # epochs: the later half of the epochs before memorization needs at least this many
MAX_SUSPECTS = 32  # image indices listed as suspects, most contradicted first
MAX_FLIPS = 5  # (label, looks like) pairs listed, most frequent first


def per_sample(run: Run) -> Optional[PerSample]:
    """The run's per-sample records (rundir/per_sample.py), read once per run; None when it has none."""
    if "per_sample" not in run.memo:
        ps = None
        if run.diagnostics_dir is not None and len(run.train):
            ps = read_per_sample(run.diagnostics_dir, [int(e) for e in run.train.epochs],
                                 get(run.info, "train_size") if isinstance(get(run.info, "train_size"), int) else None,
                                 run.warnings)
        run.memo["per_sample"] = ps
    return run.memo["per_sample"]


def memorization_epoch(run: Run) -> Optional[int]:
    """The epoch of best validation loss (nll where recorded): after it the training labels are being
    memorized at the held-out images' cost. None without validation records."""
    for name in ("nll", "loss"):
        if run.val.has(name):
            v = run.val[name]
            if np.isfinite(v).any():
                return int(run.val.epochs[int(np.nanargmin(v))])
    return None


def window(run: Run, ps: PerSample) -> np.ndarray:
    """Row indices of ps: the later half of the epochs up to the memorization epoch (at least MIN_WINDOW)."""
    epochs = ps.epochs
    stop = memorization_epoch(run)
    stop = int(epochs[-1]) if stop is None else stop
    stop = max(stop, int(epochs[min(MIN_WINDOW, len(epochs)) - 1]))
    before = np.flatnonzero(epochs <= stop)
    rows = before[epochs[before] > stop / 2]
    return rows if len(rows) >= MIN_WINDOW else before[-MIN_WINDOW:]


def contradiction(predicted: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per image: the other class predicted most often over the rows (-1: none), in how many rows, of how many
    in which it was trained on. A class predicted in more than half the rows is the median of the sorted
    column, which is all this needs to find (a class in fewer rows is never 'most')."""
    seen = (predicted >= 0).sum(axis=0)
    other = np.where((predicted >= 0) & (predicted != labels), predicted, np.iinfo(np.int16).max).astype(np.int32)
    ordered = np.sort(other, axis=0)
    median = ordered[np.maximum(seen - 1, 0) // 2, np.arange(predicted.shape[1])]
    candidate = np.where(median < np.iinfo(np.int16).max, median, -1)
    count = ((predicted == candidate) & (candidate >= 0)).sum(axis=0)
    return candidate, count, seen


def estimate(run: Run) -> Optional[dict]:
    """The share of training labels that look wrong, with its interval and what supports it; None when the run
    has no per-sample records (or too few epochs, or learned too little to tell)."""
    ps = per_sample(run)
    if ps is None or ps.labels is None or len(ps.epochs) < MIN_WINDOW:
        return None
    rows = window(run, ps)
    predicted, margin, labels = ps.predicted[rows], ps.margin[rows], ps.labels
    candidate, count, seen = contradiction(predicted, labels)
    judged = seen >= math.ceil(len(rows) / 2)  # trained on in at least half the window's epochs
    n = int(judged.sum())
    c = run.num_classes
    if n == 0 or c is None:
        return None
    best_val = float(np.nanmax(run.val["accuracy"])) if run.val.has("accuracy") and \
        np.isfinite(run.val["accuracy"]).any() else None
    if best_val is None or best_val < (1 + 1 / c) / 2:  # predictions too unreliable to judge labels by
        return None
    fitted = float(((predicted == labels) & judged).sum() / max((predicted[:, judged] >= 0).sum(), 1))
    always = judged & (count == seen) & (seen > 0)
    most = judged & (2 * count > seen)
    lo = wilson_interval(int(always.sum()), n)[0]
    hi = wilson_interval(int(most.sum()), n)[1]
    v, v_hi = val_error(run, int(ps.epochs[rows[-1]]))
    with np.errstate(all="ignore"):
        aum = np.nanmean(margin, axis=0)  # area under the margin over the window, per image
    suspects = np.flatnonzero(most)
    suspects = suspects[np.argsort(aum[suspects], kind="stable")]
    pairs, counts = np.unique(np.stack([labels[suspects], candidate[suspects]]), axis=1, return_counts=True)
    top = np.argsort(-counts, kind="stable")[:MAX_FLIPS]
    finite = np.isfinite(aum)
    return {
        "share": round((lo + hi) / 2, 4),
        "interval": [round(lo, 4), round(hi, 4)],
        "share_contradicted_always": round(float(always.sum() / n), 4),
        "share_contradicted_mostly": round(float(most.sum() / n), 4),
        "images": n,
        "val_error": round(v, 4),  # at the window's last epoch
        "excess": round(lo - v_hi, 4),  # > 0: more training labels contradicted than validation images missed
        "window_epochs": [int(ps.epochs[rows[0]]), int(ps.epochs[rows[-1]])],
        "memorization_epoch": memorization_epoch(run),
        "train_fit_in_window": round(fitted, 4),
        "aum_median_suspected": _median(aum[most & finite]),
        "aum_median_others": _median(aum[judged & ~most & finite]),
        "flips": [{"label": int(pairs[0, i]), "looks_like": int(pairs[1, i]), "images": int(counts[i])} for i in top],
        "suspects": [{"index": int(i), "label": int(labels[i]), "looks_like": int(candidate[i]),
                      "aum": round(float(aum[i]), 3)} for i in suspects[:MAX_SUSPECTS]],
    }


def val_error(run: Run, epoch: int) -> tuple[float, float]:
    """The validation error at an epoch and its Wilson 95 % upper bound ((1, 1) when not recorded)."""
    acc = run.val["accuracy"][run.val.epochs == epoch] if run.val.has("accuracy") else np.zeros(0)
    acc = acc[np.isfinite(acc)]
    if not len(acc):
        return 1.0, 1.0
    v = float(1 - np.clip(acc[-1], 0, 1))
    size = get(run.info, "val_size")
    if not (isinstance(size, int) and not isinstance(size, bool) and size > 0):
        return v, v
    return v, wilson_interval(round(v * size), size)[1]


def _median(x: np.ndarray) -> Optional[float]:
    return round(float(np.median(x)), 3) if len(x) else None
