"""Learning-rate cuts and their attribution: was the validation loss really stuck, and what did the cut buy?

Used by the Learning Rate section of the report and by the `lr_reduced_early`, `lr_cut_premature`,
`weights_not_updating` and `loss_plateau_early` rules, so all say the same thing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .config_keys import SCHEDULER_NAME, SCHEDULER_PATIENCE, SCHEDULER_THRESHOLD
from .findings import Recommendation
from .overrides import lower_plateau_threshold, raise_min_lr, raise_patience, uses
from rundir.read import Run
from .stats import noise, trend

CUT_RATIO = 0.9  # an epoch whose LR is below 0.9x the previous one's is a cut (piecewise schedules)
PIECEWISE = ("plateau", "step")  # schedulers whose LR moves in cuts; cosine/onecycle glide


@dataclass
class Cut:
    epoch: int  # first epoch trained at the lower LR
    lr_before: float
    lr_after: float
    verdict: str  # "stalled", "still improving", or "unknown"
    val_slope: Optional[float]  # val-loss slope per epoch over the epochs before the cut
    val_slope_t: Optional[float]
    val_noise: Optional[float]  # epoch-to-epoch noise of the val loss (std)
    bought_loss: Optional[float]  # val loss: mean over the window after the cut minus the one before
    bought_accuracy: Optional[float]  # val accuracy: same difference

    def as_dict(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) and math.isfinite(v) else v) for k, v in self.__dict__.items()}


def is_piecewise(run: Run) -> bool:
    name = run.cfg(SCHEDULER_NAME)
    if name is not None:
        return name in PIECEWISE
    # No config (a lone JSONL file): piecewise when the LR only ever holds or drops by a real cut.
    lr = run.train["learning_rate"]
    lr = lr[np.isfinite(lr)]
    if len(lr) < 2:
        return False
    ratios = lr[1:] / np.maximum(lr[:-1], 1e-300)
    return bool(np.all((ratios >= 0.999) & (ratios <= 1.001) | (ratios < CUT_RATIO)))


def find_cuts(run: Run) -> list[Cut]:
    """Every LR cut of a piecewise schedule, each judged against the val loss around it (computed once)."""
    if "cuts" not in run.memo:
        run.memo["cuts"] = _find_cuts(run)
    return run.memo["cuts"]


def _find_cuts(run: Run) -> list[Cut]:
    if not is_piecewise(run):
        return []
    epochs = run.train.epochs
    lr = run.train["learning_rate"]
    patience = run.cfg(SCHEDULER_PATIENCE)
    window = max(5, (patience + 1) if isinstance(patience, int) else 5)  # ReduceLROnPlateau's own window, >= 5
    cuts = []
    for i in range(1, len(lr)):
        if not (np.isfinite(lr[i]) and np.isfinite(lr[i - 1])) or lr[i] >= CUT_RATIO * lr[i - 1]:
            continue
        cuts.append(_judge(run, int(epochs[i]), float(lr[i - 1]), float(lr[i]), window))
    return cuts


def _judge(run: Run, epoch: int, before: float, after: float, window: int) -> Cut:
    """The val loss over the `window` epochs before the cut: still falling beyond its noise, or stalled?"""
    ve, vl, va = run.val.epochs, run.val["loss"], run.val["accuracy"]
    pre = (ve < epoch) & (ve >= epoch - window)
    post = (ve >= epoch) & (ve < epoch + window)
    slope = t = sigma = bought_loss = bought_acc = None
    verdict = "unknown"
    if pre.sum() >= 3:
        tr = trend(vl[pre], ve[pre])
        sigma = noise(vl[ve < epoch])
        slope, t = tr.slope, tr.t
        # Still improving: the slope is significantly negative *and* the fall it predicts over the
        # window is larger than the epoch-to-epoch noise (a "cut on noise" is ReduceLROnPlateau's
        # typical premature trigger: threshold_mode='rel' with a tiny threshold).
        verdict = "still improving" if tr.falling() and -tr.slope * window > sigma else "stalled"
    if pre.any() and post.any():
        bought_loss = float(np.nanmean(vl[post]) - np.nanmean(vl[pre]))
        bought_acc = float(np.nanmean(va[post]) - np.nanmean(va[pre]))
    return Cut(epoch, before, after, verdict, slope, t, sigma, bought_loss, bought_acc)


def early_limit(run: Run) -> int:
    """The last epoch at which a first cut counts as early: the seed's 'within the first 5-10 epochs',
    scaled down for short runs (a quarter of the planned epochs)."""
    planned = run.planned_epochs or max(run.last_epoch, 1)
    return max(1, min(10, int(math.ceil(planned * 0.25))))


def relax_cuts(run: Run, floor: bool = False) -> list[Recommendation]:
    """The fixes for LR cuts that came too soon or too often, the most direct first: a relative threshold
    no epoch can meet, then patience, then (floor=True, when the cuts froze the weights) a min_lr."""
    recs = []
    if threshold := lower_plateau_threshold(run):
        share = run.cfg(SCHEDULER_THRESHOLD)
        recs.append(Recommendation(f"scheduler.threshold={share:g} asks each epoch to beat the best val loss by "
                                   f"{share * 100:g}%, so ReduceLROnPlateau cuts on almost every epoch: lower it",
                                   threshold))
    if uses(run, "scheduler", "plateau"):
        recs.append(Recommendation("give ReduceLROnPlateau more patience", raise_patience(run)))
    if floor and (min_lr := raise_min_lr(run)):
        recs.append(Recommendation("floor the LR, so the cuts stop before the weights freeze", min_lr))
    recs.append(Recommendation("use a schedule without early cuts (cosine decay over the whole run)",
                               ["scheduler=cosine"]))
    return recs
