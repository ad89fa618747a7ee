"""One run's facts a sweep compares across axis values: LR cuts, how its validation swung, its diagnostics
fields in one number each, and a fingerprint of what it learned (identical records, one observation).

Layer 2: pure functions of a Run. Each value is plain (floats, ints, lists) so a sweep of thousands of
jobs carries them in its rows without the Run.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from typing import Optional

import numpy as np

from rundir.config_keys import OPTION_OF
from rundir.read import Run
from .facts import val_size
from .schedule import find_cuts

# What a run learned, for "are these two runs' records identical?": timings and throughput differ between
# identical reruns, so they are left out.
LEARNED = {"train": ("loss", "accuracy", "learning_rate", "mean_grad_norm"), "val": ("loss", "accuracy")}
# Config groups some of whose keys only one option has (rundir.config_keys.OPTION_OF): the run's choice says
# whether a swept key of that group acted at all.
GROUPS_WITH_OWNED_KEYS = sorted({option.split("=")[0] for option in OPTION_OF.values()})
# Diagnostics fields compared between axis values, each reduced to one number per run (its mean over the
# epochs after the first: the first epoch's warm-up says nothing about the setting).
FIELDS = {"mean_grad_norm": "mean gradient norm", "weight_update_ratio": "update/weight ratio"}


def _mean_after_first(y: np.ndarray) -> Optional[float]:
    y = y[1:] if len(y) > 1 else y
    y = y[np.isfinite(y)]
    return float(y.mean()) if len(y) else None


def drawdown(acc: np.ndarray) -> Optional[float]:
    """The largest fall of a validation accuracy below its own running best (0: it never fell)."""
    acc = acc[np.isfinite(acc)]
    if not len(acc):
        return None
    return float(np.max(np.maximum.accumulate(acc) - acc))


def fingerprint(run: Run) -> str:
    """A digest of the learned values of every epoch: two runs with equal fingerprints have identical records."""
    h = hashlib.blake2b(digest_size=12)
    for part, names in LEARNED.items():
        cols = getattr(run, part)
        h.update(cols.epochs.tobytes())
        for name in names:
            h.update(np.ascontiguousarray(cols[name]).tobytes())
    return h.hexdigest()


def sweep_facts(run: Run) -> dict:
    """The facts of one run a sweep report compares between axis values (see the module docstring)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        tr, va = run.train, run.val
        lr = tr["learning_rate"]
        lr = lr[np.isfinite(lr)]
        acc, tacc = va["accuracy"], tr["accuracy"]
        fields = {name: _mean_after_first(tr[name]) for name in FIELDS if tr.has(name)}
        gap = None
        if np.isfinite(acc).any() and np.isfinite(tacc).any():
            gap = float(tacc[np.isfinite(tacc)][-1] - acc[np.isfinite(acc)][-1])
        fields["train_val_gap"] = gap
        return {
            "lr_cut_epochs": [c.epoch for c in find_cuts(run)] if len(lr) else [],
            "lr_constant": bool(len(lr) > 1 and np.all(np.abs(lr - lr[0]) <= 1e-12 * max(abs(lr[0]), 1e-300))),
            "val_size": val_size(run) or None,
            "val_drawdown": drawdown(acc),
            "fields": {k: (v if v is None or math.isfinite(v) else None) for k, v in fields.items()},
            "fingerprint": fingerprint(run),
            "choices": {g: run.cfg(f"{g}.name") for g in GROUPS_WITH_OWNED_KEYS if run.cfg(f"{g}.name") is not None},
        }
