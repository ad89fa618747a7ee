"""The numbers that stand for a run in a table: best and final accuracy, losses, LR, cuts.

A fact of one run (layer 2), shared by the run report's header, the sweep's run table, the comparison of
sweeps and the verification of fixes, so that none of those reports imports another for it.
"""

from __future__ import annotations

import warnings
from typing import Any, Optional

import numpy as np

from rundir.read import Run
from .schedule import find_cuts
from .progress import progress, summary_fields
from .stats import finite_or_none, json_safe


def finite_number(x: Any) -> Optional[float]:
    """x as a float, None when missing or not finite (JSON has no NaN)."""
    return None if x is None else finite_or_none(float(x))


def _at(columns, name: str, index: int) -> Optional[float]:
    col = columns[name]
    return finite_number(col[index]) if len(col) else None


def summary(run: Run) -> dict:
    """The numbers a sweep table needs per run."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _summary(run)


def _summary(run: Run) -> dict:
    va, tr = run.val, run.train
    acc = va["accuracy"]
    best_i = int(np.nanargmax(acc)) if np.isfinite(acc).any() else None
    vloss = va["loss"]
    lr = tr["learning_rate"]
    return {
        "status": run.state,
        "epochs": run.last_epoch,
        "planned_epochs": run.planned_epochs,
        "best_val_accuracy": finite_number(acc[best_i]) if best_i is not None else None,
        "best_epoch": int(va.epochs[best_i]) if best_i is not None else None,
        "final_val_accuracy": _at(va, "accuracy", -1),
        "best_val_top5": finite_number(np.nanmax(va["top5_accuracy"])) if va.has("top5_accuracy") else None,
        "final_val_loss": _at(va, "loss", -1),
        "best_val_loss": finite_number(np.nanmin(vloss)) if np.isfinite(vloss).any() else None,
        "final_train_loss": _at(tr, "loss", -1),
        "final_train_accuracy": _at(tr, "accuracy", -1),
        "initial_lr": _at(tr, "learning_rate", 0),
        "final_lr": _at(tr, "learning_rate", -1),
        "lr_cuts": len(find_cuts(run)) if len(lr) else 0,
        "progress": json_safe(progress(run)),  # the sweep report reads row["progress"]["verdict"]
        **json_safe(summary_fields(progress(run))),
    }
