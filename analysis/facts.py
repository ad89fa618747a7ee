"""Config-aware reference values: chance level and the loss floor follow from the run's own config."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from rundir.read import Run
from rundir.config_keys import REGULARIZATION_LABEL_SMOOTHING
from rundir.format import SKIPPED_IMAGES
from .stats import binomial_se, decline_from_best, median, noise, window_size


def chance_accuracy(run: Run) -> Optional[float]:
    c = run.num_classes
    return 1.0 / c if c else None


def chance_loss(run: Run) -> Optional[float]:
    """Cross-entropy of a uniform prediction: ln C, with or without label smoothing."""
    c = run.num_classes
    return math.log(c) if c else None


def not_checked(run: Run) -> list[str]:
    """The checks that could not run for a fact the run does not state, each as a sentence: a report that
    lists no finding must not read as a clean bill of health when the check that would have fired is silent
    (an imported run stuck at chance, its class count unknown)."""
    out = []
    if run.num_classes is None:
        out.append("the chance-level checks (accuracy at 1/C, loss at ln C) did not run: the class count is unknown "
                   "(give it in the tool's config: num_classes or the model's output size)")
    return out


def label_smoothing(run: Run) -> float:
    e = run.cfg(REGULARIZATION_LABEL_SMOOTHING, 0.0)
    return float(e) if isinstance(e, (int, float)) and not isinstance(e, bool) and 0 <= e < 1 else 0.0


def loss_floor(run: Run) -> float:
    """The lowest training loss reachable with label smoothing e over C classes: the entropy of the
    smoothed target (1 - e + e/C on the true class, e/C on each other). 0 without smoothing (and when the
    smoothing is unknown: rules that must not assume 0 use known_loss_floor / judged_loss_floor)."""
    e, c = label_smoothing(run), run.num_classes
    if e <= 0 or not c:
        return 0.0
    return smoothing_floor(e, c)


_UNKNOWN = object()

# Label smoothing assumed when a log does not record it, to judge "far from the floor" conservatively: the
# recipe's value (0.1), the largest the usual recipes use, so the floor assumed is above the no-smoothing 0 and a
# run is never called far from a floor it may be sitting on.
ASSUMED_SMOOTHING = 0.1


def smoothing_floor(e: float, c: int) -> float:
    """The entropy of a target smoothed by e over c classes: the lowest cross-entropy reachable."""
    if e <= 0:
        return 0.0
    on, off = 1 - e + e / c, e / c
    return float(-(on * math.log(on)) - (c - 1) * off * math.log(off))


def known_loss_floor(run: Run) -> tuple[Optional[float], str]:
    """The training-loss floor when the run records its label smoothing (and, with smoothing, its class count),
    else None: an unknown floor is unknown, never 0. The second value says where it came from."""
    e = run.cfg(REGULARIZATION_LABEL_SMOOTHING, _UNKNOWN)
    if e is _UNKNOWN or isinstance(e, bool) or not isinstance(e, (int, float)) or not 0 <= e < 1:
        return None, "unknown: the label smoothing is not recorded"
    if e == 0:
        return 0.0, "no label smoothing: cross-entropy can reach 0"
    if not run.num_classes:
        return None, f"unknown: label smoothing {e:g} with an unknown class count"
    return smoothing_floor(float(e), run.num_classes), f"label smoothing {e:g} over {run.num_classes} classes"


def judged_loss_floor(run: Run) -> tuple[Optional[float], str]:
    """The floor a rule judges "far from the floor" against: the known one, or, when the smoothing is unknown and
    the class count known, the floor at ASSUMED_SMOOTHING (conservative: higher than 0); None when neither."""
    floor, source = known_loss_floor(run)
    if floor is not None or not run.num_classes:
        return floor, source
    return (smoothing_floor(ASSUMED_SMOOTHING, run.num_classes),
            f"label smoothing not recorded: judged as if {ASSUMED_SMOOTHING:g} (the recipe's), a conservative floor")


# ── the validation-set size: recorded, or inferred from the accuracies (each is a multiple of 1/n) ──

VAL_SIZE_MAX = 200_000  # the largest val set searched for (ImageNet's is 50,000)
# A float32 accuracy (Keras, Lightning, torchmetrics) printed in full is k/n to within float32 rounding, a few 1e-8;
# a value printed with d decimals is k/n to within half its last digit.
FLOAT32_TOL = 2e-7
VAL_SIZE_FALSE_MATCH = 0.01  # the inferred n is kept when smaller sizes match all values by chance < 1% of the time
VAL_SIZE_MIN_VALUES = 3  # distinct accuracies needed: one or two values fit many sizes
VAL_SIZE_MAX_VALUES = 64  # distinct accuracies used: 64 pin any size down; a 100,000-epoch log costs no more


def _precision(a: float) -> float:
    """Half the last printed digit of a logged value, or float32 rounding for a value printed in full."""
    text = repr(float(a))
    if "e" in text or "." not in text:
        return FLOAT32_TOL
    decimals = len(text.split(".")[1])
    return FLOAT32_TOL if decimals >= 8 else max(0.5 * 10 ** -decimals, FLOAT32_TOL)


def infer_val_size(acc: np.ndarray) -> Optional[int]:
    """The smallest n for which every accuracy is k/n within its printed precision, when that n is trustworthy:
    the chance that a size below it matches every value by accident (each value matches a size m with
    probability about 2 x tolerance x m) stays under VAL_SIZE_FALSE_MATCH. None when no size fits or the
    values are too coarse to tell."""
    acc = np.unique(acc[np.isfinite(acc) & (acc > 0) & (acc < 1)])[:VAL_SIZE_MAX_VALUES]
    if len(acc) < VAL_SIZE_MIN_VALUES:
        return None
    n = np.arange(1, VAL_SIZE_MAX + 1, dtype=np.float64)
    ok = np.ones(len(n), dtype=bool)
    tols = np.array([_precision(a) for a in acc])
    for a, tol in zip(acc, tols):
        k = np.round(a * n)
        ok &= np.abs(k / n - a) <= tol
    hits = np.flatnonzero(ok)
    if not len(hits):
        return None
    size = int(n[hits[0]])
    # Expected accidental matches among the sizes below the one found (independent values, tolerance each).
    m = np.arange(1, size, dtype=np.float64)
    log_p = np.zeros(len(m))
    for tol in tols:
        log_p += np.log(np.minimum(1.0, 2 * tol * m))
    if len(m) and float(np.exp(log_p).sum()) > VAL_SIZE_FALSE_MATCH:
        return None
    return size


def val_size_info(run: Run) -> tuple[int, str]:
    """Samples behind each validation accuracy and where that number came from: recorded (the val records'
    num_samples or run_info's val_size), inferred from the accuracies, or unknown (0: every caller then judges
    with a stated assumption, never with an infinite or zero noise)."""
    if "val_size" not in run.memo:
        run.memo["val_size"] = _val_size_info(run)
    return run.memo["val_size"]


def _val_size_info(run: Run) -> tuple[int, str]:
    n = run.val["num_samples"]
    n = n[np.isfinite(n) & (n > 0)]
    if len(n):
        return int(n[-1]), "recorded (num_samples of the val records)"
    size = (run.info or {}).get("val_size")
    if isinstance(size, int) and not isinstance(size, bool) and 0 < size < 2**31:
        return size, "recorded (run_info.json val_size)"
    inferred = infer_val_size(run.val["accuracy"]) if run.val.has("accuracy") else None
    if inferred is not None:
        return inferred, "inferred: every logged val accuracy is a multiple of 1/n"
    return 0, "unknown: not recorded, and the logged accuracies do not pin it down"


def val_size(run: Run) -> int:
    """Samples behind each validation accuracy (for its binomial noise); 0 when unknown (val_size_info says)."""
    return val_size_info(run)[0]


# An unknown val size is judged as if the set were this small: the binomial SE at 100 images (0.05 at p = 0.5)
# is larger than most published val sets give, so a swing or a gap has to be large to count (conservative), and
# the noise used is never the curve's own swings (which an oscillation inflates) nor 0 nor infinite.
ASSUMED_VAL_SIZE = 100


def accuracy_se(run: Run, p: float) -> tuple[float, str]:
    """The per-epoch standard error of a val accuracy p: binomial at the known (or inferred) val size, else
    binomial at ASSUMED_VAL_SIZE, with the source said."""
    n, source = val_size_info(run)
    if n:
        return binomial_se(p, n), f"binomial, val size {n} ({source})"
    return binomial_se(p, ASSUMED_VAL_SIZE), f"binomial at an assumed {ASSUMED_VAL_SIZE} images (val size {source})"


# Adam-type optimizers divide the step by the gradient's running RMS: clipping scales the gradient, hardly the step.
ADAPTIVE = ("adam", "adamw")


def val_pipeline(run: Run) -> tuple[bool, bool]:
    """(train and val share one pipeline object, the val pipeline draws random numbers), from run_info: either
    way the validation metrics are measured on augmented images."""
    info = run.info or {}
    return info.get("transforms_shared") is True, info.get("val_transform_deterministic") is False


def finite(values: np.ndarray) -> np.ndarray:
    return values[np.isfinite(values)]


def common_epochs(run: Run) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The epochs with both a train and a val record, sorted, and their rows in run.train and run.val. The columns'
    epochs are sorted and unique, so one intersect1d gives the rows (np.isin on each side costs 6x more)."""
    return np.intersect1d(run.train.epochs, run.val.epochs, assume_unique=True, return_indices=True)


# ── why a run learns nothing: facts shared by every rule that sees the symptom, so they agree ──

CHANCE_MIN_EPOCHS = 3  # judge "at chance" only after this many epochs
CHANCE_LOSS_SHARE = 0.9  # and with the loss at >= 90% of ln C
CHANCE_CEILING = 2.0  # an accuracy at twice chance or more is never "at chance" (a model that learned something)
# DeepDiagnosis identifyLearnRate: lr * |grad W| / |W| per layer is off when outside [1e-3 / 100, 1e-3 * 100].
UPDATE_RATIO_TINY = 1e-5
UPDATE_RATIO_HUGE = 1e-1
DEAD_SHARE = 0.5  # SageMaker Debugger DeadRelu: > 50% of a layer's units active < 1% of the time


def at_chance(run: Run) -> Optional[dict]:
    """The evidence that validation accuracy sits at 1/C and the loss near ln C, or None.

    Judged on the mean val accuracy of the last window, not the best epoch: a model that learned
    nothing swings around chance (predicting one class, then another), and the best of N noisy
    epochs clears a 2 SE band by noise alone. Computed once per run (run.memo): five rules and the causes ask."""
    if "at_chance" not in run.memo:
        run.memo["at_chance"] = _at_chance(run)
    return run.memo["at_chance"]


def _at_chance(run: Run) -> Optional[dict]:
    p0, l0 = chance_accuracy(run), chance_loss(run)
    acc = finite(run.val["accuracy"])
    if p0 is None or len(acc) < CHANCE_MIN_EPOCHS:
        return None
    se, se_source = accuracy_se(run, p0)
    # Twice chance is never "at chance", however uncertain the accuracy: the band stops below 2/C, and an epoch of
    # the last window at 2/C or above is a model that learned something (an unknown val size never widens it more).
    band = min(p0 + max(2 * se, 0.02), CHANCE_CEILING * p0)
    window = acc[-window_size(len(acc)):]
    recent = float(np.mean(window))
    loss = finite(run.val["loss"]) if run.val.has("loss") else finite(run.train["loss"])
    last_loss = float(loss[-1]) if len(loss) else math.nan
    if recent > band or float(window.max()) >= CHANCE_CEILING * p0 or not (last_loss >= CHANCE_LOSS_SHARE * l0):
        return None
    return {"recent_val_accuracy": recent, "best_val_accuracy": float(acc.max()), "chance_accuracy": p0,
            "band": band, "noise": se, "noise_source": se_source, "last_loss": last_loss, "chance_loss": l0,
            "epochs": len(acc)}


def update_ratio_range(run: Run) -> tuple[float, float]:
    """Smallest and largest per-epoch update/weight ratio (nan, nan when none was recorded)."""
    r = finite(run.train["weight_update_ratio"])
    return (float(r.min()), float(r.max())) if len(r) else (math.nan, math.nan)


def updates_tiny(run: Run) -> bool:
    """Even the run's largest update/weight ratio is below 1e-5: the LR is too small to move the weights
    (the largest, so a schedule's decay at the end is not mistaken for a small LR)."""
    return update_ratio_range(run)[1] < UPDATE_RATIO_TINY


def updates_huge(run: Run) -> bool:
    """Non-finite steps, or an update of more than a tenth of the weights in some epoch: the LR is too large."""
    nonfinite = np.nansum(run.train["nonfinite_steps"]) > 0
    return bool(nonfinite or update_ratio_range(run)[1] > UPDATE_RATIO_HUGE)


def dead_relu_share(run: Run) -> float:
    """The worst layer's share of dead ReLU units at the last epoch that measured it (0 when never measured)."""
    d = finite(run.train["dead_relu_fraction"])
    return float(d[-1]) if len(d) else 0.0


def ended_near_best(run: Run) -> Optional[bool]:
    """The run's last window of val accuracy is within noise of its best window (the simulation-calibrated
    best-vs-last test, noise the larger of the binomial SE and the curve's own); None without accuracies."""
    acc = finite(run.val["accuracy"])
    if len(acc) < 2:
        return None
    w = min(window_size(len(acc)), max(len(acc) - 1, 1))
    se, _ = accuracy_se(run, median(acc))
    decline = decline_from_best(acc, w, max(se, noise(acc)))
    return decline is None or not decline.significant


def skipped_images(run: Run) -> Optional[dict]:
    """run_info.json's record of the image files an image folder's scan left out (data.skip_bad_images=true):
    {"count", "of", "examples": [{"path", "reason"}]} with only well-formed entries; None when not recorded."""
    record = (run.info or {}).get(SKIPPED_IMAGES)
    if not isinstance(record, dict):
        return None
    count, of = record.get("count"), record.get("of")
    if not (isinstance(count, int) and not isinstance(count, bool) and count >= 0):
        return None
    examples = [e for e in record.get("examples") or [] if isinstance(e, dict)
                and isinstance(e.get("path"), str) and isinstance(e.get("reason"), str)] \
        if isinstance(record.get("examples"), list) else []
    return {"count": count, "of": of if isinstance(of, int) and not isinstance(of, bool) else None,
            "examples": [{"path": e["path"], "reason": e["reason"]} for e in examples]}
