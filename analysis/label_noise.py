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

from rundir.format import PER_SAMPLE_DIR
from rundir.per_sample import PerSample, read_per_sample, read_val_predictions
from rundir.read import Run, get
from rundir.safe import is_dir
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


def leave_out_per_sample(run: Run) -> bool:
    """Judge the run without its per-sample records (a sweep's job: each job's records are one file per epoch of
    the training set's size, and the jobs of a sweep share their data, so a sweep reads none of them). True when
    the run had records to leave out."""
    had = run.diagnostics_dir is not None and is_dir(run.diagnostics_dir / PER_SAMPLE_DIR)
    run.memo["per_sample"] = None
    return had


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
    if n == 0 or not predictions_reliable(run):  # predictions too unreliable to judge labels by
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


def predictions_reliable(run: Run) -> bool:
    """The model's predictions can judge labels: its best validation accuracy is at least halfway from chance
    to 1 (below it, it gets held-out images wrong about as often as right)."""
    c = run.num_classes
    if c is None or not run.val.has("accuracy") or not np.isfinite(run.val["accuracy"]).any():
        return False
    return float(np.nanmax(run.val["accuracy"])) >= (1 + 1 / c) / 2


# ───────────────────────── confident learning on the validation predictions ─────────────────────────
#
# The second signal (Northcutt et al. 2021): out-of-sample predicted probabilities judge the labels they were
# not trained on. Per class j the threshold t_j is the mean predicted probability of j over the images labelled
# j (the model's own confidence in that class); an image labelled i is counted in row i of the confident joint,
# in the column of the most probable class at or above its threshold, and looks mislabelled when that column is
# another class. The validation pass is the trainer's best (rundir/format.py VAL_PREDICTIONS), so what this
# estimates is the share of VALIDATION labels that look wrong. Its floor is the model's own confident mistakes,
# about the validation error or less on right labels, so it is not zero on clean labels; where the training
# labels alone are wrong (fault=noisy_labels flips training labels only) it stays near that floor while the
# training-dynamics estimate above rises: their disagreement is the evidence that the noise is in the training
# set. Where both splits share the noise, both rise.


def val_predictions(run: Run) -> Optional[dict]:
    """The run's best validation pass's predictions (rundir/per_sample.py), read once; None when it has none or
    they are of an epoch its validation records do not have (a stale file)."""
    if "val_predictions" not in run.memo:
        vp = None
        if run.diagnostics_dir is not None:
            size = get(run.info, "val_size")
            vp = read_val_predictions(run.diagnostics_dir, size if isinstance(size, int) and
                                      not isinstance(size, bool) else None, run.warnings)
        if vp is not None and int(vp["epoch"][0]) not in {int(e) for e in run.val.epochs}:
            run.warnings.append(f"validation predictions of epoch {int(vp['epoch'][0])}, which the validation "
                                f"records lack: ignored")
            vp = None
        run.memo["val_predictions"] = vp
    return run.memo["val_predictions"]


def confident_joint(labels: np.ndarray, label_probability: np.ndarray, classes: np.ndarray,
                    probabilities: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the C x C confident joint, per image the class it is counted under (-1: not counted), the thresholds).

    classes / probabilities: each image's K most probable classes, most probable first. With K < C a class
    outside an image's top K is at most 1 / (K + 1) probable, so it is missed only where its threshold is that
    low (rundir/format.py VAL_PREDICTION_TOP_K); the label's own probability is always known."""
    c = num_classes
    valid = (labels >= 0) & (labels < c)
    y = np.where(valid, labels, 0)
    p_label = label_probability.astype(np.float64)
    counts = np.bincount(y[valid], minlength=c)
    sums = np.bincount(y[valid], weights=p_label[valid], minlength=c)
    thresholds = np.where(counts > 0, sums / np.maximum(counts, 1), np.inf)  # a class nobody has: never above
    in_range = (classes >= 0) & (classes < c)
    above = in_range & (probabilities.astype(np.float64) >= thresholds[np.where(in_range, classes, 0)])
    first = above.argmax(axis=1)
    looks_like = np.where(above.any(axis=1), classes[np.arange(len(classes)), first], -1).astype(np.int64)
    # The label at or above its threshold but outside the top K: it is the only candidate left.
    looks_like = np.where((looks_like < 0) & (p_label >= thresholds[y]), y, looks_like)
    looks_like = np.where(valid, looks_like, -1)
    counted = looks_like >= 0
    joint = np.zeros((c, c), dtype=np.int64)
    np.add.at(joint, (y[counted], looks_like[counted]), 1)
    return joint, looks_like, thresholds


def confident_learning(run: Run) -> Optional[dict]:
    """The share of validation labels that look wrong by confident learning, with its Wilson 95 % interval;
    None without validation predictions, or when the model learned too little to judge labels by."""
    vp = val_predictions(run)
    c = run.num_classes
    if vp is None or c is None or not predictions_reliable(run):
        return None
    labels = vp["label"].astype(np.int64)
    joint, looks_like, thresholds = confident_joint(labels, vp["label_probability"], vp["classes"].astype(np.int64),
                                                    vp["probabilities"], c)
    counted = int(joint.sum())
    if counted == 0:
        return None
    off = counted - int(np.trace(joint))
    lo, hi = wilson_interval(off, counted)
    # Northcutt et al.'s calibration: each row rescaled to its class's share of the labels.
    rows, given = joint.sum(axis=1), np.bincount(labels[(labels >= 0) & (labels < c)], minlength=c)
    with np.errstate(all="ignore"):
        calibrated = float(np.nansum(np.where(rows > 0, (rows - np.diag(joint)) / rows, 0) * given) / given.sum())
    epoch, k = int(vp["epoch"][0]), vp["classes"].shape[1]
    v, _ = val_error(run, epoch)
    wrong = np.flatnonzero((looks_like >= 0) & (looks_like != labels))
    p_label = vp["label_probability"].astype(np.float64)
    wrong = wrong[np.argsort(p_label[wrong], kind="stable")]  # the least probable labels first
    pairs = [(int(i), int(j), int(joint[i, j])) for i in range(c) for j in range(c) if i != j and joint[i, j]]
    pairs.sort(key=lambda t: -t[2])
    return {
        "share": round(off / counted, 4),
        "interval": [round(lo, 4), round(hi, 4)],
        "share_calibrated": round(calibrated, 4),
        "images": counted,  # counted in the confident joint (some class at or above its threshold)
        "validated": int(((labels >= 0) & (labels < c)).sum()),  # of the validation images with a valid label
        "epoch": epoch,  # the best validation pass's
        "val_error": round(v, 4),  # at that epoch: the floor's scale on right labels
        # every class's threshold reachable within the top K kept (always, for C <= K)
        "exact": bool(k >= c or (thresholds[np.isfinite(thresholds)] > 1 / (k + 1)).all()),
        "flips": [{"label": i, "looks_like": j, "images": k} for i, j, k in pairs[:MAX_FLIPS]],
        "suspects": [{"index": int(i), "label": int(labels[i]), "looks_like": int(looks_like[i]),
                      "label_probability": round(float(p_label[i]), 3)} for i in wrong[:MAX_SUSPECTS]],
    }


def signals(run: Run) -> Optional[dict]:
    """Both estimates side by side (training dynamics on the training labels, confident learning on the
    validation labels) and how they compare, by their 95 % intervals; None when either is missing.

    "train_higher": more training labels look wrong than validation labels (the noise is in the training set);
    "val_higher": the reverse; "same": the intervals overlap (the same share in both splits, or none in either)."""
    train, val = estimate(run), confident_learning(run)
    if train is None or val is None:
        return None
    (t_lo, t_hi), (v_lo, v_hi) = train["interval"], val["interval"]
    comparison = "train_higher" if t_lo > v_hi else "val_higher" if v_lo > t_hi else "same"
    return {"comparison": comparison, "says": COMPARISON_SAYS[comparison],
            "train": {k: train[k] for k in ("share", "interval")},
            "val": {k: val[k] for k in ("share", "interval", "val_error", "epoch")}}


COMPARISON_SAYS = {
    "train_higher": "more training labels look wrong than validation labels: the wrong labels are in the training "
                    "set, and the validation accuracy is measured against labels that look right",
    "val_higher": "more validation labels look wrong than training labels: the validation labels (or the images "
                  "the split put there) are the noisier",
    "same": "the two estimates agree within their intervals: about as many labels look wrong in the validation "
            "set as in the training set (none in either, or noise both splits share, which the validation "
            "accuracy then carries too)",
}
