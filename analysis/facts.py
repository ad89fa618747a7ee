"""Config-aware reference values: chance level and the loss floor follow from the run's own config."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from rundir.read import Run
from rundir.config_keys import REGULARIZATION_LABEL_SMOOTHING
from .stats import binomial_se, window_size


def chance_accuracy(run: Run) -> Optional[float]:
    c = run.num_classes
    return 1.0 / c if c else None


def chance_loss(run: Run) -> Optional[float]:
    """Cross-entropy of a uniform prediction: ln C, with or without label smoothing."""
    c = run.num_classes
    return math.log(c) if c else None


def label_smoothing(run: Run) -> float:
    e = run.cfg(REGULARIZATION_LABEL_SMOOTHING, 0.0)
    return float(e) if isinstance(e, (int, float)) and not isinstance(e, bool) and 0 <= e < 1 else 0.0


def loss_floor(run: Run) -> float:
    """The lowest training loss reachable with label smoothing e over C classes: the entropy of the
    smoothed target (1 - e + e/C on the true class, e/C on each other). 0 without smoothing."""
    e, c = label_smoothing(run), run.num_classes
    if e <= 0 or not c:
        return 0.0
    on, off = 1 - e + e / c, e / c
    return float(-(on * math.log(on)) - (c - 1) * off * math.log(off))


def val_size(run: Run) -> int:
    """Samples behind each validation accuracy (for its binomial noise)."""
    n = run.val["num_samples"]
    n = n[np.isfinite(n)]
    if len(n):
        return int(n[-1])
    size = (run.info or {}).get("val_size")
    return int(size) if isinstance(size, int) and size > 0 else 0


def finite(values: np.ndarray) -> np.ndarray:
    return values[np.isfinite(values)]


# ── why a run learns nothing: facts shared by every rule that sees the symptom, so they agree ──

CHANCE_MIN_EPOCHS = 3  # judge "at chance" only after this many epochs
CHANCE_LOSS_SHARE = 0.9  # and with the loss at >= 90% of ln C
# DeepDiagnosis identifyLearnRate: lr * |grad W| / |W| per layer is off when outside [1e-3 / 100, 1e-3 * 100].
UPDATE_RATIO_TINY = 1e-5
UPDATE_RATIO_HUGE = 1e-1
DEAD_SHARE = 0.5  # SageMaker Debugger DeadRelu: > 50% of a layer's units active < 1% of the time


def at_chance(run: Run) -> Optional[dict]:
    """The evidence that validation accuracy sits at 1/C and the loss near ln C, or None.

    Judged on the mean val accuracy of the last window, not the best epoch: a model that learned
    nothing swings around chance (predicting one class, then another), and the best of N noisy
    epochs clears a 2 SE band by noise alone."""
    p0, l0 = chance_accuracy(run), chance_loss(run)
    acc = finite(run.val["accuracy"])
    if p0 is None or len(acc) < CHANCE_MIN_EPOCHS:
        return None
    band = p0 + max(2 * binomial_se(p0, val_size(run)), 0.02)
    recent = float(np.mean(acc[-window_size(len(acc)):]))
    loss = finite(run.val["loss"]) if run.val.has("loss") else finite(run.train["loss"])
    last_loss = float(loss[-1]) if len(loss) else math.nan
    if recent > band or not (last_loss >= CHANCE_LOSS_SHARE * l0):
        return None
    return {"recent_val_accuracy": recent, "best_val_accuracy": float(acc.max()), "chance_accuracy": p0,
            "band": band, "last_loss": last_loss, "chance_loss": l0, "epochs": len(acc)}


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
