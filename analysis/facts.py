"""Config-aware reference values: chance level and the loss floor follow from the run's own config."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from .records import Run


def chance_accuracy(run: Run) -> Optional[float]:
    c = run.num_classes
    return 1.0 / c if c else None


def chance_loss(run: Run) -> Optional[float]:
    """Cross-entropy of a uniform prediction: ln C, with or without label smoothing."""
    c = run.num_classes
    return math.log(c) if c else None


def label_smoothing(run: Run) -> float:
    e = run.cfg("regularization.label_smoothing", 0.0)
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
